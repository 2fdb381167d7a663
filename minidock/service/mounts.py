"""What a container mounts: HostConfig.Binds (`-v`), HostConfig.Mounts (`--mount`),
HostConfig.Tmpfs (`--tmpfs`), VolumesFrom and Config.Volumes (anonymous
volumes), checked with Docker's rules and words (moby's volume/mounts
linux_parser and daemon/volumes.go registerMountPoints), resolved at create
into the container's list of MountPoints. Nothing here touches the kernel:
the launcher mounts the list inside the container's own mount namespace at
each start (`launcher_mounts`), so the mounts die with the container's
processes and nothing is left on the host.

Precedence, as Docker's: VolumesFrom first, then Binds, then Mounts, each
replacing an earlier mount at the same destination; Config.Volumes only
where nothing is mounted yet. Volumes named in `-v NAME:/ctr` or `--mount
type=volume,source=NAME` that do not exist are created (after every check
has passed), anonymous ones get a random name and Docker's anonymous label.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import InvalidParameter, NotFound
from ..model import Container, MountPoint
from .core import Core
from .volumes import Volumes, check_driver, check_volume_name

RW_MODES = {"rw", "ro"}
LABEL_MODES = {"z", "Z"}
PROPAGATION = {"private", "rprivate", "slave", "rslave", "shared", "rshared"}
COPY_MODES = {"nocopy"}
CONSISTENCY = {"consistent", "cached", "delegated"}
DEFAULT_PROPAGATION = "rprivate"
# what Docker gives every tmpfs before the user's options (oci_linux.go); "exec" etc. override
TMPFS_DEFAULTS = "noexec,nosuid,nodev"


def valid_mode(mode: str) -> bool:
    """linuxValidMountMode: each word known, at most one of each kind."""
    if not mode:
        return True
    counts = [0, 0, 0, 0, 0]
    for word in mode.split(","):
        for i, kind in enumerate((RW_MODES, LABEL_MODES, PROPAGATION, COPY_MODES, CONSISTENCY)):
            if word in kind:
                counts[i] += 1
                break
        else:
            return False
    return max(counts) <= 1


def _propagation(mode: str) -> str:
    return next((w for w in mode.split(",") if w in PROPAGATION), "")


def _invalid_spec(raw: str) -> InvalidParameter:
    return InvalidParameter(f"invalid volume specification: '{raw}'")


def _check_target(target: str) -> str | None:
    """Docker's checks of a destination: the error text, or None."""
    if not target:
        return "field Target must not be empty"
    if posixpath.normpath(target) == "/":
        return "invalid specification: destination can't be '/'"
    if not posixpath.isabs(target):
        return f"invalid mount path: '{target}' mount path must be absolute"
    return None


def _clean(path: str) -> str:
    return posixpath.normpath(path) if path else path


@dataclass
class Wanted:
    """A volume a mount needs: made (if missing) once every check has passed."""

    name: str  # "" for an anonymous one (named when made)
    driver: str = ""
    labels: dict[str, str] | None = None
    options: dict[str, str] | None = None
    mounts: list[MountPoint] = field(default_factory=list)  # whose name and source to fill in


def parse_bind(raw: str, volume_driver: str = "") -> tuple[MountPoint, Wanted | None]:
    """One `-v` string: /host:/ctr[:mode], name:/ctr[:mode], or /ctr (an anonymous volume)."""
    arr = raw.split(":", 3)
    if not arr[0]:
        raise _invalid_spec(raw)
    source, mode = "", ""
    if len(arr) == 1:
        target = arr[0]
    elif len(arr) == 2:
        if valid_mode(arr[1]):  # /foo:rw names a destination and a mode: no source
            raise _invalid_spec(raw)
        source, target = arr
    elif len(arr) == 3:
        source, target, mode = arr
    else:
        raise _invalid_spec(raw)
    if not valid_mode(mode):
        raise InvalidParameter(f"invalid mode: {mode}")
    kind = "bind" if posixpath.isabs(source) else "volume"
    problem = _check_target(target)
    if problem:
        raise InvalidParameter(f"invalid volume specification: '{raw}': invalid mount config for type \"{kind}\": "
                               f"{problem}")
    rw = "ro" not in mode.split(",")
    if kind == "bind":
        return MountPoint("bind", _clean(target), source=_clean(source), rw=rw, mode=mode,
                          propagation=_propagation(mode) or DEFAULT_PROPAGATION, make_source=True), None
    if source:
        check_volume_name(source)
    m = MountPoint("volume", _clean(target), name=source, driver="local", rw=rw, mode=mode or "z",
                   named=bool(source), copy="nocopy" not in mode.split(","))
    return m, Wanted(source, volume_driver, mounts=[m])


def _go_kind(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "bool"}.get(type(value), "number")


def _object(cfg: dict[str, Any], key: str, where: str = "Mount") -> dict[str, Any]:
    """A nested object of a Mount, checked for its JSON type as Go's decoder would."""
    value = cfg.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidParameter(f"json: cannot unmarshal {_go_kind(value)} into Go struct field {where}.{key}")
    return value


def _number(value: Any, key: str) -> int:
    if value in (None, ""):
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidParameter(f"json: cannot unmarshal {_go_kind(value)} into Go struct field "
                               f"TmpfsOptions.{key} of type int64")
    return int(value)


def parse_mount(cfg: dict[str, Any]) -> tuple[MountPoint, Wanted | None]:
    """One HostConfig.Mounts entry (`--mount`), as Docker's ParseMountSpec checks it."""
    kind = str(cfg.get("Type") or "")
    for key in ("BindOptions", "VolumeOptions", "TmpfsOptions"):
        _object(cfg, key)

    def bad(message: str) -> InvalidParameter:
        return InvalidParameter(f'invalid mount config for type "{kind}": {message}')

    for opt, own in (("BindOptions", "bind"), ("VolumeOptions", "volume"), ("TmpfsOptions", "tmpfs"),
                     ("ImageOptions", "image"), ("ClusterOptions", "cluster")):
        if cfg.get(opt) is not None and kind != own:
            raise bad(f"field {opt} must not be specified")
    target = str(cfg.get("Target") or "")
    problem = _check_target(target)
    if problem:
        raise bad(problem)
    source = str(cfg.get("Source") or "")
    ro = bool(cfg.get("ReadOnly"))
    if kind == "bind":
        opts = _object(cfg, "BindOptions")
        if not source:
            raise bad("field Source must not be empty")
        prop = str(opts.get("Propagation") or "")
        if prop and prop not in PROPAGATION:
            raise bad(f"invalid propagation mode: {prop}")
        if not posixpath.isabs(source):
            raise bad(f"invalid mount path: '{source}' mount path must be absolute")
        if not os.path.exists(source) and not opts.get("CreateMountpoint"):
            raise bad(f"bind source path does not exist: {source}")
        return MountPoint("bind", _clean(target), source=_clean(source), rw=not ro,
                          propagation=prop or DEFAULT_PROPAGATION,
                          make_source=bool(opts.get("CreateMountpoint"))), None
    if kind == "volume":
        opts = _object(cfg, "VolumeOptions")
        subpath = str(opts.get("Subpath") or "")
        if subpath:
            if not source:
                raise bad("must not set Subpath when using anonymous volumes")
            norm = posixpath.normpath(subpath)
            if posixpath.isabs(subpath) or norm == ".." or norm.startswith("../"):
                raise bad("subpath must be a relative path within the volume")
            subpath = norm
        if source:
            check_volume_name(source)
        driver_cfg = _object(opts, "DriverConfig", "VolumeOptions")
        labels, options = _object(opts, "Labels", "VolumeOptions"), _object(driver_cfg, "Options", "Driver")
        m = MountPoint("volume", _clean(target), name=source, driver="local", rw=not ro, mode="z",
                       named=bool(source), subpath=subpath, copy=not opts.get("NoCopy"))
        return m, Wanted(source, str(driver_cfg.get("Name") or ""),
                         {str(k): str(v) for k, v in labels.items()} if "Labels" in opts else None,
                         {str(k): str(v) for k, v in options.items()} if options else None, [m])
    if kind == "tmpfs":
        if source:
            raise bad("field Source must not be specified")
        data = tmpfs_data(_object(cfg, "TmpfsOptions"), ro)
        return MountPoint("tmpfs", _clean(target), rw=not ro, options=",".join(filter(None, [TMPFS_DEFAULTS, data]))), \
            None
    if kind == "image":
        raise bad("minidock has no image mounts")
    raise bad("mount type unknown")


def tmpfs_data(opts: dict[str, Any] | None, ro: bool) -> str:
    """ConvertTmpfsOptions: --mount type=tmpfs's size and mode as mount options."""
    words = ["ro"] if ro else []
    opts = opts or {}
    mode = _number(opts.get("Mode"), "Mode")
    if mode:
        words.append(f"mode={mode:o}")
    size = _number(opts.get("SizeBytes"), "SizeBytes")
    if size:
        for suffix, div in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
            if size % div == 0:
                words.append(f"size={size // div}{suffix}")
                break
        else:
            words.append(f"size={size}")
    raw = opts.get("Options") or []
    for opt in raw if isinstance(raw, list) else [None]:
        if not isinstance(opt, list) or not 1 <= len(opt) <= 2:
            raise InvalidParameter('invalid mount config for type "tmpfs": invalid option array length')
        if opt[0] not in ("exec", "noexec"):
            raise InvalidParameter(f'invalid mount config for type "tmpfs": invalid option: {opt[0]}')
        words.append("=".join(map(str, opt)))
    return ",".join(words)


def parse_volumes_from(spec: str) -> tuple[str, str]:
    if not spec:
        raise InvalidParameter("volumes-from specification cannot be an empty string")
    ref, _, mode = spec.partition(":")
    if not mode:
        return ref, "rw"
    if not valid_mode(mode) or _propagation(mode) or "nocopy" in mode.split(","):
        raise InvalidParameter(f"invalid mode: {mode}")
    return ref, mode


def resolve(core: Core, body: dict[str, Any], hc: dict[str, Any]) -> tuple[list[MountPoint], list[Wanted]]:
    """Check every mount of a create request; its mount points (volumes not yet named or made)."""
    volume_driver = str(hc.get("VolumeDriver") or "")
    points: dict[str, MountPoint] = {}
    wanted: list[Wanted] = []
    for spec in hc.get("VolumesFrom") or []:
        ref, mode = parse_volumes_from(str(spec))
        other = core.store.containers.find(ref)
        if other is None:
            raise InvalidParameter(f"No such container: {ref}")
        for m in listed(other):
            points[m.destination] = replace(m, rw=m.rw and "ro" not in mode.split(","), copy=False,
                                            make_source=False)
    tmpfs = hc.get("Tmpfs") or {}
    for dest in tmpfs:
        if posixpath.normpath(dest or ".") == "/":
            raise InvalidParameter("invalid specification: destination can't be '/'")
        if not posixpath.isabs(dest):
            raise InvalidParameter(f"invalid mount path: '{dest}' mount path must be absolute")
    taken: set[str] = set()
    for raw in hc.get("Binds") or []:
        m, want = parse_bind(str(raw), volume_driver)
        if m.destination in taken or m.destination in tmpfs:
            raise InvalidParameter(f"Duplicate mount point: {m.destination}")
        taken.add(m.destination)
        points[m.destination] = m
        if want:
            wanted.append(want)
    for cfg in hc.get("Mounts") or []:
        if not isinstance(cfg, dict):
            raise InvalidParameter("json: cannot unmarshal into Go struct field HostConfig.Mounts of type mount.Mount")
        m, want = parse_mount(cfg)
        if m.destination in taken:
            raise InvalidParameter(f"Duplicate mount point: {cfg.get('Target')}")
        taken.add(m.destination)
        points[m.destination] = m
        if want:
            wanted.append(want)
    for dest, data in tmpfs.items():
        points[_clean(dest)] = MountPoint("tmpfs", _clean(dest), options=",".join(filter(None, [TMPFS_DEFAULTS,
                                                                                             str(data or "")])))
    for spec in body.get("Volumes") or {}:
        dest = _clean(str(spec))
        problem = _check_target(dest)
        if problem:
            raise InvalidParameter(f"invalid volume specification: '{spec}': {problem}")
        if dest in points:
            continue
        m = MountPoint("volume", dest, driver="local", mode="")
        points[dest] = m
        wanted.append(Wanted("", volume_driver, mounts=[m]))
    for want in wanted:
        check_driver(want.driver)
    # the HostConfig.Tmpfs entries are mounts too, but Docker lists only the others in inspect's Mounts
    return list(points.values()), wanted


def make_volumes(volumes: Volumes, wanted: list[Wanted]) -> list[str]:
    """Create the volumes the mounts need (or find them); fill in their names and paths.
    Returns the names of those made here (for an undo)."""
    made = []
    for want in wanted:
        existed = bool(want.name) and volumes.core.store.volumes.get(want.name) is not None
        v = volumes.create(want.name or None, want.driver, want.options, want.labels)
        if not existed:
            made.append(v.name)
        for m in want.mounts:
            m.name, m.driver = v.name, v.driver
            m.source = volumes.data_dir(v.name)
    return made


def listed(c: Container) -> list[MountPoint]:
    """The mounts inspect's `Mounts` shows: all but HostConfig.Tmpfs's."""
    tmpfs = {_clean(d) for d in (c.host_config.tmpfs or {})}
    return [m for m in c.mounts if not (m.type == "tmpfs" and m.destination in tmpfs)]


def mounts_json(c: Container) -> list[dict[str, Any]]:
    """Docker's MountPoint JSON, as inspect and `ps` show it."""
    out = []
    for m in listed(c):
        doc: dict[str, Any] = {"Type": m.type}
        if m.name:
            doc["Name"] = m.name
        doc["Source"] = m.source
        doc["Destination"] = m.destination
        if m.driver:
            doc["Driver"] = m.driver
        doc.update({"Mode": m.mode, "RW": m.rw, "Propagation": m.propagation})
        out.append(doc)
    return out


def launcher_mounts(c: Container) -> list[dict[str, Any]]:
    """The mounts in the launcher's spec, parents before children (Docker's sortMounts), with
    missing -v host directories made now, as Docker makes them at start."""
    out = []
    for m in sorted(c.mounts, key=lambda m: m.destination.count("/")):
        if m.type == "tmpfs":
            out.append({"type": "tmpfs", "target": m.destination, "data": m.options, "ro": not m.rw})
            continue
        source = m.source
        if m.type == "volume" and m.subpath:
            source = _subpath(source, m.subpath)
        if m.type == "bind" and m.make_source and not os.path.exists(source):
            os.makedirs(source, mode=0o755, exist_ok=True)
        if not os.path.exists(source):
            raise InvalidParameter(f"error while creating mount source path '{source}': no such file or directory")
        out.append({"type": "bind", "source": source, "target": m.destination, "ro": not m.rw,
                    "propagation": m.propagation or DEFAULT_PROPAGATION,
                    "copy": m.type == "volume" and m.copy and not m.subpath})
    return out


def _subpath(base: str, subpath: str) -> str:
    """A volume's subpath with its symlinks followed, refused if that leaves the volume (a
    container could have made `sub -> /etc` in it): moby's safepath.Join."""
    joined = os.path.join(base, subpath)
    real, real_base = os.path.realpath(joined), os.path.realpath(base)
    if real != real_base and not real.startswith(real_base + "/"):
        raise InvalidParameter(f"path concatenation escapes the base directory, base: {base}, subpath: {subpath}")
    if not os.path.exists(real):
        raise NotFound(f"cannot access path {joined}: no such file or directory")
    return real


def volume_events(core: Core, c: Container, action: str) -> None:
    """Docker's volume `mount` events at a start (before the container's `start`), `unmount`
    at the exit (after its `die`), one per volume the container mounts."""
    for m in c.mounts:
        if m.type != "volume" or not m.name:
            continue
        attrs = {"container": c.id, "driver": m.driver or "local"}
        if action == "mount":
            attrs.update({"destination": m.destination, "propagation": m.propagation,
                          "read/write": "true" if m.rw else "false"})
        core.events.emit("volume", action, m.name, attrs)


def explain(specs: list[dict[str, Any]]) -> list[str]:
    """--explain: the mount commands equal to what the launcher does in the container's namespace."""
    out = []
    for m in specs:
        target = "$ROOT" + m["target"]
        if m["type"] == "tmpfs":
            out.append(f"# mount -t tmpfs -o {m['data'] or 'defaults'} tmpfs {target}")
            continue
        out.append(f"# mount --rbind {m['source']} {target}")
        if m["ro"]:
            out.append(f"# mount -o remount,bind,ro {target}")
    return out

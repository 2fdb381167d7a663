"""docker-compose.yml as data: load, validate, normalise, and plan the API
requests for a project. Pure: the CLI (`minidock compose`) sends the requests.

The whole file is checked before anything is created; an error names the
key and its line. Naming follows Docker Compose v2: networks and volumes
`<project>_<key>`, containers `<project>-<service>-1` unless
`container_name` is set, and the `com.docker.compose.*` labels. A service's
`volumes:` are binds (a relative host path is relative to the file's
folder), the file's named volumes, or anonymous ones.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

import yaml

from . import ports
from .errors import CONTAINER_MODE_CONFLICTS, HOST_MODE_PORTS, MinidockError

COMPOSE_VERSION = "2.20.2"
P = "com.docker.compose."
SERVICE_KEYS = {"image", "build", "container_name", "entrypoint", "command", "networks", "network_mode",
                "ports", "expose", "extra_hosts", "dns", "hostname", "depends_on", "environment",
                "working_dir", "labels", "tty", "stdin_open", "restart", "volumes", "tmpfs", "volumes_from"}
VOLUME_KEYS = {"driver", "driver_opts", "external", "labels", "name"}
NETWORK_KEYS = {"driver", "ipam", "internal", "external", "name", "labels", "attachable", "driver_opts",
                "enable_ipv6"}


class ComposeError(MinidockError):
    status = 400


class _Map(dict):  # type: ignore[type-arg]
    """A mapping that remembers the line of each key."""

    lines: dict[str, int]
    line: int


class _Loader(yaml.SafeLoader):
    pass


def _mapping(loader: _Loader, node: yaml.MappingNode) -> _Map:
    m = _Map(loader.construct_mapping(node, deep=True))
    m.lines = {str(k.value): k.start_mark.line + 1 for k, _ in node.value}
    m.line = node.start_mark.line + 1
    return m


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def project_name(path: str) -> str:
    """Docker Compose's default: the folder name, lower case, [a-z0-9_-] only."""
    base = os.path.basename(os.path.dirname(os.path.abspath(path)))
    return re.sub(r"[^a-z0-9_-]", "", base.lower()) or "default"


@dataclass
class Service:
    name: str
    container: str
    body: dict[str, Any]
    networks: dict[str, dict[str, Any]]  # full network name -> endpoint config (first is the primary)
    depends_on: list[str]
    image_note: str = ""


@dataclass
class Project:
    name: str
    networks: dict[str, dict[str, Any]]  # key -> network create request, or {"external": name}
    volumes: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> volume create request, or external
    services: list[Service] = field(default_factory=list)  # in start order
    normalised: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # unset variables, told before anything runs


def load(path: str, name: str | None = None) -> Project:
    try:
        with open(path) as f:
            doc = yaml.load(f, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except FileNotFoundError:
        raise ComposeError(f"no configuration file provided: not found: {path}") from None
    except yaml.YAMLError as e:
        raise ComposeError(f"{path}: {e}".replace("\n", " ")) from None
    unset: list[str] = []
    doc = interpolate(doc, {**dotenv(os.path.join(os.path.dirname(os.path.abspath(path)), ".env")),
                            **os.environ}, unset)
    pj = plan(doc, name or project_name(path), path)
    pj.warnings = [f'The "{v}" variable is not set. Defaulting to a blank string.' for v in dict.fromkeys(unset)]
    return pj


def dotenv(path: str) -> dict[str, str]:
    """The project folder's `.env`: KEY=VALUE lines, # comments, optional quotes."""
    out: dict[str, str] = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                key, eq, value = line.strip().removeprefix("export ").partition("=")
                if eq and key and not key.startswith("#"):
                    value = value.strip()
                    out[key.strip()] = value[1:-1] if value[:1] == value[-1:] and value[:1] in "'\"" \
                        and len(value) > 1 else value
    return out


_VAR = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])((?:[^{}]|\{[^{}]*\})*))?\}"
                  r"|([A-Za-z_][A-Za-z0-9_]*))")


def interpolate(value: Any, env: dict[str, str], unset: list[str]) -> Any:
    """Compose's variable substitution in every string: `$$`, `$VAR`, `${VAR}`,
    `${VAR:-default}`, `${VAR-default}`, `${VAR:?message}`, `${VAR?message}`, `${VAR:+alt}`."""
    if isinstance(value, dict):
        for k in list(value):
            value[k] = interpolate(value[k], env, unset)
        return value
    if isinstance(value, list):
        return [interpolate(v, env, unset) for v in value]
    if not isinstance(value, str) or "$" not in value:
        return value

    def one(m: re.Match[str]) -> str:
        if m.group(1):
            return "$"
        name = m.group(2) or m.group(5)
        op, arg = m.group(3), m.group(4) or ""
        present = name in env and (env[name] != "" or not (op or "").startswith(":"))
        if op in ("-", ":-"):
            return env[name] if present else interpolate(arg, env, unset)
        if op in ("?", ":?"):
            if not present:
                raise ComposeError(f"required variable {name} is missing a value" + (f": {arg}" if arg else ""))
            return env[name]
        if op in ("+", ":+"):
            return interpolate(arg, env, unset) if present else ""
        if name not in env:
            unset.append(name)
        return env.get(name, "")

    return _VAR.sub(one, value)


def _fail(where: _Map | None, key: str, message: str) -> ComposeError:
    line = (where.lines.get(key.rsplit(".", 1)[-1]) if isinstance(where, _Map) else None) \
        or (where.line if isinstance(where, _Map) else None)
    return ComposeError(f"{key} {message}" + (f" (line {line})" if line else ""))


def _list_of_str(where: _Map, key: str, value: Any, path: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
        raise _fail(where, path, "must be a string or a list of strings")
    return [str(v) for v in value]


def plan(doc: Any, project: str, path: str = "docker-compose.yml") -> Project:
    if not isinstance(doc, dict):
        raise ComposeError(f"{path}: the top level must be a mapping")
    for key in doc:
        if key not in ("version", "services", "networks", "name", "volumes"):
            raise _fail(doc, key, "additional property is not allowed")
    services = doc.get("services")
    if not isinstance(services, dict) or not services:
        raise _fail(doc, "services", "must be a mapping with at least one service")
    pj = Project(name=str(doc.get("name") or project), networks={})
    pj.networks = _networks(doc, pj.name)
    pj.volumes = _volumes(doc, pj.name)
    used: set[str] = set()
    planned: dict[str, Service] = {}
    for sname, svc in services.items():
        planned[sname] = _service(services, str(sname), svc, pj, used)
        if isinstance(svc, dict):
            _service_mounts(services, str(sname), svc, pj, planned[sname], os.path.dirname(os.path.abspath(path)))
    pj.services = _start_order(services, planned)
    if "default" not in pj.networks:
        pj.networks = {"default": _network_request(pj.name, "default", _Map(), f"{pj.name}_default"),
                       **pj.networks}
    pj.normalised = _normalised(doc, pj)
    return pj


def _labels(value: Any) -> dict[str, str]:
    """Compose's labels: a mapping, or a list of KEY=VALUE."""
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    return dict(str(x).partition("=")[::2] for x in value or [])


def _network_request(project: str, key: str, spec: _Map, full: str) -> dict[str, Any]:
    labels = _labels(spec.get("labels"))
    labels.update({P + "network": key, P + "project": project, P + "version": COMPOSE_VERSION})
    req: dict[str, Any] = {"Name": full, "Driver": spec.get("driver") or "bridge",
                           "Internal": bool(spec.get("internal")), "Labels": labels,
                           "Attachable": bool(spec.get("attachable")), "EnableIPv6": bool(spec.get("enable_ipv6")),
                           "Options": {str(k): str(v) for k, v in (spec.get("driver_opts") or {}).items()},
                           "CheckDuplicate": True}
    ipam = spec.get("ipam") or {}
    if ipam:
        if not isinstance(ipam, dict):
            raise _fail(spec, f"networks.{key}.ipam", "must be a mapping")
        config = []
        for c in ipam.get("config") or []:
            if not isinstance(c, dict) or not c.get("subnet"):
                raise _fail(ipam, f"networks.{key}.ipam.config", "entries need a subnet")
            config.append({"Subnet": str(c["subnet"]), **({"IPRange": str(c["ip_range"])} if c.get("ip_range") else {}),
                           **({"Gateway": str(c["gateway"])} if c.get("gateway") else {})})
        req["IPAM"] = {"Driver": ipam.get("driver") or "default", "Config": config}
    return req


def _networks(doc: _Map, project: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    nets = doc.get("networks") or {}
    if not isinstance(nets, dict):
        raise _fail(doc, "networks", "must be a mapping")
    for key, spec in nets.items():
        spec = spec if spec is not None else _Map()
        if not isinstance(spec, dict):
            raise _fail(nets, f"networks.{key}", "must be a mapping")
        for k in spec:
            if k not in NETWORK_KEYS:
                raise _fail(spec, f"networks.{key}.{k}", "is not supported")
        if spec.get("driver") not in (None, "bridge"):
            raise _fail(spec, f"networks.{key}.driver", f"must be bridge (minidock has no {spec['driver']} driver)")
        if spec.get("external"):
            out[key] = {"external": str(spec.get("name") or key)}
        else:
            out[key] = _network_request(project, key, spec, str(spec.get("name") or f"{project}_{key}"))
    return out


def _volumes(doc: _Map, project: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    vols = doc.get("volumes") or {}
    if not isinstance(vols, dict):
        raise _fail(doc, "volumes", "must be a mapping")
    for key, spec in vols.items():
        spec = spec if spec is not None else _Map()
        if not isinstance(spec, dict):
            raise _fail(vols, f"volumes.{key}", "must be a mapping")
        for k in spec:
            if k not in VOLUME_KEYS:
                raise _fail(spec, f"volumes.{key}.{k}", "is not supported")
        if spec.get("external"):
            out[str(key)] = {"external": str(spec.get("name") or key)}
            continue
        labels = _labels(spec.get("labels"))
        labels.update({P + "project": project, P + "volume": str(key), P + "version": COMPOSE_VERSION})
        out[str(key)] = {"Name": str(spec.get("name") or f"{project}_{key}"), "Driver": spec.get("driver") or "local",
                         "DriverOpts": {str(k): str(v) for k, v in (spec.get("driver_opts") or {}).items()},
                         "Labels": labels}
    return out


def _service_mounts(services: _Map, sname: str, svc: _Map, pj: Project, planned: Service, folder: str) -> None:
    """A service's `volumes:` (short and long syntax), `tmpfs:` and `volumes_from:` as the create
    request's Binds, Mounts, Tmpfs and VolumesFrom, as Docker Compose sends them."""
    where = f"services.{sname}"
    hc = planned.body["HostConfig"]
    binds: list[str] = []
    mounts: list[dict[str, Any]] = []

    def named(source: str) -> str:
        if source not in pj.volumes:
            raise _fail(svc, f"{where}.volumes",
                        f'service "{sname}" refers to undefined volume {source}: invalid compose project')
        req = pj.volumes[source]
        return str(req.get("external") or req["Name"])

    def host(source: str) -> str:
        return os.path.normpath(os.path.join(folder, os.path.expanduser(source)))

    entries = svc.get("volumes") or []
    if not isinstance(entries, list):
        raise _fail(svc, f"{where}.volumes", "must be a list")
    for entry in entries:
        if isinstance(entry, str):
            parts = entry.split(":")
            if len(parts) == 1:
                mounts.append({"Type": "volume", "Target": parts[0]})
                continue
            if len(parts) > 3:
                raise _fail(svc, f"{where}.volumes", f"invalid spec: {entry}: too many colons")
            source, target, mode = parts[0], parts[1], parts[2] if len(parts) == 3 else ""
            if source.startswith((".", "/", "~")):
                binds.append(":".join([host(source), target, *([mode] if mode else [])]))
            else:
                m: dict[str, Any] = {"Type": "volume", "Source": named(source), "Target": target,
                                     "ReadOnly": "ro" in mode.split(",")}
                if "nocopy" in mode.split(","):
                    m["VolumeOptions"] = {"NoCopy": True}
                mounts.append(m)
            continue
        if not isinstance(entry, dict) or not entry.get("target"):
            raise _fail(svc, f"{where}.volumes", "entries need a target (or are SOURCE:TARGET[:MODE] strings)")
        kind = str(entry.get("type") or "volume")
        m = {"Type": kind, "Target": str(entry["target"]), "ReadOnly": bool(entry.get("read_only"))}
        source = str(entry.get("source") or "")
        if kind == "bind":
            if not source:
                raise _fail(entry, f"{where}.volumes.source", "is required for a bind")
            m["Source"] = host(source)
            opts = entry.get("bind") or {}
            m["BindOptions"] = {"CreateMountpoint": bool(opts.get("create_host_path", True)),
                                **({"Propagation": str(opts["propagation"])} if opts.get("propagation") else {})}
        elif kind == "volume":
            if source:
                m["Source"] = named(source)
            opts = entry.get("volume") or {}
            vopts = {k: v for k, v in (("NoCopy", bool(opts.get("nocopy"))), ("Subpath", opts.get("subpath")))
                     if v}
            if vopts:
                m["VolumeOptions"] = vopts
        elif kind == "tmpfs":
            opts = entry.get("tmpfs") or {}
            topts = {k: v for k, v in (("SizeBytes", _bytes(opts.get("size"))), ("Mode", opts.get("mode"))) if v}
            if topts:
                m["TmpfsOptions"] = topts
        else:
            raise _fail(entry, f"{where}.volumes.type", f"must be bind, volume or tmpfs, not {kind}")
        mounts.append(m)
    if binds:
        hc["Binds"] = binds
    if mounts:
        hc["Mounts"] = mounts
    tmpfs = _list_of_str(svc, "tmpfs", svc.get("tmpfs") or [], f"{where}.tmpfs")
    if tmpfs:
        hc["Tmpfs"] = {path: opts for path, _, opts in (t.partition(":") for t in tmpfs)}
    froms = []
    for ref in _list_of_str(svc, "volumes_from", svc.get("volumes_from") or [], f"{where}.volumes_from"):
        name, _, mode = ref.removeprefix("container:").partition(":")
        if not ref.startswith("container:"):
            if name not in services:
                raise _fail(svc, f"{where}.volumes_from",
                            f'service "{sname}" depends on undefined service "{name}": invalid compose project')
            planned.depends_on.append(name)  # its container must exist first: VolumesFrom is read at create
            other = services[name]
            name = str(other.get("container_name") or f"{pj.name}-{name}-1") if isinstance(other, dict) else name
        froms.append(f"{name}:{mode}" if mode else name)
    if froms:
        hc["VolumesFrom"] = froms
        planned.depends_on[:] = list(dict.fromkeys(planned.depends_on))


def _bytes(value: Any) -> int:
    """Compose's sizes: 64m, 1g, 1024 (binary units)."""
    if value in (None, ""):
        return 0
    v = str(value).strip().lower().rstrip("b")
    mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(v[-1:], 1)
    try:
        return int(float(v[:-1] if mult > 1 else v) * mult)
    except ValueError:
        raise ComposeError(f"invalid size: {value}") from None


def restart_policy(value: str) -> dict[str, Any]:
    """`no`, `always`, `unless-stopped`, `on-failure[:N]` as HostConfig.RestartPolicy (Docker's
    opts.ParseRestartPolicy; the daemon checks the name)."""
    name, _, count = value.partition(":")
    if count and not count.isdigit():
        raise ValueError(f"maximum retry count must be an integer: {count}")
    return {"Name": name, "MaximumRetryCount": int(count or 0)}


def _service(services: _Map, sname: str, svc: Any, pj: Project, used: set[str]) -> Service:
    where = f"services.{sname}"
    if not isinstance(svc, dict):
        raise _fail(services, where, "must be a mapping")
    for k in svc:
        if k not in SERVICE_KEYS:
            raise _fail(svc, f"{where}.{k}", "is not supported")
    container = str(svc.get("container_name") or f"{pj.name}-{sname}-1")
    image = svc.get("image")
    note = ""
    if image is None:
        image = "host"
        note = "no image" if "build" not in svc else "build: is not done by minidock"
    hc: dict[str, Any] = {}
    body: dict[str, Any] = {"Image": str(image), "Hostname": str(svc.get("hostname") or ""), "HostConfig": hc,
                            "Labels": {P + "project": pj.name, P + "service": sname, P + "container-number": "1",
                                       P + "oneoff": "False", P + "version": COMPOSE_VERSION},
                            "Tty": bool(svc.get("tty")), "OpenStdin": bool(svc.get("stdin_open")),
                            "WorkingDir": str(svc.get("working_dir") or "")}
    for key in ("entrypoint", "command"):
        if key in svc and svc[key] is not None:
            v = svc[key]
            body["Entrypoint" if key == "entrypoint" else "Cmd"] = shlex.split(v) if isinstance(v, str) \
                else _list_of_str(svc, key, v, f"{where}.{key}")
    env = svc.get("environment") or []
    body["Env"] = [f"{k}={'' if v is None else v}" for k, v in env.items()] if isinstance(env, dict) \
        else _list_of_str(svc, "environment", env, f"{where}.environment")
    body["Labels"].update(_labels(svc.get("labels")))
    if svc.get("restart") is not None:
        try:
            hc["RestartPolicy"] = restart_policy(str(svc["restart"]))
        except ValueError as e:
            raise _fail(svc, f"{where}.restart", str(e)) from None
    hc["ExtraHosts"] = _list_of_str(svc, "extra_hosts", svc.get("extra_hosts") or [], f"{where}.extra_hosts")
    hc["Dns"] = _list_of_str(svc, "dns", svc.get("dns") or [], f"{where}.dns")
    try:
        exposed, bindings = ports.from_specs(
            _list_of_str(svc, "ports", svc.get("ports") or [], f"{where}.ports"),
            _list_of_str(svc, "expose", svc.get("expose") or [], f"{where}.expose"))
    except MinidockError as e:
        raise _fail(svc, f"{where}.ports", f"is invalid: {e}") from None
    body["ExposedPorts"], hc["PortBindings"] = exposed, bindings
    mode = svc.get("network_mode")
    nets: dict[str, dict[str, Any]] = {}
    extra_deps: list[str] = []
    if mode is not None:
        if "networks" in svc:
            raise _fail(svc, f"{where}.network_mode", '"network_mode" and "networks" cannot be combined')
        if mode == "host" and bindings:
            raise _fail(svc, f"{where}.network_mode", HOST_MODE_PORTS)
        kind, _, other = str(mode).partition(":")
        if kind in ("service", "container") and other:
            if kind == "service" and other not in services:
                raise _fail(svc, f"{where}.network_mode",
                            f'service "{sname}" depends on undefined service "{other}": invalid compose project')
            for key, message in CONTAINER_MODE_CONFLICTS.items():  # the daemon's, checked before anything is made
                if svc.get(key):
                    raise _fail(svc, f"{where}.{key}", message)
            if kind == "service":  # as Docker Compose: the other service's container, started first
                other = str(services[other].get("container_name") or f"{pj.name}-{other}-1") \
                    if isinstance(services[other], dict) else other
                extra_deps.append(mode.partition(":")[2])
            hc["NetworkMode"] = f"container:{other}"
        elif mode in ("host", "none", "bridge"):
            hc["NetworkMode"] = mode
            nets[mode] = {}
        else:
            raise _fail(svc, f"{where}.network_mode", f"{mode!r} is not supported (host, none, bridge, "
                                                      "service:NAME or container:NAME)")
    else:
        wanted = svc.get("networks") if svc.get("networks") is not None else ["default"]
        items = [(n, None) for n in wanted] if isinstance(wanted, list) else list(wanted.items()) \
            if isinstance(wanted, dict) else None
        if items is None:
            raise _fail(svc, f"{where}.networks", "must be a list or a mapping")
        for key, cfg in items:
            if key != "default" and key not in pj.networks:
                raise _fail(svc, f"{where}.networks", f"refers to undefined network {key}: invalid compose project")
            cfg = cfg or {}
            aliases = [sname, *_list_of_str(svc, "networks", cfg.get("aliases") or [], f"{where}.networks")]
            ep: dict[str, Any] = {"Aliases": list(dict.fromkeys(aliases))}
            pinned = {k: str(cfg[a]) for k, a in (("IPv4Address", "ipv4_address"), ("IPv6Address", "ipv6_address"))
                      if cfg.get(a)}
            if pinned:
                ep["IPAMConfig"] = pinned
            full = pj.networks[key].get("external") or pj.networks[key]["Name"] if key in pj.networks \
                else f"{pj.name}_default"
            nets[full] = ep
        hc["NetworkMode"] = next(iter(nets))
    body["NetworkingConfig"] = {"EndpointsConfig": {n: ep for n, ep in nets.items() if ep}}
    if container in used:
        raise _fail(svc, f"{where}.container_name", f'"{container}" is used by another service')
    used.add(container)
    deps = svc.get("depends_on") or []
    deps = list(deps) if isinstance(deps, (list, dict)) else None
    if deps is None or any(d not in services for d in deps):
        raise _fail(svc, f"{where}.depends_on", "must name services of this file")
    return Service(sname, container, body, nets, list(dict.fromkeys([*map(str, deps), *extra_deps])), note)


def _start_order(services: _Map, planned: dict[str, Service]) -> list[Service]:
    order: list[Service] = []
    state: dict[str, str] = {}

    def visit(name: str) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            raise _fail(services, f"services.{name}.depends_on", "forms a cycle")
        state[name] = "visiting"
        for dep in planned[name].depends_on:
            visit(dep)
        state[name] = "done"
        order.append(planned[name])

    for name in planned:
        visit(name)
    return order


def _normalised(doc: dict[str, Any], pj: Project) -> dict[str, Any]:
    """`compose config`: the file with names and defaults filled in."""
    def plain(v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, list):
            return [plain(x) for x in v]
        return v

    services = {}
    for s in pj.services:
        raw = plain(doc["services"][s.name]) or {}
        if "network_mode" not in raw:
            nets = raw.get("networks") or ["default"]
            raw["networks"] = {n: None for n in nets} if isinstance(nets, list) else nets
        services[s.name] = dict(sorted(raw.items()))
    networks = {}
    for key, req in pj.networks.items():
        networks[key] = {"name": req["external"], "external": True} if "external" in req else \
            {"name": req["Name"], **({"ipam": plain(doc["networks"][key]["ipam"])}
                                     if key in (doc.get("networks") or {}) and (doc["networks"][key] or {}).get("ipam")
                                     else {}),
             **({"internal": True} if req["Internal"] else {})}
    out = {"name": pj.name, "services": dict(sorted(services.items())), "networks": networks}
    if pj.volumes:
        out["volumes"] = {key: {"name": req["external"], "external": True} if "external" in req else {"name": req["Name"]}
                          for key, req in pj.volumes.items()}
    return out

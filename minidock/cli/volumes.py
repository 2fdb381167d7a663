"""`minidock volume …`: create, ls, inspect, rm, prune; and the mount options of
`run`/`create` (-v, --mount, --tmpfs, --volumes-from) turned into Docker's
create body client-side, as Docker's CLI does.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

import click

from ..client import q
from .common import CONTEXT, Ctx, each, fail, inspect_each, parse_filters, pass_ctx, table


@click.group(context_settings=CONTEXT)
def volume() -> None:
    """Manage volumes."""


def _kv(values: tuple[str, ...]) -> dict[str, str]:
    return dict(v.partition("=")[::2] for v in values)


@volume.command("create", context_settings=CONTEXT)
@click.option("-d", "--driver", default="local")
@click.option("--label", "labels", multiple=True)
@click.option("-o", "--opt", "opts", multiple=True)
@click.argument("name", required=False, default="")
@pass_ctx
def volume_create(c: Ctx, driver: str, labels: tuple[str, ...], opts: tuple[str, ...], name: str) -> None:
    """Create a volume (a directory under the daemon's root, mounted where containers ask)."""
    res = c.call("POST", "/volumes/create", body={"Name": name, "Driver": driver, "DriverOpts": _kv(opts),
                                                  "Labels": _kv(labels)})
    click.echo(res["Name"])


def _filters_query(flt: dict[str, list[str]]) -> dict[str, str] | None:
    return {"filters": json.dumps(flt)} if flt else None


@volume.command("ls", context_settings=CONTEXT)
@click.option("-q", "--quiet", is_flag=True)
@click.option("--format", "fmt", default=None)
@click.option("-f", "--filter", "filters", multiple=True)
@pass_ctx
def volume_ls(c: Ctx, quiet: bool, fmt: str | None, filters: tuple[str, ...]) -> None:
    """List volumes."""
    res = c.call("GET", "/volumes", _filters_query(parse_filters(filters)))
    vols = sorted(res.get("Volumes") or [], key=lambda v: v["Name"])
    if quiet:
        for v in vols:
            click.echo(v["Name"])
        return
    rows = [{**v, "Labels": ",".join(f"{k}={x}" for k, x in (v.get("Labels") or {}).items())} for v in vols]
    table(fmt, rows, [("DRIVER", "Driver"), ("VOLUME NAME", "Name")])


@volume.command("inspect", context_settings=CONTEXT)
@click.option("-f", "--format", "fmt", default=None)
@click.argument("names", nargs=-1, required=True)
@pass_ctx
def volume_inspect(c: Ctx, fmt: str | None, names: tuple[str, ...]) -> None:
    """Show volumes as Docker-shaped JSON."""
    inspect_each(c, [f"/volumes/{q(name)}" for name in names], fmt)


@volume.command("rm", context_settings=CONTEXT)
@click.option("-f", "--force", is_flag=True)
@click.argument("names", nargs=-1, required=True)
@pass_ctx
def volume_rm(c: Ctx, force: bool, names: tuple[str, ...]) -> None:
    """Remove volumes (not one a container uses)."""
    each(c, names, lambda name: c.api.call("DELETE", f"/volumes/{q(name)}", {"force": force} if force else None))


@volume.command("prune", context_settings=CONTEXT)
@click.option("-f", "--force", is_flag=True)
@click.option("-a", "--all", "every", is_flag=True, help="Named volumes too, not only anonymous ones")
@click.option("--filter", "filters", multiple=True)
@pass_ctx
def volume_prune(c: Ctx, force: bool, every: bool, filters: tuple[str, ...]) -> None:
    """Remove the volumes no container uses (anonymous ones only, unless --all)."""
    if not force:
        if not sys.stdin.isatty():
            fail("refusing to prune without -f when not on a terminal")
        what = "all local volumes" if every else "anonymous local volumes"
        if not click.confirm(f"WARNING! This will remove {what} not used by at least one container.\n"
                             "Are you sure you want to continue?"):
            return
    flt = parse_filters(filters)
    if every:
        flt["all"] = ["true"]
    res = c.call("POST", "/volumes/prune", _filters_query(flt))
    if res.get("VolumesDeleted"):
        click.echo("Deleted Volumes:")
        for name in res["VolumesDeleted"]:
            click.echo(name)
        click.echo()
    click.echo(f"Total reclaimed space: {_human_size(res.get('SpaceReclaimed') or 0)}")


def _human_size(n: float) -> str:
    """go-units HumanSize (decimal units, 4 significant digits)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000:
            return f"{n:.4g}{unit}"
        n /= 1000
    return f"{n:.4g}PB"


# -- run/create's mount options ---------------------------------------------------------------

def mount_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """-v, --mount, --tmpfs, --volumes-from, --volume-driver on a click command."""
    for opt in reversed([
        click.option("-v", "--volume", "volumes", multiple=True,
                     help="HOST-PATH:CONTAINER-PATH[:ro], NAME:CONTAINER-PATH[:ro] or CONTAINER-PATH"),
        click.option("--mount", "mounts", multiple=True,
                     help="type=bind|volume|tmpfs,source=…,target=…[,readonly]"),
        click.option("--tmpfs", "tmpfs", multiple=True, help="CONTAINER-PATH[:OPTIONS], e.g. /run:size=64m"),
        click.option("--volumes-from", "volumes_from", multiple=True, help="CONTAINER[:ro|rw]"),
        click.option("--volume-driver", "volume_driver", default=""),
    ]):
        f = opt(f)
    return f


def mount_body(o: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(Config.Volumes, the HostConfig keys) of the mount options, as Docker's CLI builds them."""
    binds, anonymous = [], {}
    for spec in o.get("volumes") or ():
        parts = spec.split(":")
        if len(parts) == 1:  # a destination alone: an anonymous volume
            anonymous[parts[0]] = {}
            continue
        source = parts[0]
        if source == "." or source.startswith(("./", "../")) or source == "~" or source.startswith("~/"):
            parts[0] = os.path.abspath(os.path.expanduser(source))  # the CLI makes relative paths absolute
        binds.append(":".join(parts))
    hc: dict[str, Any] = {}
    if binds:
        hc["Binds"] = binds
    if o.get("mounts"):
        hc["Mounts"] = [parse_mount_flag(m) for m in o["mounts"]]
    if o.get("tmpfs"):
        hc["Tmpfs"] = {path: opts for path, _, opts in (t.partition(":") for t in o["tmpfs"])}
    if o.get("volumes_from"):
        hc["VolumesFrom"] = list(o["volumes_from"])
    if o.get("volume_driver"):
        hc["VolumeDriver"] = o["volume_driver"]
    return anonymous, hc


def _bool(value: str, key: str) -> bool:
    if value.lower() in ("", "1", "true"):
        return True
    if value.lower() in ("0", "false"):
        return False
    fail(f'invalid argument for --mount: invalid value for {key}: {value}', 125)


def _size(value: str) -> int:
    """go-units RAMInBytes: 64m, 1g, 512k, 1024 (binary units)."""
    v = value.strip().lower().rstrip("b")
    mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}.get(v[-1:], 1)
    try:
        return int(float(v[:-1] if mult > 1 else v) * mult)
    except ValueError:
        fail(f"invalid argument for --mount: invalid size: {value}", 125)


def parse_mount_flag(spec: str) -> dict[str, Any]:
    """Docker CLI's --mount (opts/mount.go): comma-separated key=value, type volume by default."""
    m: dict[str, Any] = {"Type": "volume"}
    bind: dict[str, Any] = {}
    vol: dict[str, Any] = {}
    tmp: dict[str, Any] = {}
    for field in spec.split(","):
        key, eq, value = field.partition("=")
        key = key.strip().lower()
        if not eq and key not in ("readonly", "ro", "volume-nocopy", "bind-nonrecursive",
                                  "bind-create-mountpoint"):
            fail(f"invalid argument for --mount: invalid field '{field}' must be a key=value pair", 125)
        if key == "type":
            m["Type"] = value
        elif key in ("source", "src"):
            m["Source"] = value
        elif key in ("target", "dst", "destination"):
            m["Target"] = value
        elif key in ("readonly", "ro"):
            m["ReadOnly"] = _bool(value, key)
        elif key == "consistency":
            m["Consistency"] = value
        elif key == "bind-propagation":
            bind["Propagation"] = value
        elif key == "bind-create-mountpoint":
            bind["CreateMountpoint"] = _bool(value, key)
        elif key == "volume-nocopy":
            vol["NoCopy"] = _bool(value, key)
        elif key == "volume-label":
            k, _, v = value.partition("=")
            vol.setdefault("Labels", {})[k] = v
        elif key == "volume-driver":
            vol.setdefault("DriverConfig", {})["Name"] = value
        elif key == "volume-opt":
            k, _, v = value.partition("=")
            vol.setdefault("DriverConfig", {}).setdefault("Options", {})[k] = v
        elif key == "volume-subpath":
            vol["Subpath"] = value
        elif key == "tmpfs-size":
            tmp["SizeBytes"] = _size(value)
        elif key == "tmpfs-mode":
            try:
                tmp["Mode"] = int(value, 8)
            except ValueError:
                fail(f"invalid argument for --mount: invalid value for {key}: {value}", 125)
        else:
            fail(f"invalid argument for --mount: unexpected key '{key}' in '{field}'", 125)
    if not m.get("Target"):
        fail("invalid argument for --mount: target is required", 125)
    for kind, opts, name in (("bind", bind, "BindOptions"), ("volume", vol, "VolumeOptions"),
                             ("tmpfs", tmp, "TmpfsOptions")):
        if opts:
            if m["Type"] != kind:
                fail(f"invalid argument for --mount: cannot mix '{kind}-*' options with mount type "
                     f"'{m['Type']}'", 125)
            m[name] = opts
    return m

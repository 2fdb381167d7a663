"""`create`: a /containers/create request checked completely, then one new
Container record and its directory. Nothing touches the kernel; a port
another container holds is refused now, so that `run` leaves nothing behind.
"""

from __future__ import annotations

import os
import time
from typing import Any

from .. import ipam, ports
from ..errors import CONTAINER_MODE_CONFLICTS, HOST_MODE_PORTS, Conflict, InvalidParameter
from ..model import Attachment, Container, HostConfig
from . import files, mounts, settings
from .common import check_name, new_id, random_name
from .core import Core
from .epconfig import endpoint_extras, migrate_container_mac

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


async def create_container(core: Core, name: str | None, body: dict[str, Any]) -> dict[str, Any]:
    mac_warning = migrate_container_mac(body)
    hc = body.get("HostConfig") or {}
    mode = hc.get("NetworkMode") or "default"
    mode_net = "bridge" if mode == "default" else mode
    if name:
        name = name.lstrip("/")
        check_name(name)
    else:
        name = random_name()
        while core.store.containers.find(name):
            name = random_name()
    if not body.get("Image"):
        raise InvalidParameter("image name is required")
    image, lower = core.images.resolve(body["Image"])
    entrypoint = _argv(body.get("Entrypoint"))
    cmd = _argv(body.get("Cmd"))
    made = image.get("config") or {}  # a committed image's: its Entrypoint and Cmd, as Docker's run takes them
    if not entrypoint and body.get("Entrypoint") is None:
        entrypoint = _argv(made.get("Entrypoint"))
        cmd = cmd or _argv(made.get("Cmd"))
    argv = [*entrypoint, *cmd] or (["sh"] if lower != "/" else ["bash"])
    joined = mode_net.startswith("container:")
    if joined:
        mode = _joined_mode(core, mode_net, body, hc)
        net = core.network("none")  # no network of its own: the driver checks below see "none"
    else:
        net = core.network(mode_net)
    want = {} if joined else _attachments(core, mode, mode_net, body)
    if hc.get("PortBindings") and net.driver == "host":
        raise InvalidParameter(HOST_MODE_PORTS)
    declared = ports.normalise(hc.get("PortBindings"))
    exposed = sorted({f"{p}/{proto}" for p, proto in map(ports.parse_key, body.get("ExposedPorts") or {})}
                     | set(declared))
    bindings = ports.normalise(declared, exposed, bool(hc.get("PublishAllPorts")))
    if core.drivers[net.driver].publishes_ports:
        core.holds.choose(bindings, name, core.firewall.published())
    for spec in hc.get("ExtraHosts") or []:
        try:
            files.parse_extra_host(spec, "0.0.0.0")
        except ValueError as e:
            raise InvalidParameter(str(e)) from None
    for ns in hc.get("Dns") or []:
        ipam.parse_address(ns, "IP address for --dns") if ":" not in ns else None
    for kv in body.get("Env") or []:
        # Docker keeps `FOO` (no `=`) as given: the variable is unset in the process
        if not kv or kv.startswith("="):
            raise InvalidParameter(f"invalid environment variable: {kv}")
    given = settings.given_host_config(hc, HostConfig.modelled_keys())
    hostname = body.get("Hostname") or ""
    if hostname and not all(ch.isalnum() or ch in "-." for ch in hostname):
        raise InvalidParameter(f"invalid hostname format: {hostname}")
    points, wanted = mounts.resolve(core, body, hc)
    cid = new_id()
    c = Container(
        id=cid, name=name, created=time.time(), image=body["Image"], image_name=image["name"],
        image_id=image["id"], lower=lower,
        argv=argv,
        config={
            # a joined container takes its hostname from the other one when it starts
            "Hostname": hostname or ("" if joined else cid[:12] if net.driver != "host" else os.uname().nodename),
            "Domainname": body.get("Domainname") or "",
            "User": body.get("User") or "",
            "AttachStdin": bool(body.get("AttachStdin")),
            "AttachStdout": bool(body.get("AttachStdout", True)),
            "AttachStderr": bool(body.get("AttachStderr", True)),
            "Tty": bool(body.get("Tty")),
            "OpenStdin": bool(body.get("OpenStdin")),
            "StdinOnce": bool(body.get("StdinOnce")),
            "Env": [DEFAULT_PATH, *(body.get("Env") or [])],
            "Cmd": cmd or None,
            "Image": body["Image"],
            "WorkingDir": body.get("WorkingDir") or "",
            "Entrypoint": entrypoint or None,
            "Labels": body.get("Labels") or {},
            "ExposedPorts": {key: {} for key in exposed} or None,
            **_optional_config(body),
            "Volumes": body.get("Volumes") or None,
        },
        host_config=HostConfig(network_mode=mode, dns=list(hc.get("Dns") or []),
                               extra_hosts=list(hc.get("ExtraHosts") or []), auto_remove=bool(hc.get("AutoRemove")),
                               port_bindings=declared, publish_all_ports=bool(hc.get("PublishAllPorts")),
                               links=list(hc.get("Links") or []), given=given, **_mount_settings(hc)),
        networks=want,
        mounts=points,
    )
    async with core.locks.hold("names", "volumes"):
        other = core.store.containers.find(name)
        if other is not None and other.name == name:
            raise Conflict(
                f'Conflict. The container name "/{name}" is already in use by container "{other.id}". '
                "You have to remove (or rename) that container to be able to reuse that name.")
        made = mounts.make_volumes(core.volumes, wanted)
        try:
            c.layer = core.spares.take(core.dir(cid), c.lower)
            core.store.containers.put(c)
        except BaseException:
            for vname in made:
                core.volumes.remove(vname, force=True)
            raise
    core.events.container(c, "create")
    return {"Id": cid, "Warnings": [mac_warning] if mac_warning else []}


def _mount_settings(hc: dict[str, Any]) -> dict[str, Any]:
    """HostConfig's mount keys as the request gave them: inspect shows them back."""
    return {"binds": list(hc["Binds"]) if hc.get("Binds") is not None else None,
            "mounts": list(hc["Mounts"]) if hc.get("Mounts") else None,
            "tmpfs": dict(hc["Tmpfs"]) if hc.get("Tmpfs") else None,
            "volumes_from": list(hc["VolumesFrom"]) if hc.get("VolumesFrom") is not None else None,
            "volume_driver": str(hc.get("VolumeDriver") or "")}


def _optional_config(body: dict[str, Any]) -> dict[str, Any]:
    """Config keys Docker shows only when given (StopTimeout, StopSignal, …)."""
    # (Config.MacAddress is not one: epconfig moves it to the network's endpoint, as moby does)
    out = {key: body[key] for key in ("StopSignal", "StopTimeout", "Healthcheck", "Shell",
                                      "OnBuild", "ArgsEscaped", "NetworkDisabled")
           if body.get(key) is not None}
    if out.get("StopTimeout") is not None and (not isinstance(out["StopTimeout"], int)
                                               or isinstance(out["StopTimeout"], bool)):
        raise InvalidParameter("json: cannot unmarshal value into Go struct field Config.StopTimeout of type int")
    if out.get("StopTimeout") is not None and int(out["StopTimeout"]) < -1:
        raise InvalidParameter(f"invalid stop timeout: {out['StopTimeout']}")
    return out


def _argv(value: Any) -> list[str]:
    if not value:
        return []
    return [value] if isinstance(value, str) else list(value)


def _attachments(core: Core, mode: str, mode_net: str, body: dict[str, Any]) -> dict[str, Attachment]:
    """The networks asked for, the mode's first: checked against Docker's rules."""
    endpoints_cfg = (body.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}
    want: dict[str, Attachment] = {}
    for netref, cfg in [(mode_net, endpoints_cfg.get(mode_net) or endpoints_cfg.get(mode) or {}),
                        *[(k, v) for k, v in endpoints_cfg.items() if k not in (mode_net, mode)]]:
        n = core.network(netref)
        cfg = cfg or {}
        ip = ((cfg.get("IPAMConfig") or {}).get("IPv4Address")) or ""
        ip6 = ((cfg.get("IPAMConfig") or {}).get("IPv6Address")) or ""
        aliases = list(cfg.get("Aliases") or [])
        check_user_defined(n.name, ip or ip6, aliases)
        if n.driver in ("host", "null") and len(want) > 0:
            raise InvalidParameter(f"container cannot be connected to {n.name} network and others")
        if ip:
            core.addresses.check_pinned(n, ip)
        if ip6:
            core.addresses.check_pinned(n, ip6, 6)
        want[n.name] = Attachment(n.id, aliases, ip, ip6, **endpoint_extras(n, cfg))
    return want


def check_user_defined(network: str, ip: str, aliases: list[str]) -> None:
    """--ip and --alias are for user-defined networks only (Docker's words)."""
    if network == "bridge" and ip:
        raise InvalidParameter("user specified IP address is supported on user defined networks only")
    if network == "bridge" and aliases:
        raise InvalidParameter("network-scoped alias is supported only for containers in user defined networks")


def _joined_mode(core: Core, mode: str, body: dict[str, Any], hc: dict[str, Any]) -> str:
    """Validate `--network container:<name|id>`; return the mode naming the other by its ID.

    The conflicts and their wording are the Docker daemon's (validateNetContainerMode):
    everything that shapes a network stack belongs to the container that owns it.
    """
    ref = mode.partition(":")[2]
    if not ref:
        raise InvalidParameter("Invalid network mode: invalid container format container:<name|id>")
    given = {"hostname": body.get("Hostname"), "links": hc.get("Links"), "dns": hc.get("Dns"),
             "extra_hosts": hc.get("ExtraHosts"), "ports": hc.get("PortBindings") or hc.get("PublishAllPorts"),
             "expose": body.get("ExposedPorts")}
    for option, message in CONTAINER_MODE_CONFLICTS.items():
        if given[option]:
            raise InvalidParameter(message)
    for cfg in ((body.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}).values():
        if (cfg or {}).get("Aliases"):
            raise InvalidParameter("network-scoped aliases are only supported for user-defined networks")
    other = core.store.containers.find(ref)
    # like Docker, a name that matches nothing yet is kept and looked up again at start
    return f"container:{other.id}" if other else mode

"""What the API reads: Docker-shaped JSON for containers (/containers/{id}/json
and /containers/json), and `Queries`, the read side the routes call instead
of the store."""

from __future__ import annotations

import os
import shlex
from typing import Any

from .. import ports
from ..cli.format import human_duration
from ..kernel import netns
from ..model import CHILD_LINK_DRIVERS, Attachment, Container, Endpoint, Network
from . import listing, settings
from .common import ZERO_TIME, dir_size, rfc3339
from .core import Core
from .mounts import mounts_json


def _network_entry(net: Network, ep: Endpoint | None, cfg: Attachment, c: Container) -> dict[str, Any]:
    ipam_cfg: dict[str, Any] = {k: v for k, v in (("IPv4Address", cfg.ipv4), ("IPv6Address", cfg.ipv6)) if v}
    if cfg.link_local:
        ipam_cfg["LinkLocalIPs"] = list(cfg.link_local)
    return {
        "IPAMConfig": ipam_cfg or None,
        "Links": list(cfg.links) or None,
        "Aliases": cfg.aliases or None,
        # the MAC asked for until the endpoint exists, then the interface's
        "MacAddress": ep.mac if ep else cfg.mac,
        "NetworkID": net.id,
        "EndpointID": ep.id if ep else "",
        "Gateway": ep.gateway if ep else "",
        "IPAddress": ep.ip if ep else "",
        "IPPrefixLen": ep.prefixlen if ep else 0,
        "IPv6Gateway": ep.gateway6 if ep else "",
        "GlobalIPv6Address": ep.ip6 if ep else "",
        "GlobalIPv6PrefixLen": ep.prefixlen6 if ep else 0,
        "DriverOpts": dict(cfg.driver_opts) or None,
        # Docker's buildEndpointDNSNames, on networks with name resolution
        "DNSNames": list(dict.fromkeys([c.name, *cfg.aliases, c.id[:12], *([c.hostname] if c.hostname else [])]))
        if net.user_defined else None,
    }


def _networks(c: Container, eps: list[Endpoint], nets: dict[str, Network]) -> dict[str, dict[str, Any]]:
    by_net = {ep.network_id: ep for ep in eps}
    out = {}
    for cfg in c.networks.values():
        net = nets.get(cfg.network_id)
        if net is not None:
            out[net.name] = _network_entry(net, by_net.get(net.id), cfg, c)
    return out


def container_json(c: Container, eps: list[Endpoint], nets: dict[str, Network], container_dir: str,
                   layer_dir: str, restarting: bool = False) -> dict[str, Any]:
    st, hc = c.state, c.host_config
    networks = _networks(c, eps, nets)
    primary = next((n for n in networks.values() if n["IPAddress"]), None) \
        if hc.network_mode in ("default", "bridge") else None
    running = st.running
    return {
        "Id": c.id,
        "Created": rfc3339(c.created),
        "Path": c.argv[0],
        "Args": c.argv[1:],
        "State": {
            # between an exit and the restart its policy makes: Docker's "restarting"
            "Status": "restarting" if restarting else "paused" if running and st.paused else st.status,
            "Running": running or restarting,
            "Paused": running and st.paused,
            "Restarting": restarting,
            "OOMKilled": False,
            "Dead": False,
            "Pid": st.pid if running else 0,
            "ExitCode": st.exit_code,
            "Error": st.error,
            "StartedAt": rfc3339(st.started_at),
            "FinishedAt": rfc3339(st.finished_at) if st.finished_at else ZERO_TIME,
        },
        "Image": c.image_id or c.image_name,
        "ResolvConfPath": os.path.join(container_dir, "resolv.conf"),
        "HostnamePath": os.path.join(container_dir, "hostname"),
        "HostsPath": os.path.join(container_dir, "hosts"),
        "LogPath": os.path.join(container_dir, "container.log"),
        "Name": "/" + c.name,
        "RestartCount": c.restart_count,
        "Driver": "overlay",
        "Platform": "linux",
        "HostConfig": settings.inspect_host_config({
            **hc.given,
            "NetworkMode": hc.network_mode,
            "PortBindings": hc.port_bindings,
            "PublishAllPorts": hc.publish_all_ports,
            "AutoRemove": hc.auto_remove,
            "Dns": hc.dns,
            "ExtraHosts": hc.extra_hosts or None,
            "Links": hc.links or None,
            **_mount_host_config(c),
        }),
        "Mounts": mounts_json(c),
        "GraphDriver": {
            "Data": {"LowerDir": c.lower, "UpperDir": os.path.join(layer_dir, "upper"),
                     "WorkDir": os.path.join(layer_dir, "work"),
                     "MergedDir": os.path.join(layer_dir, "merged")},
            "Name": "overlay",
        },
        "Config": c.config,
        "NetworkSettings": {
            "Bridge": "",
            "SandboxID": c.id if c.netns else "",
            "SandboxKey": netns.path(c.netns) if c.netns else "",
            "Ports": ports.settings(c.ports, c.config.get("ExposedPorts") or {})
            if running and not _on_a_lan(c, nets) else {},
            "HairpinMode": False,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "SecondaryIPAddresses": None,
            "SecondaryIPv6Addresses": None,
            "EndpointID": primary["EndpointID"] if primary else "",
            "Gateway": primary["Gateway"] if primary else "",
            "GlobalIPv6Address": primary["GlobalIPv6Address"] if primary else "",
            "GlobalIPv6PrefixLen": primary["GlobalIPv6PrefixLen"] if primary else 0,
            "IPAddress": primary["IPAddress"] if primary else "",
            "IPPrefixLen": primary["IPPrefixLen"] if primary else 0,
            "IPv6Gateway": primary["IPv6Gateway"] if primary else "",
            "MacAddress": primary["MacAddress"] if primary else "",
            "Networks": networks,
        },
    }


def _mount_host_config(c: Container) -> dict[str, Any]:
    """HostConfig's mount keys as Docker shows them: Binds and VolumesFrom null when not given,
    Mounts and Tmpfs left out (omitempty)."""
    hc = c.host_config
    out: dict[str, Any] = {"Binds": hc.binds, "VolumeDriver": hc.volume_driver, "VolumesFrom": hc.volumes_from}
    if hc.mounts:
        out["Mounts"] = hc.mounts
    if hc.tmpfs:
        out["Tmpfs"] = hc.tmpfs
    return out


def container_summary(c: Container, eps: list[Endpoint], nets: dict[str, Network]) -> dict[str, Any]:
    """One element of /containers/json."""
    return {
        "Id": c.id,
        "Names": ["/" + c.name],
        "Image": c.image,
        "ImageID": c.image_id or c.image_name,
        "Command": shlex.join(c.argv),
        "Created": int(c.created),
        "Ports": [{"IP": p.host_ip, "PrivatePort": p.container_port, "PublicPort": p.host_port, "Type": p.proto}
                  for p in c.ports]
        + [{"PrivatePort": port, "Type": proto} for port, proto in _unpublished(c) if not _on_a_lan(c, nets)],
        "Labels": c.config["Labels"],
        "State": "paused" if c.running and c.state.paused else c.state.status,
        "Status": status_text(c),
        "HostConfig": {"NetworkMode": c.host_config.network_mode},
        "NetworkSettings": {"Networks": _networks(c, eps, nets)},
        "Mounts": mounts_json(c),
    }


def status_text(c: Container, now: float | None = None) -> str:
    import time

    now = now or time.time()
    st = c.state
    if st.status == "running":
        return "Up " + human_duration(now - st.started_at) + (" (Paused)" if st.paused else "")
    if st.status == "exited":
        return f"Exited ({st.exit_code}) {human_duration(now - st.finished_at)} ago"
    return "Created"


def _on_a_lan(c: Container, nets: dict[str, Network]) -> bool:
    """On a macvlan or ipvlan network first: Docker shows no ports at all (its driver takes none)."""
    first = next(iter(c.networks.values()), None)
    net = nets.get(first.network_id) if first is not None else None
    return net is not None and net.driver in CHILD_LINK_DRIVERS


def _unpublished(c: Container) -> list[tuple[int, str]]:
    bound = {(p.container_port, p.proto) for p in c.ports}
    exposed = [ports.parse_key(k) for k in c.config.get("ExposedPorts") or {}]
    return [pp for pp in exposed if pp not in bound]


class Queries:
    """The API's reads: what the routes show, so that no route opens the store."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def containers(self, show_all: bool, query: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """/containers/json: newest first, as the query's filters, limit, since and before select."""
        store, nets = self.core.store, self.core.nets_by_id()
        sel = listing.Selector({**(query or {}), **({"all": "1"} if show_all else {})}, store.containers.find,
                               {n.id: n.name for n in nets.values()})
        chosen = sel.select(sorted(store.containers.all(), key=lambda c: c.created, reverse=True))
        size = (query or {}).get("size", "").lower() in ("1", "true")
        return [{**container_summary(c, store.endpoints(container_id=c.id), nets),
                 **(self._sizes(c) if size else {})} for c in chosen]

    def _sizes(self, c: Container) -> dict[str, int]:
        """SizeRw: what the container wrote (its overlay's upper directory); SizeRootFs: that
        and the image's root."""
        rw = dir_size(os.path.join(self.core.layer_dir(c), "upper"))
        return {"SizeRw": rw, "SizeRootFs": rw + dir_size(c.lower) if c.lower != "/" else rw}

    def container(self, ref: str) -> dict[str, Any]:
        c = self.core.container(ref)
        return container_json(c, self.core.store.endpoints(container_id=c.id), self.core.nets_by_id(),
                              self.core.dir(c.id), self.core.layer_dir(c), c.id in self.core.restarting)

    def status(self, cid: str) -> str:
        c = self.core.store.containers.get(cid)
        return c.state.status if c else "removed"

    def exists(self, ref: str) -> bool:
        return self.core.store.containers.find(ref) is not None

    def counts(self) -> tuple[int, int]:
        """(containers, running)."""
        cs = self.core.store.containers.view()
        return len(cs), sum(1 for c in cs if c.running)

    def image_in_use(self, image: dict[str, Any]) -> bool:
        return any(c.image_name == image["name"] for c in self.core.store.containers.view())

    def topology(self) -> dict[str, Any]:
        from ..topology import build

        store = self.core.store
        # topology is shared with the CLI, which draws it: it takes the records' JSON shapes
        cluster = self.core.cluster.topology() if self.core.cluster is not None else None
        return build([n.to_json() for n in store.networks.all()], [c.to_json() for c in store.containers.all()],
                     [ep.to_json() for ep in store.endpoints()], cluster)

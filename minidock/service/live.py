"""What `minidock ui` shows beyond the topology, read live from the kernel:
every interface's counters, and one container's view of the network
(addresses, routes, /etc/hosts, resolv.conf, ports, the firewall rules that
concern it). Read-only: nothing here changes the kernel or the store.

    GET /minidock/counters                 host links, each running container's, each overlay namespace's
    GET /minidock/containers/{id}/details  what clicking a container shows
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

from ..kernel import iptables, nsview
from ..model import Container
from .core import Core


class Live:
    def __init__(self, core: Core) -> None:
        self.core = core

    def _running(self) -> list[Container]:
        return [c for c in self.core.store.containers.view() if c.running and c.netns]

    async def counters(self) -> dict[str, Any]:
        """Counters of the daemon's own links (bridges, host ends of veths) and of every running
        container's, by name; a namespace that goes away meanwhile is left out."""
        containers: dict[str, dict[str, dict[str, int]]] = {}
        for c in self._running():
            try:
                containers[c.name] = await nsview.link_stats(c.netns)
            except OSError:
                continue
        # an overlay's own namespace on this host: its br0, its VXLAN device, the host ends of veths
        namespaces: dict[str, dict[str, dict[str, int]]] = {}
        if self.core.cluster is not None:
            for o in self.core.cluster.topology()["overlays"]:
                try:
                    namespaces[o["namespace"]] = await nsview.link_stats(o["namespace"])
                except OSError:  # no container of this host on it: no namespace here
                    continue
        return {"Time": time.time(), "Host": await self.core.host.link_stats(), "Containers": containers,
                "Namespaces": namespaces}

    async def details(self, ref: str) -> dict[str, Any]:
        c = self.core.container(ref)
        nets = self.core.nets_by_id()
        eps = self.core.store.endpoints(container_id=c.id)
        ns = c.netns if c.running else ""
        addrs = await nsview.ip_show(ns, "-o", "addr", "show") if ns else ""
        routes = await nsview.ip_show(ns, "route", "show") if ns else ""
        routes6 = await nsview.ip_show(ns, "-6", "route", "show") if ns else ""
        networks = [{"Network": nets[ep.network_id].name, "Interface": ep.ifname, "Veth": ep.veth,
                     "IPAddress": ep.cidr, "IPv6Address": f"{ep.ip6}/{ep.prefixlen6}" if ep.ip6 else "",
                     "MacAddress": ep.mac, "Gateway": ep.gateway}
                    for ep in eps if ep.network_id in nets]
        ips = [ep.ip for ep in eps if ep.ip] + [ep.ip6 for ep in eps if ep.ip6]
        return {
            "Id": c.id, "Name": c.name, "State": c.state.status, "Netns": ns,
            "NetworkMode": c.host_config.network_mode, "Networks": networks,
            "Addresses": _lines(addrs), "Routes": _lines(routes) + _lines(routes6),
            "Hosts": _read(os.path.join(self.core.dir(c.id), "hosts")),
            "ResolvConf": _read(os.path.join(self.core.dir(c.id), "resolv.conf")),
            "Ports": [f"{p.host_ip}:{p.host_port} -> {p.container_port}/{p.proto}" for p in c.ports],
            "Firewall": await _rules(c.name, [n["Network"] for n in networks], ips),
        }


def _lines(text: str) -> list[str]:
    return [re.sub(r"\s+", " ", ln.replace("\\", " ")).strip() for ln in text.splitlines() if ln.strip()]


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


async def _rules(name: str, networks: list[str], ips: list[str]) -> list[str]:
    """The iptables-save lines (IPv4, then IPv6) whose comment names the container or one of its
    networks, or that mention one of its addresses; each as "TABLE: RULE"."""
    tags = [f'"network {n}"' for n in networks] + [f'"network {n} hairpin"' for n in networks] \
        + [f'"container {name}"', f'"container {name} hairpin"']
    addr = re.compile("|".join(_address(ip) for ip in ips)) if ips else None
    out: list[str] = []
    for family in (4, 6):
        try:
            save = await iptables.save(family)
        except (OSError, RuntimeError):
            continue
        table = ""
        for line in save.splitlines():
            if line.startswith("*"):
                table = line[1:]
            elif line.startswith("-A ") and (any(t in line for t in tags) or (addr and addr.search(line))):
                out.append(f"{table}{'6' if family == 6 else ''}: {line}")
    return out


def _address(ip: str) -> str:
    """A pattern for one address alone or as a /32 (/128), not inside a longer one or a subnet."""
    if ":" in ip:
        return rf"(?<![0-9a-fA-F:]){re.escape(ip)}(?![0-9a-fA-F:]|/(?!128\b))"
    return rf"(?<![\d.]){re.escape(ip)}(?![\d.]|/(?!32\b))"

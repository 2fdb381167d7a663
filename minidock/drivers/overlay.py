"""The `overlay` driver: one layer-2 network across every host of a cluster,
carried in VXLAN over the hosts' own network (the underlay), as Docker's
classic overlay.

    host namespace (node1, 192.0.2.1)          container namespace
    ┌──────────────────────────────────────┐   ┌──────────────────────┐
    │ eth0 192.0.2.1 (underlay) UDP 4789   │   │ eth0 10.0.0.2/24     │─┐
    │ ┌ /run/netns/ov-256-node1 ─────────┐ │   │ eth1 172.18.0.2/16   │ │
    │ │ br0 10.0.0.1/24, MTU 1450        │ │   │ default via .18.0.1  │ │
    │ │  ├── vxlan256 (VNI 256, the UDP  │ │   └──────────────────────┘ │
    │ │  │   socket stays on the host)   │ │                            │
    │ │  └── veth… ══════════════════════╪═╪════════ eth0 ──────────────┘
    │ │ fdb: MAC of each remote container → its host's address            │
    │ │ neigh: its IP → MAC (permanent; the VXLAN device answers ARP)     │
    │ └──────────────────────────────────┘ │
    │ minidock_gwbr ═══ eth1 (the way out, NAT, a bridge network of its own)
    └──────────────────────────────────────┘

The driver makes the namespace, bridge and VXLAN device of a network on this
host, plugs containers into that bridge, and programs a remote endpoint's
FDB and neighbour entries when the cluster service tells it one exists. It
never reads the cluster store itself.
"""

from __future__ import annotations

import asyncio
import os
import shlex

from ..kernel import netns
from ..kernel.netlink import Netlink
from ..model import Endpoint, Network
from ..steps import Transaction, explained, record
from . import ALIAS_PREFIX, Sandbox, address
from .bridge import random_mac

VXLAN_PORT = 4789  # IANA's
OVERLAY_NS_PREFIX = "ov-"


class OverlayDriver:
    name = "overlay"
    scope = "global"
    leases_addresses = True  # from the cluster's store, claimed by the cluster service
    publishes_ports = True  # through the container's gateway-bridge endpoint
    needs_gateway_bridge = True  # the overlay has no way out of its own
    own_namespace = True

    def __init__(self, host: Netlink, node: str, local: str) -> None:
        self.host = host
        self.node = node  # this host's name in the cluster (namespaces are named after it)
        self.local = local  # this host's underlay address: the VXLAN endpoint
        self._ns: dict[str, Netlink] = {}  # namespace -> a Netlink bound to it
        # a network's own create and the watch's sight of it may both make its namespace
        self._making = asyncio.Lock()

    def namespace(self, net: Network) -> str:
        return f"{OVERLAY_NS_PREFIX}{net.vni}-{self.node}"

    @staticmethod
    def vxlan(net: Network) -> str:
        return f"vxlan{net.vni}"

    async def _inside(self, ns: str) -> Netlink:
        nl = self._ns.get(ns)
        if nl is None:
            nl = self._ns[ns] = await Netlink.open(await netns.open_socket(ns), ns)
        return nl

    async def _ensure_namespace(self, ns: str) -> Netlink:
        async with self._making:
            if ns not in self._ns and not netns.exists(ns):
                self._ns[ns] = await Netlink.open(await netns.create(ns), ns)
            return await self._inside(ns)

    async def create_network(self, net: Network, tx: Transaction) -> None:
        ns, vx, cfg, mtu = self.namespace(net), self.vxlan(net), net.ipam[0], net.mtu
        alias = f"{ALIAS_PREFIX}network {net.name}"
        inside = await tx.step(
            "overlay namespace", self._ensure_namespace(ns),
            undo=explained("remove the overlay namespace", lambda: self._delete_ns(ns), [f"ip netns del {ns}"]),
            commands=[f"ip netns add {ns}", f"ip -n {ns} link set lo up"],
            why=f"network {net.name}'s switch lives in a namespace of its own on every host, as Docker's "
                "overlay: its addresses never mix with the host's routes")
        await inside.loopback_up()
        mac = random_mac()
        br = await tx.step(
            "overlay bridge", inside.ensure_bridge("br0", mtu, alias, mac),
            commands=[f"ip -n {ns} link add br0 address {mac} mtu {mtu} type bridge",
                      f"ip -n {ns} link set br0 alias {shlex.quote(alias)}",
                      f"ip -n {ns} addr add {cfg.gateway}/{cfg.prefixlen} dev br0", f"ip -n {ns} link set br0 up"],
            why=f"the switch the containers on this host plug into; MTU {mtu}: VXLAN adds 50 bytes to every frame")
        await inside.ensure_addr(br, cfg.gateway, cfg.prefixlen)
        await inside.set_up(br)
        fd = os.open(netns.path(ns), os.O_RDONLY | os.O_CLOEXEC)
        try:
            await tx.step(
                "vxlan device", self.host.ensure_vxlan(vx, net.vni, self.local, VXLAN_PORT, mtu, alias, fd),
                commands=[f"ip link add {vx} mtu {mtu} type vxlan id {net.vni} dstport {VXLAN_PORT} "
                          f"local {self.local} nolearning proxy", f"ip link set {vx} netns {ns}"],
                why=f"frames for containers on other hosts leave in UDP {VXLAN_PORT} with VNI {net.vni}. Made on "
                    "the host, then moved: its UDP socket stays in the host's namespace, on the underlay; no "
                    "learning (the cluster store says where each MAC lives) and proxy (it answers ARP for them)")
        finally:
            os.close(fd)
        await tx.step("vxlan on the bridge", inside.ensure_port(vx, br),
                      commands=[f"ip -n {ns} link set {vx} master br0 up"])

    async def _delete_ns(self, ns: str) -> None:
        nl = self._ns.pop(ns, None)
        if nl is not None:
            nl.close()
        netns.delete(ns)

    async def delete_network(self, net: Network) -> None:
        ns = self.namespace(net)
        record("overlay namespace", f"network {net.name} is gone from this host: its namespace, bridge and "
               "VXLAN device go together", [f"ip netns del {ns}"])
        await self._delete_ns(ns)

    async def join(self, net: Network, ep: Endpoint, sb: Sandbox, tx: Transaction) -> None:
        ns = self.namespace(net)
        if not netns.exists(ns):
            await self.create_network(net, tx)
        inside_ov = await self._inside(ns)
        br = await inside_ov.index("br0")
        if br is None:
            raise RuntimeError(f"bridge br0 of overlay network {net.name} is missing from {ns}")
        fd = os.open(netns.path(sb.netns), os.O_RDONLY | os.O_CLOEXEC)
        alias = f"{ALIAS_PREFIX}container {sb.name}"
        try:
            await tx.step(
                "veth pair", inside_ov.add_veth(ep.veth, ep.ifname, fd, net.mtu, br, alias, ep.mac or None),
                undo=explained("remove the veth pair", lambda: inside_ov.delete_link(ep.veth),
                               [f"ip -n {ns} link del {ep.veth}"]),
                commands=[f"ip -n {ns} link add {ep.veth} mtu {net.mtu} type veth peer name {ep.ifname} "
                          f"netns {sb.netns} address {ep.mac}",
                          f"ip -n {ns} link set {ep.veth} master br0 alias {shlex.quote(alias)} up"],
                why="a virtual cable from the container to the overlay's bridge, in the overlay's namespace")
        finally:
            os.close(fd)
        await address(sb, ep, tx, "the container's address on the overlay, unique across the cluster (claimed in "
                      "the store)")

    async def leave(self, net: Network, ep: Endpoint, delete_link: bool = True, netns_name: str = "") -> None:
        if delete_link:
            ns = self.namespace(net)
            record(f"leave {net.name}", "deleting one end of a veth pair deletes both",
                   [f"ip -n {ns} link del {ep.veth}"])
            if netns.exists(ns):
                await (await self._inside(ns)).delete_link(ep.veth)

    def firewall(self, net: Network) -> None:
        return None  # the overlay is reached only through its VXLAN; the way out is the gateway bridge's

    # -- remote endpoints, as the cluster service learns them
    async def add_peer(self, net: Network, ip: str, mac: str, vtep: str) -> None:
        ns, vx = self.namespace(net), self.vxlan(net)
        if not netns.exists(ns):
            return
        record("remote endpoint", f"{ip} ({mac}) lives on the host at {vtep}",
               [f"ip -n {ns} neigh replace {ip} lladdr {mac} dev {vx} nud permanent",
                f"bridge -n {ns} fdb replace {mac} dev {vx} dst {vtep} self permanent"])
        inside = await self._inside(ns)
        await inside.neigh_replace(vx, ip, mac)
        await inside.fdb_replace(vx, mac, vtep)

    async def remove_peer(self, net: Network, ip: str, mac: str, vtep: str) -> None:
        ns, vx = self.namespace(net), self.vxlan(net)
        if not netns.exists(ns):
            return
        record("remote endpoint gone", f"{ip} ({mac}) has left",
               [f"ip -n {ns} neigh del {ip} dev {vx}", f"bridge -n {ns} fdb del {mac} dev {vx} dst {vtep} self"])
        inside = await self._inside(ns)
        await inside.neigh_delete(vx, ip)
        await inside.fdb_delete(vx, mac, vtep)

    async def peers(self, net: Network) -> list[tuple[str, str]]:
        """(MAC, host address) of every FDB entry the network has on this host."""
        ns = self.namespace(net)
        if not netns.exists(ns):
            return []
        return await (await self._inside(ns)).fdb_entries(self.vxlan(net))

    # -- `system check` and `repair`
    async def check(self, net: Network, remote: list[tuple[str, str, str]], veths: list[str]) -> list[str]:
        """The network's namespace, bridge and VXLAN device on this host; an FDB entry for
        each remote endpoint (ip, mac, vtep) and none other; each local veth on br0."""
        ns, vx = self.namespace(net), self.vxlan(net)
        if not netns.exists(ns):
            return [f"network {net.name}: overlay namespace {ns} is missing"]
        links = {link.name: link for link in await (await self._inside(ns)).links()}
        br = links.get("br0")
        if br is None:
            return [f"network {net.name}: bridge br0 is missing from {ns}"]
        problems = []
        if vx not in links or links[vx].master != br.index:
            problems.append(f"network {net.name}: {vx} is missing from {ns} or not on br0")
        have, want = set(await self.peers(net)), {(mac, vtep) for _ip, mac, vtep in remote}
        problems += [f"network {net.name}: no FDB entry for {mac} at {vtep}" for mac, vtep in sorted(want - have)]
        problems += [f"network {net.name}: stale FDB entry {mac} at {vtep}" for mac, vtep in sorted(have - want)]
        for veth in veths:
            if veth not in links or links[veth].master != br.index:
                problems.append(f"network {net.name}: veth {veth} is missing from br0 in {ns}")
        return problems

    async def has_port(self, net: Network, veth: str) -> bool:
        ns = self.namespace(net)
        return netns.exists(ns) and await (await self._inside(ns)).index(veth) is not None

    async def repair(self, net: Network, remote: list[tuple[str, str, str]]) -> None:
        """Namespace, bridge and device made again where missing; the FDB as the store says."""
        async with Transaction(context=f"failed to repair overlay network {net.name}") as tx:
            await self.create_network(net, tx)
        want = {(mac, vtep) for _ip, mac, vtep in remote}
        for ip, mac, vtep in remote:
            await self.add_peer(net, ip, mac, vtep)
        inside = await self._inside(self.namespace(net))
        for mac, vtep in set(await self.peers(net)) - want:
            await inside.fdb_delete(self.vxlan(net), mac, vtep)

    def namespaces(self) -> list[str]:
        """Every overlay namespace of this host, made by this driver or left by an earlier run."""
        return [n for n in netns.names() if n.startswith(OVERLAY_NS_PREFIX) and n.endswith(f"-{self.node}")]

    async def delete_all(self) -> list[str]:
        """Every overlay namespace of this host, deleted (`system reset`)."""
        names = self.namespaces()
        for ns in names:
            record("overlay namespace", "reset: every overlay of this host goes", [f"ip netns del {ns}"])
            await self._delete_ns(ns)
        return names

    def close(self) -> None:
        for nl in self._ns.values():
            nl.close()
        self._ns.clear()

"""The `bridge` driver: one Linux bridge per network, one veth pair per
endpoint, NAT out through the host.

    host namespace                              container namespace
    ┌──────────────────────────────┐            ┌─────────────────────┐
    │ minidock0 172.17.0.1/16      │            │ eth0 172.17.0.2/16  │
    │   ├── veth1a2b3c4 ═══════════╪════════════╪═ (veth peer)        │
    │   └── veth5d6e7f8 ═══ …      │            │ default via .0.1    │
    │ MASQUERADE -s 172.17/16      │            └─────────────────────┘
    │   ! -o minidock0             │
    └──────────────────────────────┘

Every link we make carries an alias (`ip -d link` shows it) naming the
network or container it belongs to, which is also how start-up reconcile
tells our links from anyone else's.
"""

from __future__ import annotations

import os
import shlex
from typing import Any

from ..kernel import conntrack, netns, sysctl
from ..kernel.iptables import BridgeRules
from ..kernel.netlink import Netlink
from ..model import OPT_ICC, OPT_MASQ, OPT_MTU, OPT_NAME, Endpoint, Network
from ..steps import Transaction, explained, record
from . import ALIAS_PREFIX, Sandbox, address

__all__ = ["ALIAS_PREFIX", "OPT_ICC", "OPT_MASQ", "OPT_MTU", "OPT_NAME", "BridgeDriver", "random_mac"]


def random_mac() -> str:
    """A random unicast, locally administered MAC (moby's GenerateRandomMAC)."""
    raw = bytearray(os.urandom(6))
    raw[0] = (raw[0] & 0xFE) | 0x02
    return ":".join(f"{b:02x}" for b in raw)


class BridgeDriver:
    name = "bridge"
    scope = "local"
    leases_addresses = True  # the service leases each endpoint an address of the subnet
    publishes_ports = True  # -p: host ports DNATed to the endpoint
    needs_gateway_bridge = False  # the bridge itself is the way out (NAT)
    own_namespace = True

    def __init__(self, host: Netlink) -> None:
        self.host = host
        self._bridges: dict[str, int] = {}  # name -> index, checked cheaply before each use

    async def create_network(self, net: Network, tx: Transaction) -> None:
        br, cfg = net.bridge, net.ipam[0]
        prefix, mtu = cfg.prefixlen, net.mtu
        alias = f"{ALIAS_PREFIX}network {net.name}"
        mac = random_mac()
        idx = await tx.step(
            "bridge",
            self.host.ensure_bridge(br, mtu, alias, mac),
            undo=explained("remove the bridge", lambda: self.host.delete_link(br), [f"ip link del {br}"]),
            commands=[f"ip link add {br} address {mac} type bridge"
                      + (f" mtu {mtu}" if mtu != 1500 else ""),
                      f"ip link set {br} alias {shlex.quote(alias)}"],
            why=f"the switch that network {net.name}'s containers plug into; a MAC of its own, as "
                "Docker gives it, or it would take the lowest of its ports' and change as containers come and go",
        )
        await tx.step(
            "gateway address",
            self.host.ensure_addr(idx, cfg.gateway, prefix),
            commands=[f"ip addr add {cfg.gateway}/{prefix} dev {br}"],
            why="the host's address on the bridge is the containers' default gateway",
        )
        six = net.ipam6
        if six is not None:
            p6 = six.prefixlen
            await tx.step(
                "no DAD on the bridge", _async(sysctl.ensure, f"net/ipv6/conf/{br}/accept_dad", "0"),
                commands=[f"sysctl -w net.ipv6.conf.{br}.accept_dad=0"],
                why="the host asks for a container's MAC from the bridge's link-local address, and would "
                    "wait the ~2 s of that address's duplicate detection first")
            await tx.step(
                "IPv6 gateway address", self.host.ensure_addr6(idx, six.gateway, p6),
                commands=[f"ip -6 addr add {six.gateway}/{p6} dev {br} nodad"],
                why="the containers' IPv6 default gateway; nodad: usable at once, no 2 s of duplicate "
                    "address detection on a subnet only we hand out")
            await tx.step(
                "no multicast snooping", self.host.no_snooping(idx),
                commands=[f"ip link set {br} type bridge mcast_snooping 0"],
                why="neighbour discovery asks by multicast; a container has no link-local address to "
                    "announce its groups from, so a snooping bridge may not pass the host's questions on")
            await tx.step(
                "IPv6 forwarding", _async(sysctl.ensure, "net.ipv6.conf.all.forwarding", "1"),
                commands=["sysctl -w net.ipv6.conf.all.forwarding=1"],
                why="let the host route IPv6 between the bridge and its other interfaces")
        await tx.step("bridge up", self.host.set_up(idx), commands=[f"ip link set {br} up"])
        if not net.internal:
            await tx.step(
                "localhost to published ports",
                _async(sysctl.ensure, f"net/ipv4/conf/{br}/route_localnet", "1"),
                commands=[f"sysctl -w net.ipv4.conf.{br}.route_localnet=1"],
                why="let the host's 127.0.0.1 be DNATed to a container behind this bridge",
            )
        await tx.step(
            "forwarding",
            _async(sysctl.ensure, "net.ipv4.ip_forward", "1"),
            commands=["sysctl -w net.ipv4.ip_forward=1"],
            why="let the host route packets between the bridge and its other interfaces",
        )

        if not net.icc:
            await tx.step(
                "bridged traffic through iptables",
                _async(sysctl.ensure, "net.bridge.bridge-nf-call-iptables", "1"),
                commands=["sysctl -w net.bridge.bridge-nf-call-iptables=1"],
                why="enable_icc=false is a FORWARD rule, so frames between ports of one bridge must pass iptables",
            )

    async def delete_network(self, net: Network) -> None:
        record("bridge", f"network {net.name} is gone, and with it its switch", [f"ip link del {net.bridge}"])
        await self.host.delete_link(net.bridge)

    async def join(self, net: Network, ep: Endpoint, sb: Sandbox, tx: Transaction) -> None:
        br, veth, ifname, mtu = net.bridge, ep.veth, ep.ifname, net.mtu
        master = self._bridges.get(br)
        if master is None or not self.host.is_link(master, br):
            master = await self.host.index(br)
            if master is None:
                raise RuntimeError(f"bridge {br} of network {net.name} is missing")
            self._bridges[br] = master
        fd = os.open(netns.path(sb.netns), os.O_RDONLY | os.O_CLOEXEC)
        alias = f"{ALIAS_PREFIX}container {sb.name}"
        try:
            await tx.step(
                "veth pair",
                self.host.add_veth(veth, ifname, fd, mtu, master, alias, ep.mac or None),
                undo=explained("remove the veth pair", lambda: self.host.delete_link(veth), [f"ip link del {veth}"]),
                commands=[
                    f"ip link add {veth} mtu {mtu} type veth peer name {ifname} netns {sb.netns}"
                    f" address {ep.mac}",
                    f"sysctl -qw net.ipv6.conf.{veth}.disable_ipv6=1",
                    f"ip link set {veth} master {br} alias {shlex.quote(alias)} up",
                    f"bridge link set dev {veth} hairpin on",
                ],
                why="a virtual cable: one end on the bridge (hairpin on, for published ports; no IPv6, "
                    "a switch port needs no address), the other inside the container",
            )
        finally:
            os.close(fd)
        inside = await address(sb, ep, tx, "the container's address on the network (IPv4 only, as the network: "
                               "no IPv6 link-local address, whose neighbour and router solicitations the bridge "
                               "would flood to every port)")
        if ep.ip6:
            idx = await inside.index(ep.ifname)
            await tx.step(
                "container IPv6 address", inside.ensure_addr6(idx, ep.ip6, ep.prefixlen6),
                commands=[f"ip -n {sb.netns} -6 addr add {ep.cidr6} dev {ep.ifname} nodad"],
                why="dual stack: the container's IPv6 address, usable at once (no duplicate address detection)")
            if ep.gateway_endpoint and ep.gateway6:
                await tx.step(
                    "IPv6 default route", inside.ensure_default_route6(ep.gateway6),
                    commands=[f"ip -n {sb.netns} -6 route add default via {ep.gateway6}"],
                    why="IPv6 not on the subnet goes to the bridge, then the host's NAT66")
        if ep.gateway_endpoint and ep.gateway:
            await tx.step(
                "default route",
                inside.ensure_default_route(ep.gateway),
                commands=[f"ip -n {sb.netns} route add default via {ep.gateway}"],
                why="everything not on a local subnet goes to the bridge, then the host's NAT",
            )

    async def leave(self, net: Network, ep: Endpoint, delete_link: bool = True, netns_name: str = "") -> None:
        """Unplug an endpoint. Without `delete_link` the caller deletes the container's
        namespace next, which takes the veth pair with it."""
        if delete_link:
            record(f"leave {net.name}", "deleting one end of a veth pair deletes both",
                   [f"ip link del {ep.veth}"])
            await self.host.delete_link(ep.veth)
        if ep.ip:
            record("forget connections", f"{ep.ip} may be handed out again; old tracked flows must not "
                   "outlive it", [f"conntrack -D -s {ep.ip} 2>/dev/null || true",
                                  f"conntrack -D -d {ep.ip} 2>/dev/null || true"])
            await conntrack.forget(ep.ip)

    def firewall(self, net: Network) -> BridgeRules | None:
        six = net.ipam6
        return BridgeRules(network=net.name, bridge=net.bridge, subnet=net.subnet, icc=net.icc,
                           masquerade=net.masquerade, internal=net.internal, subnet6=six.subnet if six else "")


async def _async(fn: Any, *args: Any) -> Any:
    return fn(*args)

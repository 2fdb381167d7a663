"""The `macvlan` and `ipvlan` drivers: containers straight on the parent's LAN,
as moby's drivers/macvlan and drivers/ipvlan. No bridge, no NAT, no firewall
rule: each container's eth0 is a child link of the parent interface, born in
the container's namespace.

    LAN switch ── lan0 (the parent, on the host)
                   ├── eth0 @ md-web1   macvlan: a MAC of its own, 192.168.77.2
                   └── eth0 @ md-web2   ipvlan: the parent's MAC, its own address

The kernel keeps a parent's traffic and its children's apart: the host cannot
reach its own macvlan children through the parent (its frames leave on the
wire, and the switch does not send them back). The way round is a macvlan
link of the host's own on the same parent.

`-o parent=eth0.10` makes the 802.1q sub-interface (and removes it with the
last network on it); no parent makes a dummy interface `dm-<network id>` and
the network internal. A kernel without the link type (ipvlan, vlan, dummy are
modules this machine may lack) is refused at `network create`, by a probe.
"""

from __future__ import annotations

import os

from ..errors import Forbidden, InvalidParameter
from ..kernel import netns
from ..kernel.netlink import Netlink
from ..model import Endpoint, Network
from ..steps import Transaction, explained, record
from . import ALIAS_PREFIX, Sandbox, address

OPT_PARENT = "parent"
MODE_OPTION = {"macvlan": "macvlan_mode", "ipvlan": "ipvlan_mode"}
MODES = {"macvlan": ("bridge", "private", "vepa", "passthru"), "ipvlan": ("l2", "l3", "l3s")}
DUMMY_PREFIX = "dm-"  # Docker's: a parent made for a network that names none

WHAT = {"macvlan": "macvlan links", "ipvlan": "ipvlan links", "vlan": "802.1q VLAN sub-interfaces",
        "dummy": "dummy interfaces"}


def mode_of(net: Network) -> str:
    return net.options.get(MODE_OPTION[net.driver]) or MODES[net.driver][0]


def parent_of(net: Network) -> str:
    """The network's parent interface: the one it names, or the dummy it made."""
    return net.options.get(OPT_PARENT) or net.bridge


def dummy_name(net_id: str) -> str:
    return DUMMY_PREFIX + net_id[:12]


def check_options(driver: str, options: dict[str, str], existing: list[Network]) -> None:
    """Docker's checks of a macvlan or ipvlan network's options, against the store only."""
    mode = options.get(MODE_OPTION[driver], "")
    if mode and mode not in MODES[driver]:
        default = MODES[driver][0]
        raise InvalidParameter(f"requested {driver} mode '{mode}' is not valid, '{default}' mode is the {driver} "
                               "driver default")
    parent = options.get(OPT_PARENT, "")
    if parent == "lo":
        raise InvalidParameter(f"loopback interface is not a valid {driver} parent link")
    if parent and (len(parent) > 15 or "/" in parent or " " in parent):
        raise InvalidParameter(f"invalid -o parent {parent!r}: an interface name of at most 15 characters")
    if "." in parent:
        base, _, vid = parent.rpartition(".")
        if not base or not vid.isdigit():
            raise InvalidParameter(f"required interface name format is: name.vlan_id, ex. eth0.10 for vlan 10, "
                                   f"instead received {parent}")
        if not 1 <= int(vid) <= 4094:
            raise InvalidParameter(f"vlan id must be between 1-4094, received: {int(vid)}")
    if driver == "macvlan" and parent:
        for other in existing:
            if other.driver == "macvlan" and other.options.get(OPT_PARENT) == parent:
                if mode == "passthru":
                    raise Forbidden(f"cannot use mode passthru, macvlan network {other.id} is already using "
                                    f"parent interface {parent}")
                if mode_of(other) == "passthru":
                    raise Forbidden(f"macvlan network {other.id} is already using parent interface {parent} "
                                    "in mode passthru")


class ParentDriver:
    """Both drivers: they differ in the child link's kind and mode only."""

    scope = "local"
    leases_addresses = True
    publishes_ports = False  # the container is on the LAN itself: Docker ignores -p, with a warning
    needs_gateway_bridge = False  # the LAN's own router (--gateway) is the way out
    own_namespace = True

    def __init__(self, host: Netlink, kind: str) -> None:
        self.host = host
        self.name = kind

    async def _need(self, kind: str, why: str) -> None:
        if not await self.host.supports(kind):
            raise Forbidden(f"this kernel has no {WHAT[kind]} (ip link add … type {kind}: Unknown device type), "
                            f"and cannot load the module: {why}")

    async def create_network(self, net: Network, tx: Transaction) -> None:
        """The parent: there already, or a VLAN sub-interface or a dummy made for it (net.bridge
        then names it: the link the network owns)."""
        await self._need(self.name, f"{self.name} networks are not available on this host")
        parent, alias = net.options.get(OPT_PARENT, ""), f"{ALIAS_PREFIX}network {net.name}"
        if not parent:
            name = dummy_name(net.id)
            await self._need("dummy", "a network with no -o parent sits on a dummy interface")
            await tx.step(
                "dummy parent", self.host.ensure_dummy(name, alias),
                undo=explained("remove the dummy parent", lambda: self.host.delete_link(name), [f"ip link del {name}"]),
                commands=[f"ip link add {name} type dummy", f"ip link set {name} alias '{alias}' up"],
                why="no -o parent: the containers share an interface that leads nowhere, so they reach only "
                    "each other (the network is internal)")
            net.bridge = name
            return
        links = {link.name: link for link in await self.host.links()}
        if parent in links:
            if (links[parent].alias or "").startswith(ALIAS_PREFIX):
                net.bridge = parent  # a sub-interface another network of ours made: it goes with the last
            record("parent", f"{parent} is there: each container gets a {self.name} child of it", [])
            return
        base, dot, vid = parent.rpartition(".")
        if not dot:
            raise InvalidParameter(f"invalid subinterface vlan name {parent}, example formatting is eth0.10")
        if base not in links:
            raise InvalidParameter(f"-o parent interface was not found on the host: {base}")
        await self._need("vlan", f"-o parent={parent} is an 802.1q sub-interface of {base}")
        await tx.step(
            "vlan sub-interface", self.host.ensure_vlan(parent, links[base].index, int(vid), alias),
            undo=explained("remove the sub-interface", lambda: self.host.delete_link(parent), [f"ip link del {parent}"]),
            commands=[f"ip link add link {base} name {parent} type vlan id {vid}",
                      f"ip link set {parent} alias '{alias}' up"],
            why=f"the network's frames leave {base} tagged with VLAN {vid}")
        net.bridge = parent

    async def delete_network(self, net: Network) -> None:
        if net.bridge:
            record("parent", f"{net.bridge} was made for network {net.name}: it goes with it",
                   [f"ip link del {net.bridge}"])
            await self.host.delete_link(net.bridge)

    async def join(self, net: Network, ep: Endpoint, sb: Sandbox, tx: Transaction) -> None:
        parent, mode, kind = parent_of(net), mode_of(net), self.name
        idx = await self.host.index(parent)
        if idx is None:
            raise InvalidParameter(f"the requested parent interface {parent} was not found on the Docker host")
        mac = ep.mac if kind == "macvlan" else None  # an ipvlan child has its parent's MAC
        fd = os.open(netns.path(sb.netns), os.O_RDONLY | os.O_CLOEXEC)
        try:
            await tx.step(
                f"{kind} link", self.host.add_child(ep.ifname, kind, idx, mode, fd, net.mtu, mac),
                commands=[f"ip link add {ep.ifname} link {parent}" + (f" address {mac}" if mac else "")
                          + f" mtu {net.mtu} netns {sb.netns} type {kind} mode {mode}"],
                why=f"the container's own port on {parent}'s LAN, no bridge and no NAT"
                    + (": a MAC of its own, seen on the wire" if mac else ": the parent's MAC, its own address")
                    + f" (mode {mode})")
        finally:
            os.close(fd)
        inside = await address(sb, ep, tx, "an address of the LAN's subnet: the LAN sees the container itself")
        if ep.gateway_endpoint and not net.internal and net.options.get(OPT_PARENT):  # a dummy leads nowhere
            if kind == "ipvlan" and mode != "l2":
                await tx.step(
                    "default route", inside.ensure_device_route(ep.ifname),
                    commands=[f"ip -n {sb.netns} route add default dev {ep.ifname}"],
                    why=f"ipvlan {mode} routes at layer 3: everything goes out of the interface, no gateway")
            elif ep.gateway:
                await tx.step(
                    "default route", inside.ensure_default_route(ep.gateway),
                    commands=[f"ip -n {sb.netns} route add default via {ep.gateway}"],
                    why="the LAN's router (--gateway) is the way out; nothing on this host routes for it")

    async def leave(self, net: Network, ep: Endpoint, delete_link: bool = True, netns_name: str = "") -> None:
        # deleted even when the namespace goes next: the kernel frees a namespace's links in the
        # background, and until then the child's MAC stays taken on the parent (EADDRINUSE for
        # the next container given that address)
        if netns_name and netns.exists(netns_name):
            record(f"leave {net.name}", f"the container's {self.name} link goes",
                   [f"ip -n {netns_name} link del {ep.ifname}"])
            inside = await Netlink.open(await netns.open_socket(netns_name), netns_name)
            try:
                await inside.delete_link(ep.ifname)
            finally:
                inside.close()

    def firewall(self, net: Network) -> None:
        return None  # nothing of it passes the host's IP stack

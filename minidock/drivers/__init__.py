"""Network drivers behind one small contract (moby's driverapi, cut down).

A driver turns a network record into kernel objects and attaches container
sandboxes to it; it owns its kernel steps (each a named, explained step of
the caller's Transaction). It never opens the store: the services hand it
typed records and keep the results.

Each driver declares what it is and what it needs, so the services need not
know drivers by name:

    scope                 "local" (this host's store) or "global" (a cluster's)
    leases_addresses      the service leases each endpoint an address of the subnet
    publishes_ports       `-p` works on it (host ports DNATed to the endpoint)
    needs_gateway_bridge  outbound access needs a second interface on a gateway
                          bridge (as Docker's docker_gwbridge for overlay)
    own_namespace         a container on it gets a network namespace of its own
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..kernel.iptables import BridgeRules
    from ..model import Endpoint, Network
    from ..steps import Transaction

ALIAS_PREFIX = "minidock:"  # every link of ours carries an alias that starts so


class Sandbox(Protocol):
    """A container's network namespace as a driver sees it."""

    name: str  # the container's
    netns: str  # name under /run/netns

    async def inside(self) -> Any: ...  # a Netlink bound to the namespace


async def address(sb: Sandbox, ep: Endpoint, tx: Transaction, why: str) -> Any:
    """The container's address on its interface `ep.ifname`, up: every driver's last step of a
    join but the default route. Returns the Netlink bound to the container's namespace."""
    inside = await sb.inside()
    await tx.step(
        "container address", inside.configure_interface(ep.ifname, None, ep.ip, ep.prefixlen),
        commands=[f"ip -n {sb.netns} link set {ep.ifname} addrgenmode none",
                  f"ip -n {sb.netns} addr add {ep.cidr} dev {ep.ifname}",
                  f"ip -n {sb.netns} link set {ep.ifname} up"],
        why=why)
    return inside


class Driver(Protocol):
    name: str
    scope: str
    leases_addresses: bool
    publishes_ports: bool
    needs_gateway_bridge: bool
    own_namespace: bool

    async def create_network(self, net: Network, tx: Transaction) -> None:
        """Make the network's kernel objects (idempotent)."""

    async def delete_network(self, net: Network) -> None:
        """Remove them; what is already gone counts as removed."""

    async def join(self, net: Network, ep: Endpoint, sb: Sandbox, tx: Transaction) -> None:
        """Plug endpoint `ep` of sandbox `sb` into the network."""

    async def leave(self, net: Network, ep: Endpoint, delete_link: bool = True, netns_name: str = "") -> None:
        """Unplug it; `delete_link=False` when the sandbox's namespace goes next and takes
        the endpoint's links with it. `netns_name`: the sandbox's, for a link that lives only there."""

    def firewall(self, net: Network) -> BridgeRules | None:
        """The network's share of the firewall, as data."""

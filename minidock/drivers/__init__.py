"""Network drivers behind one small contract (moby's driverapi, cut down).

A driver turns a network record into kernel objects and attaches container
sandboxes to it. It never opens the store: the service hands it records and
keeps the results.
"""

from __future__ import annotations

from typing import Any, Protocol

from ..kernel.iptables import BridgeRules
from ..steps import Transaction


class Sandbox(Protocol):
    """A container's network namespace as a driver sees it."""

    netns: str  # name under /run/netns

    async def inside(self) -> Any: ...  # a Netlink bound to the namespace


class Driver(Protocol):
    name: str

    async def create_network(self, net: dict[str, Any], tx: Transaction) -> None:
        """Make the network's kernel objects (idempotent)."""

    async def delete_network(self, net: dict[str, Any]) -> None:
        """Remove them; what is already gone counts as removed."""

    async def join(self, net: dict[str, Any], ep: dict[str, Any], sb: Sandbox, tx: Transaction) -> None:
        """Plug endpoint `ep` of sandbox `sb` into the network."""

    async def leave(self, net: dict[str, Any], ep: dict[str, Any], delete_link: bool = True) -> None:
        """Unplug it; `delete_link=False` when the sandbox's namespace goes next and takes
        the endpoint's links with it."""

    def firewall(self, net: dict[str, Any]) -> BridgeRules | None:
        """The network's share of the firewall, as data."""

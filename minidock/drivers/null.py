"""The `null` driver (network `none`): the sandbox keeps only its loopback."""

from __future__ import annotations

from ..kernel.iptables import BridgeRules
from ..model import Endpoint, Network
from ..steps import Transaction
from . import Sandbox


class NullDriver:
    name = "null"
    scope = "local"
    leases_addresses = False
    publishes_ports = False
    needs_gateway_bridge = False
    own_namespace = True

    async def create_network(self, net: Network, tx: Transaction) -> None:
        return None

    async def delete_network(self, net: Network) -> None:
        return None

    async def join(self, net: Network, ep: Endpoint, sb: Sandbox, tx: Transaction) -> None:
        return None

    async def leave(self, net: Network, ep: Endpoint, delete_link: bool = True, netns_name: str = "") -> None:
        return None

    def firewall(self, net: Network) -> BridgeRules | None:
        return None

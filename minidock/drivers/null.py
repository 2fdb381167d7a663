"""The `null` driver (network `none`): the sandbox keeps only its loopback."""

from __future__ import annotations

from typing import Any

from ..kernel.iptables import BridgeRules
from ..steps import Transaction


class NullDriver:
    name = "null"

    async def create_network(self, net: dict[str, Any], tx: Transaction) -> None:
        return None

    async def delete_network(self, net: dict[str, Any]) -> None:
        return None

    async def join(self, net: dict[str, Any], ep: dict[str, Any], sb: Any, tx: Transaction) -> None:
        return None

    async def leave(self, net: dict[str, Any], ep: dict[str, Any], delete_link: bool = True) -> None:
        return None

    def firewall(self, net: dict[str, Any]) -> BridgeRules | None:
        return None

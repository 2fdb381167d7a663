"""The firewall as the daemon wants it: each network's share (isolation, NAT,
icc, as its driver states it) and the ports published by running containers,
held in memory and applied to the kernel in one atomic batch.

Two backends behind one small contract, as netavark's FirewallDriver and
moby's firewaller:

    IptablesFirewall   our chains (MINIDOCK-*) rebuilt by one iptables-restore;
                       a published port is a DNAT rule in them
    NftMapsFirewall    the same chains, but published ports are elements of
                       nftables maps (--port-maps): adding one is one element,
                       not a rebuild

The state is loaded from the store at start-up and kept by the services as
they change it, so applying never reads the store (a start reads it once).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Protocol

from ..kernel import iptables, nftables
from ..kernel.iptables import BridgeRules
from ..model import PortBinding
from ..steps import faults, record


class Firewall(Protocol):
    """What the services ask of a firewall backend."""

    def set_network(self, network_id: str, rules: BridgeRules | None) -> None: ...
    def drop_network(self, network_id: str) -> None: ...
    def published(self, exclude: str = "") -> list[PortBinding]: ...
    def ruleset(self, family: int = 4) -> iptables.Ruleset: ...
    async def ipv6(self) -> bool: ...
    async def apply(self, why: str = "") -> None: ...
    async def publish(self, container_id: str, bindings: list[PortBinding], why: str) -> None: ...
    async def withdraw(self, container_id: str, why: str) -> None: ...
    def differences(self) -> list[str]: ...
    async def remove_all(self) -> list[str]: ...
    def close(self) -> None: ...


class IptablesFirewall:
    """Our chains, network rules and DNAT rules together, rebuilt in one batch."""

    maps = False

    def __init__(self) -> None:
        self._networks: dict[str, BridgeRules] = {}
        self._ports: dict[str, list[PortBinding]] = {}
        self._lock = asyncio.Lock()
        self._six: bool | None = None  # ip6tables in use: a network has IPv6, or had (chains to empty)

    def load(self, networks: Iterable[tuple[str, BridgeRules | None]],
             ports: Iterable[tuple[str, list[PortBinding]]]) -> None:
        self._networks = {nid: rules for nid, rules in networks if rules is not None}
        self._ports = {cid: list(held) for cid, held in ports if held}

    def set_network(self, network_id: str, rules: BridgeRules | None) -> None:
        if rules is None:
            self._networks.pop(network_id, None)
        else:
            self._networks[network_id] = rules

    def drop_network(self, network_id: str) -> None:
        self._networks.pop(network_id, None)

    def published(self, exclude: str = "") -> list[PortBinding]:
        return [p for cid, held in self._ports.items() if cid != exclude for p in held]

    def ruleset(self, family: int = 4) -> iptables.Ruleset:
        """Every rule of ours, as the daemon wants it."""
        return iptables.ruleset(list(self._networks.values()), self.published(), maps=self.maps, family=family)

    async def ipv6(self) -> bool:
        """Whether ip6tables needs our chains: a network has IPv6, or an earlier run left ours there."""
        if any(n.subnet6 for n in self._networks.values()):
            self._six = True
        elif self._six is None:
            try:
                self._six = ":MINIDOCK-FORWARD " in await iptables.save(6)
            except (OSError, RuntimeError):
                self._six = False  # no ip6tables: no IPv6 network can be made either
        return self._six

    async def _apply(self) -> list[str]:
        changed = await iptables.apply(self.ruleset())
        if await self.ipv6():
            changed += await iptables.apply(self.ruleset(6), 6)
        return changed

    async def apply(self, why: str = "") -> None:
        """Rebuild our chains; --explain shows the rules that changed."""
        async with self._lock:
            changed = await self._apply()
        self._record_skeleton(changed)
        record("firewall", why, changed)
        faults.step_done("firewall")

    def _record_skeleton(self, changed: list[str]) -> None:
        """Before a change to chains that exist already: the idempotent commands that make
        them, so that one command's explanation replays alone in an empty namespace."""
        if changed and not any(" -N " in c for c in changed):  # start-up makes them itself
            record("firewall chains", "made at daemon start-up; repeated, idempotent, so that these lines "
                   "replay on their own", iptables.skeleton() + (iptables.skeleton(6) if self._six else []))

    async def publish(self, container_id: str, bindings: list[PortBinding], why: str) -> None:
        self._ports[container_id] = list(bindings)
        await self.apply(why)

    async def withdraw(self, container_id: str, why: str) -> None:
        if self._ports.pop(container_id, None):
            await self.apply(why)

    def differences(self) -> list[str]:
        return []

    async def remove_all(self) -> list[str]:
        await iptables.remove_all()
        removed = ["firewall chains MINIDOCK* and their jumps"]
        if await self.ipv6():
            await iptables.remove_all(6)
            removed.append("ip6tables chains MINIDOCK* and their jumps")
        self._networks.clear()
        self._ports.clear()
        return removed

    def close(self) -> None:
        return None


class NftMapsFirewall(IptablesFirewall):
    """Published ports as nftables map elements (--port-maps); the rest as iptables."""

    maps = True

    def __init__(self) -> None:
        super().__init__()
        self.nft = nftables.Nft()

    async def apply(self, why: str = "") -> None:
        async with self._lock:
            changed = await self._apply()
            for family in ("ip", "ip6") if await self.ipv6() else ("ip",):
                table = nftables.table_text(self.published(), family)
                self.nft.run(table)
                changed.append(f"nft -f - <<'EOF'\n{table}EOF")
        self._record_skeleton(changed)
        record("firewall", why, changed)
        faults.step_done("firewall")

    async def _change(self, commands: list[str], why: str) -> None:
        async with self._lock:
            self.nft.run("\n".join(commands))
        record("port maps", why, [f"nft {c}" for c in commands])
        faults.step_done("firewall")

    async def publish(self, container_id: str, bindings: list[PortBinding], why: str) -> None:
        self._ports[container_id] = list(bindings)
        # an IPv6 port is on a network with IPv6, whose creation made table ip6 already
        await self._change(nftables.add_commands(bindings), why)

    async def withdraw(self, container_id: str, why: str) -> None:
        gone = self._ports.pop(container_id, None)
        if gone:
            await self._change(nftables.delete_commands(gone), why)

    def differences(self) -> list[str]:
        out = nftables.differences(self.nft, self.published())
        if self._six:
            out += nftables.differences(self.nft, self.published(), "ip6")
        return [f"port maps: {w}" for w in out]

    async def remove_all(self) -> list[str]:
        six = await self.ipv6()
        removed = await super().remove_all()
        self.nft.run(nftables.remove_text())
        removed.append(f"nftables table ip {nftables.TABLE}")
        if six:
            self.nft.run(nftables.remove_text("ip6"))
            removed.append(f"nftables table ip6 {nftables.TABLE}")
        return removed

    def close(self) -> None:
        self.nft.close()


def make(port_maps: bool) -> IptablesFirewall:
    return NftMapsFirewall() if port_maps else IptablesFirewall()

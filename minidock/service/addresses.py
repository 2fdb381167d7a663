"""Container addresses on a network: the checks of a pinned address (--ip),
and the choice of the lowest free one.

A chosen address is pending (in memory) from the plan that chose it until
that start commits its lease or gives up: plans are synchronous, so two
concurrent starts never choose one address, and the lease rows' primary key
still forbids it in the store.
"""

from __future__ import annotations

from collections.abc import Callable

from netaddr import IPAddress, IPNetwork

from .. import ipam
from ..errors import Conflict, Forbidden, InvalidParameter
from ..model import Container, IPAMConfig, Network
from ..store import Store


def pinned_networks(c: Container) -> list[str]:
    """The store's index of containers by the networks on which they pinned an address: every
    start must avoid those, and scanning 1000 containers for them cost 0.8 ms."""
    return list(c.pinned)


class Addresses:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.pending: dict[str, dict[str, str]] = {}  # network id -> address -> owner
        # a global network's addresses held on other hosts (the cluster's view), by network id
        self.elsewhere: Callable[[str], set[int]] = lambda net_id: set()
        store.containers.add_index("pinned", pinned_networks)

    @staticmethod
    def config(net: Network, family: int) -> IPAMConfig | None:
        return net.ipam6 if family == 6 else (net.ipam[0] if net.ipam else None)

    def check_pinned(self, net: Network, ip: str, family: int = 4) -> None:
        """A --ip (--ip6) must be in the subnet, not the gateway, and nobody else's."""
        addr = ipam.parse_address(ip, f"IPv{family} address", family)
        cfg = self.config(net, family)
        if cfg is None or addr not in IPNetwork(cfg.subnet):
            raise InvalidParameter(f"no configured subnet or ip-range contain the IP address {ip}")
        if str(addr) == cfg.gateway:
            raise Conflict(f"Address already in use: {ip} is the gateway of network {net.name}")
        if str(addr) in cfg.aux.values():
            raise Conflict(f"Address already in use: {ip} is an auxiliary address of network {net.name}")
        holder = self.store.leases(net.id).get(str(addr))
        pinned_by = [c.name for c in self.store.containers.indexed("pinned", net.name)
                     if str(addr) in (c.networks[net.name].ipv4, c.networks[net.name].ipv6)]
        if holder or pinned_by or int(addr) in self.elsewhere(net.id):
            raise Conflict(f"Address already in use: {ip} on network {net.name}")

    def choose(self, net: Network, owner: str, wanted: str, family: int = 4) -> IPAddress:
        """The address (of `family`) `owner` gets on `net`, pending until `settle` or `release`."""
        pending = self.pending.setdefault(net.id, {})
        if wanted:
            holder = self.store.leases(net.id).get(wanted) or pending.get(wanted)
            if (holder and holder != owner) or (not holder and ipam.number(wanted) in self.elsewhere(net.id)):
                raise Conflict(f"Address already in use: {wanted} on network {net.name}")
            pending[wanted] = owner
            return IPAddress(wanted)
        cfg = self.config(net, family)
        assert cfg is not None
        pinned = {ipam.number(a) for c in self.store.containers.indexed("pinned", net.name) if c.id != owner
                  for a in (c.networks[net.name].ipv4, c.networks[net.name].ipv6) if a}
        rng = IPNetwork(cfg.ip_range) if cfg.ip_range else None
        ip = ipam.lowest_free(IPNetwork(cfg.subnet), self.store.lease_numbers(net.id),
                              {ipam.number(cfg.gateway), *pinned, *map(ipam.number, pending),
                               *map(ipam.number, cfg.aux.values()),
                               *self.elsewhere(net.id)}, rng)
        if ip is None:
            raise Forbidden(f"no available IPv{family} addresses on network {net.name}")
        pending[str(ip)] = owner
        return ip

    def release(self, owner: str) -> None:
        """Forget what `owner` chose and did not lease (its start settled or gave up)."""
        for net_id, pending in list(self.pending.items()):
            for address in [a for a, o in pending.items() if o == owner]:
                del pending[address]
            if not pending:
                del self.pending[net_id]

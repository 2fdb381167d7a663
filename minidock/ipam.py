"""Address management: picking a subnet for a new network and an address
for a new endpoint. Pure functions over netaddr; the store holds the leases.

The default pools are Docker's: 172.17.0.0/16 … 172.31.0.0/16, then
192.168.0.0/16 cut into /20 slices. IPv6: /64s of a unique local /48
(fdXX:XXXX:XXXX::/48, RFC 4193: its 40-bit global ID derived from the host). A pool is skipped when it overlaps a
network we already have or a route in the host's table (so a lab VM whose
LAN is 172.17.x keeps working).
"""

from __future__ import annotations

import bisect
import hashlib
import socket
from collections.abc import Container, Iterable, Iterator, Sequence

from netaddr import AddrFormatError, IPAddress, IPNetwork

from .errors import Forbidden, InvalidParameter


def default_subnets() -> Iterator[IPNetwork]:
    """Docker's default pools, in Docker's order."""
    for second in range(17, 32):
        yield IPNetwork(f"172.{second}.0.0/16")
    yield from IPNetwork("192.168.0.0/16").subnet(20)


def overlaps(a: IPNetwork, b: IPNetwork) -> bool:
    return a.first <= b.last and b.first <= a.last


def pick_subnet(in_use: Iterable[IPNetwork], routes: Iterable[IPNetwork]) -> IPNetwork:
    """The first default pool that overlaps neither a network nor a route."""
    taken = [*in_use, *(r for r in routes if r.prefixlen > 0)]
    for candidate in default_subnets():
        if not any(overlaps(candidate, t) for t in taken):
            return candidate
    raise Forbidden(
        "all predefined address pools have been fully subnetted"
    )


def ula_subnets(seed: str) -> Iterator[IPNetwork]:
    """The IPv6 default pool: /64s of the ULA /48 whose global ID comes from `seed`."""
    gid = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:5], "big")
    base = (0xFD << 120) | (gid << 80)
    return (IPNetwork(f"{IPAddress(base | (k << 64), 6)}/64") for k in range(1 << 16))


def pick_subnet6(in_use: Iterable[IPNetwork], seed: str) -> IPNetwork:
    taken = [n for n in in_use if n.version == 6]
    for candidate in ula_subnets(seed):
        if not any(overlaps(candidate, t) for t in taken):
            return candidate
    raise Forbidden("could not find an available, non-overlapping IPv6 address pool among the defaults to assign "
                    "to the network")


def parse_subnet(text: str, version: int = 4) -> IPNetwork:
    try:
        net = IPNetwork(text)
    except (AddrFormatError, ValueError, TypeError):
        raise InvalidParameter(f"invalid subnet {text}: invalid CIDR address: {text}") from None
    if "/" not in text or net.version != version:
        raise InvalidParameter(f"invalid subnet {text}: invalid CIDR address: {text}")
    if net.ip != net.network:  # netaddr's == ignores host bits
        raise InvalidParameter(
            f"invalid subnet {text}: it should be {net.cidr}"
        )
    return net


def parse_address(text: str, what: str = "address", version: int = 4) -> IPAddress:
    try:
        addr = IPAddress(text)
    except (AddrFormatError, ValueError, TypeError):
        raise InvalidParameter(f"invalid {what}: {text}") from None
    if addr.version != version or (version == 4 and text.count(".") != 3):
        raise InvalidParameter(f"invalid {what}: {text}")
    return addr


def version_of(text: str) -> int:
    """4 or 6, from the text of an address or subnet (no parsing)."""
    return 6 if ":" in text else 4


def default_gateway(subnet: IPNetwork) -> IPAddress:
    return IPAddress(subnet.first + 1)


def number(address: str) -> int:
    """An address as an integer (inet_aton / inet_pton: no IPAddress object)."""
    if ":" in address:
        return int.from_bytes(socket.inet_pton(socket.AF_INET6, address), "big")
    return int.from_bytes(socket.inet_aton(address), "big")


def lowest_free(
    subnet: IPNetwork,
    taken: Sequence[int],
    also: Container[int] = (),
    ip_range: IPNetwork | None = None,
) -> IPAddress | None:
    """The lowest host address of `ip_range` (or the subnet) neither in `taken` (sorted,
    distinct) nor in `also` (the gateway, addresses pinned with --ip), or None.

    A binary search, not a walk: in a sorted run of distinct numbers, the first gap is
    the first place where a number exceeds its position."""
    pool = ip_range or subnet
    first = max(pool.first, subnet.first + 1)
    # IPv4 keeps the broadcast address out; IPv6 has none (the last is a host address)
    last = min(pool.last, subnet.last - 1) if subnet.version == 4 and subnet.prefixlen < 31 else pool.last
    end = bisect.bisect_right(taken, last)
    while first <= last:
        start = bisect.bisect_left(taken, first, hi=end)
        lo, hi = start, end
        while lo < hi:  # the first i with taken[i] > first + (i - start)
            mid = (lo + hi) // 2
            if taken[mid] > first + (mid - start):
                hi = mid
            else:
                lo = mid + 1
        candidate = first + (lo - start)
        if candidate > last:
            return None
        if candidate not in also:
            return IPAddress(candidate, subnet.version)
        first = candidate + 1
    return None


def mac_for(address: IPAddress) -> str:
    """Docker's MAC: 02:42 followed by the four bytes of the IPv4 address."""
    return "02:42:" + ":".join(f"{b:02x}" for b in address.packed)

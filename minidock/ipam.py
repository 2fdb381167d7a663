"""Address management: picking a subnet for a new network and an address
for a new endpoint. Pure functions over netaddr; the store holds the leases.

The default pools are Docker's: 172.17.0.0/16 … 172.31.0.0/16, then
192.168.0.0/16 cut into /20 slices. A pool is skipped when it overlaps a
network we already have or a route in the host's table (so a lab VM whose
LAN is 172.17.x keeps working).
"""

from __future__ import annotations

import bisect
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


def parse_subnet(text: str) -> IPNetwork:
    try:
        net = IPNetwork(text)
    except (AddrFormatError, ValueError, TypeError):
        raise InvalidParameter(f"invalid subnet {text}: invalid CIDR address: {text}") from None
    if "/" not in text or net.version != 4:
        raise InvalidParameter(f"invalid subnet {text}: invalid CIDR address: {text}")
    if net.ip != net.network:  # netaddr's == ignores host bits
        raise InvalidParameter(
            f"invalid subnet {text}: it should be {net.cidr}"
        )
    return net


def parse_address(text: str, what: str = "address") -> IPAddress:
    try:
        addr = IPAddress(text)
    except (AddrFormatError, ValueError, TypeError):
        raise InvalidParameter(f"invalid {what}: {text}") from None
    if addr.version != 4 or text.count(".") != 3:
        raise InvalidParameter(f"invalid {what}: {text}")
    return addr


def default_gateway(subnet: IPNetwork) -> IPAddress:
    return IPAddress(subnet.first + 1)


def number(address: str) -> int:
    """A dotted IPv4 address as an integer (inet_aton: no IPAddress object)."""
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
    last = min(pool.last, subnet.last - 1) if subnet.prefixlen < 31 else pool.last
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
            return IPAddress(candidate)
        first = candidate + 1
    return None


def mac_for(address: IPAddress) -> str:
    """Docker's MAC: 02:42 followed by the four bytes of the IPv4 address."""
    return "02:42:" + ":".join(f"{b:02x}" for b in address.packed)

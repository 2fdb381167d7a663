"""Unit tests for minidock.ipam: default pools, subnet picking, address allocation."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from netaddr import IPAddress, IPNetwork

from minidock import ipam
from minidock.errors import Forbidden, InvalidParameter
from minidock.store import Store

# --- default pools ------------------------------------------------------------------------


def test_default_subnets_follow_dockers_order() -> None:
    pools = [str(n) for n in ipam.default_subnets()]
    assert pools[:15] == [f"172.{i}.0.0/16" for i in range(17, 32)]
    assert pools[15:18] == ["192.168.0.0/20", "192.168.16.0/20", "192.168.32.0/20"]
    assert pools[-1] == "192.168.240.0/20"
    assert len(pools) == 15 + 16


def test_pick_subnet_with_nothing_in_use_is_172_17() -> None:
    assert ipam.pick_subnet([], []) == IPNetwork("172.17.0.0/16")


def test_pick_subnet_skips_networks_in_use() -> None:
    in_use = [IPNetwork("172.17.0.0/16"), IPNetwork("172.18.0.0/16"), IPNetwork("172.20.0.0/16")]
    assert ipam.pick_subnet(in_use, []) == IPNetwork("172.19.0.0/16")


def test_pick_subnet_skips_a_pool_that_overlaps_a_host_route() -> None:
    # A lab LAN on 172.17.5.0/24 only partly overlaps 172.17.0.0/16: that is enough to skip it.
    assert ipam.pick_subnet([], [IPNetwork("172.17.5.0/24")]) == IPNetwork("172.18.0.0/16")
    # A route wider than a pool knocks out every pool it covers.
    assert ipam.pick_subnet([], [IPNetwork("172.16.0.0/13")]) == IPNetwork("172.24.0.0/16")


def test_pick_subnet_ignores_the_default_route() -> None:
    routes = [IPNetwork("0.0.0.0/0"), IPNetwork("10.0.2.0/24")]
    assert ipam.pick_subnet([], routes) == IPNetwork("172.17.0.0/16")


def test_pick_subnet_falls_through_to_192_168_slices() -> None:
    in_use = [IPNetwork("172.16.0.0/12"), IPNetwork("192.168.0.0/20")]
    assert ipam.pick_subnet(in_use, []) == IPNetwork("192.168.16.0/20")


def test_pick_subnet_exhausted() -> None:
    with pytest.raises(Forbidden, match="all predefined address pools have been fully subnetted"):
        ipam.pick_subnet([IPNetwork("172.16.0.0/12")], [IPNetwork("192.168.0.0/16")])


def test_overlaps_is_symmetric_and_exact_at_edges() -> None:
    a, b = IPNetwork("10.0.0.0/24"), IPNetwork("10.0.1.0/24")
    assert not ipam.overlaps(a, b) and not ipam.overlaps(b, a)
    assert ipam.overlaps(IPNetwork("10.0.0.0/23"), b) and ipam.overlaps(b, IPNetwork("10.0.0.0/23"))


# --- parsing ------------------------------------------------------------------------------


def test_parse_subnet_accepts_a_network_address() -> None:
    assert ipam.parse_subnet("10.1.0.0/16") == IPNetwork("10.1.0.0/16")


@pytest.mark.parametrize("text", ["garbage", "10.0.0.0", "10.0.0.0/33", "fd00::/64", ""])
def test_parse_subnet_rejects_non_ipv4_cidr(text: str) -> None:
    with pytest.raises(InvalidParameter, match=f"invalid subnet {text}: invalid CIDR address"):
        ipam.parse_subnet(text)


def test_parse_subnet_rejects_host_bits() -> None:
    with pytest.raises(InvalidParameter, match=r"it should be 172\.17\.0\.0/16"):
        ipam.parse_subnet("172.17.0.1/16")


@pytest.mark.parametrize("text", ["1.2.3", "::1", "nope", "256.0.0.1"])
def test_parse_address_rejects_non_dotted_quad(text: str) -> None:
    with pytest.raises(InvalidParameter, match=f"invalid gateway: {text}"):
        ipam.parse_address(text, "gateway")


# --- allocation ---------------------------------------------------------------------------

def allocate(subnet: IPNetwork, gateway: IPAddress, leased: list[str],
             ip_range: IPNetwork | None = None) -> IPAddress | None:
    """What the engine asks: the lowest free address, leases given as strings."""
    return ipam.lowest_free(subnet, sorted(ipam.number(a) for a in leased), {int(gateway)}, ip_range)


SUBNET = IPNetwork("172.17.0.0/16")
GW = IPAddress("172.17.0.1")


def test_allocate_lowest_free_address_after_the_gateway() -> None:
    assert allocate(SUBNET, GW, []) == IPAddress("172.17.0.2")
    assert allocate(SUBNET, GW, ["172.17.0.2", "172.17.0.3"]) == IPAddress("172.17.0.4")
    assert allocate(SUBNET, GW, ["172.17.0.3"]) == IPAddress("172.17.0.2")


def test_allocate_skips_a_gateway_that_is_not_the_first_host() -> None:
    gw = IPAddress("172.17.0.3")
    assert allocate(SUBNET, gw, []) == IPAddress("172.17.0.1")
    assert allocate(SUBNET, gw, ["172.17.0.1", "172.17.0.2"]) == IPAddress("172.17.0.4")


def test_allocate_never_hands_out_network_or_broadcast_and_returns_none_when_full() -> None:
    small = IPNetwork("10.9.0.0/29")  # .0 network, .1 gateway, .2-.6 hosts, .7 broadcast
    gw = IPAddress("10.9.0.1")
    hosts = [f"10.9.0.{i}" for i in range(2, 7)]
    assert allocate(small, gw, hosts[:-1]) == IPAddress("10.9.0.6")
    assert allocate(small, gw, hosts) is None


def test_binary_search_agrees_with_a_walk_over_every_candidate() -> None:
    rng = random.Random(20261125)
    subnet = IPNetwork("10.0.0.0/26")  # 62 hosts: full, gappy and empty pools all occur
    hosts = list(range(subnet.first + 1, subnet.last))
    for _ in range(3000):
        taken = sorted(rng.sample(hosts, rng.randint(0, len(hosts))))
        also = set(rng.sample(hosts, rng.randint(0, 4)))
        pool = rng.choice([None, IPNetwork("10.0.0.0/28"), IPNetwork("10.0.0.16/29"), IPNetwork("10.0.0.48/28")])
        lo = max((pool or subnet).first, subnet.first + 1)
        hi = min((pool or subnet).last, subnet.last - 1)
        walk = next((v for v in range(lo, hi + 1) if v not in taken and v not in also), None)
        got = ipam.lowest_free(subnet, taken, also, pool)
        assert (int(got) if got is not None else None) == walk, (taken, also, pool)


def test_allocate_honours_ip_range() -> None:
    subnet, gw = IPNetwork("10.0.0.0/24"), IPAddress("10.0.0.1")
    # a range at the start of the subnet still skips the network address and the gateway
    assert allocate(subnet, gw, [], IPNetwork("10.0.0.0/28")) == IPAddress("10.0.0.2")
    # a range at the end stops before the broadcast address
    tail = IPNetwork("10.0.0.240/28")
    taken = [f"10.0.0.{i}" for i in range(240, 254)]
    assert allocate(subnet, gw, taken, tail) == IPAddress("10.0.0.254")
    assert allocate(subnet, gw, [*taken, "10.0.0.254"], tail) is None
    # free addresses outside the range are not used
    middle = IPNetwork("10.0.0.64/30")
    assert allocate(subnet, gw, ["10.0.0.64", "10.0.0.65", "10.0.0.67"], middle) == \
        IPAddress("10.0.0.66")


def test_allocate_reuses_an_address_after_its_lease_is_released(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "state" / "store.db"))
    try:
        for owner in ("a", "b", "c"):
            ip = allocate(SUBNET, GW, store.leases("net1"))
            assert ip is not None and store.lease("net1", str(ip), owner)
        assert store.leases("net1") == {"172.17.0.2": "a", "172.17.0.3": "b", "172.17.0.4": "c"}
        store.release("net1", "b")
        assert allocate(SUBNET, GW, store.leases("net1")) == IPAddress("172.17.0.3")
    finally:
        store.close()


@pytest.mark.parametrize(("ip", "mac"), [
    ("172.17.0.2", "02:42:ac:11:00:02"),
    ("192.168.16.255", "02:42:c0:a8:10:ff"),
    ("10.0.0.1", "02:42:0a:00:00:01"),
])
def test_mac_for(ip: str, mac: str) -> None:
    assert ipam.mac_for(IPAddress(ip)) == mac


def test_default_gateway_is_first_host() -> None:
    assert ipam.default_gateway(IPNetwork("192.168.16.0/20")) == IPAddress("192.168.16.1")

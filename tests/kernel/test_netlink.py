"""kernel/netlink.py and kernel/rtnl.py against a real kernel, in throwaway namespaces.

`ns` plays the daemon's host namespace (a Netlink opened on the thread that
is inside it, as the daemon opens its own); `ns2` plays a container, reached
the way the daemon reaches one: a socket from netns.open_socket. What the
helpers did is read back with `ip -j`, never with the helpers themselves.
"""

from __future__ import annotations

import errno
import os
import socket

import pytest
from pyroute2.netlink.exceptions import NetlinkError

from minidock.kernel import netns, rtnl, sysctl
from minidock.kernel.netlink import Netlink

from .nshelpers import inside, ip_json, sh

MAC = "02:42:0a:00:00:01"
PEER_MAC = "02:42:0a:00:00:02"


def link(ns: str, name: str) -> dict:
    [found] = ip_json(ns, "-d", "link", "show", "dev", name)
    return found


def link_names(ns: str) -> list[str]:
    return sorted(entry["ifname"] for entry in ip_json(ns, "link"))


def inet(ns: str, name: str) -> list[tuple[str, int]]:
    [entry] = ip_json(ns, "addr", "show", "dev", name)
    return [(a["local"], a["prefixlen"]) for a in entry["addr_info"] if a["family"] == "inet"]


def test_ensure_bridge_is_idempotent(ns: str) -> None:
    async def twice() -> tuple[int, int]:
        async with await Netlink.open() as nl:
            first = await nl.ensure_bridge("mdk-br0", 1400, "minidock:network n1", MAC)
            # a bridge that exists keeps its MTU and MAC; the alias is set again
            second = await nl.ensure_bridge("mdk-br0", 1500, "minidock:network n2", "02:42:0a:00:00:99")
            return first, second

    first, second = inside(ns, twice)
    assert first == second
    assert link_names(ns) == ["lo", "mdk-br0"]
    br = link(ns, "mdk-br0")
    assert br["ifindex"] == first
    assert br["linkinfo"]["info_kind"] == "bridge"
    assert br["mtu"] == 1400
    assert br["address"] == MAC
    assert br["ifalias"] == "minidock:network n2"


def test_ensure_addr_is_idempotent(ns: str) -> None:
    async def run() -> None:
        async with await Netlink.open() as nl:
            idx = await nl.ensure_bridge("mdk-br0", 1500, "a", MAC)
            await nl.ensure_addr(idx, "10.88.0.1", 24)
            await nl.ensure_addr(idx, "10.88.0.1", 24)
            assert await nl.addresses(idx) == {"10.88.0.1/24"}

    inside(ns, run)
    assert inet(ns, "mdk-br0") == [("10.88.0.1", 24)]


def test_veth_born_in_the_container_namespace(ns: str, ns2: str) -> None:
    async def run() -> int:
        async with await Netlink.open() as nl:
            br = await nl.ensure_bridge("mdk-br0", 1450, "minidock:network n", MAC)
            await nl.set_up(br)
            fd = os.open(netns.path(ns2), os.O_RDONLY | os.O_CLOEXEC)
            try:
                await nl.add_veth("vethmdk0", "eth0", fd, 1450, br, "minidock:container c1", PEER_MAC)
                # again, as after an interrupted start: finished, not an error, still one pair
                await nl.add_veth("vethmdk0", "eth0", fd, 1450, br, "minidock:container c1", PEER_MAC)
            finally:
                os.close(fd)
            assert sysctl.read("net/ipv6/conf/vethmdk0/disable_ipv6") == "1"
            links = {li.name: li for li in await nl.links()}
            assert links["vethmdk0"].kind == "veth" and links["vethmdk0"].master == br
            assert links["vethmdk0"].alias == "minidock:container c1"
            assert links["mdk-br0"].kind == "bridge"
            assert "eth0" not in links
            return br

    br = inside(ns, run)
    host = link(ns, "vethmdk0")
    assert host["master"] == "mdk-br0"
    assert host["mtu"] == 1450
    assert host["ifalias"] == "minidock:container c1"
    assert "UP" in host["flags"]
    assert host["linkinfo"]["info_slave_kind"] == "bridge"
    assert host["linkinfo"]["info_slave_data"]["hairpin"] is True
    assert link_names(ns) == ["lo", "mdk-br0", "vethmdk0"]
    peer = link(ns2, "eth0")
    assert peer["address"] == PEER_MAC
    assert peer["mtu"] == 1450
    assert peer["linkinfo"]["info_kind"] == "veth"
    assert "UP" not in peer["flags"]  # the container's side is configured (and brought up) later
    assert link_names(ns2) == ["eth0", "lo"]
    assert br == link(ns, "mdk-br0")["ifindex"]


def test_container_side_and_routes(ns: str, ns2: str) -> None:
    sh("ip", "-n", ns, "link", "add", "vethmdk1", "type", "veth", "peer", "name", "eth0", "netns", ns2)

    async def run() -> tuple[str | None, list[str]]:
        sock = await netns.open_socket(ns2)
        async with await Netlink.open(sock, netns_name=ns2) as inside_nl:
            await inside_nl.loopback_up()
            idx = await inside_nl.configure_interface("eth0", PEER_MAC, "10.88.0.2", 24)
            assert idx == await inside_nl.index("eth0")
            await inside_nl.ensure_default_route("10.88.0.1")
            await inside_nl.ensure_default_route("10.88.0.1")
            gateway = await inside_nl.default_gateway()
            return gateway, [str(r) for r in await inside_nl.routes()]

    # run from the host namespace's thread: the socket, not the thread, picks the namespace
    gateway, routes = inside(ns, run)
    assert gateway == "10.88.0.1"
    assert routes == ["10.88.0.0/24"]
    eth0 = link(ns2, "eth0")
    assert eth0["address"] == PEER_MAC
    assert "UP" in eth0["flags"]
    assert inet(ns2, "eth0") == [("10.88.0.2", 24)]
    assert "UP" in link(ns2, "lo")["flags"]
    [default] = ip_json(ns2, "-d", "route", "show", "default")  # one, though asked for twice
    assert (default["gateway"], default["dev"], default["protocol"], default["type"]) == (
        "10.88.0.1", "eth0", "boot", "unicast")
    # no IPv6 address of its own (addrgenmode none)
    [entry] = ip_json(ns2, "addr", "show", "dev", "eth0")
    assert [a for a in entry["addr_info"] if a["family"] == "inet6"] == []


def test_loopback_up(ns: str) -> None:
    assert "UP" not in link(ns, "lo")["flags"]

    async def run() -> None:
        async with await Netlink.open() as nl:
            await nl.loopback_up()
            await nl.loopback_up()

    async def loop_back() -> bytes:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b:
            a.bind(("127.0.0.1", 0))
            a.settimeout(2)
            b.sendto(b"ping", a.getsockname())
            return a.recv(16)

    inside(ns, run)
    assert "UP" in link(ns, "lo")["flags"]
    assert inside(ns, loop_back) == b"ping"


def test_delete_link(ns: str, ns2: str) -> None:
    sh("ip", "-n", ns, "link", "add", "vethmdk2", "type", "veth", "peer", "name", "eth0", "netns", ns2)

    async def run() -> None:
        async with await Netlink.open() as nl:
            await nl.delete_link("mdk-missing")  # gone already: not an error
            await nl.delete_link("vethmdk2")
            await nl.delete_link("vethmdk2")
            assert await nl.index("vethmdk2") is None

    inside(ns, run)
    assert link_names(ns) == ["lo"]
    assert link_names(ns2) == ["lo"]  # a veth takes its peer with it


def test_veth_whose_peer_name_is_taken_in_the_namespace_says_so(ns: str, ns2: str) -> None:
    """Two starts wired into one namespace (a race once lost): the second's peer name is
    taken there; the error says so, and nothing is left on the host's side."""
    sh("ip", "-n", ns2, "link", "add", "eth0", "type", "veth", "peer", "name", "other0")

    async def run() -> str:
        async with await Netlink.open() as nl:
            br = await nl.ensure_bridge("mdk-br0", 1500, "a", MAC)
            fd = os.open(netns.path(ns2), os.O_RDONLY | os.O_CLOEXEC)
            try:
                await nl.add_veth("vethmdk4", "eth0", fd, 1500, br, "c")
            except NetlinkError as e:
                return str(e)
            finally:
                os.close(fd)
            return ""

    assert "eth0 exists already in the container's namespace" in inside(ns, run)
    assert link_names(ns) == ["lo", "mdk-br0"]


def test_attach_port_puts_a_veth_back(ns: str, ns2: str) -> None:
    async def run() -> tuple[int, int]:
        async with await Netlink.open() as nl:
            br = await nl.ensure_bridge("mdk-br0", 1500, "a", MAC)
            fd = os.open(netns.path(ns2), os.O_RDONLY | os.O_CLOEXEC)
            try:
                await nl.add_veth("vethmdk3", "eth0", fd, 1500, br, "c")
            finally:
                os.close(fd)
            return br, await nl.index("vethmdk3") or 0

    br, veth = inside(ns, run)
    sh("ip", "-n", ns, "link", "set", "vethmdk3", "nomaster", "down")
    assert "master" not in link(ns, "vethmdk3")

    async def attach() -> bool:
        async with await Netlink.open() as nl:
            await nl.attach_port(veth, br)
            return nl.is_link(veth, "vethmdk3") and not nl.is_link(veth, "other")

    assert inside(ns, attach)
    port = link(ns, "vethmdk3")
    assert port["master"] == "mdk-br0"
    assert "UP" in port["flags"]
    assert port["linkinfo"]["info_slave_data"]["hairpin"] is True


def test_rtnl_batch_reports_each_message(ns: str) -> None:
    """One sendmsg of several requests: each gets its own errno, in order."""
    async def run() -> list[int]:
        raw = rtnl.Rtnl()
        try:
            codes = raw.send(rtnl.bridge("mdk-br1", 1500, MAC), rtnl.bridge("mdk-br1", 1500, MAC),
                             rtnl.delete("mdk-missing"), rtnl.link_set("mdk-br1", up=True))
            assert raw.index("mdk-br1") == socket.if_nametoindex("mdk-br1")
            assert raw.index("mdk-missing") is None
            return codes
        finally:
            raw.close()

    assert inside(ns, run) == [0, errno.EEXIST, errno.ENODEV, 0]
    assert "UP" in link(ns, "mdk-br1")["flags"]


def test_errors_that_are_not_idempotence_raise(ns: str) -> None:
    async def run() -> None:
        async with await Netlink.open() as nl:
            with pytest.raises(NetlinkError) as e:
                await nl.configure_interface("mdk-missing", None, "10.0.0.2", 24)
            assert e.value.code == errno.ENODEV
            with pytest.raises(NetlinkError):
                await nl.ensure_addr(9999, "10.0.0.2", 24)  # no such link

    inside(ns, run)

"""The messages kernel/rtnl.py packs by hand, read back by pyroute2's own parsers.

rtnl.py builds its rtnetlink requests with `struct` for speed; a wrong
attribute number, length or padding would only show as an odd kernel error
(or, worse, a setting silently ignored). Here each message is framed exactly
as Rtnl.send frames it and decoded by pyroute2's ifinfmsg, ifaddrmsg and
rtmsg classes: if pyroute2 reads the fields we meant, so does the kernel.
No root needed: nothing is sent.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

import pytest
from pyroute2.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST
from pyroute2.netlink.rtnl import (
    RTM_DELLINK,
    RTM_NEWADDR,
    RTM_NEWLINK,
    RTM_NEWROUTE,
    rt_proto,
    rt_type,
)
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import IFF_UP, ifinfmsg, protinfo_bridge
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from minidock.kernel import rtnl

CREATE = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
CHANGE = NLM_F_REQUEST | NLM_F_ACK


def framed(m: rtnl.Message, seq: int = 7) -> bytes:
    """The message with its nlmsghdr, as Rtnl.send puts it on the socket."""
    return rtnl._HDR.pack(rtnl._HDR.size + len(m.body), m.kind, m.flags, seq, 0) + m.body


def decode(cls: Any, m: rtnl.Message) -> Any:
    data = framed(m)
    msg = cls(data=data)
    msg.decode()
    # pyroute2 consumed exactly the bytes we claimed: no attribute ran past the end
    assert msg["header"]["length"] == len(data)
    assert len(data) % 4 == 0
    return msg


def attr_names(msg: Any) -> list[str]:
    return [name for name, *_ in msg["attrs"]]


def test_bridge() -> None:
    msg = decode(ifinfmsg, rtnl.bridge("br-test", 1450, "02:42:0a:00:00:01"))
    assert msg["header"]["type"] == RTM_NEWLINK
    assert msg["header"]["flags"] == CREATE
    assert msg["header"]["sequence_number"] == 7
    assert msg["family"] == socket.AF_UNSPEC and msg["index"] == 0
    assert msg["flags"] == 0 and msg["change"] == 0  # not brought up by the create
    assert msg.get_attr("IFLA_IFNAME") == "br-test"
    assert msg.get_attr("IFLA_MTU") == 1450
    assert msg.get_attr("IFLA_ADDRESS") == "02:42:0a:00:00:01"
    assert msg.get(("linkinfo", "kind")) == "bridge"
    assert attr_names(msg) == ["IFLA_IFNAME", "IFLA_MTU", "IFLA_ADDRESS", "IFLA_LINKINFO"]


def test_delete() -> None:
    msg = decode(ifinfmsg, rtnl.delete("veth1234"))
    assert msg["header"]["type"] == RTM_DELLINK
    assert msg["header"]["flags"] == CHANGE
    assert msg["index"] == 0
    assert msg.get_attr("IFLA_IFNAME") == "veth1234"
    assert attr_names(msg) == ["IFLA_IFNAME"]


@pytest.mark.parametrize("up", [True, False])
@pytest.mark.parametrize("peer_mac", ["02:42:ac:11:00:02", None])
def test_veth(up: bool, peer_mac: str | None) -> None:
    msg = decode(ifinfmsg, rtnl.veth("vethabc", "eth0", 9, 1400, 3, peer_mac, up=up))
    assert msg["header"]["type"] == RTM_NEWLINK
    assert msg["header"]["flags"] == CREATE
    assert msg["flags"] == msg["change"] == (IFF_UP if up else 0)
    assert msg.get_attr("IFLA_IFNAME") == "vethabc"
    assert msg.get_attr("IFLA_MTU") == 1400
    assert msg.get_attr("IFLA_MASTER") == 3
    info = msg.get_attr("IFLA_LINKINFO")
    assert info.get_attr("IFLA_INFO_KIND") == "veth"
    peer = info.get_attr("IFLA_INFO_DATA").get_attr("VETH_INFO_PEER")
    # the peer is a whole ifinfomsg of its own: name, MTU, born in namespace fd 9
    assert peer["index"] == 0 and peer["flags"] == 0
    assert peer.get_attr("IFLA_IFNAME") == "eth0"
    assert peer.get_attr("IFLA_MTU") == 1400
    assert peer.get_attr("IFLA_NET_NS_FD") == 9
    assert peer.get_attr("IFLA_ADDRESS") == peer_mac
    assert peer.get_attr("IFLA_MASTER") is None  # only the host end is a port


def test_link_set_everything() -> None:
    msg = decode(ifinfmsg, rtnl.link_set("vethabc", 5, up=True, master=3, alias="minidock:container c1",
                                         mac="02:00:00:00:00:01", hairpin=True, no_ipv6=True))
    assert msg["header"]["type"] == RTM_NEWLINK
    assert msg["header"]["flags"] == CHANGE  # a change: neither CREATE nor EXCL
    assert msg["index"] == 5
    assert msg["flags"] == msg["change"] == IFF_UP
    assert msg.get_attr("IFLA_IFNAME") == "vethabc"
    assert msg.get_attr("IFLA_MASTER") == 3
    assert msg.get_attr("IFLA_IFALIAS") == "minidock:container c1"
    assert msg.get_attr("IFLA_ADDRESS") == "02:00:00:00:00:01"
    # No IFLA_INFO_SLAVE_KIND (the kernel takes the master's), so pyroute2 leaves the
    # slave data raw: decode it as the bridge port attributes it is.
    raw = msg.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_SLAVE_DATA")
    payload = bytes.fromhex(raw.replace(":", ""))
    port = protinfo_bridge(data=struct.pack("=HH", 4 + len(payload), rtnl.IFLA_INFO_SLAVE_DATA) + payload)
    port.decode()
    assert attr_names(port) == ["IFLA_BRPORT_MODE"]
    assert port.get_attr("IFLA_BRPORT_MODE") == 1  # hairpin on
    if rtnl.HAS_IPV6:
        inet6 = msg.get_attr("IFLA_AF_SPEC").get_attr("AF_INET6")
        assert inet6.get_attr("IFLA_INET6_ADDR_GEN_MODE") == rtnl.IN6_ADDR_GEN_MODE_NONE


def test_link_set_by_index_only_changes_what_is_asked() -> None:
    msg = decode(ifinfmsg, rtnl.link_set(index=12, up=True))
    assert msg["index"] == 12
    assert msg["flags"] == msg["change"] == IFF_UP
    assert msg["attrs"] == []  # no name, no master: nothing else is touched

    down = decode(ifinfmsg, rtnl.link_set("eth0", alias="x"))
    assert down["index"] == 0
    assert down["change"] == 0  # IFF_UP not in the change mask: the link's state is left as is
    assert attr_names(down) == ["IFLA_IFNAME", "IFLA_IFALIAS"]


def test_link_set_master_zero_is_sent() -> None:
    # master=0 means "no master" (leave the bridge): it must be sent, not dropped as falsy
    msg = decode(ifinfmsg, rtnl.link_set(index=4, master=0))
    assert msg.get_attr("IFLA_MASTER") == 0


@pytest.mark.parametrize("address,prefixlen", [("172.17.0.2", 16), ("10.1.2.3", 24), ("192.0.2.1", 32)])
def test_addr_add(address: str, prefixlen: int) -> None:
    msg = decode(ifaddrmsg, rtnl.addr_add(6, address, prefixlen))
    assert msg["header"]["type"] == RTM_NEWADDR
    assert msg["header"]["flags"] == CREATE
    assert msg["family"] == socket.AF_INET
    assert msg["prefixlen"] == prefixlen
    assert msg["index"] == 6
    assert msg["scope"] == 0  # universe
    assert msg.get_attr("IFA_LOCAL") == address
    assert msg.get_attr("IFA_ADDRESS") == address


def test_default_route() -> None:
    msg = decode(rtmsg, rtnl.default_route("172.17.0.1"))
    assert msg["header"]["type"] == RTM_NEWROUTE
    assert msg["header"]["flags"] == CREATE
    assert msg["family"] == socket.AF_INET
    assert msg["dst_len"] == 0 and msg["src_len"] == 0  # default: 0.0.0.0/0
    assert msg["table"] == 254  # main
    assert msg["proto"] == rt_proto["boot"]
    assert msg["scope"] == 0
    assert msg["type"] == rt_type["unicast"]
    assert msg.get_attr("RTA_GATEWAY") == "172.17.0.1"
    assert msg.get_attr("RTA_DST") is None
    assert attr_names(msg) == ["RTA_GATEWAY"]


def test_attribute_padding() -> None:
    # names of every length mod 4: each attribute is padded to 4 bytes, its length field is not
    for name in ("a", "ab", "abc", "abcd", "abcde"):
        msg = decode(ifinfmsg, rtnl.link_set(name, alias=name * 2))
        assert msg.get_attr("IFLA_IFNAME") == name
        assert msg.get_attr("IFLA_IFALIAS") == name * 2

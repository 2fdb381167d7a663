"""The rtnetlink messages of a container's start, packed by hand and sent in batches.

A start changes the kernel with a handful of messages: a veth pair, its
bridge port settings, the container's address, its routes. The kernel does
all of them in well under a millisecond; through pyroute2 each one costs
~0.3 ms more of Python, encoding nested attributes and routing the answer
through an asyncio queue. So these few messages are built here with
`struct`, several go out in one sendmsg (the kernel runs them in order and
acknowledges each), and the answers are read back at once: the kernel has
done the work before sendmsg returns. Dumps and lookups stay with pyroute2
(kernel/netlink.py), which owns this module.

Message layouts are the kernel's (include/uapi/linux/rtnetlink.h,
if_link.h, veth.h); an `ip` command doing the same is in each docstring.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import struct

RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 17, 20, 24
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
IFF_UP = 0x1

IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER = 1, 3, 4, 10
IFLA_LINKINFO, IFLA_IFALIAS, IFLA_AF_SPEC, IFLA_NET_NS_FD = 18, 20, 26, 28
IFLA_INFO_KIND, IFLA_INFO_DATA, IFLA_INFO_SLAVE_DATA = 1, 2, 5
VETH_INFO_PEER = 1
IFLA_BRPORT_MODE = 4  # hairpin
IFLA_INET6_ADDR_GEN_MODE, IN6_ADDR_GEN_MODE_NONE = 8, 1
HAS_IPV6 = os.path.exists("/proc/sys/net/ipv6")
IFA_ADDRESS, IFA_LOCAL, IFA_FLAGS = 1, 2, 8
IFA_F_NODAD = 0x02
RTA_OIF, RTA_GATEWAY = 4, 5
RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 3, 0, 1
RT_SCOPE_LINK = 253
SIOCGIFINDEX = 0x8933

_HDR = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port id


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def _str(kind: int, value: str) -> bytes:
    return _attr(kind, value.encode() + b"\0")


def _u32(kind: int, value: int) -> bytes:
    return _attr(kind, struct.pack("=I", value))


def _ifinfo(index: int = 0, up: bool = False) -> bytes:
    """struct ifinfomsg; `up` sets IFF_UP (and says it is the flag being changed)."""
    return struct.pack("=BBHiII", socket.AF_UNSPEC, 0, 0, index, IFF_UP if up else 0, IFF_UP if up else 0)


def _mac(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


class Message:
    """One request: its type, flags and body (everything after the header)."""

    __slots__ = ("kind", "flags", "body")

    def __init__(self, kind: int, flags: int, body: bytes) -> None:
        self.kind, self.flags, self.body = kind, flags | NLM_F_REQUEST | NLM_F_ACK, body


def bridge(name: str, mtu: int, mac: str) -> Message:
    """`ip link add NAME address MAC [mtu MTU] type bridge`"""
    body = (_ifinfo() + _str(IFLA_IFNAME, name) + _u32(IFLA_MTU, mtu) + _attr(IFLA_ADDRESS, _mac(mac))
            + _attr(IFLA_LINKINFO, _str(IFLA_INFO_KIND, "bridge")))
    return Message(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body)


def delete(name: str) -> Message:
    """`ip link del NAME` (a veth takes its peer with it)"""
    return Message(RTM_DELLINK, 0, _ifinfo() + _str(IFLA_IFNAME, name))


def veth(name: str, peer: str, netns_fd: int, mtu: int, master: int, peer_mac: str | None = None,
         up: bool = True) -> Message:
    """`ip link add NAME mtu MTU master BRIDGE [up] type veth peer name PEER netns NS [address MAC]`"""
    peer_body = _ifinfo() + _str(IFLA_IFNAME, peer) + _u32(IFLA_MTU, mtu) + _u32(IFLA_NET_NS_FD, netns_fd)
    if peer_mac:
        peer_body += _attr(IFLA_ADDRESS, _mac(peer_mac))
    info = _str(IFLA_INFO_KIND, "veth") + _attr(IFLA_INFO_DATA, _attr(VETH_INFO_PEER, peer_body))
    body = (_ifinfo(up=up) + _str(IFLA_IFNAME, name) + _u32(IFLA_MTU, mtu) + _u32(IFLA_MASTER, master)
            + _attr(IFLA_LINKINFO, info))
    return Message(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body)


def link_set(name: str = "", index: int = 0, *, up: bool = False, master: int | None = None,
             alias: str | None = None, mac: str | None = None, hairpin: bool = False,
             no_ipv6: bool = False) -> Message:
    """`ip link set NAME [master M] [alias A] [address MAC] [up] [addrgenmode none]
    [type bridge_slave hairpin on]`.

    A bridge port's settings ride in the same message as the rest (the bridge
    applies them before the generic changes, so the link must already be a port).
    `no_ipv6` takes effect at the link's next carrier: set it before both ends are up."""
    body = _ifinfo(index, up) + (_str(IFLA_IFNAME, name) if name else b"")
    if master is not None:
        body += _u32(IFLA_MASTER, master)
    if alias is not None:
        body += _str(IFLA_IFALIAS, alias)
    if mac is not None:
        body += _attr(IFLA_ADDRESS, _mac(mac))
    if hairpin:
        body += _attr(IFLA_LINKINFO, _attr(IFLA_INFO_SLAVE_DATA, _attr(IFLA_BRPORT_MODE, b"\1")))
    if no_ipv6 and HAS_IPV6:
        mode = _attr(IFLA_INET6_ADDR_GEN_MODE, bytes([IN6_ADDR_GEN_MODE_NONE]))
        body += _attr(IFLA_AF_SPEC, _attr(socket.AF_INET6, mode))
    return Message(RTM_NEWLINK, 0, body)


def addr_add(index: int, address: str, prefixlen: int) -> Message:
    """`ip addr add ADDRESS/PREFIXLEN dev INDEX`"""
    packed = socket.inet_aton(address)
    body = struct.pack("=BBBBI", socket.AF_INET, prefixlen, 0, RT_SCOPE_UNIVERSE, index)
    return Message(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body + _attr(IFA_LOCAL, packed) + _attr(IFA_ADDRESS, packed))


def addr6_add(index: int, address: str, prefixlen: int) -> Message:
    """`ip -6 addr add ADDRESS/PREFIXLEN dev INDEX nodad`: usable at once, not after the ~2 s of
    duplicate address detection (the network's own IPAM hands each address out once)."""
    packed = socket.inet_pton(socket.AF_INET6, address)
    body = struct.pack("=BBBBI", socket.AF_INET6, prefixlen, IFA_F_NODAD, RT_SCOPE_UNIVERSE, index)
    return Message(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL,
                   body + _attr(IFA_ADDRESS, packed) + _u32(IFA_FLAGS, IFA_F_NODAD))


def _default_route(family: int, scope: int, attrs: bytes) -> Message:
    """A default route of the main table, proto boot (as `ip route add` makes it)."""
    body = struct.pack("=BBBBBBBBI", family, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, scope, RTN_UNICAST, 0)
    return Message(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, body + attrs)


def default_route6(gateway: str) -> Message:
    """`ip -6 route add default via GATEWAY`"""
    return _default_route(socket.AF_INET6, RT_SCOPE_UNIVERSE,
                          _attr(RTA_GATEWAY, socket.inet_pton(socket.AF_INET6, gateway)))


def default_route(gateway: str) -> Message:
    """`ip route add default via GATEWAY`"""
    return _default_route(socket.AF_INET, RT_SCOPE_UNIVERSE, _attr(RTA_GATEWAY, socket.inet_aton(gateway)))


def device_default_route(index: int) -> Message:
    """`ip route add default dev DEV` (no gateway: ipvlan l3 routes everything out of the link)."""
    return _default_route(socket.AF_INET, RT_SCOPE_LINK, _u32(RTA_OIF, index))


class Rtnl:
    """A NETLINK_ROUTE socket used synchronously: send a batch, read its acknowledgements.

    Bound to the namespace it was opened in (a socket handed over by
    kernel/netns.py, or the caller's own)."""

    def __init__(self, sock: socket.socket | None = None) -> None:
        self.sock = sock or socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0)
        self.sock.bind((0, 0))
        self._seq = 0

    def close(self) -> None:
        self.sock.close()

    def send(self, *messages: Message) -> list[int]:
        """Run `messages` in order; returns each one's errno (0: done)."""
        first = self._seq + 1
        parts = []
        for m in messages:
            self._seq += 1
            parts.append(_HDR.pack(_HDR.size + len(m.body), m.kind, m.flags, self._seq, 0) + m.body)
        self.sock.sendmsg(parts)
        codes: dict[int, int] = {}
        while len(codes) < len(messages):
            data = self.sock.recv(65536)
            offset = 0
            while offset + _HDR.size <= len(data):
                length, kind, _flags, seq, _pid = _HDR.unpack_from(data, offset)
                if kind == NLMSG_ERROR and first <= seq <= self._seq:
                    codes[seq] = -struct.unpack_from("=i", data, offset + _HDR.size)[0]
                offset += max((length + 3) & ~3, _HDR.size)
        return [codes[first + i] for i in range(len(messages))]

    def index(self, name: str) -> int | None:
        """The index of link NAME in this socket's namespace (an ioctl: no dump, no lookup message)."""
        req = struct.pack("=16si20x", name.encode(), 0)
        try:
            return struct.unpack_from("=i", fcntl.ioctl(self.sock.fileno(), SIOCGIFINDEX, req), 16)[0]
        except OSError as e:
            if e.errno == errno.ENODEV:
                return None
            raise

"""A packet's path as the kernel saw it: nftables tracing (`meta nftrace set 1`)
for one probe, read as trace events over netlink (NFNLGRP_NFTRACE).

While a trace runs, one table of ours marks the probe and watches it leave:

    table bridge minidock_trace                  (bridged frames: the veth ports)
        chain pre   prerouting  -350   probe's 5-tuple → meta nftrace set 1
        chain post  postrouting  350   counter (its event shows the port out)
    table inet minidock_trace                    (routed packets)
        chain pre   prerouting  -350   probe's 5-tuple → meta nftrace set 1
        chain out   output      -350   probe's 5-tuple → meta nftrace set 1
        chain in    input        350   counter (delivered to the host)
        chain post  postrouting  350   counter (after NAT: the packet as it leaves)

Every base chain the marked packet then meets (iptables-nft's too: iptables
rules are nftables rules underneath) sends an event per rule that matched and
per chain policy, with the interfaces and, once per chain, the headers (a
chain's policy event alone carries none: the watch chains hold a rule that
always matches, a counter, for its event). The
rule's text comes from the ruleset (`nft -a list ruleset`, by handle); an
iptables-nft rule is shown as iptables-save writes it, with its comment, by
its place in its chain.

The table goes away after the probe whatever happens (`remove_text`), and the
daemon removes one left by a crash at start-up. The probe itself is a socket
opened inside the source's namespace (kernel/netns.run_in): an ICMP echo, a
TCP SYN (a connect), or a UDP datagram.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import os
import re
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from . import netns
from .iptables import save as iptables_save
from .nftables import NFT_CTX_OUTPUT_HANDLE, Nft

TABLE = "minidock_trace"
NETLINK_NETFILTER = 12
NFNLGRP_NFTRACE = 9
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
NFT_MSG_TRACE = (10 << 8) | 17  # NFNL_SUBSYS_NFTABLES, NFT_MSG_TRACE
# enum nft_trace_attributes
A_TABLE, A_CHAIN, A_HANDLE, A_TYPE, A_VERDICT, A_ID = 1, 2, 3, 4, 5, 6
A_NETWORK, A_TRANSPORT, A_IIF, A_OIF, A_NFPROTO, A_POLICY = 8, 9, 10, 12, 15, 16
TRACE_TYPES = {1: "policy", 2: "return", 3: "rule"}
VERDICTS = {0: "drop", 1: "accept", 2: "stolen", 3: "queue", 4: "repeat",
            -1: "continue", -2: "break", -3: "jump", -4: "goto", -5: "return"}
FAMILIES = {1: "inet", 2: "ip", 3: "arp", 5: "netdev", 7: "bridge", 10: "ip6"}
PROTOS = {1: "icmp", 6: "tcp", 17: "udp"}


@dataclass(frozen=True)
class Probe:
    """What the trace rule matches: the probe's own packet and nothing else."""

    proto: str  # icmp, tcp, udp
    dst: str
    port: int = 0  # tcp/udp destination port
    sport: int = 0  # tcp/udp source port, bound before the trace starts
    icmp_id: int = 0


def match(p: Probe) -> str:
    if p.proto == "icmp":
        return f"ip daddr {p.dst} icmp type echo-request icmp id {p.icmp_id}"
    syn = " tcp flags & (syn | ack) == syn" if p.proto == "tcp" else ""  # the SYN, not the ACK after it
    return f"ip daddr {p.dst} {p.proto} sport {p.sport} {p.proto} dport {p.port}{syn}"


def table_text(p: Probe) -> str:
    """The two trace tables, as one `nft -f` transaction (any old ones replaced)."""
    m = f"{match(p)} meta nftrace set 1"
    return f"""{remove_text()}table bridge {TABLE} {{
  chain pre {{ type filter hook prerouting priority -350; policy accept; {m}; }}
  chain post {{ type filter hook postrouting priority 350; policy accept; counter; }}
}}
table inet {TABLE} {{
  chain pre {{ type filter hook prerouting priority -350; policy accept; {m}; }}
  chain out {{ type filter hook output priority -350; policy accept; {m}; }}
  chain in {{ type filter hook input priority 350; policy accept; counter; }}
  chain post {{ type filter hook postrouting priority 350; policy accept; counter; }}
}}
"""


def remove_text() -> str:
    """Deletes both tables; declaring each first makes the delete succeed when it is absent."""
    return (f"table bridge {TABLE}\ndelete table bridge {TABLE}\n"
            f"table inet {TABLE}\ndelete table inet {TABLE}\n")


def present(nft: Nft) -> list[str]:
    """Trace tables in the kernel now (a crash's leftovers, for `system check`)."""
    listing = nft.run("list tables")
    return [f"table {fam} {TABLE}" for fam in ("bridge", "inet") if f"table {fam} {TABLE}\n" in listing + "\n"]


def remove(nft: Nft) -> None:
    nft.run(remove_text())


def install(nft: Nft, p: Probe) -> None:
    nft.run(table_text(p))


def open_nft() -> Nft:
    nft = Nft()
    nft.lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
    nft.lib.nft_ctx_output_set_flags(nft.ctx, NFT_CTX_OUTPUT_HANDLE)
    return nft


# -- the ruleset, to name what the trace events point at by handle ---------------------
@dataclass
class Chain:
    family: str
    table: str
    name: str
    hook: str = ""  # a base chain's hook
    rules: dict[int, str] = field(default_factory=dict)  # handle -> text, in order


def parse_ruleset(listing: str) -> dict[tuple[str, str, str], Chain]:
    """`nft -a list ruleset` text → chains by (family, table, chain)."""
    chains: dict[tuple[str, str, str], Chain] = {}
    family = table = ""
    current: Chain | None = None
    for line in listing.splitlines():
        s = line.strip()
        if m := re.match(r"table (\S+) (\S+) \{", s):
            family, table, current = m.group(1), m.group(2), None
        elif m := re.match(r"chain (\S+) \{", s):
            current = chains[(family, table, m.group(1))] = Chain(family, table, m.group(1))
        elif current is not None and (m := re.match(r"type \S+ hook (\S+) ", s)):
            current.hook = m.group(1)
        elif current is not None and (m := re.match(r"(.*\S)\s+# handle (\d+)$", s)):
            current.rules[int(m.group(2))] = re.sub(r"counter packets \d+ bytes \d+ ?", "", m.group(1)).strip()
    return chains


def attach_iptables_text(chains: dict[tuple[str, str, str], Chain], save: str, family: str = "ip") -> None:
    """Show iptables-nft's rules as iptables-save writes them (with `-m comment`, which nft's
    listing cannot print): the Nth rule of a chain in one listing is its Nth in the other."""
    table = ""
    by_chain: dict[tuple[str, str], list[str]] = {}
    for line in save.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
        elif line.startswith("-A "):
            chain, _, spec = line[3:].partition(" ")
            by_chain.setdefault((table, chain), []).append(f"-A {chain} {spec}")
    for (table, chain), lines in by_chain.items():
        c = chains.get((family, table, chain))
        if c is not None and len(c.rules) == len(lines):
            c.rules = dict(zip(c.rules, lines, strict=True))


async def ruleset(nft: Nft) -> dict[tuple[str, str, str], Chain]:
    chains = parse_ruleset(nft.run("list ruleset"))
    try:
        attach_iptables_text(chains, await iptables_save())
    except (OSError, RuntimeError):
        pass  # no iptables: nft's own text serves
    return chains


# -- trace events over netlink ----------------------------------------------------------
@dataclass
class Event:
    """One trace message: a rule that matched, a chain's policy, or a return."""

    family: str
    table: str
    chain: str
    kind: str  # rule, policy, return
    handle: int = 0
    verdict: str = ""
    target: str = ""  # a jump's or goto's chain
    iif: int = 0
    oif: int = 0
    packet: dict[str, Any] | None = None  # decoded headers, when the kernel sent them
    trace_id: int = 0


def _attrs(data: bytes) -> dict[int, bytes]:
    out, i = {}, 0
    while i + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, i)
        if length < 4:
            break
        out[kind & 0x3FFF] = data[i + 4:i + length]
        i += (length + 3) & ~3
    return out


def _str(b: bytes) -> str:
    return b.split(b"\0", 1)[0].decode(errors="replace")


def decode_headers(network: bytes, transport: bytes) -> dict[str, Any]:
    """The IPv4 header (and the transport's first bytes) as the kernel sent them."""
    out: dict[str, Any] = {}
    if len(network) >= 20 and network[0] >> 4 == 4:
        proto = network[9]
        out = {"saddr": socket.inet_ntoa(network[12:16]), "daddr": socket.inet_ntoa(network[16:20]),
               "proto": PROTOS.get(proto, str(proto)), "ttl": network[8]}
        if proto in (6, 17) and len(transport) >= 4:
            out["sport"], out["dport"] = struct.unpack_from("!HH", transport)
        elif proto == 1 and len(transport) >= 8:
            out["icmp_type"] = transport[0]
            out["icmp_id"] = struct.unpack_from("!H", transport, 4)[0]
    return out


def decode(msg: bytes) -> Event | None:
    """One NFT_MSG_TRACE message (after its nlmsghdr), or None for another kind."""
    if len(msg) < 4:
        return None
    a = _attrs(msg[4:])
    ev = Event(family=FAMILIES.get(msg[0], str(msg[0])), table=_str(a.get(A_TABLE, b"")),
               chain=_str(a.get(A_CHAIN, b"")),
               kind=TRACE_TYPES.get(struct.unpack("!I", a[A_TYPE])[0] if A_TYPE in a else 0, "?"))
    if A_HANDLE in a:
        ev.handle = struct.unpack("!Q", a[A_HANDLE])[0]
    if A_ID in a:
        ev.trace_id = struct.unpack("!I", a[A_ID])[0]
    if A_VERDICT in a:
        v = _attrs(a[A_VERDICT])
        if 1 in v:
            code = struct.unpack("!i", v[1])[0]
            ev.verdict = VERDICTS.get(code if code < 0 else code & 0xFF, str(code))
        if 2 in v:
            ev.target = _str(v[2])
    if A_POLICY in a and not ev.verdict:
        ev.verdict = VERDICTS.get(struct.unpack("!I", a[A_POLICY])[0], "?")
    if A_IIF in a:
        ev.iif = struct.unpack("!I", a[A_IIF])[0]
    if A_OIF in a:
        ev.oif = struct.unpack("!I", a[A_OIF])[0]
    if A_NETWORK in a:
        ev.packet = decode_headers(a[A_NETWORK], a.get(A_TRANSPORT, b""))
    return ev


class Listener:
    """Subscribed to the trace events of the daemon's namespace from creation on."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_NETFILTER)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            self.sock.bind((0, 0))
            self.sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, NFNLGRP_NFTRACE)
            self.sock.setblocking(False)
        except OSError:
            self.sock.close()
            raise

    def drain(self) -> list[Event]:
        """Every event received so far."""
        out = []
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except BlockingIOError:
                return out
            except OSError as e:
                if e.errno == errno.ENOBUFS:  # overrun: what follows still counts
                    continue
                raise
            i = 0
            while i + 16 <= len(data):
                length, kind = struct.unpack_from("=IH", data, i)
                if length < 16:
                    break
                if kind == NFT_MSG_TRACE:
                    ev = decode(data[i + 16:i + length])
                    if ev is not None:
                        out.append(ev)
                i += (length + 3) & ~3

    def close(self) -> None:
        self.sock.close()


def ifname(index: int) -> str:
    """An interface of the daemon's namespace by index (the trace's iif/oif)."""
    if not index:
        return ""
    try:
        return socket.if_indextoname(index)
    except OSError:
        return f"if{index}"


# -- the probe --------------------------------------------------------------------------
@dataclass
class Sent:
    """A probe socket, opened in the source namespace, and what the trace must match."""

    sock: socket.socket
    probe: Probe
    source: str = ""  # the address the kernel chose (or bound)
    error: str = ""  # the probe could not leave: no route, say


def _icmp_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def _open(proto: str, bind: str) -> socket.socket:
    if proto == "icmp":
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.IPPROTO_ICMP)
    else:
        s = socket.socket(socket.AF_INET, (socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
                          | socket.SOCK_CLOEXEC)
    try:
        s.setblocking(False)
        s.bind((bind, 0))  # tcp/udp: the source port is known before the trace rule is made
    except OSError:
        s.close()
        raise
    return s


async def open_probe(namespace: str | None, proto: str, dst: str, port: int, bind: str = "") -> Sent:
    """A socket for the probe, opened inside `namespace` (None: the daemon's own)."""
    if namespace is None:
        sock = _open(proto, bind)
    else:
        sock = await netns.run_in(namespace, lambda: _open(proto, bind))
    probe = Probe(proto, dst, port, sport=sock.getsockname()[1] if proto != "icmp" else 0,
                  icmp_id=(os.getpid() ^ int(time.monotonic() * 1000)) & 0xFFFF if proto == "icmp" else 0)
    return Sent(sock, probe)


async def fire(sent: Sent, timeout: float) -> str:
    """Send the probe and wait for its answer: what became of it, in words."""
    loop = asyncio.get_running_loop()
    p, s = sent.probe, sent.sock
    try:
        if p.proto == "icmp":
            header = struct.pack("!BBHHH", 8, 0, 0, p.icmp_id, 1)
            payload = b"minidock trace"
            header = struct.pack("!BBHHH", 8, 0, _icmp_checksum(header + payload), p.icmp_id, 1)
            s.sendto(header + payload, (p.dst, 0))
            return await asyncio.wait_for(_echo_reply(loop, s, p), timeout)
        if p.proto == "tcp":
            await asyncio.wait_for(loop.sock_connect(s, (p.dst, p.port)), timeout)
            return "answered: the TCP connection was accepted"
        s.connect((p.dst, p.port))
        s.send(b"minidock trace\n")
        await asyncio.wait_for(loop.sock_recv(s, 2048), timeout)
        return "answered: a UDP reply came back"
    except TimeoutError:
        return f"no answer within {timeout:g}s"
    except ConnectionRefusedError:
        return "refused: the destination answered with a reset or port unreachable (it was reached)"
    except OSError as e:
        if e.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL, errno.EINVAL) and not sent.error:
            sent.error = f"{os.strerror(e.errno or 0)} in the source's namespace: the probe never left it"
            return sent.error
        return f"failed: {e.strerror or e}"
    finally:
        try:
            sent.source = s.getsockname()[0]
        except OSError:
            pass


async def _echo_reply(loop: asyncio.AbstractEventLoop, s: socket.socket, p: Probe) -> str:
    while True:
        data = await loop.sock_recv(s, 4096)
        ihl = (data[0] & 0x0F) * 4
        icmp = data[ihl:]
        if len(icmp) >= 8 and icmp[0] == 0 and struct.unpack_from("!H", icmp, 4)[0] == p.icmp_id:
            return f"answered: echo reply from {socket.inet_ntoa(data[12:16])}"
        if len(icmp) >= 36 and icmp[0] == 3:  # unreachable: quotes our header, whose id is ours
            inner = icmp[8:]
            inner_icmp = inner[(inner[0] & 0x0F) * 4:]
            if len(inner_icmp) >= 6 and struct.unpack_from("!H", inner_icmp, 4)[0] == p.icmp_id:
                return f"unreachable: ICMP type 3 code {icmp[1]} from {socket.inet_ntoa(data[12:16])}"


async def namespace_holding(address: str, candidates: list[str]) -> str | None:
    """The first of the registered namespaces `candidates` that holds `address`."""
    for name in candidates:
        if await netns.run_in(name, lambda: _bind_here(address)):
            return name
    return None


def _bind_here(address: str) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    try:
        s.bind((address, 0))
        return True
    except OSError:
        return False
    finally:
        s.close()


def route_source(dst: str) -> str:
    """The address the daemon's namespace would send from to reach `dst` ("" without a route)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    try:
        s.connect((dst, 9))
        return str(s.getsockname()[0])
    except OSError:
        return ""
    finally:
        s.close()

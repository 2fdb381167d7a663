"""The DNS stub: Docker's embedded DNS server at 127.0.0.11, per container.

    container md-alpine1                      daemon (host namespace)
    ┌──────────────────────────────┐          ┌───────────────────────────┐
    │ resolv.conf: 127.0.0.11      │          │ Records: network → names  │
    │ lo 127.0.0.11:53 udp+tcp ────┼─ socket ─┤ answer from the view of   │
    └──────────────────────────────┘  owned   │ the container that asked  │
                                      by the  │ else forward upstream     │
                                      daemon  └───────────────────────────┘

The daemon opens the UDP and TCP sockets *inside* each container's network
namespace, bound to 127.0.0.11 on its loopback, and serves them from its own
event loop. No port on the host is used (a resolver already on the host's
port 53 is no obstacle), nothing outside the container can reach it, and the
socket a query arrives on tells us which container asked, so each container
sees only the names of the networks it shares.

A plain A query (the common case) is parsed and answered by hand; everything
else goes through dnspython. Names that are not ours are forwarded to the
upstream resolvers, over the transport the query came in on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.reversename
import dns.rrset

from .kernel import netns

log = logging.getLogger("minidock.dns")
STUB_ADDRESS = "127.0.0.11"
TTL = 600
QTYPE_A, QCLASS_IN = 1, 1


@dataclass
class Record:
    container_id: str
    network_id: str
    ip: str
    names: list[str]


class Records:
    """Who answers to which name, per network. Rebuilt whole at start-up; after that
    each start, stop, connect and disconnect replaces the records of one container,
    so the cost of a change does not grow with the number of containers."""

    def __init__(self) -> None:
        self.by_network: dict[str, dict[str, list[str]]] = {}
        self.networks_of: dict[str, list[str]] = {}
        self.ptr: dict[str, dict[str, str]] = {}
        self._turn: dict[str, int] = {}
        self._of: dict[str, list[Record]] = {}

    def rebuild(self, records: list[Record]) -> None:
        self.by_network, self.networks_of, self.ptr, self._of = {}, {}, {}, {}
        for r in records:
            self._add(r)

    def update(self, container_id: str, records: list[Record]) -> None:
        """Replace the records of one container (with none: it has gone)."""
        for r in self._of.pop(container_id, []):
            self._remove(r)
        self.networks_of.pop(container_id, None)
        for r in records:
            self._add(r)

    def _add(self, r: Record) -> None:
        names = self.by_network.setdefault(r.network_id, {})
        for n in r.names:
            ips = names.setdefault(n.lower().rstrip("."), [])
            if r.ip not in ips:
                ips.append(r.ip)
        self.networks_of.setdefault(r.container_id, []).append(r.network_id)
        if r.names:
            self.ptr.setdefault(r.network_id, {})[r.ip] = r.names[0]
        self._of.setdefault(r.container_id, []).append(r)

    def _remove(self, r: Record) -> None:
        names = self.by_network.get(r.network_id, {})
        for n in r.names:
            key = n.lower().rstrip(".")
            ips = names.get(key)
            if ips is not None and r.ip in ips:
                ips.remove(r.ip)
                if not ips:
                    del names[key]
        ptr = self.ptr.get(r.network_id, {})
        if r.names and ptr.get(r.ip) == r.names[0]:
            del ptr[r.ip]

    def lookup(self, container_id: str, name: str, rotate: bool = False) -> list[str] | None:
        """Addresses of `name` as container `container_id` sees it; None if unknown.

        With `rotate`, successive answers start at the next address (round robin
        over the containers sharing an alias, as Docker does)."""
        key = name.lower().rstrip(".")
        found: list[str] = []
        for net in self.networks_of.get(container_id, []):
            for ip in self.by_network.get(net, {}).get(key, []):
                if ip not in found:
                    found.append(ip)
        if not found:
            return None
        if rotate and len(found) > 1:
            k = self._turn[key] = (self._turn.get(key, -1) + 1) % len(found)
            found = found[k:] + found[:k]
        return found

    def reverse(self, container_id: str, ip: str) -> str | None:
        for net in self.networks_of.get(container_id, []):
            name = self.ptr.get(net, {}).get(ip)
            if name:
                return name
        return None


def parse_plain_a(query: bytes) -> tuple[int, str, int] | None:
    """(id, name, end of question) for a one-question, IN A query; else None."""
    if len(query) < 17:
        return None
    qid, flags, qd, an, ns, ar = struct.unpack_from("!HHHHHH", query)
    if flags & 0xF800 or qd != 1 or an or ns or ar > 1:
        return None  # not a standard query, or not the simple case
    labels, pos = [], 12
    while True:
        if pos >= len(query):
            return None
        n = query[pos]
        if n == 0:
            pos += 1
            break
        if n & 0xC0:
            return None
        labels.append(query[pos + 1:pos + 1 + n].decode("ascii", "replace"))
        pos += 1 + n
    if pos + 4 > len(query):
        return None
    qtype, qclass = struct.unpack_from("!HH", query, pos)
    if qtype != QTYPE_A or qclass != QCLASS_IN:
        return None
    return qid, ".".join(labels), pos + 4


def plain_a_answer(query: bytes, qid: int, qend: int, ips: list[str], rd: bool) -> bytes:
    flags = 0x8400 | (0x0100 if rd else 0) | 0x0080  # QR, AA, RD copied, RA
    head = struct.pack("!HHHHHH", qid, flags, 1, len(ips), 0, 0)
    answers = b"".join(struct.pack("!HHHIH", 0xC00C, QTYPE_A, QCLASS_IN, TTL, 4) + socket.inet_aton(ip)
                       for ip in ips)
    return head + query[12:qend] + answers


@dataclass
class Stub:
    """The sockets serving one container."""

    container_id: str
    udp: socket.socket
    tcp: socket.socket
    server: asyncio.AbstractServer | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class DnsServer:
    def __init__(self, records: Records, upstreams: Callable[[str], list[str]]) -> None:
        self.records = records
        self.upstreams = upstreams
        self.stubs: dict[str, Stub] = {}

    async def serve(self, container_id: str, ns_name: str) -> None:
        """Start answering inside namespace `ns_name` for `container_id` (idempotent)."""
        if container_id in self.stubs:
            return

        def bind() -> tuple[socket.socket, socket.socket]:
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
            try:
                udp.bind((STUB_ADDRESS, 53))
                tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                tcp.bind((STUB_ADDRESS, 53))
                tcp.listen(64)
            except OSError:
                udp.close()
                tcp.close()
                raise
            return udp, tcp

        udp, tcp = await netns.run_in(ns_name, bind)
        stub = Stub(container_id, udp, tcp)
        loop = asyncio.get_running_loop()
        loop.add_reader(udp.fileno(), self._on_udp, stub)
        stub.server = await asyncio.start_server(
            lambda r, w: self._on_tcp(stub, r, w), sock=tcp)
        self.stubs[container_id] = stub

    def stop(self, container_id: str) -> None:
        stub = self.stubs.pop(container_id, None)
        if stub is None:
            return
        loop = asyncio.get_running_loop()
        loop.remove_reader(stub.udp.fileno())
        stub.udp.close()
        if stub.server is not None:
            stub.server.close()
        stub.tcp.close()
        for t in stub.tasks:
            t.cancel()

    def close(self) -> None:
        for cid in list(self.stubs):
            self.stop(cid)

    # -- UDP
    def _on_udp(self, stub: Stub) -> None:
        for _ in range(64):  # drain what is queued, bounded so other work gets its turn
            try:
                query, peer = stub.udp.recvfrom(4096)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            fast = parse_plain_a(query)
            if fast is not None:
                qid, name, qend = fast
                ips = self.records.lookup(stub.container_id, name, rotate=True)
                if ips is not None:
                    rd = bool(query[2] & 0x01)
                    with contextlib.suppress(OSError):
                        stub.udp.sendto(plain_a_answer(query, qid, qend, ips, rd), peer)
                    continue
            task = asyncio.get_running_loop().create_task(self._slow_udp(stub, query, peer))
            stub.tasks.add(task)
            task.add_done_callback(stub.tasks.discard)

    async def _slow_udp(self, stub: Stub, query: bytes, peer: tuple[str, int]) -> None:
        reply = await self.answer(stub.container_id, query, tcp=False)
        if reply:
            with contextlib.suppress(OSError):
                stub.udp.sendto(reply, peer)

    # -- TCP
    async def _on_tcp(self, stub: Stub, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await asyncio.wait_for(reader.readexactly(2), 10)
                query = await reader.readexactly(struct.unpack("!H", head)[0])
                reply = await self.answer(stub.container_id, query, tcp=True)
                if not reply:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    # -- the general case
    async def answer(self, container_id: str, wire: bytes, tcp: bool) -> bytes | None:
        try:
            q = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        if not q.question or q.opcode() != 0:
            r = dns.message.make_response(q)
            r.set_rcode(dns.rcode.NOTIMP if q.question else dns.rcode.FORMERR)
            return r.to_wire()
        question = q.question[0]
        qname = question.name.to_text(omit_final_dot=True)
        if question.rdclass == dns.rdataclass.IN:
            if question.rdtype == dns.rdatatype.PTR:
                ptr = self._ptr(container_id, question.name)
                if ptr is not None:
                    r = dns.message.make_response(q)
                    r.flags |= dns.flags.AA | dns.flags.RA
                    r.answer.append(dns.rrset.from_text(question.name, TTL, "IN", "PTR", ptr + "."))
                    return r.to_wire()
            ips = self.records.lookup(container_id, qname, rotate=question.rdtype == dns.rdatatype.A)
            if ips is not None:
                r = dns.message.make_response(q)
                r.flags |= dns.flags.AA | dns.flags.RA
                if question.rdtype == dns.rdatatype.A:
                    r.answer.append(dns.rrset.from_text(question.name, TTL, "IN", "A", *ips))
                # AAAA and other types of our names: an empty, authoritative answer
                return r.to_wire()
        return await self.forward(container_id, q, wire, tcp)

    def _ptr(self, container_id: str, name: dns.name.Name) -> str | None:
        try:
            ip = dns.reversename.to_address(name)
        except (dns.exception.DNSException, ValueError):
            return None
        return self.records.reverse(container_id, ip)

    async def forward(self, container_id: str, q: dns.message.Message, wire: bytes, tcp: bool) -> bytes:
        for upstream in self.upstreams(container_id):
            try:
                if tcp:
                    return await _ask_tcp(upstream, wire)
                return await _ask_udp(upstream, wire)
            except (TimeoutError, OSError):
                log.debug("upstream %s did not answer", upstream)
                continue
        r = dns.message.make_response(q)
        r.set_rcode(dns.rcode.SERVFAIL)
        return r.to_wire()


class _OneReply(asyncio.DatagramProtocol):
    def __init__(self, qid: bytes) -> None:
        self.qid = qid
        self.reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if data[:2] == self.qid and not self.reply.done():
            self.reply.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.reply.done():
            self.reply.set_exception(exc)


async def _ask_udp(server: str, wire: bytes, timeout: float = 2.0) -> bytes:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(lambda: _OneReply(wire[:2]),
                                                           remote_addr=(server, 53))
    try:
        transport.sendto(wire)
        return await asyncio.wait_for(proto.reply, timeout)
    finally:
        transport.close()


async def _ask_tcp(server: str, wire: bytes, timeout: float = 3.0) -> bytes:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(server, 53), timeout)
    try:
        writer.write(struct.pack("!H", len(wire)) + wire)
        await writer.drain()
        size = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), timeout))[0]
        return await asyncio.wait_for(reader.readexactly(size), timeout)
    finally:
        writer.close()

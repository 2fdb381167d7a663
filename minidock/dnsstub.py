"""The DNS stub: Docker's embedded DNS server at 127.0.0.11, per container.

    container md-alpine1                      daemon (host namespace)
    ┌──────────────────────────────┐          ┌───────────────────────────┐
    │ resolv.conf: 127.0.0.11      │          │ Records: network → names  │
    │ lo 127.0.0.11:53 udp+tcp ────┼─ socket ─┤ answer from the view of   │
    └──────────────────────────────┘  owned   │ the container that asked  │
                                      by the  │ else forward upstream     │
                                      daemon  └───────────────────────────┘

The daemon opens the UDP and TCP sockets *inside* each container's network
namespace, bound to 127.0.0.11 on its loopback, and serves them itself (from
two threads, below). No port on the host is used (a resolver already on the
host's port 53 is no obstacle), nothing outside the container can reach it,
and the socket a query arrives on tells us which container asked, so each
container sees only the names of the networks it shares.

A plain A query (the common case) is parsed and answered by hand; everything
else goes through dnspython. Names that are not ours are forwarded to the
upstream resolvers, over the transport the query came in on.

Two threads serve the sockets:

    UDP socket of stub 1 ─┐
    UDP socket of stub 2 ─┼─ epoll ─ thread "dns-udp": a plain A query for
    ...                  ─┘            one of our names is answered right there;
                                       any other query is handed over ───┐
    TCP socket of each stub ─ asyncio server ─ event loop: dnspython, ◄─┘
                                                forwarding, then the reply

Why a thread for UDP: served by the event loop (a reader callback per
socket, one recvfrom and one sendto per query), the stub answered half as
many queries a second as dnsmasq on the same machine. The UDP thread waits
in epoll_wait without the GIL (the event loop runs undisturbed meanwhile);
when queries come it takes up to 64 with one recvmmsg and sends the answers
with one sendmmsg (kernel/mmsg.py): a batch shares its two system calls, and
a query that is remembered (below) costs a handful of Python operations. The
general case stays on the event loop (loop.call_soon_threadsafe), which
replies itself when the answer is ready.

Remembered answers: the answer to a query depends only on its bytes (less
the 2-byte ID it must echo) and on the records. Each stub keeps the answers
it has given for names of one address, less their ID, keyed by the query
less its ID: the next such query costs a dictionary lookup and two copies.
Records.version goes up on every change of the records; a stub that sees a
new version forgets every answer it kept. A name with several addresses is
looked up every time: each answer starts at the next address (round robin).

Threads and sockets: Records has a lock, as the thread looks names up while
the event loop changes them. The thread holds its own lock while it works
on sockets and drops it while it waits in epoll; stop() takes that lock,
takes the socket out of the epoll set, then closes it, so the thread never
reads a closed descriptor, nor one the kernel has given to a new socket.
close() wakes the thread through an eventfd and joins it.

One limit: the thread needs the GIL. While the event loop runs Python code
(a container starting, say), a query that arrives waits until the loop
releases it: at the next system call, at worst after the 5 ms switch interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import socket
import struct
import threading
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

from .kernel import mmsg, netns

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
        # bumped after every change: answers remembered at an older version are stale
        self.version = 0
        # the UDP thread looks names up while the event loop changes them
        self._lock = threading.Lock()

    def rebuild(self, records: list[Record]) -> None:
        with self._lock:
            self.by_network, self.networks_of, self.ptr, self._of = {}, {}, {}, {}
            for r in records:
                self._add(r)
            self.version += 1

    def update(self, container_id: str, records: list[Record]) -> None:
        """Replace the records of one container (with none: it has gone)."""
        with self._lock:
            for r in self._of.pop(container_id, []):
                self._remove(r)
            self.networks_of.pop(container_id, None)
            for r in records:
                self._add(r)
            self.version += 1

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
        with self._lock:
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
        with self._lock:
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
    loop: asyncio.AbstractEventLoop
    server: asyncio.AbstractServer | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    # complete answers, less their 2-byte ID, by the query less its ID; the UDP thread's
    # alone (no lock); valid while `records.version` is `answers_version`
    answers: dict[bytes, bytes] = field(default_factory=dict)
    answers_version: int = -1


class UdpThread:
    """The thread that answers every stub's UDP socket (see the module docstring).

    `lock` is held while the thread works on sockets, and released while it waits
    in epoll: `remove` takes it, so a socket is never closed (and its descriptor
    number reused) under a batch being answered."""

    BATCHES_PER_WAKE = 16  # up to 16 x 64 datagrams from one socket, then the others' turn
    MAX_HANDED = 1024  # queries handed to the event loop and not yet answered; more are dropped
    MAX_ANSWERS = 4096  # remembered answers per container; past that, start again

    def __init__(self, records: Records, slow: Callable[[Stub, bytes, tuple[str, int]], None]) -> None:
        self.records = records
        self.slow = slow  # runs on the event loop: the general case
        self.lock = threading.Lock()
        self.by_fd: dict[int, Stub] = {}
        self.thread: threading.Thread | None = None
        self.epoll: select.epoll | None = None
        self.wake_fd = -1
        self.stopping = False
        self.batch: mmsg.Batch | None = None
        # written by one side each, so no lock: in flight = handed - finished
        self.handed = 0  # by the thread
        self.finished = 0  # by the event loop

    def add(self, stub: Stub) -> None:
        if self.thread is None:
            self._start()
        assert self.epoll is not None
        with self.lock:
            fd = stub.udp.fileno()
            self.epoll.register(fd, select.EPOLLIN)
            self.by_fd[fd] = stub

    def remove(self, stub: Stub) -> None:
        """Stop watching the stub's UDP socket and close it (waits out a batch in progress)."""
        with self.lock:
            fd = stub.udp.fileno()
            if self.by_fd.get(fd) is stub:
                del self.by_fd[fd]
                assert self.epoll is not None
                self.epoll.unregister(fd)
            stub.udp.close()

    def close(self) -> None:
        """Stop the thread and wait for it (call after removing every stub)."""
        if self.thread is None:
            return
        with self.lock:
            self.stopping = True
        os.eventfd_write(self.wake_fd, 1)
        self.thread.join()
        assert self.epoll is not None
        self.epoll.close()
        os.close(self.wake_fd)
        self.thread, self.epoll, self.wake_fd, self.batch = None, None, -1, None

    def _start(self) -> None:
        self.stopping = False
        self.batch = mmsg.Batch()
        self.epoll = select.epoll()
        self.wake_fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self.epoll.register(self.wake_fd, select.EPOLLIN)
        self.thread = threading.Thread(target=self._run, name="dns-udp", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        assert self.epoll is not None and self.batch is not None
        while True:
            events = self.epoll.poll()  # blocks without the GIL: the event loop runs meanwhile
            with self.lock:
                if self.stopping:
                    return
                for fd, _ in events:
                    stub = self.by_fd.get(fd)  # None: removed since poll returned
                    if stub is None:
                        continue
                    try:
                        for _ in range(self.BATCHES_PER_WAKE):
                            if self._answer_batch(fd, stub) < self.batch.slots:
                                break  # the queue is empty
                    except OSError as e:  # the socket's pending error: reported once, then gone
                        log.debug("DNS over UDP for %s: %s", stub.container_id, e)
                    except Exception:
                        log.exception("DNS over UDP for %s", stub.container_id)

    def _answer_batch(self, fd: int, stub: Stub) -> int:
        """Receive what is queued (up to one batch), answer it: how many came."""
        b = self.batch
        assert b is not None
        sizes = b.recv(fd)  # sizes[i]: of query i; below, of its answer
        version = self.records.version
        if stub.answers_version != version:
            stub.answers.clear()
            stub.answers_version = version
        answers, rbuf, sbuf, size = stub.answers, b.rbuf, b.sbuf, b.size
        lo = 0  # the answers in slots lo..i-1 are ready to go
        for i, n in enumerate(sizes):
            at = i * size
            tail = answers.get(bytes(rbuf[at + 2:at + n]))
            if tail is None:
                tail = self._look_up(stub, bytes(rbuf[at:at + n]), b.peer(i), version)
                if tail is None:  # not answered in this batch
                    b.send(fd, lo, i, sizes)
                    lo = i + 1
                    continue
            sbuf[at:at + 2] = rbuf[at:at + 2]  # the query's ID
            sbuf[at + 2:at + 2 + len(tail)] = tail
            sizes[i] = 2 + len(tail)
        b.send(fd, lo, len(sizes), sizes)
        return len(sizes)

    def _look_up(self, stub: Stub, query: bytes, peer: tuple[str, int], version: int) -> bytes | None:
        """The answer (less its ID) to a query not remembered; None if answered elsewhere."""
        fast = parse_plain_a(query)
        ips = None
        if fast is not None:
            ips = self.records.lookup(stub.container_id, fast[1], rotate=True)
        if fast is None or ips is None:
            self._hand_over(stub, query, peer)
            return None
        qid, _, qend = fast
        reply = plain_a_answer(query, qid, qend, ips, bool(query[2] & 0x01))
        assert self.batch is not None
        if len(reply) > self.batch.size:  # hundreds of addresses: too big for a slot
            with contextlib.suppress(OSError):
                stub.udp.sendto(reply, peer)
            return None
        # One address: the same answer until the records change. Several: each answer
        # starts at the next one (round robin), so it is made afresh every time. A query
        # with EDNS options after its question (dig's cookie, new in every query) would
        # never be asked again byte for byte: not worth remembering. An empty EDNS
        # record (11 bytes) is the same in every query of a resolver that sends one.
        if len(ips) == 1 and len(query) <= qend + 11 and self.records.version == version:
            if len(stub.answers) >= self.MAX_ANSWERS:
                stub.answers.clear()
            stub.answers[query[2:]] = reply[2:]
        return reply[2:]

    def _hand_over(self, stub: Stub, query: bytes, peer: tuple[str, int]) -> None:
        """The general case (forwarding, dnspython) runs on the event loop."""
        if self.handed - self.finished >= self.MAX_HANDED:
            log.debug("DNS: %d queries in flight, dropping one", self.MAX_HANDED)
            return
        try:
            stub.loop.call_soon_threadsafe(self.slow, stub, query, peer)
        except RuntimeError:  # the loop is closed: shutting down
            return
        self.handed += 1


class DnsServer:
    def __init__(self, records: Records, upstreams: Callable[[str], list[str]]) -> None:
        self.records = records
        self.upstreams = upstreams
        self.stubs: dict[str, Stub] = {}
        self.udp = UdpThread(records, self._slow_udp)

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
        stub = Stub(container_id, udp, tcp, asyncio.get_running_loop())
        try:
            stub.server = await asyncio.start_server(
                lambda r, w: self._on_tcp(stub, r, w), sock=tcp)
            self.udp.add(stub)
        except BaseException:
            udp.close()
            tcp.close()
            raise
        self.stubs[container_id] = stub

    def stop(self, container_id: str) -> None:
        stub = self.stubs.pop(container_id, None)
        if stub is None:
            return
        self.udp.remove(stub)
        if stub.server is not None:
            stub.server.close()
        stub.tcp.close()
        for t in stub.tasks:
            t.cancel()

    def close(self) -> None:
        for cid in list(self.stubs):
            self.stop(cid)
        self.udp.close()

    # -- UDP: the general case, handed over by the UDP thread
    def _slow_udp(self, stub: Stub, query: bytes, peer: tuple[str, int]) -> None:
        if self.stubs.get(stub.container_id) is not stub:  # stopped meanwhile
            self.udp.finished += 1
            return
        task = stub.loop.create_task(self._answer_udp(stub, query, peer))
        stub.tasks.add(task)
        task.add_done_callback(stub.tasks.discard)
        task.add_done_callback(self._finished)

    def _finished(self, _: asyncio.Task[None]) -> None:
        self.udp.finished += 1

    async def _answer_udp(self, stub: Stub, query: bytes, peer: tuple[str, int]) -> None:
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

"""The DNS server: a stub per container, the general case, and forwarding upstream.

Owns DnsServer (binding each container's UDP and TCP sockets at
STUB_ADDRESS:53 inside its namespace, serving TCP on the event loop, and
answering with dnspython whatever the UDP thread hands over: PTR, other
types, names that are not ours) and the forwarding of unknown names to the
upstream resolvers over the transport the query came in on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Callable

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.reversename
import dns.rrset

from ..kernel import netns
from .records import Records
from .udp import Stub, UdpThread
from .wire import TTL

log = logging.getLogger("minidock.dns")
STUB_ADDRESS = "127.0.0.11"


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
            six = question.rdtype == dns.rdatatype.AAAA
            ips = self.records.lookup(container_id, qname, rotate=question.rdtype in (dns.rdatatype.A,
                                                                                    dns.rdatatype.AAAA),
                                      family=6 if six else 4)
            if ips is not None:
                r = dns.message.make_response(q)
                r.flags |= dns.flags.AA | dns.flags.RA
                if question.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA) and ips:
                    r.answer.append(dns.rrset.from_text(question.name, TTL, "IN", "AAAA" if six else "A", *ips))
                # a name of ours with no address of that family, or another type: an empty,
                # authoritative answer (Docker's NOERROR), never NXDOMAIN nor a forward
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

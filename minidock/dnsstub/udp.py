"""The UDP side of every stub: one thread, epoll, batches of recvmmsg/sendmmsg.

Owns Stub (the sockets serving one container, and the answers it
remembers) and UdpThread (the "dns-udp" thread that answers plain A queries
for our names straight from Records, and hands every other query over to the
event loop). See the package docstring for why a thread, and how the locks
keep a socket from being closed under a batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from ..kernel import mmsg
from .records import Records
from .wire import parse_plain_a, plain_a_answer

log = logging.getLogger("minidock.dns")


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
        if fast is None or not ips:  # unknown, or IPv6 only: the general path answers
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

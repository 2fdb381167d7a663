"""The daemon's end of the keeper (keeper.py): finding or starting it, its
requests and answers (JSON packets with file descriptors), its exit events,
and noticing its death.

The keeper's socket is `ROOT/keeper.sock` (or, when that path is too long for a
Unix socket, one under /run/minidock named after ROOT).
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from . import process

# run from its cached bytecode, not as a script: a script is compiled at each start, and the
# compiler leaves ~1.6 MB of the heap in pieces that the keeper and each of its forks would keep
KEEPER = f"import sys; sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); import keeper; keeper.main()"
MAX_MSG = 1 << 18
MAX_FDS = 8
READY_TIMEOUT = 10.0
log = logging.getLogger("minidock.keeper")


class KeeperError(Exception):
    pass


def socket_path(root: str) -> str:
    path = os.path.join(root, "keeper.sock")
    if len(path.encode()) < 100:
        return path
    return os.path.join("/run/minidock", "keeper-" + hashlib.sha1(root.encode()).hexdigest()[:16] + ".sock")


READY_GONE = "the process made ready is gone"  # keeper.READY_GONE


class Keeper:
    """A connection to the keeper. `on_exit(id, pid, code)` hears each container's exit,
    `on_lost()` the keeper's own end (the connection closed), `on_ready(pid, gone)` a process
    it has made ready for a start (or that is gone)."""

    def __init__(self, root: str, on_exit: Callable[[str, int, int | None], None],
                 on_lost: Callable[[], None],
                 on_ready: Callable[[int, bool], None] = lambda _pid, _gone: None) -> None:
        self.root, self.path = root, socket_path(root)
        self.on_exit, self.on_lost, self.on_ready = on_exit, on_lost, on_ready
        self.sock: socket.socket | None = None
        self.waiting: collections.deque[asyncio.Future[tuple[dict[str, Any], list[int]]]] = collections.deque()
        # requests the socket had no room for yet, each with the future of its answer's awaitable
        self.outbox: collections.deque[tuple[bytes, list[int], asyncio.Future[Any]]] = collections.deque()
        self.pid = 0

    # -- connecting
    async def open(self) -> dict[str, Any]:
        """Connect to the running keeper, or start one; its `hello` answer."""
        if not await self._connect():
            await self._start()
            if not await self._connect():
                raise KeeperError(f"cannot reach the keeper at {self.path}")
        hello, _ = await self.call({"op": "hello"})
        self.pid = int(hello["pid"])
        return hello

    async def _connect(self) -> bool:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            s.connect(self.path)
        except (FileNotFoundError, ConnectionRefusedError):
            s.close()
            return False
        s.setblocking(False)
        self.sock = s
        asyncio.get_running_loop().add_reader(s.fileno(), self._readable)
        return True

    async def _start(self) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with open(os.path.join(self.root, "keeper.log"), "ab") as err:
            proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", KEEPER, self.root, self.path],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                                    start_new_session=True)
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), READY_TIMEOUT)
        finally:
            proc.stdout.close()
        # the keeper is our child while we run: reap it if it dies (the daemon then recovers)
        process.watch(proc.pid, lambda _code: None)
        if line.strip() != b"ready":
            raise KeeperError("the keeper did not start: see keeper.log in the daemon's root")
        log.info("keeper started (pid %d)", proc.pid)

    def close(self) -> None:
        if self.sock is not None:
            try:
                asyncio.get_running_loop().remove_reader(self.sock.fileno())
                asyncio.get_running_loop().remove_writer(self.sock.fileno())
            except RuntimeError:
                pass
            self.sock.close()
            self.sock = None
        while self.outbox:
            self.outbox.popleft()[2].set_exception(KeeperError("the keeper is gone"))
        while self.waiting:
            fut = self.waiting.popleft()
            if not fut.done():
                fut.set_exception(KeeperError("the keeper is gone"))

    # -- requests
    def call(self, msg: dict[str, Any], fds: list[int] | None = None) -> Awaitable[tuple[dict[str, Any], list[int]]]:
        """Send a request now (not when the caller first yields: a start's `prepare` must reach
        the keeper while the daemon goes on wiring the network), and return the awaitable of its
        answer and the fds that came with it (ours to close). Requests reach the keeper in the
        order of the calls, a full socket's backlog included: a prepare naming a ready process
        must not be overtaken by one that lets the keeper pick any."""
        if self.sock is None:
            return raise_later(KeeperError("the keeper is gone"))
        data = json.dumps(msg).encode()
        if not self.outbox:
            try:
                socket.send_fds(self.sock, [data], fds or [])
            except BlockingIOError:
                pass
            except OSError as e:
                return raise_later(KeeperError(f"the keeper is gone: {e}"))
            else:
                return self._answer()
            asyncio.get_running_loop().add_writer(self.sock.fileno(), self._flush)
        sent: asyncio.Future[Awaitable[tuple[dict[str, Any], list[int]]]] = \
            asyncio.get_running_loop().create_future()
        self.outbox.append((data, fds or [], sent))
        return self._queued(sent)

    def _flush(self) -> None:
        """The socket has room: send the backlog, in order."""
        assert self.sock is not None
        while self.outbox:
            data, fds, sent = self.outbox[0]
            try:
                socket.send_fds(self.sock, [data], fds)
            except BlockingIOError:
                return
            except OSError as e:
                self.outbox.popleft()
                sent.set_exception(KeeperError(f"the keeper is gone: {e}"))
                continue
            self.outbox.popleft()
            sent.set_result(self._answer())
        asyncio.get_running_loop().remove_writer(self.sock.fileno())

    @staticmethod
    async def _queued(sent: asyncio.Future[Awaitable[tuple[dict[str, Any], list[int]]]]) -> tuple[dict[str, Any], list[int]]:
        return await (await sent)

    def _answer(self) -> Awaitable[tuple[dict[str, Any], list[int]]]:
        fut: asyncio.Future[tuple[dict[str, Any], list[int]]] = asyncio.get_running_loop().create_future()
        self.waiting.append(fut)  # answers come in the order the requests were sent
        return self._checked(fut)

    @staticmethod
    async def _checked(fut: asyncio.Future[tuple[dict[str, Any], list[int]]]) -> tuple[dict[str, Any], list[int]]:
        reply, got = await fut
        if not reply.get("ok"):
            for fd in got:
                os.close(fd)
            raise KeeperError(reply.get("error") or "the keeper refused")
        return reply, got

    def send(self, msg: dict[str, Any]) -> None:
        """A request whose answer nobody waits for (ack, close_stdin)."""
        if self.sock is None:
            return
        asyncio.get_running_loop().create_task(self._quiet(msg))

    async def _quiet(self, msg: dict[str, Any]) -> None:
        try:
            await self.call(msg)
        except KeeperError:
            pass

    def _readable(self) -> None:
        assert self.sock is not None
        while self.sock is not None:
            try:
                data, fds, _flags, _addr = socket.recv_fds(self.sock, MAX_MSG, MAX_FDS, socket.MSG_CMSG_CLOEXEC)
            except BlockingIOError:
                return
            except OSError:
                data, fds = b"", []
            if not data:
                self.close()
                log.warning("the keeper is gone")
                self.on_lost()
                return
            msg = json.loads(data)
            if msg.get("op") == "exit":
                self.on_exit(msg["id"], int(msg["pid"]), msg.get("code"))
            elif msg.get("op") == "ready":
                self.on_ready(int(msg["pid"]), bool(msg.get("gone")))
            elif self.waiting:
                fut = self.waiting.popleft()
                if not fut.done():
                    fut.set_result((msg, fds))
                    continue
                for fd in fds:
                    os.close(fd)


async def raise_later(e: Exception) -> Any:
    """An awaitable that raises `e`: the answer of a call that could not be sent."""
    raise e

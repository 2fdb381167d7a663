"""Container processes: their stdio and log, the spawn, the watch for their
exit, a Tty's relay to attached clients, stdin, resizes, and the waits on an
exit or a removal. What an exit means for the records is the lifecycle's
(`on_exit`); this module only notices it.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import struct
import termios
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..kernel import process
from ..model import Container
from . import logs
from .common import watch_fd


@dataclass
class Runtime:
    """What the daemon holds for a running container besides its record."""

    exited: asyncio.Event = field(default_factory=asyncio.Event)
    master: int | None = None  # pty master (Tty containers)
    stdin_w: int | None = None  # write end of stdin (OpenStdin without Tty)
    subscribers: set[asyncio.Queue[bytes | None]] = field(default_factory=set)
    log_fd: int | None = None
    # set when the log copier has written the last of the output (no terminal)
    log_done: asyncio.Event | None = None

    def close(self) -> None:
        for attr in ("master", "stdin_w", "log_fd"):
            fd = getattr(self, attr)
            if fd is None:
                continue
            if attr == "master":
                try:
                    asyncio.get_running_loop().remove_reader(fd)
                except RuntimeError:
                    pass
            try:
                os.close(fd)
            except OSError:
                pass
            setattr(self, attr, None)
        for q in list(self.subscribers):
            q.put_nowait(None)


class Supervisor:
    def __init__(self, on_exit: Callable[[str, int | None], Awaitable[None]]) -> None:
        self.on_exit = on_exit
        self.runtime: dict[str, Runtime] = {}
        self.last_exit: dict[str, int] = {}
        self.exit_waiters: dict[str, list[tuple[str, asyncio.Future[int]]]] = {}
        # attach requests that arrived before the start they wait for (docker run attaches first)
        self.pending_subscribers: dict[str, set[asyncio.Queue[bytes | None]]] = {}
        self.start_attempts: dict[str, asyncio.Event] = {}
        # the exit event of each container's latest run, kept after the exit (until it is removed):
        # a reader that follows its log knows that run ended even if it asks a moment late
        self.last_run: dict[str, asyncio.Event] = {}

    # -- starting
    def stdio(self, c: Container, log_path: str, rt: Runtime, opened: list[int]) -> tuple[int, int, int]:
        """The fds the process gets as 0, 1, 2; those to close after the spawn go in `opened`."""
        if c.tty:
            # the launcher opens the pty inside the container and sends us its master
            rt.log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
            opened.append(null)
            return null, null, null
        out = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        opened.append(out)
        if c.config.get("OpenStdin"):
            r, w = os.pipe2(os.O_CLOEXEC)
            rt.stdin_w = w
            opened.append(r)
            return r, out, out
        null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        opened.append(null)
        return null, out, out

    async def spawn(self, spec: dict[str, Any], stdio: tuple[int, int, int], console: process.Console | None,
                    pidfile: str, rt: Runtime | None = None) -> int:
        """Spawn, and note the PID at once: a restart after a crash before the store knows it
        finds the process by its pidfile and stops it (the start is undone)."""
        report: dict[str, Any] = {}
        pid = await process.spawn(spec, *stdio, console, report)
        if report.get("logger") and rt is not None:
            done = rt.log_done = asyncio.Event()
            process.watch(int(report["logger"]), lambda _code: done.set())
        with open(pidfile, "w") as f:
            f.write(f"{pid} {process.start_time(pid)}\n")
        return pid

    def started(self, cid: str, pid: int, rt: Runtime) -> None:
        """The start is recorded: relay its terminal, watch for its exit."""
        self.runtime[cid] = rt
        self.last_run[cid] = rt.exited
        if rt.master is not None:
            rt.subscribers |= self.pending_subscribers.pop(cid, set())
            self.relay(rt)
        self.watch(cid, pid)

    def start_failed(self, cid: str) -> None:
        for q in self.pending_subscribers.pop(cid, set()):
            q.put_nowait(None)

    def start_attempt(self, cid: str) -> asyncio.Event:
        """Set when the next start of `cid` has succeeded or failed."""
        return self.start_attempts.setdefault(cid, asyncio.Event())

    def attempt_over(self, cid: str) -> None:
        event = self.start_attempts.pop(cid, None)
        if event is not None:
            event.set()

    # -- running
    def relay(self, rt: Runtime) -> None:
        """Copy a Tty container's output to its log and to attached clients."""
        assert rt.master is not None

        def deliver(data: bytes | None) -> None:
            if data is not None and rt.log_fd is not None:
                os.write(rt.log_fd, logs.encode(data, "stdout"))
            for q in list(rt.subscribers):
                q.put_nowait(data)

        watch_fd(rt.master, deliver)

    def watch(self, cid: str, pid: int) -> None:
        def exited(code: int | None) -> None:
            asyncio.get_running_loop().create_task(self.on_exit(cid, code))

        process.watch(pid, exited)

    def adopt(self, cid: str, pid: int) -> None:
        """A container that outlived a daemon restart."""
        self.runtime[cid] = rt = Runtime()
        self.last_run[cid] = rt.exited
        self.watch(cid, pid)

    def exited_event(self, cid: str) -> asyncio.Event | None:
        rt = self.runtime.get(cid)
        return rt.exited if rt else None

    def run_over(self, cid: str) -> asyncio.Event | None:
        """Set once the latest run of `cid` has exited (and its log is complete); None if it never ran."""
        return self.last_run.get(cid)

    async def write_stdin(self, cid: str, data: bytes) -> None:
        rt = self.runtime.get(cid)
        fd = None if rt is None else rt.master if rt.master is not None else rt.stdin_w
        if fd is None:
            return
        view = memoryview(data)
        while view:
            try:
                n = os.write(fd, view)
                view = view[n:]
            except BlockingIOError:
                await asyncio.sleep(0.01)
            except OSError as e:
                if e.errno in (errno.EPIPE, errno.EIO, errno.EBADF):
                    return
                raise

    def close_stdin(self, cid: str) -> None:
        rt = self.runtime.get(cid)
        if rt is not None and rt.stdin_w is not None:
            os.close(rt.stdin_w)
            rt.stdin_w = None

    def resize(self, cid: str, rows: int, cols: int) -> None:
        rt = self.runtime.get(cid)
        if rt is not None and rt.master is not None:
            fcntl.ioctl(rt.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def subscribe(self, cid: str) -> asyncio.Queue[bytes | None]:
        """A queue of a Tty container's output; before its start, it waits for it."""
        q: asyncio.Queue[bytes | None] = asyncio.Queue()
        rt = self.runtime.get(cid)
        if rt is not None and rt.master is not None:
            rt.subscribers.add(q)
        else:
            self.pending_subscribers.setdefault(cid, set()).add(q)
        return q

    def unsubscribe(self, cid: str, q: asyncio.Queue[bytes | None]) -> None:
        rt = self.runtime.get(cid)
        if rt is not None:
            rt.subscribers.discard(q)
        self.pending_subscribers.get(cid, set()).discard(q)

    # -- waits
    async def wait_for(self, cid: str, condition: str) -> int:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.exit_waiters.setdefault(cid, []).append((condition, future))
        return int(await future)

    def wake(self, cid: str, event: str, code: int) -> None:
        """Resolve the waits that `event` ("exit" or "removed") ends."""
        keep = []
        if event == "removed":
            self.last_run.pop(cid, None)
        for condition, future in self.exit_waiters.pop(cid, []):
            if future.done():
                continue
            if event == "removed" or condition == "next-exit":
                future.set_result(code)
            else:
                keep.append((condition, future))
        if keep:
            self.exit_waiters[cid] = keep

    def close(self) -> None:
        for rt in self.runtime.values():
            rt.close()

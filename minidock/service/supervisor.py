"""Container processes, as the daemon sees them through the keeper: the spawn,
their exits, a Tty's relay to attached clients, stdin, resizes, and the waits
on an exit or a removal; taking back what the keeper kept while the daemon was
away, and recovering when the keeper itself dies. What an exit means for the
records is the lifecycle's (`on_exit`); this module only notices it.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import os
import struct
import termios
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..kernel import process
from ..kernel.keeperlink import READY_GONE, Keeper, KeeperError, raise_later
from .common import watch_fd

log = logging.getLogger("minidock.supervisor")


class ReadyGone(process.SpawnError):
    """The process the keeper had made ready died before this start took it: start again."""


@dataclass
class Runtime:
    """What the daemon holds for a running container besides its record: copies of the fds
    the keeper owns (so that they outlive a keeper that dies) and the terminal's tap."""

    exited: asyncio.Event = field(default_factory=asyncio.Event)
    pid: int = 0
    start: int = 0
    kept: bool = False  # the keeper reaps it and reports its exit; else a pidfd watch of ours
    master: int | None = None  # pty master (Tty containers): stdin and resizes
    tap: int | None = None  # the keeper's copy of the terminal's output, for attached clients
    stdin_w: int | None = None  # write end of stdin (OpenStdin without Tty)
    out: int | None = None  # copies of the output pipes, held only
    err: int | None = None
    subscribers: set[asyncio.Queue[bytes | None]] = field(default_factory=set)

    FDS = {"master": "master", "tap": "tap", "stdin": "stdin_w", "out": "out", "err": "err"}

    def take(self, names: list[str], fds: list[int]) -> None:
        for name, fd in zip(names, fds, strict=True):
            old = getattr(self, self.FDS[name])
            if old is not None:
                _close(old, name == "tap")
            os.set_blocking(fd, False)
            setattr(self, self.FDS[name], fd)

    def handed(self) -> tuple[list[str], list[int]]:
        """The fds a new keeper takes over (its own copies: ours stay)."""
        names = [n for n, attr in self.FDS.items() if n != "tap" and getattr(self, attr) is not None]
        return names, [getattr(self, self.FDS[n]) for n in names]

    def close(self) -> None:
        for attr in self.FDS.values():
            fd = getattr(self, attr)
            if fd is not None:
                _close(fd, attr == "tap")
                setattr(self, attr, None)
        for q in list(self.subscribers):
            q.put_nowait(None)


def _close(fd: int, watched: bool) -> None:
    if watched:
        try:
            asyncio.get_running_loop().remove_reader(fd)
        except RuntimeError:
            pass
    try:
        os.close(fd)
    except OSError:
        pass


class Supervisor:
    def __init__(self, on_exit: Callable[[str, int | None], Awaitable[None]], root: str) -> None:
        self.on_exit = on_exit
        self.keeper: Keeper | None = None
        self.root = root
        self.runtime: dict[str, Runtime] = {}
        self.last_exit: dict[str, int] = {}
        self.exit_waiters: dict[str, list[tuple[str, asyncio.Future[int]]]] = {}
        # attach requests that arrived before the start they wait for (docker run attaches first)
        self.pending_subscribers: dict[str, set[asyncio.Queue[bytes | None]]] = {}
        self.start_attempts: dict[str, asyncio.Event] = {}
        # the exit event of each container's latest run, kept after the exit (until it is removed):
        # a reader that follows its log knows that run ended even if it asks a moment late
        self.last_run: dict[str, asyncio.Event] = {}
        # what the keeper kept while we were away (its hello), and exits that came before
        # the start they end was recorded
        self.kept: dict[str, dict[str, Any]] = {}
        self.kept_exits: dict[str, tuple[int, int | None]] = {}
        self.early_exits: dict[str, tuple[int, int | None]] = {}
        self.spawning: set[str] = set()  # spawned, the start not yet recorded nor undone
        self.recovering: asyncio.Task[None] | None = None
        self.ready: list[int] = []  # the processes the keeper has made ready for the next starts
        # prepares sent without a ready process, not yet answered: the keeper may give one of
        # them a process it made ready whose advert we have not read yet (see claim_ready)
        self.unnamed = 0

    # -- the keeper
    async def open(self) -> None:
        """Reach the keeper (starting one if none runs); note what it kept."""
        self.keeper = Keeper(self.root, self._keeper_exit, self._keeper_lost, self._keeper_ready)
        hello = await self.keeper.open()
        self.ready = [int(p) for p in hello.get("ready") or []]
        self.kept = {b["id"]: b for b in hello["boxes"]}
        self.kept_exits = {e["id"]: (int(e["pid"]), e["code"]) for e in hello["exited"]}

    def reconciled(self) -> None:
        """Start-up has taken back what it wanted: other exits the keeper kept are acknowledged."""
        self.kept.clear()
        for cid in [c for c in self.early_exits if c not in self.runtime and c not in self.spawning]:
            del self.early_exits[cid]
            self.acknowledge(cid)

    def acknowledge(self, cid: str) -> None:
        """The exit of `cid` is recorded: the keeper may forget it."""
        if self.keeper is not None:
            self.keeper.send({"op": "ack", "id": cid})

    def _keeper_exit(self, cid: str, pid: int, code: int | None) -> None:
        rt = self.runtime.get(cid)
        if rt is not None and rt.pid == pid and rt.kept:
            asyncio.get_running_loop().create_task(self._exited(cid, code))
        elif cid in self.spawning or cid in self.kept:
            # its start is being recorded, or reconcile is taking it back: they look here
            self.early_exits[cid] = (pid, code)
            asyncio.get_running_loop().call_later(60, self._forget_early, cid, pid)
        else:
            self.acknowledge(cid)  # a start that was undone: nothing to record

    def _forget_early(self, cid: str, pid: int) -> None:
        if self.early_exits.get(cid, (0, None))[0] == pid:
            del self.early_exits[cid]
            self.acknowledge(cid)

    async def _exited(self, cid: str, code: int | None) -> None:
        await self.on_exit(cid, code)
        self.acknowledge(cid)

    def _keeper_ready(self, pid: int, gone: bool) -> None:
        if gone:
            if pid in self.ready:
                self.ready.remove(pid)
        else:
            self.ready.append(pid)

    def claim_ready(self, spec: dict[str, Any]) -> int:
        """The PID of the process the keeper has made ready, taken for this start if it suits
        it (a network namespace of its own, PID and UTS ones too, and no bind of a host path:
        its copy of the host's mounts is as old as it is, and a path bound may be a mount
        made since); 0 if not.

        0 while a prepare sent without one is unanswered: the keeper may have given it the
        process we last heard of (its "gone" comes before that answer, and we may not have read
        it), and two starts would wire their networks into one namespace."""
        if self.unnamed or not spec["new_netns"] or spec["share_pid"] or spec["share_uts"] or \
                any(m["type"] == "bind" for m in spec["mounts"]):
            return 0
        return self.ready.pop(0) if self.ready else 0

    def _keeper_lost(self) -> None:
        """The keeper died: its containers are ours to reap now (we are their subreaper), and
        a new keeper takes over their terminals, pipes and logs from our copies."""
        self.ready.clear()
        for cid, rt in self.runtime.items():
            if rt.kept:
                rt.kept = False
                self.watch(cid, rt.pid)
        if self.recovering is None or self.recovering.done():
            self.recovering = asyncio.get_running_loop().create_task(self._recover())

    async def _recover(self) -> None:
        for attempt in range(50):
            try:
                await self.open()
                break
            except (KeeperError, OSError) as e:
                log.warning("keeper: %s; trying again", e)
                await asyncio.sleep(min(0.1 * (attempt + 1), 2))
        else:
            log.error("no keeper: containers started from now on cannot be")
            return
        assert self.keeper is not None
        for cid, rt in list(self.runtime.items()):
            names, fds = rt.handed()
            if not fds or rt.kept:
                continue
            try:
                reply, got = await self.keeper.call(
                    {"op": "adopt", "id": cid, "pid": rt.pid, "start": rt.start, "tty": rt.master is not None,
                     "log": self.log_path(cid), "fds": names}, fds)
            except KeeperError as e:
                log.warning("keeper: adopting %s: %s", cid[:12], e)
                continue
            rt.take(reply.get("fds", []), got)
            if rt.tap is not None:
                self.relay(rt)
        log.info("keeper recovered (pid %d)", self.keeper.pid)

    def log_path(self, cid: str) -> str:
        """The container's log (json-file lines), written by the keeper."""
        return os.path.join(self.root, "containers", cid, "container.log")

    # -- starting
    def prepare(self, cid: str, spec: dict[str, Any], log_path: str, rt: Runtime, ready: int = 0,
                root: int | None = None) -> Awaitable[int]:
        """Hand the container to the keeper, now (the awaitable is its answer: the PID): its
        process (the one made ready, `ready`, or one made now, in namespaces of its own, the
        network one included) sets up its root, then waits for `go`. A crash before `go`
        makes the keeper kill it; a crash after, before the store knows it, leaves it kept by
        the keeper, and the restart finds it there and stops it (the start is undone).
        `root`: the container's root filesystem mounted ahead (spares.py), an fd this closes."""
        if self.keeper is None or self.keeper.sock is None:
            self.spawning.discard(cid)
            if root is not None:
                os.close(root)
            return raise_later(process.SpawnError("the keeper is not running (it is being restarted: try again)"))
        # before the request: the exit of a quick command can be read right after `go`'s
        # answer, before the start's coroutine runs again
        self.spawning.add(cid)
        msg = {"op": "prepare", "id": cid, "spec": spec, "log": log_path, "ready": ready, "root": root is not None}
        answer = self.keeper.call(msg, [root] if root is not None else None)
        if not ready:  # counted until its answer is read, awaited or not
            self.unnamed += 1
            answer = asyncio.ensure_future(answer)
            answer.add_done_callback(self._answered)
        return self._prepared(cid, rt, answer, root)

    def _answered(self, _answer: asyncio.Future[tuple[dict[str, Any], list[int]]]) -> None:
        self.unnamed -= 1

    async def _prepared(self, cid: str, rt: Runtime, answer: Awaitable[tuple[dict[str, Any], list[int]]],
                        root: int | None = None) -> int:
        try:
            reply, _fds = await answer
        except KeeperError as e:
            self.spawning.discard(cid)
            raise (ReadyGone if str(e) == READY_GONE else process.SpawnError)(str(e)) from None
        finally:
            if root is not None:  # sent (or never to be): the keeper has its own copy
                os.close(root)
        rt.pid, rt.start, rt.kept = int(reply["pid"]), int(reply["start"]), True
        return rt.pid

    async def cancel(self, cid: str) -> bool:
        """Undo a prepared start in the keeper (its process killed, nothing reported); False if
        it is past `go` (or the keeper does not answer): then it is the caller's to kill."""
        if self.keeper is None:
            return False
        try:
            reply, _fds = await self.keeper.call({"op": "cancel", "id": cid})
        except KeeperError:
            return False
        return bool(reply.get("cancelled"))

    def go(self, cid: str, rt: Runtime) -> Awaitable[None]:
        """The network is wired: the prepared process execs the container's command. Sent now;
        the awaitable says whether it got past its gate (SpawnError if not)."""
        assert self.keeper is not None
        return self._went(self.keeper.call({"op": "go", "id": cid}), rt)

    @staticmethod
    async def _went(answer: Awaitable[tuple[dict[str, Any], list[int]]], rt: Runtime) -> None:
        try:
            reply, fds = await answer
        except KeeperError as e:
            raise process.SpawnError(str(e)) from None
        rt.take(reply["fds"], fds)

    def started(self, cid: str, pid: int, rt: Runtime) -> None:
        """The start is recorded: relay its terminal, hear its exit."""
        self.runtime[cid] = rt
        self.last_run[cid] = rt.exited
        if rt.tap is not None:
            rt.subscribers |= self.pending_subscribers.pop(cid, set())
            self.relay(rt)
        if not rt.kept:
            self.watch(cid, pid)
        elif self.early_exits.get(cid, (0, None))[0] == pid:
            asyncio.get_running_loop().create_task(self._exited(cid, self.early_exits.pop(cid)[1]))

    async def reattach(self, cid: str, pid: int) -> bool:
        """A container the keeper kept while we were away: its fds again, its exits from the keeper."""
        assert self.keeper is not None
        try:
            reply, fds = await self.keeper.call({"op": "fds", "id": cid})
        except KeeperError as e:
            log.warning("keeper: %s", e)
            return False
        rt = Runtime(pid=pid, start=int(self.kept[cid]["start"]), kept=not self.kept[cid].get("adopted"))
        rt.take(reply["fds"], fds)
        self.started(cid, pid, rt)
        return True

    def spawn_over(self, cid: str) -> None:
        """The start that spawned `cid` is recorded (started) or undone: an exit that came
        early and was not taken is acknowledged."""
        self.spawning.discard(cid)
        if cid not in self.runtime and self.early_exits.pop(cid, None) is not None:
            self.acknowledge(cid)

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
        """Copy a Tty container's output (the keeper's tap; the keeper writes the log) to
        attached clients."""
        assert rt.tap is not None

        def deliver(data: bytes | None) -> None:
            # the tap's end is not the stream's: that comes once the exit is recorded (rt.close),
            # and a keeper that died hands a new tap to the same subscribers
            if data is not None:
                for q in list(rt.subscribers):
                    q.put_nowait(data)

        watch_fd(rt.tap, deliver)

    def watch(self, cid: str, pid: int) -> None:
        """A container the keeper does not reap (it outlived the keeper that launched it)."""
        def exited(code: int | None) -> None:
            asyncio.get_running_loop().create_task(self.on_exit(cid, code))

        process.watch(pid, exited)

    def adopt(self, cid: str, pid: int) -> None:
        """A container that outlived the daemon and its keeper: watched, its fds are lost."""
        self.runtime[cid] = rt = Runtime(pid=pid)
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
            if self.keeper is not None:  # its copy too, or the process never sees the end
                self.keeper.send({"op": "close_stdin", "id": cid})

    def resize(self, cid: str, rows: int, cols: int) -> None:
        rt = self.runtime.get(cid)
        if rt is not None and rt.master is not None:
            fcntl.ioctl(rt.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def subscribe(self, cid: str) -> asyncio.Queue[bytes | None]:
        """A queue of a Tty container's output; before its start, it waits for it."""
        q: asyncio.Queue[bytes | None] = asyncio.Queue()
        rt = self.runtime.get(cid)
        if rt is not None and rt.tap is not None:
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
        """The daemon stops: our copies go, the keeper keeps the containers."""
        for rt in self.runtime.values():
            rt.close()
        if self.keeper is not None:
            self.keeper.close()


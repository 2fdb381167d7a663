"""Container processes as the daemon sees them: watching, signalling, exec
through the launcher, and reading /proc. (The keeper launches containers: keeper.py.)

The daemon is a child subreaper: a container whose keeper died is re-parented
to it and reaped here through a pidfd. A process is identified by (pid, start
time) so a recycled PID is never mistaken for a container.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

LAUNCHER = os.path.join(os.path.dirname(__file__), "launcher.py")


class SpawnError(Exception):
    pass


class Console:
    """The daemon's end of the socket the launcher sends an exec's pty master on."""

    def __init__(self) -> None:
        self.ours, self.theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)

    def receive(self) -> int:
        """The master fd; call once the launcher has sent it."""
        self.theirs.close()
        self.ours.settimeout(10)
        try:
            _msg, fds, _flags, _addr = socket.recv_fds(self.ours, 16, 1)
        finally:
            self.ours.close()
        if not fds:
            raise SpawnError("the container's terminal was not received")
        os.set_blocking(fds[0], False)
        return fds[0]

    def close(self) -> None:
        self.ours.close()
        self.theirs.close()


BACKGROUND_NICE = 10  # launcher.BACKGROUND_NICE: work done ahead for later starts


def in_background() -> None:
    """Lower the calling thread's CPU priority (its nice, BACKGROUND_NICE): work done ahead
    yields the CPU to the request it would otherwise delay."""
    tid = threading.get_native_id()
    os.setpriority(os.PRIO_PROCESS, tid, max(os.getpriority(os.PRIO_PROCESS, tid), BACKGROUND_NICE))


def stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) of `pid`, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = data[data.rindex(")") + 2 :].split()
    return fields[0], int(fields[19])


def start_time(pid: int) -> int:
    st = stat(pid)
    return st[1] if st else 0


def alive(pid: int, started: int) -> bool:
    """True while `pid` is the same process and not a zombie (kill -0 is fooled by zombies)."""
    if pid <= 0:
        return False
    st = stat(pid)
    return st is not None and st[0] not in ("Z", "X") and (not started or st[1] == started)


def watch(pid: int, on_exit: Callable[[int | None], None]) -> None:
    """Call `on_exit(exit_code or None)` once when `pid` ends; reaps it if it is ours."""
    loop = asyncio.get_running_loop()
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        loop.call_soon(on_exit, None)
        return

    def ready() -> None:
        loop.remove_reader(pidfd)
        code: int | None = None
        try:
            res = os.waitid(os.P_PIDFD, pidfd, os.WEXITED)
            if res is not None:
                code = res.si_status if res.si_code == os.CLD_EXITED else 128 + res.si_status
        except ChildProcessError:
            pass  # adopted by init after a daemon restart: the code is lost
        finally:
            os.close(pidfd)
        on_exit(code)

    loop.add_reader(pidfd, ready)


def kill(pid: int, sig: int = signal.SIGTERM) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def exec_argv(pid: int, argv: list[str], *, workdir: str = "", console: Console | None = None,
              user: str = "", group_add: list[str] | None = None) -> list[str]:
    """The command that runs `argv` inside every namespace of container PID 1
    (with `console`, on a pty of the container's own), as `user` with `group_add`."""
    spec: dict[str, Any] = {"pid": pid, "argv": argv, "cwd": workdir, "tty": console is not None,
                            "user": user, "group_add": list(group_add or [])}
    if console is not None:
        spec["pty_socket"] = console.theirs.fileno()
    return [sys.executable, "-I", "-S", LAUNCHER, "--exec", json.dumps(spec)]


def environ(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return [e.decode(errors="replace") for e in f.read().split(b"\0") if e]
    except OSError:
        return []


def pid_namespace_members(pid: int) -> list[int]:
    """PIDs (as the host sees them) of every process in `pid`'s PID namespace.

    A container with `--pid host` shares the daemon's namespace: its members are then
    `pid` and its descendants, never the rest of the host (pause would stop the daemon).
    """
    try:
        ns = os.readlink(f"/proc/{pid}/ns/pid")
        if ns == os.readlink("/proc/self/ns/pid"):
            return sorted(_descendants(pid))
    except OSError:
        return []
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/ns/pid") == ns:
                    members.append(int(entry))
            except OSError:
                continue
    return sorted(members)


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    data = f.read()
            except OSError:
                continue
            children.setdefault(int(data[data.rindex(")") + 2:].split()[1]), []).append(int(entry))
    found, todo = {pid}, [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    found.discard(os.getpid())
    return found


def ps_rows(pids: list[int], ps_args: str = "-ef") -> tuple[list[str], list[list[str]]]:
    """`ps` output limited to `pids`: Docker's `top` does exactly this."""
    out = subprocess.run(["ps", *ps_args.split()], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    header = lines[0].split()
    pid_col = header.index("PID")
    rows = []
    for line in lines[1:]:
        cols = line.split(None, len(header) - 1)
        if len(cols) > pid_col and cols[pid_col].isdigit() and int(cols[pid_col]) in pids:
            rows.append(cols)
    return header, rows

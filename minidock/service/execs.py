"""`exec`: a new process inside a running container's namespaces.

The launcher (in --exec mode) joins every namespace of the container's PID 1,
which also puts it in the container's root; with a terminal, the pty becomes
the process's controlling terminal so Ctrl-C and job control work.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import struct
import termios
from typing import Any

from ..errors import Conflict, InvalidParameter
from ..kernel import process
from ..model import Container
from .common import new_id, watch_fd
from .core import Core


def _frame(stream: int, data: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(data)) + data


def _env(c: Container, ex: dict[str, Any]) -> dict[str, str]:
    env = dict(kv.split("=", 1) for kv in c.config["Env"])
    env.setdefault("HOSTNAME", c.hostname)
    env.setdefault("HOME", "/root")
    if ex["tty"]:
        env.setdefault("TERM", "xterm")
    env.update(kv.split("=", 1) for kv in ex["env"] if "=" in kv)
    return env


def _action(verb: str, cmd: list[str]) -> str:
    """Docker's exec event action: the verb, then entrypoint and arguments ("exec_start: ls ")."""
    return f"{verb}: {cmd[0]} {' '.join(cmd[1:])}"


def resize(ex: dict[str, Any], rows: int, cols: int) -> None:
    if ex.get("master") is not None:
        fcntl.ioctl(ex["master"], termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def create(core: Core, execs: dict[str, dict[str, Any]], ref: str, body: dict[str, Any]) -> str:
    c = core.container(ref)
    if not c.running:
        raise Conflict(f"Container {c.id} is not running")
    if c.state.paused:
        raise Conflict(f"Container {ref} is paused, unpause the container before exec")
    cmd = body.get("Cmd") or []
    if not cmd:
        raise InvalidParameter("No exec command specified")
    eid = new_id()
    execs[eid] = {"id": eid, "container_id": c.id, "cmd": list(cmd), "tty": bool(body.get("Tty")),
                  "stdin": bool(body.get("AttachStdin")), "env": list(body.get("Env") or []),
                  "workdir": body.get("WorkingDir") or "", "running": False, "exit_code": None, "pid": 0}
    core.events.container(c, _action("exec_create", cmd), execID=eid)
    return eid


async def start(core: Core, ex: dict[str, Any], reader: asyncio.StreamReader | None,
                writer: asyncio.StreamWriter | None) -> None:
    c = core.container(ex["container_id"])
    pid = c.state.pid
    env = _env(c, ex)
    ex["running"] = True
    core.events.container(c, _action("exec_start", ex["cmd"]), execID=ex["id"])
    try:
        if ex["tty"]:
            await _run_tty(ex, pid, env, reader, writer)
        else:
            argv = process.exec_argv(pid, ex["cmd"], workdir=ex["workdir"])
            await _run_pipes(ex, argv, env, reader, writer)
    finally:
        ex["running"] = False
        if ex["exit_code"] is not None:
            core.events.container(c, "exec_die", execID=ex["id"], exitCode=ex["exit_code"])
        if writer is not None and writer.can_write_eof():
            with contextlib.suppress(OSError):
                writer.write_eof()


async def _run_tty(ex: dict[str, Any], pid: int, env: dict[str, str],
                   reader: asyncio.StreamReader | None, writer: asyncio.StreamWriter | None) -> None:
    console = process.Console()
    try:
        argv = process.exec_argv(pid, ex["cmd"], workdir=ex["workdir"], console=console)
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL, env=env, pass_fds=(console.theirs.fileno(),))
        master = await asyncio.get_running_loop().run_in_executor(None, console.receive)
    finally:
        console.close()
    ex["master"] = master
    ex["pid"] = proc.pid
    loop = asyncio.get_running_loop()
    out: asyncio.Queue[bytes | None] = asyncio.Queue()
    watch_fd(master, out.put_nowait)
    pump = asyncio.create_task(_pump_in(reader, lambda d: os.write(master, d), None)) if reader else None
    try:
        while (data := await out.get()) is not None:
            if writer is not None:
                writer.write(data)
                await writer.drain()
        ex["exit_code"] = await proc.wait()
    finally:
        loop.remove_reader(master)
        if pump:
            pump.cancel()
        os.close(master)
        ex["master"] = None


async def _run_pipes(ex: dict[str, Any], argv: list[str], env: dict[str, str],
                     reader: asyncio.StreamReader | None, writer: asyncio.StreamWriter | None) -> None:
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env,
        stdin=asyncio.subprocess.PIPE if ex["stdin"] else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE if writer else asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE if writer else asyncio.subprocess.DEVNULL)
    ex["pid"] = proc.pid

    async def copy(stream: asyncio.StreamReader | None, kind: int) -> None:
        if stream is None or writer is None:
            return
        while data := await stream.read(65536):
            writer.write(_frame(kind, data))
            await writer.drain()

    pump = None
    if reader is not None and proc.stdin is not None:
        stdin = proc.stdin

        def close_stdin() -> None:
            stdin.close()

        pump = asyncio.create_task(_pump_in(reader, stdin.write, close_stdin))
    elif proc.stdin is not None:
        proc.stdin.close()
    await asyncio.gather(copy(proc.stdout, 1), copy(proc.stderr, 2))
    ex["exit_code"] = await proc.wait()
    if pump:
        pump.cancel()


async def _pump_in(reader: asyncio.StreamReader | None, write: Any, on_eof: Any) -> None:
    if reader is None:
        return
    while True:
        data = await reader.read(65536)
        if not data:
            if on_eof:
                on_eof()
            return
        try:
            write(data)
        except OSError:
            return

"""/containers: list, create, inspect, start, stop, restart, kill, remove,
wait, top, resize, logs and attach."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import struct
from collections.abc import AsyncIterator
from typing import Any

from ...errors import InvalidParameter, NotFound
from ...service import rename
from ...service.engine import WAIT_CONDITIONS, Engine
from ..http import Hijack, Request, Response, Stream

STDOUT = 1


def frame(stream: int, data: bytes) -> bytes:
    """Docker's multiplexed stream header (stdcopy) for non-Tty output."""
    return struct.pack(">BxxxL", stream, len(data)) + data


def parse_signal(value: str) -> int:
    if not value:
        return signal.SIGKILL
    if value.isdigit():
        return int(value)
    name = value.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise InvalidParameter(f"Invalid signal: {value}") from None


def _timeout(req: Request) -> int | None:
    t = req.query.get("t")
    return int(t) if t not in (None, "") else None


async def containers_list(engine: Engine, req: Request) -> Response:
    return Response(200, engine.queries.containers(req.flag("all")))


async def container_create(engine: Engine, req: Request) -> Response:
    return Response(201, await engine.create_container(req.query.get("name"), req.json()))


async def container_inspect(engine: Engine, req: Request) -> Response:
    return Response(200, engine.queries.container(req.params["id"]))


async def container_start(engine: Engine, req: Request) -> Response:
    c = engine.core.container(req.params["id"])
    if c.running:
        return Response(304)
    await engine.life.start(c.id)
    return Response(204)


async def container_stop(engine: Engine, req: Request) -> Response:
    c = engine.core.container(req.params["id"])
    if not c.running:
        return Response(304)
    await engine.life.stop(c.id, _timeout(req), parse_signal(req.query.get("signal", "SIGTERM")))
    return Response(204)


async def container_restart(engine: Engine, req: Request) -> Response:
    await engine.life.restart(req.params["id"], _timeout(req))
    return Response(204)


async def container_kill(engine: Engine, req: Request) -> Response:
    await engine.life.kill(req.params["id"], parse_signal(req.query.get("signal", "")))
    return Response(204)


async def container_rm(engine: Engine, req: Request) -> Response:
    if req.flag("link"):  # a link's name has a slash: this one names a container, not a link
        await rename.remove_link(engine.core, req.params["id"])
        return Response(204)
    await engine.life.remove(req.params["id"], req.flag("force"), req.flag("v"))
    return Response(204)


async def container_wait(engine: Engine, req: Request) -> Response | Stream:
    ref, condition = req.params["id"], req.query.get("condition", "not-running")
    if condition not in WAIT_CONDITIONS:  # before the headers go out: the body may come much later
        raise InvalidParameter(f"invalid condition: {condition!r}")
    if not engine.queries.exists(ref):  # gone: its last code, or 404
        return Response(200, {"StatusCode": await engine.life.wait(ref, condition), "Error": None})

    async def body() -> AsyncIterator[bytes]:
        code = await engine.life.wait(ref, condition)
        yield json.dumps({"StatusCode": code, "Error": None}).encode() + b"\n"

    # the headers go out at once, the body when the container exits: `docker run` waits
    # for the headers (its wait is registered) before it starts the container
    return Stream(body(), "application/json")


async def container_top(engine: Engine, req: Request) -> Response:
    return Response(200, engine.life.top(req.params["id"], req.query.get("ps_args", "")))


async def container_resize(engine: Engine, req: Request) -> Response:
    c = engine.core.container(req.params["id"])
    engine.procs.resize(c.id, int(req.query.get("h", "24")), int(req.query.get("w", "80")))
    return Response(200)


def open_log(path: str) -> Any:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise NotFound("the container's log is gone") from None


async def follow_file(f: Any, offset: int, done: asyncio.Event | None, tty: bool, follow: bool) -> AsyncIterator[bytes]:
    """The container's log from `offset`, until it exits (when following).

    Takes an open file: a --rm container's directory may be gone before we read.
    """
    with f:
        f.seek(offset)
        while True:
            data = f.read(65536)
            if data:
                yield data if tty else frame(STDOUT, data)
                continue
            if not follow or done is None or done.is_set():
                data = f.read()
                if data:
                    yield data if tty else frame(STDOUT, data)
                return
            try:
                await asyncio.wait_for(done.wait(), 0.05)
            except TimeoutError:
                pass


async def container_logs(engine: Engine, req: Request) -> Stream:
    c = engine.core.container(req.params["id"])
    tail = req.query.get("tail", "all")
    path = engine.life.log_path(c)
    offset = _tail_offset(path, int(tail)) if tail not in ("", "all") else 0
    return Stream(follow_file(open_log(path), offset, engine.procs.exited_event(c.id), c.tty, req.flag("follow")))


async def container_attach(engine: Engine, req: Request) -> Hijack:
    c = engine.core.container(req.params["id"])
    engine.core.events.container(c, "attach")
    cid, tty, procs = c.id, c.tty, engine.procs
    log = open_log(engine.life.log_path(c))
    offset = os.fstat(log.fileno()).st_size
    want_stdin = req.flag("stdin")
    started = procs.start_attempt(cid) if engine.queries.status(cid) != "running" else None

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pump = asyncio.create_task(_pump_stdin(engine, cid, reader, bool(c.config.get("StdinOnce")), started)) \
            if want_stdin else None
        try:
            if tty:
                if engine.queries.status(cid) != "running" or procs.exited_event(cid) is not None:
                    q = procs.subscribe(cid)
                    try:
                        while (data := await q.get()) is not None:
                            writer.write(data)
                            await writer.drain()
                    finally:
                        procs.unsubscribe(cid, q)
            else:
                if started is not None:  # docker run attaches first, then starts
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(started.wait(), 60)
                async for chunk in follow_file(log, offset, procs.exited_event(cid), False, True):
                    writer.write(chunk)
                    await writer.drain()
        finally:
            if pump:
                pump.cancel()
            if writer.can_write_eof():
                writer.write_eof()

    return Hijack(run)


def _tail_offset(path: str, lines: int) -> int:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return 0
    if lines <= 0:
        return len(data)
    pos = len(data)
    if data.endswith(b"\n"):
        pos -= 1
    for _ in range(lines):
        pos = data.rfind(b"\n", 0, pos)
        if pos < 0:
            return 0
    return pos + 1


async def _pump_stdin(engine: Engine, cid: str, reader: asyncio.StreamReader, once: bool,
                      started: asyncio.Event | None = None) -> None:
    if started is not None:
        # `docker run -i` attaches, then starts: what it sends (or its EOF, when stdin is a
        # short pipe) must wait in the socket until the process has a stdin to take it
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(started.wait(), 60)
    while True:
        data = await reader.read(65536)
        if not data:
            if once:
                engine.procs.close_stdin(cid)
            return
        await engine.procs.write_stdin(cid, data)


ROUTES = [
    ("GET", "/containers/json", containers_list), ("POST", "/containers/create", container_create),
    ("GET", "/containers/{id}/json", container_inspect),
    ("POST", "/containers/{id}/start", container_start), ("POST", "/containers/{id}/stop", container_stop),
    ("POST", "/containers/{id}/restart", container_restart),
    ("POST", "/containers/{id}/kill", container_kill), ("DELETE", "/containers/{id}", container_rm),
    ("POST", "/containers/{id}/wait", container_wait), ("GET", "/containers/{id}/top", container_top),
    ("GET", "/containers/{id}/logs", container_logs), ("POST", "/containers/{id}/attach", container_attach),
    ("POST", "/containers/{id}/resize", container_resize),
]

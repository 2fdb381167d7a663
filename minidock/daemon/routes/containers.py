"""/containers: list, create, inspect, start, stop, restart, kill, remove,
wait, top, resize, logs and attach."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator
from typing import Any

from ...errors import InvalidParameter, MinidockError, NotFound
from ...service import escape, logs, rename, settings
from ...service.engine import WAIT_CONDITIONS, Engine
from ..http import Hijack, Request, Response, Stream

STDOUT = 1
UPGRADE_SETTLE = 0.05


frame = logs.frame


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
    return Response(200, engine.queries.containers(req.flag("all"), req.query))


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


class LogsNotReadable(MinidockError):
    """moby's ErrReadLogsNotSupported (a NotImplemented error)."""

    status = 501


def _selection(req: Request, default_both: bool) -> logs.Selection:
    asked = {name for name in ("stdout", "stderr") if req.flag(name)}
    if not asked and default_both and not any(name in req.query for name in ("stdout", "stderr")):
        asked = {"stdout", "stderr"}
    tail = req.query.get("tail", "all")
    try:
        lines = None if tail in ("", "all") else int(tail)
    except ValueError:
        raise InvalidParameter(f"invalid value for tail: {tail}") from None
    return logs.Selection(frozenset(asked), logs.parse_time(req.query.get("since"), "since"),
                          logs.parse_time(req.query.get("until"), "until"), req.flag("timestamps"),
                          None if lines is None or lines < 0 else lines)


async def container_logs(engine: Engine, req: Request) -> Stream:
    c = engine.core.container(req.params["id"])
    if not settings.readable_logs(c.host_config.given):
        raise LogsNotReadable("configured logging driver does not support reading")
    sel = _selection(req, default_both=False)
    if not sel.streams:
        raise InvalidParameter("Bad parameters: you must choose at least one stream")
    return Stream(logs.read(open_log(engine.life.log_path(c)), sel, c.tty, req.flag("follow"),
                            engine.procs.run_over(c.id)))


async def container_attach(engine: Engine, req: Request) -> Hijack:
    c = engine.core.container(req.params["id"])
    engine.core.events.container(c, "attach")
    cid, tty, procs = c.id, c.tty, engine.procs
    sel = _selection(req, default_both=True)
    sel.tail = None
    keys = escape.parse_keys(req.query.get("detachKeys", ""))
    log = open_log(engine.life.log_path(c))
    # the log so far, read now: `logs=1` sends it first, and streaming goes on from its end
    before = await asyncio.to_thread(logs.history, log, sel)
    want_logs, want_stream, want_stdin = req.flag("logs"), req.flag("stream"), req.flag("stdin")
    started = procs.start_attempt(cid) if want_stream and engine.queries.status(cid) != "running" else None

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        detached = asyncio.Event()
        pump = asyncio.create_task(_pump_stdin(engine, cid, reader, bool(c.config.get("StdinOnce")), started,
                                               escape.Escape(keys) if tty else None, detached)) \
            if want_stdin and want_stream else None
        output = asyncio.create_task(_attach_output(engine, cid, tty, sel, log, before if want_logs else [],
                                                    want_stream, started, writer))
        try:
            waiting = {output, asyncio.create_task(detached.wait())}
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            for task in waiting - done:
                task.cancel()
            if output in done:
                output.result()
        finally:
            log.close()
            if pump:
                pump.cancel()
            if writer.can_write_eof():
                writer.write_eof()

    return Hijack(run)


async def _attach_output(engine: Engine, cid: str, tty: bool, sel: logs.Selection, log: Any,
                         before: list[logs.Entry], want_stream: bool, started: asyncio.Event | None,
                         writer: asyncio.StreamWriter) -> None:
    procs = engine.procs
    if before:
        # the client reads the 101's headers through a buffered reader, then takes the raw
        # socket: bytes already there when it reads the headers would be lost in its buffer
        await asyncio.sleep(UPGRADE_SETTLE)
    for e in before:
        writer.write(sel.render(e, tty))
    await writer.drain()
    if not want_stream:
        return
    if tty:
        if engine.queries.status(cid) != "running" or procs.exited_event(cid) is not None:
            q = procs.subscribe(cid)
            try:
                while (data := await q.get()) is not None:
                    writer.write(data)
                    await writer.drain()
            finally:
                procs.unsubscribe(cid, q)
        return
    if started is not None:  # docker run attaches first, then starts
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(started.wait(), 60)
    async for chunk in logs.follow_from(log, sel, False, procs.run_over(cid)):
        writer.write(chunk)
        await writer.drain()


async def _pump_stdin(engine: Engine, cid: str, reader: asyncio.StreamReader, once: bool,
                      started: asyncio.Event | None = None, esc: escape.Escape | None = None,
                      detached: asyncio.Event | None = None) -> None:
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
        if esc is not None:
            data = esc.feed(data)
        if data:
            await engine.procs.write_stdin(cid, data)
        if esc is not None and esc.detached and detached is not None:
            detached.set()  # the detach keys: the attach ends, the container goes on
            return


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

"""/containers/{id}/exec and /exec/{id}: create, start (attached or detached), inspect, resize."""

from __future__ import annotations

import asyncio
from typing import Any

from ...errors import Conflict, NotFound
from ...service import execs
from ...service.engine import Engine
from ..http import Hijack, Request, Response


def _exec(engine: Engine, eid: str) -> dict[str, Any]:
    ex = engine.execs.get(eid)
    if ex is None:
        raise NotFound(f"No such exec instance: {eid}")
    return ex


async def exec_create(engine: Engine, req: Request) -> Response:
    return Response(201, {"Id": engine.create_exec(req.params["id"], req.json())})


async def exec_start(engine: Engine, req: Request) -> Response | Hijack:
    ex = _exec(engine, req.params["id"])
    body = req.json()
    if engine.core.container(ex["container_id"]).state.paused:
        raise Conflict(f"Container {ex['container_id']} is paused, unpause the container before exec")
    if body.get("Detach"):
        task = asyncio.create_task(execs.start(engine.core, ex, None, None))
        engine.background.add(task)
        task.add_done_callback(engine.background.discard)
        while not ex["pid"] and not task.done():
            await asyncio.sleep(0.005)
        if task.done() and task.exception():
            raise task.exception()  # type: ignore[misc]
        return Response(200)

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await execs.start(engine.core, ex, reader, writer)

    return Hijack(run)


async def exec_inspect(engine: Engine, req: Request) -> Response:
    ex = _exec(engine, req.params["id"])
    return Response(200, {"ID": ex["id"], "Running": ex["running"], "ExitCode": ex["exit_code"],
                          "ContainerID": ex["container_id"], "Pid": ex["pid"],
                          "ProcessConfig": {"tty": ex["tty"], "entrypoint": ex["cmd"][0],
                                            "arguments": ex["cmd"][1:]}})


async def exec_resize(engine: Engine, req: Request) -> Response:
    execs.resize(_exec(engine, req.params["id"]), int(req.query.get("h", "24")), int(req.query.get("w", "80")))
    return Response(200)


ROUTES = [
    ("POST", "/containers/{id}/exec", exec_create), ("POST", "/exec/{id}/start", exec_start),
    ("GET", "/exec/{id}/json", exec_inspect), ("POST", "/exec/{id}/resize", exec_resize),
]

"""Container endpoints that read or change a container as a whole:

    /containers/{id}/archive   HEAD (stat), GET (tar of a path), PUT (untar into a directory): `docker cp`
    /containers/{id}/export    a tar of its root filesystem
    /containers/{id}/changes   what it changed in its filesystem (`docker diff`)
    /commit                    a new image from it
    /containers/{id}/stats     CPU, memory, block I/O, tasks and each interface's counters
    /containers/{id}/pause, /unpause, /update
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from ...errors import InvalidParameter, no_such_container
from ...service.containerfs import stat_header
from ...service.engine import Engine
from ..http import Request, Response, Stream

PATH_STAT = "X-Docker-Container-Path-Stat"


def _truthy(req: Request, name: str, default: bool = False) -> bool:
    value = req.query.get(name)
    if value is None or value == "":
        return default
    return value.lower() in ("1", "true", "yes")


async def archive_head(engine: Engine, req: Request) -> Response:
    st = await engine.files.stat(req.params["id"], req.query.get("path", ""))
    return Response(200, None, headers={PATH_STAT: stat_header(st)})


async def archive_get(engine: Engine, req: Request) -> Stream:
    st, chunks = await engine.files.get(req.params["id"], req.query.get("path", ""))
    return Stream(chunks, "application/x-tar", headers={PATH_STAT: stat_header(st)})


async def archive_put(engine: Engine, req: Request) -> Response:
    # Docker's API names the flag noOverwriteDirNonDir; copyUIDGID (-a) is the tar's own owners here
    await engine.files.put(req.params["id"], req.query.get("path", ""), req.body,
                           _truthy(req, "noOverwriteDirNonDir"))
    return Response(200)


async def container_export(engine: Engine, req: Request) -> Stream:
    return Stream(await engine.files.export(req.params["id"]), "application/x-tar")


async def container_changes(engine: Engine, req: Request) -> Response:
    return Response(200, engine.files.changes(req.params["id"]))


async def commit(engine: Engine, req: Request) -> Response:
    if not req.query.get("container"):
        raise no_such_container("")
    config = req.json() if req.body else {}
    if not isinstance(config, dict):
        raise InvalidParameter("json: cannot unmarshal into Go value of type container.Config")
    image_id = await engine.files.commit(
        req.query["container"], req.query.get("repo", ""), req.query.get("tag", ""), config,
        [c for c in req.multi.get("changes", []) if c], req.query.get("comment", ""),
        req.query.get("author", ""), _truthy(req, "pause", True))
    return Response(201, {"Id": image_id})


async def stats(engine: Engine, req: Request) -> Response | Stream:
    stream = _truthy(req, "stream", True)
    readings = engine.resources.stats(req.params["id"], stream, _truthy(req, "one-shot"))
    if not stream:
        return Response(200, await anext(readings))

    async def lines(first: dict[str, Any]) -> AsyncIterator[bytes]:
        yield json.dumps(first).encode() + b"\n"
        async for reading in readings:
            yield json.dumps(reading).encode() + b"\n"

    # the first reading before the headers: an unknown container is a 404, not a broken stream
    return Stream(lines(await anext(readings)), "application/json", chunked=True)


async def pause(engine: Engine, req: Request) -> Response:
    await engine.resources.pause(req.params["id"])
    return Response(204)


async def unpause(engine: Engine, req: Request) -> Response:
    await engine.resources.unpause(req.params["id"])
    return Response(204)


async def update(engine: Engine, req: Request) -> Response:
    return Response(200, await engine.resources.update(req.params["id"], req.json()))


ROUTES = [
    ("HEAD", "/containers/{id}/archive", archive_head), ("GET", "/containers/{id}/archive", archive_get),
    ("PUT", "/containers/{id}/archive", archive_put), ("GET", "/containers/{id}/export", container_export),
    ("GET", "/containers/{id}/changes", container_changes), ("POST", "/commit", commit),
    ("GET", "/containers/{id}/stats", stats), ("POST", "/containers/{id}/pause", pause),
    ("POST", "/containers/{id}/unpause", unpause), ("POST", "/containers/{id}/update", update),
]

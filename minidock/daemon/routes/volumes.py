"""/volumes: list, create, inspect, remove, prune (Docker's shapes and codes)."""

from __future__ import annotations

from ...service.engine import Engine
from ..http import Request, Response


async def volumes_list(engine: Engine, req: Request) -> Response:
    return Response(200, engine.volumes.list(req.query.get("filters")))


async def volume_create(engine: Engine, req: Request) -> Response:
    body = req.json() or {}
    async with engine.locks.hold("volumes"):
        v = engine.volumes.create(body.get("Name") or None, body.get("Driver"), body.get("DriverOpts"),
                                  body.get("Labels"))
    return Response(201, engine.volumes.view(v))


async def volume_inspect(engine: Engine, req: Request) -> Response:
    return Response(200, engine.volumes.inspect(req.params["name"]))


async def volume_rm(engine: Engine, req: Request) -> Response:
    async with engine.locks.hold("volumes"):
        engine.volumes.remove(req.params["name"], req.flag("force"))
    return Response(204)


async def volumes_prune(engine: Engine, req: Request) -> Response:
    async with engine.locks.hold("volumes"):
        return Response(200, engine.volumes.prune(req.query.get("filters")))


ROUTES = [
    ("GET", "/volumes", volumes_list), ("POST", "/volumes/create", volume_create),
    ("POST", "/volumes/prune", volumes_prune),
    ("GET", "/volumes/{name}", volume_inspect), ("DELETE", "/volumes/{name}", volume_rm),
]

"""minidock's own read-only routes for `minidock ui` (and anyone curious):
every interface's counters, and what one container sees of the network."""

from __future__ import annotations

from ...service.engine import Engine
from ...service.live import Live
from ..http import Request, Response


async def counters(engine: Engine, req: Request) -> Response:
    return Response(200, await Live(engine.core).counters())


async def details(engine: Engine, req: Request) -> Response:
    return Response(200, await Live(engine.core).details(req.params["id"]))


ROUTES = [
    ("GET", "/minidock/counters", counters),
    ("GET", "/minidock/containers/{id}/details", details),
]

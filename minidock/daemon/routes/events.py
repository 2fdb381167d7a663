"""/events (Docker's, streamed), and the container calls that change names or
sweep: /containers/{id}/rename, /containers/prune, DELETE /containers/{parent}/{alias}
(a legacy link)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from ... import apifilters, timestamps
from ...errors import InvalidParameter
from ...service import prune, rename
from ...service.engine import Engine
from ..http import Request, Response, Stream


def _time(req: Request, key: str) -> int | None:
    value = req.query.get(key, "")
    if not value:
        return None
    try:
        # the API's own form is unix seconds[.nanoseconds] (the CLIs convert); RFC 3339 is taken too
        return timestamps.parse_unix(value) if "-" not in value[1:] else timestamps.parse(value)
    except timestamps.TimeError as e:
        raise InvalidParameter(f"invalid value for '{key}': {e}") from None


def _line(ev: dict[str, Any]) -> bytes:
    return json.dumps(ev, separators=(",", ":")).encode() + b"\n"


async def events(engine: Engine, req: Request) -> Stream:
    """Replay from the ring when `since` or `until` is given, then follow until `until`
    passes or the client goes away (Docker's getEvents)."""
    since, until = _time(req, "since"), _time(req, "until")
    if until is not None and since is not None and until < since:
        raise InvalidParameter(f"`since` time ({req.query['since']}) cannot be after `until` time "
                               f"({req.query['until']})")
    flt = apifilters.parse(req.query.get("filters"))
    bus = engine.core.events
    replay, queue = bus.subscribe(since, until, flt)
    only_past = until is not None and until < time.time_ns()

    async def body() -> AsyncIterator[bytes]:
        try:
            for ev in replay:
                yield _line(ev)
            if only_past:
                return
            while True:
                if until is None:
                    ev = await queue.get()
                else:
                    left = (until - time.time_ns()) / 1e9
                    if left <= 0:
                        return
                    try:
                        ev = await asyncio.wait_for(queue.get(), left)
                    except TimeoutError:
                        return
                yield _line(ev)
        finally:
            bus.unsubscribe(queue)

    return Stream(body(), "application/json", chunked=True)


async def container_rename(engine: Engine, req: Request) -> Response:
    await rename.rename(engine.core, req.params["id"], req.query.get("name", ""))
    return Response(204)


async def containers_prune(engine: Engine, req: Request) -> Response:
    return Response(200, await prune.prune_containers(engine.core, engine.life,
        apifilters.parse(req.query.get("filters"), prune.PRUNE_FILTERS)))


async def link_rm(engine: Engine, req: Request) -> Response:
    """DELETE /containers/PARENT/ALIAS: with link=1 the link goes; without, the container
    the link names goes (Docker resolves PARENT/ALIAS as a name of the linked container)."""
    name = f"{req.params['parent']}/{req.params['alias']}"
    if req.flag("link"):
        await rename.remove_link(engine.core, name)
    else:
        await engine.life.remove(rename.linked_container(engine.core, name), req.flag("force"))
    return Response(204)


ROUTES = [
    ("GET", "/events", events),
    ("POST", "/containers/{id}/rename", container_rename),
    ("POST", "/containers/prune", containers_prune),
    ("DELETE", "/containers/{parent}/{alias}", link_rm),
]

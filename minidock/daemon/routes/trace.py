"""/minidock/trace: one probe sent, and its path through the host as the kernel traced it."""

from __future__ import annotations

from ...errors import InvalidParameter
from ...service.engine import Engine
from ..http import Request, Response


async def trace(engine: Engine, req: Request) -> Response:
    body = req.json()
    try:
        timeout = float(body.get("Timeout") or 2)
        port = int(body.get("Port") or 0)
    except (TypeError, ValueError) as e:
        raise InvalidParameter(f"invalid trace request: {e}") from None
    return Response(200, await engine.tracer.trace(str(body.get("Source") or ""), str(body.get("Destination") or ""),
                                                   port, str(body.get("Proto") or ""), timeout))


ROUTES = [("POST", "/minidock/trace", trace)]

"""/networks: list, inspect, create, remove, connect, disconnect, prune."""

from __future__ import annotations

from ...service.engine import Engine
from ..http import Request, Response


async def networks_list(engine: Engine, req: Request) -> Response:
    return Response(200, engine.networks.list())


async def network_inspect(engine: Engine, req: Request) -> Response:
    return Response(200, engine.networks.view(engine.core.network(req.params["id"])))


async def network_create(engine: Engine, req: Request) -> Response:
    return Response(201, await engine.networks.create(req.json()))


async def network_rm(engine: Engine, req: Request) -> Response:
    await engine.networks.remove(req.params["id"])
    return Response(204)


async def network_connect(engine: Engine, req: Request) -> Response:
    body = req.json()
    ep = body.get("EndpointConfig") or {}
    ipam_cfg = ep.get("IPAMConfig") or {}
    await engine.connector.connect(req.params["id"], body.get("Container") or "", ipam_cfg.get("IPv4Address") or "",
                                   ep.get("Aliases") or [], ipam_cfg.get("IPv6Address") or "")
    return Response(200)


async def network_disconnect(engine: Engine, req: Request) -> Response:
    body = req.json()
    await engine.connector.disconnect(req.params["id"], body.get("Container") or "", bool(body.get("Force")))
    return Response(200)


async def network_prune(engine: Engine, req: Request) -> Response:
    return Response(200, {"NetworksDeleted": await engine.networks.prune()})


ROUTES = [
    ("GET", "/networks", networks_list), ("POST", "/networks/create", network_create),
    ("POST", "/networks/prune", network_prune),
    ("GET", "/networks/{id}", network_inspect), ("DELETE", "/networks/{id}", network_rm),
    ("POST", "/networks/{id}/connect", network_connect),
    ("POST", "/networks/{id}/disconnect", network_disconnect),
]

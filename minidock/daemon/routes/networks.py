"""/networks: list, inspect, create, remove, connect, disconnect, prune."""

from __future__ import annotations

from ... import apifilters
from ...errors import InvalidParameter
from ...service.engine import Engine
from ...service.networks import LIST_FILTERS, PRUNE_FILTERS, check_list_filters
from ..http import Request, Response

GO_BOOLS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
            "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}


async def networks_list(engine: Engine, req: Request) -> Response:
    filters = apifilters.parse(req.query.get("filters"), LIST_FILTERS)
    check_list_filters(filters)
    return Response(200, engine.networks.list(filters))


async def network_inspect(engine: Engine, req: Request) -> Response:
    verbose = req.query.get("verbose", "")
    if verbose and verbose not in GO_BOOLS:
        raise InvalidParameter(f'invalid value for verbose: {verbose}: strconv.ParseBool: parsing "{verbose}": '
                               "invalid syntax")
    # verbose adds a swarm's services and tasks: with no swarm there are none to add
    return Response(200, engine.networks.view(engine.networks.find(req.params["id"], req.query.get("scope", ""))))


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
                                   ep.get("Aliases") or [], ipam_cfg.get("IPv6Address") or "", ep)
    return Response(200)


async def network_disconnect(engine: Engine, req: Request) -> Response:
    body = req.json()
    await engine.connector.disconnect(req.params["id"], body.get("Container") or "", bool(body.get("Force")))
    return Response(200)


async def network_prune(engine: Engine, req: Request) -> Response:
    filters = apifilters.parse(req.query.get("filters"), PRUNE_FILTERS)
    return Response(200, {"NetworksDeleted": await engine.networks.prune(filters)})


ROUTES = [
    ("GET", "/networks", networks_list), ("POST", "/networks/create", network_create),
    ("POST", "/networks/prune", network_prune),
    ("GET", "/networks/{id}", network_inspect), ("DELETE", "/networks/{id}", network_rm),
    ("POST", "/networks/{id}/connect", network_connect),
    ("POST", "/networks/{id}/disconnect", network_disconnect),
]

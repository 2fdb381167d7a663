"""Engine API paths → service calls, one module per resource:

    containers.py  /containers/…  (create, start, stop, logs, attach, wait, …)
    networks.py    /networks/…
    execs.py       /containers/{id}/exec, /exec/…
    images.py      /images/…
    volumes.py     /volumes/…
    events.py      /events; /containers/{id}/rename, /containers/prune, link removal
    wholes.py      a container as a whole: archive (cp), export, changes, commit, stats, pause, update
    system.py      /_ping, /version, /info, /minidock/… (check, repair, reset, topology, fault)
    swarm.py       /swarm/…, /nodes, /services, /tasks, /secrets, /configs: a host in no swarm
    trace.py       /minidock/trace (a probe's path, from the kernel's trace)
    ui.py          /minidock/counters, /minidock/containers/{id}/details (read-only, for `minidock ui`)

Each handler is a module-level function `handler(engine, request)`: it parses
the request and calls the services; it never opens the store, so a handler
can be tested alone with a fake engine.
"""

from __future__ import annotations

import functools
from typing import Any

from ...errors import InvalidParameter
from ...service.engine import Engine
from .. import apischema
from ..http import Request, Router
from . import containers, events, execs, images, networks, swarm, system, trace, ui, volumes, wholes

MODULES = (system, networks, containers, execs, images, events, volumes, wholes, swarm, trace, ui)


def build(engine: Engine) -> Router:
    r = Router()
    for module in MODULES:
        for method, path, handler in module.ROUTES:
            bound = functools.partial(handler, engine)
            schema = apischema.body_schema(method, path)
            r.add(method, path, _checked(bound, schema, path) if schema else bound)
    return r


def _checked(handler: Any, schema: dict[str, Any], path: str) -> Any:
    """The handler, behind a check of its JSON body's types against the OpenAPI description."""
    where = schema.get("$ref", path).rsplit("/", 1)[-1]

    async def run(req: Request) -> Any:
        body = req.json()
        if not isinstance(body, dict):
            raise InvalidParameter(f"json: cannot unmarshal {type(body).__name__} into Go value of type {where}")
        apischema.validate(body, schema, where)
        return await handler(req)

    return run

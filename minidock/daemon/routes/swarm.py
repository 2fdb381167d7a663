"""/swarm, /nodes, /services, /tasks, /secrets, /configs and /plugins as a
Docker host answers them with no swarm and no plugins installed: clients take
these answers to mean "no swarm" and "no plugins" and go on.

(minidock's own cluster of hosts is /minidock/nodes: not a swarm.)
"""

from __future__ import annotations

from ...errors import MinidockError, NotFound
from ...service.engine import Engine
from ..http import Request, Response

NOT_IN_SWARM = "This node is not part of a swarm"
NOT_A_MANAGER = ('This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" '
                 "to connect this node to swarm and try again.")


class NoSwarm(MinidockError):
    """moby's errNoSwarm / errNoManager: an Unavailable error (503)."""

    status = 503


async def not_in_swarm(engine: Engine, req: Request) -> Response:
    raise NoSwarm(NOT_IN_SWARM)


async def swarm_init(engine: Engine, req: Request) -> Response:
    raise NoSwarm("minidock has no swarm mode: " + NOT_IN_SWARM.lower()
                  + " (minidock's own multi-host networking: daemon --cluster-store)")


async def not_a_manager(engine: Engine, req: Request) -> Response:
    raise NoSwarm(NOT_A_MANAGER)


async def plugins(engine: Engine, req: Request) -> Response:
    return Response(200, [])


async def plugin(engine: Engine, req: Request) -> Response:
    raise NotFound(f"plugin \"{req.params['name']}\" not found")


ROUTES = [
    ("GET", "/swarm", not_a_manager), ("POST", "/swarm/init", swarm_init), ("POST", "/swarm/join", swarm_init),
    ("POST", "/swarm/leave", not_in_swarm), ("POST", "/swarm/update", not_a_manager),
    ("GET", "/swarm/unlockkey", not_a_manager), ("POST", "/swarm/unlock", not_in_swarm),
    ("GET", "/nodes", not_a_manager), ("GET", "/services", not_a_manager), ("GET", "/tasks", not_a_manager),
    ("GET", "/secrets", not_a_manager), ("GET", "/configs", not_a_manager),
    ("GET", "/plugins", plugins), ("GET", "/plugins/{name}/json", plugin),
]

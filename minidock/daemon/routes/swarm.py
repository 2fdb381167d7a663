"""/swarm/…, /nodes, /services, /tasks, /secrets, /configs: what a Docker host that
is in no swarm answers (503, moby's daemon/cluster words), so that clients take
"no swarm" for what it is: `docker swarm leave --force` and docker-py's
leave_swarm(force=True) succeed quietly, `docker node ls` prints Docker's
"This node is not a swarm manager…".

minidock has no swarm mode (its overlay networks use a cluster store, as
Docker's classic mode did): init and join answer 503 too, saying so. /plugins
is a host with no plugin installed: [].
"""

from __future__ import annotations

from ...errors import NotFound, Unavailable
from ...service.engine import Engine
from ..http import Request, Response

# moby daemon/cluster/errors.go errNoSwarm: leaving a swarm this node is not part of
NO_SWARM = "This node is not part of a swarm"
# moby daemon/cluster/cluster.go errNoManager, for a node with no swarm at all
NOT_A_MANAGER = ('This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" '
                 "to connect this node to swarm and try again.")
NO_SWARM_MODE = ("minidock has no swarm mode: this node cannot init or join a swarm "
                 "(overlay networks use a cluster store: daemon --cluster-store etcd://HOST:2379)")

# /info's "Swarm" on a host in no swarm (moby's swarm.Info zero value, LocalNodeState
# "inactive"): with it `docker info` prints "Swarm: inactive"
INFO_SWARM: dict[str, object] = {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                                 "ControlAvailable": False, "Error": "", "RemoteManagers": None}


async def no_swarm_mode(engine: Engine, req: Request) -> Response:
    raise Unavailable(NO_SWARM_MODE)


async def leave(engine: Engine, req: Request) -> Response:
    raise Unavailable(NO_SWARM)


async def not_a_manager(engine: Engine, req: Request) -> Response:
    raise Unavailable(NOT_A_MANAGER)


async def plugins(engine: Engine, req: Request) -> Response:
    """A host with no plugins installed: the drivers minidock has are built in (see /info's Plugins)."""
    return Response(200, [])


async def plugin(engine: Engine, req: Request) -> Response:
    raise NotFound(f"plugin \"{req.params['name']}\" not found")


ROUTES = [
    ("GET", "/plugins", plugins), ("GET", "/plugins/{name}/json", plugin),
    ("POST", "/swarm/init", no_swarm_mode), ("POST", "/swarm/join", no_swarm_mode),
    ("POST", "/swarm/leave", leave),
    ("GET", "/swarm", not_a_manager), ("GET", "/swarm/unlockkey", not_a_manager),
    ("POST", "/swarm/update", not_a_manager), ("POST", "/swarm/unlock", not_a_manager),
] + [
    (method, path, not_a_manager)
    for kind in ("services", "nodes", "tasks", "secrets", "configs")
    for method, path in (("GET", f"/{kind}"), ("GET", f"/{kind}/{{id}}"), ("DELETE", f"/{kind}/{{id}}"),
                         ("POST", f"/{kind}/{{id}}/update"), ("POST", f"/{kind}/create"),
                         ("GET", f"/{kind}/{{id}}/logs"))
    if not (kind == "nodes" and path.endswith(("/create", "/logs")))
    and not (kind in ("secrets", "configs") and path.endswith("/logs"))
    and not (kind == "tasks" and (method != "GET"))
]

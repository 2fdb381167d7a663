"""/_ping, /version, /info, and minidock's own: system check, repair, reset,
topology, and the fault-injection test hook."""

from __future__ import annotations

import asyncio
import os

from ... import API_VERSION, __version__
from ...errors import NotFound, Unavailable
from ...service.engine import Engine
from ...steps import faults
from ..http import Request, Response


async def ping(engine: Engine, req: Request) -> Response:
    return Response(200, "OK", "text/plain")


async def version(engine: Engine, req: Request) -> Response:
    u = os.uname()
    return Response(200, {"Version": __version__, "ApiVersion": API_VERSION, "MinAPIVersion": "1.24",
                          "Os": "linux", "Arch": "amd64" if u.machine == "x86_64" else u.machine,
                          "KernelVersion": u.release, "Platform": {"Name": f"minidock {__version__}"},
                          "Components": [{"Name": "Engine", "Version": __version__,
                                          "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": "1.24",
                                                      "Os": "linux", "KernelVersion": u.release}}]})


async def info(engine: Engine, req: Request) -> Response:
    total, running = engine.queries.counts()
    return Response(200, {"ID": "minidock", "Containers": total, "ContainersRunning": running,
                          "ContainersStopped": total - running, "Images": len(engine.images.list()),
                          "Driver": "overlay", "Name": os.uname().nodename, "ServerVersion": __version__,
                          "OperatingSystem": "minidock", "OSType": "linux", "DockerRootDir": engine.root,
                          "NEventsListener": len(engine.core.events.listeners),
                          **cluster_info(engine)})


def cluster_info(engine: Engine) -> dict[str, object]:
    """Docker's classic-mode fields, and the cluster's hosts."""
    cluster = engine.core.cluster
    if cluster is None:
        return {"ClusterStore": "", "ClusterAdvertise": ""}
    return cluster.info()


async def nodes(engine: Engine, req: Request) -> Response:
    cluster = engine.core.cluster
    if cluster is None:
        raise Unavailable("this daemon is not in a cluster: start it with --cluster-store etcd://HOST:2379 "
                          "--cluster-advertise ADDRESS")
    return Response(200, cluster.node_list())


async def fault(engine: Engine, req: Request) -> Response:
    """Test hook: arm the fault injector (only when the daemon runs with MINIDOCK_FAULT_HOOK=1)."""
    if not faults.enabled:
        raise NotFound("page not found: /minidock/fault")
    body = req.json()
    faults.arm(str(body.get("op", "")), int(body.get("after", 0)))
    return Response(204)


async def check(engine: Engine, req: Request) -> Response:
    return Response(200, {"Problems": await engine.system.check()})


async def repair(engine: Engine, req: Request) -> Response:
    async with engine.locks.hold("networks"):
        repaired = await engine.system.repair()
    return Response(200, {"Repaired": repaired, "Remaining": await engine.system.check()})


async def reset(engine: Engine, req: Request) -> Response:
    async with engine.locks.hold("networks"):
        removed = await engine.system.reset()
    # the store is empty, even of the predefined networks: this daemon's work is done
    asyncio.get_running_loop().call_later(0.2, engine.shutdown)
    return Response(200, {"Removed": removed})


async def topology(engine: Engine, req: Request) -> Response:
    return Response(200, engine.queries.topology())


ROUTES = [
    ("GET", "/minidock/topology", topology), ("GET", "/minidock/nodes", nodes), ("POST", "/minidock/fault", fault),
    ("POST", "/minidock/system/check", check), ("POST", "/minidock/system/repair", repair),
    ("POST", "/minidock/system/reset", reset),
    ("GET", "/_ping", ping), ("HEAD", "/_ping", ping), ("GET", "/version", version), ("GET", "/info", info),
]

"""Engine API paths → engine calls. Request parsing only; no logic of its own."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import struct
from collections.abc import AsyncIterator
from typing import Any

from .. import API_VERSION, __version__
from ..errors import InvalidParameter, NotFound
from ..service import system
from ..service.engine import WAIT_CONDITIONS, Engine
from ..service.views import container_json, container_summary
from ..steps import faults
from ..topology import build as topology_build
from . import apischema
from .http import Hijack, Request, Response, Router, Stream

STDOUT = 1


def frame(stream: int, data: bytes) -> bytes:
    """Docker's multiplexed stream header (stdcopy) for non-Tty output."""
    return struct.pack(">BxxxL", stream, len(data)) + data


def parse_signal(value: str) -> int:
    if not value:
        return signal.SIGKILL
    if value.isdigit():
        return int(value)
    name = value.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise InvalidParameter(f"Invalid signal: {value}") from None


def build(engine: Engine) -> Router:
    r = Router()

    async def ping(req: Request) -> Response:
        return Response(200, "OK", "text/plain")

    async def version(req: Request) -> Response:
        u = os.uname()
        return Response(200, {"Version": __version__, "ApiVersion": API_VERSION, "MinAPIVersion": "1.24",
                              "Os": "linux", "Arch": "amd64" if u.machine == "x86_64" else u.machine,
                              "KernelVersion": u.release, "Platform": {"Name": f"minidock {__version__}"},
                              "Components": [{"Name": "Engine", "Version": __version__,
                                              "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": "1.24",
                                                          "Os": "linux", "KernelVersion": u.release}}]})

    async def info(req: Request) -> Response:
        cs = engine.store.all("containers")
        running = sum(1 for c in cs if c["state"]["status"] == "running")
        return Response(200, {"ID": "minidock", "Containers": len(cs), "ContainersRunning": running,
                              "ContainersStopped": len(cs) - running, "Images": len(engine.images.list()),
                              "Driver": "overlay", "Name": os.uname().nodename, "ServerVersion": __version__,
                              "OperatingSystem": "minidock", "DockerRootDir": engine.root})

    # -- networks
    async def networks_list(req: Request) -> Response:
        return Response(200, [engine.network_view(n) for n in engine.store.all("networks")])

    async def network_inspect(req: Request) -> Response:
        return Response(200, engine.network_view(engine.network(req.params["id"])))

    async def network_create(req: Request) -> Response:
        return Response(201, await engine.create_network(req.json()))

    async def network_rm(req: Request) -> Response:
        await engine.remove_network(req.params["id"])
        return Response(204)

    async def network_connect(req: Request) -> Response:
        body = req.json()
        ep = body.get("EndpointConfig") or {}
        await engine.connect(req.params["id"], body.get("Container") or "",
                             (ep.get("IPAMConfig") or {}).get("IPv4Address") or "", ep.get("Aliases") or [])
        return Response(200)

    async def network_disconnect(req: Request) -> Response:
        body = req.json()
        await engine.disconnect(req.params["id"], body.get("Container") or "", bool(body.get("Force")))
        return Response(200)

    async def network_prune(req: Request) -> Response:
        return Response(200, {"NetworksDeleted": await engine.prune_networks()})

    # -- containers
    def nets_by_id() -> dict[str, dict[str, Any]]:
        return {n["id"]: n for n in engine.store.all("networks")}

    async def containers_list(req: Request) -> Response:
        show_all = req.flag("all")
        out = []
        nets = nets_by_id()
        for c in reversed(engine.store.all("containers")):
            if show_all or c["state"]["status"] == "running":
                out.append(container_summary(c, engine.store.endpoints(container_id=c["id"]), nets))
        return Response(200, out)

    async def container_create(req: Request) -> Response:
        return Response(201, await engine.create_container(req.query.get("name"), req.json()))

    async def container_inspect(req: Request) -> Response:
        c = engine.container(req.params["id"])
        return Response(200, container_json(c, engine.store.endpoints(container_id=c["id"]), nets_by_id(),
                                            engine._dir(c["id"])))

    async def container_start(req: Request) -> Response:
        c = engine.container(req.params["id"])
        if c["state"]["status"] == "running":
            return Response(304)
        await engine.start(c["id"])
        return Response(204)

    async def container_stop(req: Request) -> Response:
        c = engine.container(req.params["id"])
        if c["state"]["status"] != "running":
            return Response(304)
        t = req.query.get("t")
        await engine.stop(c["id"], int(t) if t not in (None, "") else None,
                          parse_signal(req.query.get("signal", "SIGTERM")))
        return Response(204)

    async def container_restart(req: Request) -> Response:
        t = req.query.get("t")
        await engine.restart(req.params["id"], int(t) if t not in (None, "") else None)
        return Response(204)

    async def container_kill(req: Request) -> Response:
        await engine.kill(req.params["id"], parse_signal(req.query.get("signal", "")))
        return Response(204)

    async def container_rm(req: Request) -> Response:
        await engine.remove(req.params["id"], req.flag("force"))
        return Response(204)

    async def container_wait(req: Request) -> Response | Stream:
        ref, condition = req.params["id"], req.query.get("condition", "not-running")
        if condition not in WAIT_CONDITIONS:  # before the headers go out: the body may come much later
            raise InvalidParameter(f"invalid condition: {condition!r}")
        if engine.store.find("containers", ref) is None:  # gone: its last code, or 404
            return Response(200, {"StatusCode": await engine.wait(ref, condition), "Error": None})

        async def body() -> AsyncIterator[bytes]:
            code = await engine.wait(ref, condition)
            yield json.dumps({"StatusCode": code, "Error": None}).encode() + b"\n"

        # the headers go out at once, the body when the container exits: `docker run` waits
        # for the headers (its wait is registered) before it starts the container
        return Stream(body(), "application/json")

    async def container_top(req: Request) -> Response:
        return Response(200, engine.top(req.params["id"], req.query.get("ps_args", "")))

    async def container_resize(req: Request) -> Response:
        c = engine.container(req.params["id"])
        engine.resize(c["id"], int(req.query.get("h", "24")), int(req.query.get("w", "80")))
        return Response(200)

    def open_log(path: str) -> Any:
        try:
            return open(path, "rb")
        except FileNotFoundError:
            raise NotFound("the container's log is gone") from None

    async def follow_file(f: Any, offset: int, done: asyncio.Event | None, tty: bool,
                          follow: bool) -> AsyncIterator[bytes]:
        """The container's log from `offset`, until it exits (when following).

        Takes an open file: a --rm container's directory may be gone before we read.
        """
        with f:
            f.seek(offset)
            while True:
                data = f.read(65536)
                if data:
                    yield data if tty else frame(STDOUT, data)
                    continue
                if not follow or done is None or done.is_set():
                    data = f.read()
                    if data:
                        yield data if tty else frame(STDOUT, data)
                    return
                try:
                    await asyncio.wait_for(done.wait(), 0.05)
                except TimeoutError:
                    pass

    async def container_logs(req: Request) -> Stream:
        c = engine.container(req.params["id"])
        tail = req.query.get("tail", "all")
        path = engine.log_path(c)
        offset = 0
        if tail not in ("", "all"):
            offset = _tail_offset(path, int(tail))
        return Stream(follow_file(open_log(path), offset, engine.exited_event(c["id"]), c["config"]["Tty"],
                                  req.flag("follow")))

    async def container_attach(req: Request) -> Hijack:
        c = engine.container(req.params["id"])
        cid, tty = c["id"], c["config"]["Tty"]
        log = open_log(engine.log_path(c))
        offset = os.fstat(log.fileno()).st_size
        want_stdin = req.flag("stdin")

        started = engine.start_attempt(cid) if _status(engine, cid) != "running" else None

        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            pump = asyncio.create_task(_pump_stdin(engine, cid, reader, c["config"]["StdinOnce"], started)) \
                if want_stdin else None
            try:
                if tty:
                    if _status(engine, cid) != "running" or engine.exited_event(cid) is not None:
                        q = engine.subscribe(cid)
                        try:
                            while (data := await q.get()) is not None:
                                writer.write(data)
                                await writer.drain()
                        finally:
                            engine.unsubscribe(cid, q)
                else:
                    if started is not None:  # docker run attaches first, then starts
                        with contextlib.suppress(asyncio.TimeoutError):
                            await asyncio.wait_for(started.wait(), 60)
                    async for chunk in follow_file(log, offset, engine.exited_event(cid), False, True):
                        writer.write(chunk)
                        await writer.drain()
            finally:
                if pump:
                    pump.cancel()
                if writer.can_write_eof():
                    writer.write_eof()

        return Hijack(run)

    # -- exec
    async def exec_create(req: Request) -> Response:
        return Response(201, {"Id": engine.create_exec(req.params["id"], req.json())})

    async def exec_start(req: Request) -> Response | Hijack:
        ex = engine.execs.get(req.params["id"])
        if ex is None:
            raise NotFound(f"No such exec instance: {req.params['id']}")
        body = req.json()
        from ..service import execs

        if body.get("Detach"):
            task = asyncio.create_task(execs.start(engine, ex, None, None))
            engine.background.add(task)
            task.add_done_callback(engine.background.discard)
            while not ex["pid"] and not task.done():
                await asyncio.sleep(0.005)
            if task.done() and task.exception():
                raise task.exception()  # type: ignore[misc]
            return Response(200)

        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await execs.start(engine, ex, reader, writer)

        return Hijack(run)

    async def exec_inspect(req: Request) -> Response:
        ex = engine.execs.get(req.params["id"])
        if ex is None:
            raise NotFound(f"No such exec instance: {req.params['id']}")
        return Response(200, {"ID": ex["id"], "Running": ex["running"], "ExitCode": ex["exit_code"],
                              "ContainerID": ex["container_id"], "Pid": ex["pid"],
                              "ProcessConfig": {"tty": ex["tty"], "entrypoint": ex["cmd"][0],
                                                "arguments": ex["cmd"][1:]}})

    async def exec_resize(req: Request) -> Response:
        from ..service import execs

        ex = engine.execs.get(req.params["id"])
        if ex is None:
            raise NotFound(f"No such exec instance: {req.params['id']}")
        execs.resize(ex, int(req.query.get("h", "24")), int(req.query.get("w", "80")))
        return Response(200)

    # -- images
    async def images_list(req: Request) -> Response:
        out = []
        for m in engine.images.list():
            out.append({"Id": m["id"], "RepoTags": [f"{m['name']}:latest"], "Created": m.get("created", 0),
                        "Size": m.get("size", 0), "Labels": {"minidock.builtin": str(m["builtin"]).lower()}})
        return Response(200, out)

    async def image_import(req: Request) -> Response:
        meta = engine.images.import_(req.query.get("repo") or req.query.get("name", ""),
                                     req.query.get("fromSrc") or req.query.get("source", ""))
        return Response(200, {"status": meta["id"]})

    async def image_rm(req: Request) -> Response:
        name = req.params["name"]
        in_use = any(c["image_name"] == name.split(":")[0] for c in engine.store.all("containers"))
        engine.images.remove(name, in_use)
        return Response(200, [{"Deleted": name}])

    async def image_pull(req: Request) -> Response:
        raise NotFound(
            f"minidock has no registry: it runs images from its local store (see `minidock image ls`); "
            f"{req.query.get('fromImage', 'the image')} maps to a built-in root filesystem when run")

    async def fault(req: Request) -> Response:
        """Test hook: arm the fault injector (only when the daemon runs with MINIDOCK_FAULT_HOOK=1)."""
        if not faults.enabled:
            raise NotFound("page not found: /minidock/fault")
        body = req.json()
        faults.arm(str(body.get("op", "")), int(body.get("after", 0)))
        return Response(204)

    async def system_check(req: Request) -> Response:
        return Response(200, {"Problems": await system.check(engine)})

    async def system_repair(req: Request) -> Response:
        async with engine.locks.hold("networks"):
            repaired = await system.repair(engine)
        return Response(200, {"Repaired": repaired, "Remaining": await system.check(engine)})

    async def system_reset(req: Request) -> Response:
        async with engine.locks.hold("networks"):
            removed = await system.reset(engine)
        # the store is empty, even of the predefined networks: this daemon's work is done
        asyncio.get_running_loop().call_later(0.2, engine.shutdown)
        return Response(200, {"Removed": removed})

    async def topology(req: Request) -> Response:
        return Response(200, topology_build(engine.store.all("networks"), engine.store.all("containers"),
                                            engine.store.endpoints()))

    for method, path, h in [
        ("GET", "/minidock/topology", topology), ("POST", "/minidock/fault", fault),
        ("POST", "/minidock/system/check", system_check), ("POST", "/minidock/system/repair", system_repair),
        ("POST", "/minidock/system/reset", system_reset),
        ("GET", "/_ping", ping), ("HEAD", "/_ping", ping), ("GET", "/version", version), ("GET", "/info", info),
        ("GET", "/networks", networks_list), ("POST", "/networks/create", network_create),
        ("POST", "/networks/prune", network_prune),
        ("GET", "/networks/{id}", network_inspect), ("DELETE", "/networks/{id}", network_rm),
        ("POST", "/networks/{id}/connect", network_connect),
        ("POST", "/networks/{id}/disconnect", network_disconnect),
        ("GET", "/containers/json", containers_list), ("POST", "/containers/create", container_create),
        ("GET", "/containers/{id}/json", container_inspect),
        ("POST", "/containers/{id}/start", container_start), ("POST", "/containers/{id}/stop", container_stop),
        ("POST", "/containers/{id}/restart", container_restart),
        ("POST", "/containers/{id}/kill", container_kill), ("DELETE", "/containers/{id}", container_rm),
        ("POST", "/containers/{id}/wait", container_wait), ("GET", "/containers/{id}/top", container_top),
        ("GET", "/containers/{id}/logs", container_logs), ("POST", "/containers/{id}/attach", container_attach),
        ("POST", "/containers/{id}/resize", container_resize), ("POST", "/containers/{id}/exec", exec_create),
        ("POST", "/exec/{id}/start", exec_start), ("GET", "/exec/{id}/json", exec_inspect),
        ("POST", "/exec/{id}/resize", exec_resize),
        ("GET", "/images/json", images_list), ("POST", "/images/import", image_import),
        ("POST", "/images/create", image_pull), ("DELETE", "/images/{name}", image_rm),
    ]:
        schema = apischema.body_schema(method, path)
        r.add(method, path, _checked(h, schema, path) if schema else h)
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


def _status(engine: Engine, cid: str) -> str:
    c = engine.store.get("containers", cid)
    return c["state"]["status"] if c else "removed"


def _tail_offset(path: str, lines: int) -> int:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return 0
    if lines <= 0:
        return len(data)
    pos = len(data)
    if data.endswith(b"\n"):
        pos -= 1
    for _ in range(lines):
        pos = data.rfind(b"\n", 0, pos)
        if pos < 0:
            return 0
    return pos + 1


async def _pump_stdin(engine: Engine, cid: str, reader: asyncio.StreamReader, once: bool,
                      started: asyncio.Event | None = None) -> None:
    if started is not None:
        # `docker run -i` attaches, then starts: what it sends (or its EOF, when stdin is a
        # short pipe) must wait in the socket until the process has a stdin to take it
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(started.wait(), 60)
    while True:
        data = await reader.read(65536)
        if not data:
            if once:
                engine.close_stdin(cid)
            return
        await engine.write_stdin(cid, data)



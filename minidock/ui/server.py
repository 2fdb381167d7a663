"""The web server of `minidock ui` (aiohttp), a read-only client of the daemon.

    browser ──HTTP + token──▶ this server ──HTTP over the unix socket──▶ daemon
       ▲   GET /              the page (static/)                         GET /events
       └── GET /api/stream    server-sent events:                        GET /minidock/topology
                              topology (SVG from Graphviz), counters     GET /minidock/counters
           GET /api/containers/NAME/details ─────────────────────────▶ GET /minidock/containers/{id}/details
           POST /api/trace ──────────────────────────────────────────▶ POST /minidock/trace

The picture follows the daemon: each event on GET /events (Docker's stream)
makes it fetch the topology again, and it redraws when the topology changed.
A daemon without /events (or while the stream is down) is polled every
500 ms instead. Counters are fetched every second while a page is open.

Every request must carry the token printed with the URL (?token=…, or the
X-Minidock-Token header), else 403: the page shows a host's firewall and
addresses, and 127.0.0.1 is reachable by every local user.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import secrets
import shutil
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from .. import API_VERSION
from ..client import q, socket_path
from ..topology import dot

log = logging.getLogger("minidock.ui")
STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
POLL = 0.5  # seconds between two topology reads without /events
SAFETY_POLL = 5.0  # with /events: a read now and then all the same (an event the stream lost)
AGAIN = 0.3  # seconds after an event: the topology once more
COUNTERS_EVERY = 1.0
SSE_PING = 15.0  # a comment line, so that a closed page is noticed


class DaemonUnavailable(Exception):
    pass


class Daemon:
    """The daemon's API over its unix socket (an async twin of minidock/client.py)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.prefix = f"http://minidock/v{API_VERSION}"
        self.session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        self.session = aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=self.path),
                                             timeout=aiohttp.ClientTimeout(total=None, sock_connect=5))

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    async def call(self, method: str, path: str, body: Any = None, timeout: float = 30) -> tuple[int, Any]:
        """(status, JSON or text); DaemonUnavailable when the socket does not answer."""
        assert self.session is not None
        try:
            async with self.session.request(method, self.prefix + path, json=body,
                                            timeout=aiohttp.ClientTimeout(total=timeout)) as r:
                raw = await r.read()
                ctype = r.headers.get("Content-Type", "")
                data: Any = json.loads(raw) if raw and ctype.startswith("application/json") else raw.decode(
                    errors="replace")
                return r.status, data
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            raise DaemonUnavailable(f"cannot reach the minidock daemon at unix://{self.path}: {e}") from None

    async def events(self, on_event: Callable[[dict[str, Any]], None]) -> bool:
        """Follow GET /events until it ends; False when the daemon has no /events."""
        assert self.session is not None
        try:
            async with self.session.get(self.prefix + "/events") as r:
                if r.status != 200:
                    return False
                on_event({})  # connected: what happened before is read once, now
                async for line in r.content:
                    if line.strip():
                        try:
                            on_event(json.loads(line))
                        except ValueError:
                            continue
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            raise DaemonUnavailable(str(e)) from None
        return True


async def render_svg(topo: dict[str, Any]) -> str:
    """The topology's DOT (minidock/topology.py, as `minidock topology --format dot`) laid out by
    Graphviz, as an <svg> element to put in the page."""
    proc = await asyncio.create_subprocess_exec(
        "dot", "-Tsvg", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate(dot(topo).encode())
    if proc.returncode != 0:
        raise RuntimeError(f"dot failed: {err.decode().strip()}")
    svg = out.decode()
    return svg[svg.find("<svg"):]


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class Hub:
    """The one follower of the daemon, and the pages it keeps up to date."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.clients: set[asyncio.Queue[bytes]] = set()
        self.topology: dict[str, Any] | None = None
        self.svg = ""
        self.version = 0
        self.mode = "starting"  # events | polling | daemon unreachable
        self.counters: dict[str, Any] | None = None
        self.counters_available = True
        self.kick = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    # -- what a page gets
    def snapshot(self) -> list[bytes]:
        out = [_sse("status", self.status())]
        if self.topology is not None:
            out.append(_sse("topology", self.topology_message()))
        if self.counters is not None:
            out.append(_sse("counters", self.counters))
        return out

    def status(self) -> dict[str, Any]:
        return {"mode": self.mode, "counters": self.counters_available}

    def topology_message(self) -> dict[str, Any]:
        return {"version": self.version, "topology": self.topology, "svg": self.svg}

    def broadcast(self, frame: bytes) -> None:
        for queue in list(self.clients):
            if queue.full():  # a page that stopped reading: it gets a fresh snapshot on reconnect
                self.clients.discard(queue)
                continue
            queue.put_nowait(frame)

    def set_mode(self, mode: str) -> None:
        if mode != self.mode:
            self.mode = mode
            self.broadcast(_sse("status", self.status()))

    # -- following the daemon
    def start(self) -> None:
        self.tasks = [asyncio.create_task(t()) for t in (self._follow_events, self._refresher, self._count)]

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        for t in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t

    async def refresh(self) -> None:
        status, topo = await self.daemon.call("GET", "/minidock/topology", timeout=10)
        if status != 200 or not isinstance(topo, dict):
            raise DaemonUnavailable(f"GET /minidock/topology answered {status}")
        if topo == self.topology:
            return
        self.svg = await render_svg(topo)
        self.topology = topo
        self.version += 1
        self.broadcast(_sse("topology", self.topology_message()))

    async def _refresher(self) -> None:
        again = False
        while True:
            # after an event, a second read shortly after: the change it announced may land later
            wait = AGAIN if again else SAFETY_POLL if self.mode == "events" else POLL
            again = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.kick.wait(), wait)
                again = True
            self.kick.clear()
            try:
                await self.refresh()
                if self.mode in ("starting", "daemon unreachable"):
                    self.set_mode("polling")
            except DaemonUnavailable as e:
                if self.mode != "daemon unreachable":  # once, not every 500 ms
                    log.warning("%s", e)
                self.set_mode("daemon unreachable")
            except RuntimeError as e:
                log.error("%s", e)

    async def _follow_events(self) -> None:
        def on_event(_ev: dict[str, Any]) -> None:
            self.set_mode("events")
            self.kick.set()

        while True:
            try:
                has_events = await self.daemon.events(on_event)
            except DaemonUnavailable as e:
                log.info("events stream: %s", e)
                has_events = True
            if self.mode == "events":
                self.set_mode("polling")
            # no /events here: the refresher polls; ask again now and then (a daemon upgraded)
            await asyncio.sleep(1.0 if has_events else 30.0)

    async def _count(self) -> None:
        while True:
            await asyncio.sleep(COUNTERS_EVERY if self.counters_available else 10 * COUNTERS_EVERY)
            if not self.clients:
                continue
            try:
                status, data = await self.daemon.call("GET", "/minidock/counters", timeout=5)
            except DaemonUnavailable:
                continue
            available = status == 200 and isinstance(data, dict)
            if available != self.counters_available:
                self.counters_available = available
                self.broadcast(_sse("status", self.status()))
            if available:
                self.counters = data
                self.broadcast(_sse("counters", data))


# -- the web side ------------------------------------------------------------

HUB = web.AppKey("hub", Hub)
TOKEN = web.AppKey("token", str)


def _token_guard(token: str) -> Callable[[web.Request, Callable[[web.Request], Awaitable[web.StreamResponse]]],
                                         Awaitable[web.StreamResponse]]:
    @web.middleware
    async def guard(request: web.Request,
                    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        given = request.query.get("token") or request.headers.get("X-Minidock-Token", "")
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise web.HTTPForbidden(text="403 Forbidden: open the URL `minidock ui` printed (it holds the token)\n")
        return await handler(request)

    return guard


async def index(request: web.Request) -> web.Response:
    with open(os.path.join(STATIC, "index.html")) as f:
        page = f.read()
    # no Referer: the token is in this page's URL
    return web.Response(text=page.replace("__TOKEN__", request.app[TOKEN]), content_type="text/html",
                        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


STATIC_TYPES = {".js": "text/javascript", ".css": "text/css"}


async def static(request: web.Request) -> web.FileResponse:
    name = request.match_info["name"]
    ext = os.path.splitext(name)[1]
    if "/" in name or ext not in STATIC_TYPES or not os.path.isfile(os.path.join(STATIC, name)):
        raise web.HTTPNotFound()
    return web.FileResponse(os.path.join(STATIC, name), headers={"Content-Type": STATIC_TYPES[ext]})


async def stream(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB]
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
    await resp.prepare(request)
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=256)
    for frame in hub.snapshot():
        queue.put_nowait(frame)
    hub.clients.add(queue)
    try:
        while True:
            try:
                frame = await asyncio.wait_for(queue.get(), SSE_PING)
            except TimeoutError:
                if queue not in hub.clients:
                    break  # dropped for falling behind: the browser reconnects and gets a snapshot
                frame = b": ping\n\n"
            await resp.write(frame)
    except ConnectionResetError:  # the page went away (aiohttp's own reset error is one too)
        pass
    finally:
        hub.clients.discard(queue)
    return resp


async def topology(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    if hub.topology is None:
        await hub.refresh()
    return web.json_response({**hub.topology_message(), **hub.status()})


async def _relay(request: web.Request, method: str, path: str, body: Any = None,
                 missing: str = "") -> web.Response:
    try:
        status, data = await request.app[HUB].daemon.call(method, path, body)
    except DaemonUnavailable as e:
        return web.json_response({"message": str(e)}, status=502)
    if status == 404 and missing and isinstance(data, dict) and str(data.get("message", "")).startswith("page not found"):
        return web.json_response({"message": missing, "available": False}, status=501)
    if not isinstance(data, (dict, list)):
        data = {"message": str(data)}
    return web.json_response(data, status=status)


async def details(request: web.Request) -> web.Response:
    return await _relay(request, "GET", f"/minidock/containers/{q(request.match_info['name'])}/details",
                        missing="container details not available: this daemon has no /minidock/containers/{id}/details")


async def trace(request: web.Request) -> web.Response:
    """The one POST: a probe the daemon sends and traces, which changes nothing that stays."""
    try:
        body = await request.json()
    except ValueError:
        return web.json_response({"message": "invalid JSON in request body"}, status=400)
    if not isinstance(body, dict):
        return web.json_response({"message": "the body must be a JSON object"}, status=400)
    return await _relay(request, "POST", "/minidock/trace", body,
                        missing="trace not available: this daemon has no POST /minidock/trace")


def make_app(daemon_socket: str, token: str) -> web.Application:
    app = web.Application(middlewares=[_token_guard(token)])
    app[TOKEN] = token
    daemon = Daemon(daemon_socket)
    hub = Hub(daemon)
    app[HUB] = hub

    async def lifecycle(app: web.Application) -> Any:
        await daemon.open()
        hub.start()
        yield
        await hub.stop()
        await daemon.close()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/", index)
    app.router.add_get("/static/{name}", static)
    app.router.add_get("/api/stream", stream)
    app.router.add_get("/api/topology", topology)
    app.router.add_get("/api/containers/{name}/details", details)
    app.router.add_post("/api/trace", trace)
    return app


def parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"--listen wants HOST:PORT, not {listen!r}")
    return (host.strip("[]") or "127.0.0.1"), int(port)


async def serve(daemon_host: str | None, listen: str, out: Any = sys.stdout) -> None:
    host, port = parse_listen(listen)
    token = secrets.token_urlsafe(18)
    app = make_app(socket_path(daemon_host), token)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0]  # --listen 127.0.0.1:0: the port the kernel chose
    shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    out.write(f"minidock ui: http://{shown}:{bound[1]}/?token={token}\n")
    out.flush()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(daemon_host: str | None, listen: str) -> None:
    if shutil.which("dot") is None:
        raise SystemExit("minidock: Graphviz is not installed (apt-get install graphviz): the ui draws with dot")
    logging.basicConfig(level=logging.WARNING, format="minidock ui: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(daemon_host, listen))

"""minidock ui's server without a browser or a daemon: the token guard, the follower's two ways
to notice a change (events, polling), and the ids the page finds in Graphviz's SVG."""

from __future__ import annotations

import asyncio
import re
import shutil
from typing import Any

import pytest

pytest.importorskip("aiohttp")

from aiohttp.test_utils import TestClient, TestServer  # noqa: E402

from minidock import topology  # noqa: E402
from minidock.service.live import _address  # noqa: E402
from minidock.ui import server  # noqa: E402

NEEDS_DOT = pytest.mark.skipif(shutil.which("dot") is None, reason="needs Graphviz's dot")
NET = {"name": "bridge", "driver": "bridge", "bridge": "minidock0", "subnet": "172.17.0.0/16",
       "gateway": "172.17.0.1", "subnet6": "", "gateway6": "", "internal": False}


def _topo(*names: str) -> dict[str, Any]:
    cs = [{"name": n, "netns": f"md-{n}", "kind": "bridge", "shares": "", "ports": [],
           "interfaces": [{"network": "bridge", "ifname": "eth0", "veth": f"veth{k:07x}", "ip": f"172.17.0.{k + 2}",
                           "prefixlen": 16, "mac": "", "ip6": "", "prefixlen6": 0}]} for k, n in enumerate(names)]
    return {"networks": [NET], "containers": cs, "isolated": [], "lans": []}


class FakeDaemon(server.Daemon):
    """The daemon's answers, from a variable; /events only when `with_events`."""

    def __init__(self, with_events: bool) -> None:
        super().__init__("/nonexistent.sock")
        self.topo = _topo("a1")
        self.with_events = with_events
        self.feed: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.reads = 0

    async def open(self) -> None:
        pass

    async def call(self, method: str, path: str, body: Any = None, timeout: float = 30) -> tuple[int, Any]:
        if path == "/minidock/topology":
            self.reads += 1
            return 200, self.topo
        if path == "/minidock/counters":
            return 200, {"Time": 0, "Host": {}, "Containers": {}}
        return 404, {"message": f"page not found: {path}"}

    async def events(self, on_event: Any) -> bool:
        if not self.with_events:
            return False
        on_event({})
        while True:
            on_event(await self.feed.get())


async def _follow(with_events: bool) -> tuple[float, str, int]:
    """How long the hub takes to publish a container that appears, and in which mode."""
    daemon = FakeDaemon(with_events)
    hub = server.Hub(daemon)
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    hub.clients.add(queue)
    hub.start()
    try:
        while hub.version < 1:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        reads = daemon.reads
        daemon.topo = _topo("a1", "late")
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        if with_events:
            daemon.feed.put_nowait({"Type": "container", "Action": "start"})
        while hub.version < 2:
            await asyncio.sleep(0.005)
        took = loop.time() - t0
        frames = b""
        while not queue.empty():
            frames += queue.get_nowait()
        assert b'"name":"late"' in frames and b"event: topology" in frames
        return took, hub.mode, daemon.reads - reads
    finally:
        await hub.stop()


@NEEDS_DOT
def test_events_redraw_at_once_and_polling_within_half_a_second() -> None:
    took, mode, _ = asyncio.run(_follow(with_events=True))
    assert mode == "events" and took < 0.3
    took, mode, reads = asyncio.run(_follow(with_events=False))
    assert mode == "polling" and took < server.POLL + 0.3 and reads >= 1


@NEEDS_DOT
def test_the_token_guards_every_path() -> None:
    async def run() -> None:
        app = server.make_app("/nonexistent.sock", "s3cret")
        app[server.HUB].daemon = FakeDaemon(with_events=False)
        async with TestClient(TestServer(app)) as client:
            for path in ("/", "/static/app.js", "/api/topology", "/api/stream", "/api/containers/a1/details"):
                assert (await client.get(path)).status == 403, path
                assert (await client.get(path + "?token=wrong")).status == 403, path
            assert (await client.post("/api/trace", json={})).status == 403
            page = await client.get("/?token=s3cret")
            assert page.status == 200 and 'data-token="s3cret"' in await page.text()
            assert (await client.get("/static/app.js", headers={"X-Minidock-Token": "s3cret"})).status == 200
            assert (await client.get("/static/../server.py?token=s3cret")).status == 404
            topo = await (await client.get("/api/topology?token=s3cret")).json()
            assert 'id="ns:a1"' in topo["svg"] and 'id="if:a1:eth0"' in topo["svg"]
            # read-only: nothing but GET, and the trace POST that a daemon without it refuses gracefully
            assert (await client.delete("/api/topology?token=s3cret")).status == 405
            r = await client.post("/api/trace?token=s3cret", json={"Source": "a1", "Destination": "host"})
            assert r.status == 501 and "trace not available" in (await r.json())["message"]

    asyncio.run(run())


def test_listen_address() -> None:
    assert server.parse_listen("127.0.0.1:8765") == ("127.0.0.1", 8765)
    assert server.parse_listen("[::1]:0") == ("::1", 0)
    for bad in ("8765", "localhost:http", "127.0.0.1:70000"):
        with pytest.raises(ValueError):
            server.parse_listen(bad)


def test_dot_names_what_the_page_finds() -> None:
    text = topology.dot(_topo("a1"))
    assert re.search(r'"minidock0" \[[^;]*id="br:minidock0"', text)
    assert re.search(r'"ns:a1" \[[^;]*id="ns:a1", class="container"', text)
    assert re.search(r'-> "ns:a1" \[.*id="if:a1:eth0", class="veth"', text)


def test_a_rule_mentions_an_address_alone() -> None:
    four = re.compile(_address("172.17.0.2"))
    assert four.search("-A MINIDOCK -d 172.17.0.2/32 ! -i br0 -j ACCEPT")
    assert four.search("-j DNAT --to-destination 172.17.0.2:80")
    assert not four.search("-d 172.17.0.22/32") and not four.search("-s 172.17.0.2/16")
    six = re.compile(_address("fd00::2"))
    assert six.search("-j DNAT --to-destination [fd00::2]:80") and six.search("-d fd00::2/128")
    assert not six.search("-d fd00::20/128") and not six.search("-s fd00::2/64")

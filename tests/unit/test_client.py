"""minidock.client against the daemon's own HTTP server (daemon/http.py) on a Unix
socket of the test's: requests on one kept connection, and a new one when the
daemon has closed it (as a restarted daemon does)."""

from __future__ import annotations

import asyncio
import select
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from minidock.client import Client
from minidock.daemon.http import Request, Response, Router, serve_connection


class Server:
    """The daemon's serve_connection behind a Router with one route, in a thread; counts the
    connections it accepted, and can drop every open one."""

    def __init__(self, path: str) -> None:
        self.path, self.accepted = path, 0
        self.writers: list[asyncio.StreamWriter] = []
        self.loop = asyncio.new_event_loop()
        self.router = Router()
        self.router.add("POST", "/echo", self.echo)
        started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self.thread.start()
        assert started.wait(5)

    async def echo(self, req: Request) -> Response:
        return Response(200, {"got": req.json(), "connection": self.accepted})

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.writers.append(writer)
        await serve_connection(self.router, reader, writer)

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_unix_server(self._serve, self.path))
        started.set()
        self.loop.run_forever()

    def drop_connections(self) -> None:
        def drop() -> None:
            for w in self.writers:
                w.close()
            self.writers.clear()
        self.loop.call_soon_threadsafe(drop)

    async def _shutdown(self) -> None:
        self.server.close()
        for w in self.writers:
            w.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(str(tmp_path / "d.sock"))
    yield s
    s.stop()


def test_requests_share_one_kept_connection(server: Server) -> None:
    api = Client(f"unix://{server.path}")
    answers = [api.call("POST", "/echo", body={"n": n}) for n in range(3)]
    api.close()
    assert [a["got"]["n"] for a in answers] == [0, 1, 2]
    assert server.accepted == 1


def test_a_connection_the_daemon_closed_is_replaced(server: Server) -> None:
    api = Client(f"unix://{server.path}")
    assert api.call("POST", "/echo", body={"n": 1})["got"] == {"n": 1}
    server.drop_connections()
    kept = api._idle
    assert kept is not None and kept.sock is not None
    assert select.select([kept.sock], [], [], 5)[0], "the daemon's close never reached the client"
    assert api.call("POST", "/echo", body={"n": 2})["got"] == {"n": 2}
    api.close()
    assert server.accepted == 2

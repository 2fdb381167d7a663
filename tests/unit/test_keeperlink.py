"""The daemon's end of the keeper (kernel/keeperlink.py, service/supervisor.py) against a
scripted keeper: a Unix socket of the test's own that reads the daemon's requests and
answers them, or sends events, in an order the test chooses. Races that depend on the
order of messages on that socket are played here step by step, without a kernel object.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from minidock.kernel.keeperlink import Keeper, socket_path
from minidock.service.supervisor import Runtime, Supervisor

SPEC: dict[str, Any] = {"new_netns": True, "share_pid": False, "share_uts": False, "mounts": []}


class ScriptedKeeper:
    """The keeper's end of the socket: requests read one at a time, answers and events
    sent when the test says."""

    def __init__(self, root: Path) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.listener.bind(socket_path(str(root)))
        self.listener.listen(1)
        self.conn: socket.socket | None = None

    async def accept(self) -> None:
        self.conn, _ = await asyncio.to_thread(self.listener.accept)

    async def request(self) -> dict[str, Any]:
        assert self.conn is not None
        data = await asyncio.to_thread(self.conn.recv, 1 << 16)
        return json.loads(data)

    def send(self, msg: dict[str, Any]) -> None:
        assert self.conn is not None
        self.conn.send(json.dumps(msg).encode())

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.listener.close()


@contextlib.asynccontextmanager
async def linked(tmp_path: Path) -> AsyncIterator[tuple[Supervisor, ScriptedKeeper]]:
    """A supervisor that reached the scripted keeper (its `hello` answered, nothing ready)."""
    keeper = ScriptedKeeper(tmp_path)

    async def on_exit(_cid: str, _code: int | None) -> None:
        pass

    sup = Supervisor(on_exit, str(tmp_path))
    accepted = asyncio.ensure_future(keeper.accept())
    opened = asyncio.ensure_future(sup.open())
    await accepted
    assert (await keeper.request())["op"] == "hello"
    keeper.send({"ok": True, "pid": os.getpid(), "boxes": [], "exited": [], "ready": []})
    await opened
    try:
        yield sup, keeper
    finally:
        assert sup.keeper is not None
        sup.keeper.close()
        keeper.close()


def play(tmp_path: Path, script: Callable[[Supervisor, ScriptedKeeper], Awaitable[None]]) -> None:
    async def go() -> None:
        async with linked(tmp_path) as (sup, keeper):
            await asyncio.wait_for(script(sup, keeper), 10)
    asyncio.run(go())


async def until(cond: Any) -> None:
    for _ in range(200):
        if cond():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the daemon never got there")


def test_no_ready_process_is_claimed_while_the_keeper_may_have_given_it_away(tmp_path: Path) -> None:
    async def script(sup: Supervisor, keeper: ScriptedKeeper) -> None:
        # the race a fresh-clone CI run lost: start B asks for any process; the keeper advertises
        # P, then gives P to B (its "gone" after the advert); the daemon read the advert first,
        # and start A claimed P: both wired their networks into P's namespace
        log = str(tmp_path / "b.log")
        b = asyncio.ensure_future(sup.prepare("b", SPEC, log, Runtime()))
        assert (await keeper.request())["ready"] == 0
        keeper.send({"op": "ready", "pid": 4242})
        await until(lambda: sup.ready == [4242])
        assert sup.claim_ready(SPEC) == 0, "claimed a process the keeper may have given to B"
        keeper.send({"op": "ready", "pid": 4242, "gone": True})
        keeper.send({"ok": True, "pid": 4242, "start": 1})
        assert await b == 4242
        assert sup.ready == [] and sup.claim_ready(SPEC) == 0
    play(tmp_path, script)


def test_a_ready_process_is_claimed_once_no_start_asks_for_any(tmp_path: Path) -> None:
    async def script(sup: Supervisor, keeper: ScriptedKeeper) -> None:
        b = asyncio.ensure_future(sup.prepare("b", SPEC, str(tmp_path / "b.log"), Runtime()))
        await keeper.request()
        keeper.send({"op": "ready", "pid": 4343})
        keeper.send({"ok": True, "pid": 5000, "start": 1})  # B got a process made for it
        assert await b == 5000
        assert sup.claim_ready(SPEC) == 4343
    play(tmp_path, script)


def test_a_failed_prepare_no_longer_holds_claims_back(tmp_path: Path) -> None:
    async def script(sup: Supervisor, keeper: ScriptedKeeper) -> None:
        b = asyncio.ensure_future(sup.prepare("b", SPEC, str(tmp_path / "b.log"), Runtime()))
        await keeper.request()
        keeper.send({"op": "ready", "pid": 4444})
        keeper.send({"ok": False, "error": "no such image layer"})
        with pytest.raises(Exception, match="no such image layer"):
            await b
        assert sup.claim_ready(SPEC) == 4444
    play(tmp_path, script)


def test_requests_reach_the_keeper_in_call_order_when_the_socket_is_full(tmp_path: Path) -> None:
    async def script(sup: Supervisor, keeper: ScriptedKeeper) -> None:
        assert sup.keeper is not None and sup.keeper.sock is not None
        link_: Keeper = sup.keeper
        filler = b"x" * 60000
        sent = 0
        while True:  # fill the socket's buffer: the next call cannot be sent at once
            try:
                link_.sock.send(filler)  # type: ignore[union-attr]
                sent += 1
            except BlockingIOError:
                break
        answers = [link_.call({"op": "n", "n": i}) for i in range(5)]
        assert link_.outbox, "the socket had room: the test shows nothing"
        assert keeper.conn is not None
        for _ in range(sent):
            assert await asyncio.to_thread(keeper.conn.recv, 1 << 16) == filler
        seen = []
        for _ in range(5):
            req = await keeper.request()
            seen.append(req["n"])
            keeper.send({"ok": True, "n": req["n"]})
        assert seen == list(range(5))
        assert [(await a)[0]["n"] for a in answers] == list(range(5))
    play(tmp_path, script)

"""The events' pure parts: Docker's filter semantics (moby's daemon/events/filter.go),
the ring's replay window, and the time values `--since`/`--until` take."""

from __future__ import annotations

import asyncio
import time

import pytest

from minidock import timestamps
from minidock.apifilters import parse as parse_filters
from minidock.errors import InvalidParameter
from minidock.service.events import Events, matches


def ev(kind: str, action: str, actor: str, **attrs: str) -> dict:
    return {"Type": kind, "Action": action, "Actor": {"ID": actor, "Attributes": attrs}, "scope": "local"}


START = ev("container", "start", "abc123", name="web", image="alpine:3.19", tier="front")
CONNECT = ev("network", "connect", "net999", name="front", type="bridge", container="abc123")
EXEC = ev("container", "exec_create: sh -c true", "abc123", name="web", image="alpine:3.19")


@pytest.mark.parametrize(("filters", "start", "connect"), [
    ({}, True, True),
    ({"type": ["container"]}, True, False),
    ({"event": ["start", "die"]}, True, False),
    ({"container": ["web"]}, True, False),
    ({"container": ["abc"]}, True, False),  # an id prefix
    ({"network": ["front"]}, False, True),
    ({"container": ["web"], "network": ["front"]}, False, False),  # every key must match, whatever the type
    ({"image": ["alpine"]}, True, False),  # the tag stripped
    ({"image": ["alpine:3.19"]}, True, False),
    ({"label": ["tier=front"]}, True, False),
    ({"label": ["tier"]}, True, False),
    ({"label": ["tier=back"]}, False, False),
    ({"scope": ["swarm"]}, False, False),
])
def test_filters_match_as_dockers(filters: dict, start: bool, connect: bool) -> None:
    assert matches(filters, START) is start
    assert matches(filters, CONNECT) is connect


def test_exec_events_match_their_verb_alone() -> None:
    assert matches({"event": ["exec_create"]}, EXEC)
    assert not matches({"event": ["exec"]}, EXEC)


def test_filters_json_in_both_of_dockers_forms() -> None:
    assert parse_filters('{"type":{"container":true},"event":["die"]}') == {"type": ["container"], "event": ["die"]}
    assert parse_filters("") == {}
    for bad in ("[1]", "{", '{"type": 3}'):
        with pytest.raises(InvalidParameter, match="invalid filter"):
            parse_filters(bad)


def test_the_ring_replays_a_window_and_listeners_get_what_passes() -> None:
    async def run() -> None:
        bus = Events(size=3)
        for i in range(5):
            bus.emit("network", "create", f"n{i}", {"name": f"n{i}"})
        assert [e["Actor"]["ID"] for e in bus.ring] == ["n2", "n3", "n4"]
        live, everything = bus.subscribe(None, None, {})
        assert live == []  # no window given: nothing replayed, as Docker
        bus.unsubscribe(everything)
        mid = bus.ring[1]["timeNano"]
        replay, q = bus.subscribe(mid, None, {"network": ["n4"]})
        assert [e["Actor"]["ID"] for e in replay] == ["n4"]
        bus.emit("network", "destroy", "n4", {"name": "n4"})
        bus.emit("network", "destroy", "n3", {"name": "n3"})
        assert q.get_nowait()["Action"] == "destroy" and q.empty()
        bus.unsubscribe(q)
        assert not bus.listeners

    asyncio.run(run())


def test_legacy_fields_for_containers_and_images_only() -> None:
    bus = Events()
    c = bus.emit("container", "die", "abc", {"image": "busybox", "name": "x", "exitCode": "3"})
    assert list(c)[:3] == ["status", "id", "from"] and (c["status"], c["id"], c["from"]) == ("die", "abc", "busybox")
    n = bus.emit("network", "create", "n1", {"name": "n1"})
    assert "status" not in n and n["time"] == n["timeNano"] // 10**9


def test_time_values_as_dockers() -> None:
    now = 1_800_000_000 * 10**9
    assert timestamps.parse("10m", now) == now - 600 * 10**9
    assert timestamps.parse("1h30m", now) == now - 5400 * 10**9
    assert timestamps.parse("1733479200") == 1733479200 * 10**9
    assert timestamps.parse("1733479200.5") == 1733479200 * 10**9 + 500_000_000
    assert timestamps.parse("2026-12-06T10:00:00Z") == 1796551200 * 10**9
    assert timestamps.parse("2026-12-06T10:00:00.000000001+01:00") == (1796551200 - 3600) * 10**9 + 1
    assert timestamps.unix_text(1796551200 * 10**9 + 5) == "1796551200.000000005"
    for bad in ("", "soon", "2026-13-01", "1.2.3"):
        with pytest.raises(timestamps.TimeError):
            timestamps.parse(bad)
    assert timestamps.rfc3339_nano_fixed(time.time_ns()).count(".") == 1

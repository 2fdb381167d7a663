"""The daemon's events: what happened to containers, networks, images and
volumes, in Docker's shape (GET /events, `docker events`).

    a service ──emit()──▶ Events ──▶ the ring: the last 1000, replayed for ?since / ?until
                                 └──▶ each listener's queue (a streaming GET /events)

An event is Docker's Message: {"Type", "Action", "Actor": {"ID", "Attributes"},
"scope": "local", "time", "timeNano"}, and for containers and images the
legacy "status", "id" (and "from") that Docker still sends before API 1.52.
Any service emits through `core.events`: `container(c, "start")`,
`network(net, "connect", container=cid)`, `volume(name, "create", driver=…)`,
`image(id, name, "tag")`, or `emit(type, action, id, attributes)` for the rest.

Filters are Docker's (moby's daemon/events/filter.go): type, event, container,
network, volume, image, label, scope, daemon, plugin; several values of one
key are alternatives, several keys must all match.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from ..apifilters import Filters, exact, match_labels
from ..model import Container, Network

log = logging.getLogger("minidock.events")
RING = 1000  # what `docker events --since` can replay (Docker's docs: "the last 1000")
LISTENER_BACKLOG = 4096  # a listener that falls this far behind misses events, as Docker's does

def _fuzzy(f: Filters, key: str, source: str) -> bool:
    values = f.get(key)
    return not values or source in values or any(source.startswith(v) for v in values)


def _strip_tag(image: str) -> str:
    last = image.rsplit("/", 1)[-1]
    return image.rsplit(":", 1)[0] if ":" in last else image.split("@", 1)[0]


def matches(f: Filters, ev: dict[str, Any]) -> bool:
    """Whether event `ev` passes filters `f` (moby's Filter.Include)."""
    if not f:
        return True
    kind, action, actor = ev["Type"], ev["Action"], ev["Actor"]
    attrs: dict[str, str] = actor["Attributes"]
    # "exec_create: sh -c …" passes event=exec_create (moby #25798)
    fuzzy_event = not {"health_status", "exec_create", "exec_start"}.isdisjoint(f.get("event", ()))
    if not (_fuzzy if fuzzy_event else exact)(f, "event", action):
        return False
    if not exact(f, "type", kind) or ("scope" in f and ev.get("scope", "") not in f["scope"]):
        return False
    # a name filter holds for every event, whatever its type (as Docker's: container=web
    # together with network=front matches nothing)
    for key in ("daemon", "container", "plugin", "volume", "network", "node", "service", "secret", "config"):
        if not (_fuzzy(f, key, actor["ID"]) or _fuzzy(f, key, attrs.get("name", ""))):
            return False
    if f.get("image"):
        name = attrs.get("name" if kind == "image" else "image", "")
        if {actor["ID"], name, _strip_tag(actor["ID"]), _strip_tag(name)}.isdisjoint(f["image"]):
            return False
    return match_labels(f, "label", attrs)


def container_attributes(c: Container, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Docker's: the extra attributes, the container's labels, its image and its name."""
    attrs = dict(extra or {})
    attrs.update(c.config.get("Labels") or {})
    if c.config.get("Image") or c.image:
        attrs["image"] = c.config.get("Image") or c.image
    attrs["name"] = c.name
    return attrs


class Events:
    """The ring of recent events and the queues of those listening."""

    def __init__(self, size: int = RING) -> None:
        self.ring: deque[dict[str, Any]] = deque(maxlen=size)
        self.listeners: dict[asyncio.Queue[dict[str, Any]], Filters] = {}

    def emit(self, kind: str, action: str, actor_id: str, attributes: Mapping[str, str] | None = None,
             ) -> dict[str, Any]:
        """Record one event and hand it to every listener whose filters it passes."""
        now = time.time_ns()
        ev: dict[str, Any] = {}
        if kind in ("container", "image"):  # Docker's legacy fields, first in its JSON (omitted when empty)
            legacy = {"status": action, "id": actor_id,
                      "from": (attributes or {}).get("image", "") if kind == "container" else ""}
            ev.update((k, v) for k, v in legacy.items() if v)
        ev.update({"Type": kind, "Action": action,
                   "Actor": {"ID": actor_id, "Attributes": {k: str(v) for k, v in (attributes or {}).items()}},
                   "scope": "local", "time": now // 10**9, "timeNano": now})
        self.ring.append(ev)
        for q, f in self.listeners.items():
            if matches(f, ev):
                try:
                    q.put_nowait(ev)
                except asyncio.QueueFull:
                    log.warning("an events listener is %d events behind: it misses %s %s",
                                LISTENER_BACKLOG, kind, action)
        return ev

    def container(self, c: Container, action: str, **extra: Any) -> None:
        self.emit("container", action, c.id, container_attributes(c, {k: str(v) for k, v in extra.items()}))

    def network(self, net: Network, action: str, **extra: str) -> None:
        self.emit("network", action, net.id, {**extra, "name": net.name, "type": net.driver})

    def image(self, image_id: str, name: str, action: str) -> None:
        self.emit("image", action, image_id, {"name": name})

    def volume(self, name: str, action: str, **attributes: str) -> None:
        self.emit("volume", action, name, attributes)

    def subscribe(self, since_ns: int | None, until_ns: int | None, f: Filters,
                  ) -> tuple[list[dict[str, Any]], asyncio.Queue[dict[str, Any]]]:
        """The recorded events between `since_ns` and `until_ns` that pass `f` (none unless
        one of the two is given, as Docker), and a queue that gets every later one."""
        replay = []
        if since_ns is not None or until_ns is not None:
            replay = [ev for ev in self.ring
                      if (since_ns is None or ev["timeNano"] >= since_ns)
                      and (until_ns is None or ev["timeNano"] <= until_ns) and matches(f, ev)]
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(LISTENER_BACKLOG)
        self.listeners[q] = f
        return replay, q

    def unsubscribe(self, q: asyncio.Queue[dict[str, Any]]) -> None:
        self.listeners.pop(q, None)

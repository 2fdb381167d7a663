"""GET /containers/json's query as moby's daemon/list.go reads it: `all`,
`limit`, `since`, `before`, `size` and the `filters` (id, name, label, status,
exited, ancestor, network, before, since, publish, expose), checked first
with Docker's messages."""

from __future__ import annotations

import re
from typing import Any

from .. import apifilters, ports
from ..errors import InvalidParameter
from ..model import Container

FILTERS = ("id", "name", "label", "status", "exited", "ancestor", "network", "before", "since", "publish",
           "expose", "health", "volume", "is-task")
STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")


def parse_filters(raw: str) -> dict[str, list[str]]:
    """`{"name": ["x"]}` (or the old `{"name": {"x": true}}`) as lists, each key checked."""
    out = apifilters.parse(raw, FILTERS)
    for value in out.get("status", []):
        if value not in STATUSES:
            raise InvalidParameter(f"invalid filter 'status={value}'")
    for value in out.get("exited", []):
        if not value.lstrip("-").isdigit():
            raise InvalidParameter(f"invalid filter 'exited={value}'")
    return out


class Selector:
    """Which containers (newest first) a list request keeps."""

    def __init__(self, query: dict[str, str], find: Any, network_names: dict[str, str]) -> None:
        self.filters = parse_filters(query.get("filters", ""))
        self.all = query.get("all", "").lower() in ("1", "true")
        limit = query.get("limit", "")
        try:
            self.limit = int(limit) if limit not in ("", None) else -1
        except ValueError:
            raise InvalidParameter(f"invalid value for limit: {limit}") from None
        self.network_names = network_names  # id -> name
        self.before = self._created(find, [query.get("before", ""), *self.filters.get("before", [])], min)
        self.since = self._created(find, [query.get("since", ""), *self.filters.get("since", [])], max)
        if self.limit > 0 or self.before is not None or self.since is not None or "status" in self.filters \
                or "exited" in self.filters:
            self.all = True  # as Docker: these look at stopped containers too

    @staticmethod
    def _created(find: Any, refs: list[str], pick: Any) -> float | None:
        times = []
        for ref in refs:
            if not ref:
                continue
            c = find(ref)
            if c is None:
                raise InvalidParameter(f"No such container: {ref}")  # moby: a 404 there, a bad filter here
            times.append(c.created)
        return pick(times) if times else None

    def select(self, newest_first: list[Container]) -> list[Container]:
        out = [c for c in newest_first if self.keeps(c)]
        return out[:self.limit] if self.limit > 0 else out

    def keeps(self, c: Container) -> bool:
        f = self.filters
        if not self.all and not c.running:
            return False
        if self.before is not None and c.created >= self.before:
            return False
        if self.since is not None and c.created <= self.since:
            return False
        if "id" in f and not any(c.id.startswith(v) for v in f["id"]):
            return False
        if "name" in f and not any(_search(v, c.name) for v in f["name"]):
            return False
        if "status" in f and c.state.status not in f["status"]:
            return False
        if "exited" in f and (c.state.status != "exited" or str(c.state.exit_code) not in f["exited"]):
            return False
        if "ancestor" in f and not any(_same_image(v, c) for v in f["ancestor"]):
            return False
        if "network" in f:
            names = {n for a in c.networks.values() for n in (a.network_id, self.network_names.get(a.network_id))}
            if not any(v in names or any(str(n or "").startswith(v) for n in names) for v in f["network"]):
                return False
        if "label" in f and not all(_label(v, c.config.get("Labels") or {}) for v in f["label"]):
            return False
        if "expose" in f and not _ports_match(f["expose"], list(c.config.get("ExposedPorts") or {})):
            return False
        if "publish" in f:
            published = [f"{p.host_port}/{p.proto}" for p in c.ports]
            if not _ports_match(f["publish"], published):
                return False
        if "health" in f and "none" not in f["health"]:
            return False  # minidock runs no health checks: every container's health is "none"
        if "is-task" in f and "false" not in f["is-task"]:
            return False  # no swarm, no task
        if "volume" in f and not any(v in _mount_names(c) for v in f["volume"]):
            return False
        return True


def _mount_names(c: Container) -> set[str]:
    """Volume names, sources and destinations of the container's binds and mounts."""
    names: set[str] = set()
    for bind in c.host_config.setting("Binds", []):
        names.update(str(bind).split(":")[:2])
    for m in c.host_config.setting("Mounts", []):
        names.update(str(m.get(k)) for k in ("Source", "Target") if isinstance(m, dict) and m.get(k))
    return names


def _search(pattern: str, name: str) -> bool:
    try:
        return re.search(pattern, "/" + name) is not None
    except re.error:
        return pattern in name


def _same_image(ref: str, c: Container) -> bool:
    if ref.startswith("sha256:") or (len(ref) >= 12 and all(ch in "0123456789abcdef" for ch in ref)):
        return bool(c.image_id) and c.image_id.removeprefix("sha256:").startswith(ref.removeprefix("sha256:"))
    name, _, tag = c.image.partition(":")
    want, _, want_tag = ref.partition(":")
    return want == name and (want_tag or "latest") == (tag or "latest")


def _label(spec: str, labels: dict[str, str]) -> bool:
    key, has, value = spec.partition("=")
    return key in labels and (not has or labels[key] == value)


def _ports_match(wanted: list[str], have: list[str]) -> bool:
    norm = {f"{p}/{proto}" for p, proto in map(ports.parse_key, have)}
    for w in wanted:
        try:
            port, proto = ports.parse_key(w if "/" in w else w + "/tcp")
        except (ValueError, InvalidParameter):
            continue
        if f"{port}/{proto}" in norm:
            return True
    return False

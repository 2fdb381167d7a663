"""Named volumes of the local driver: create, inspect, list, remove, prune, and
the references containers hold on them. Docker's shapes and words
(moby's volume/service and volume/local).

    <root>/volumes/<name>/          the volume's own directory (0701)
                          _data/    its data: what containers see at the mount's destination

The record (name, labels, options, creation time) is a row of the store's
`volumes` table; the data directory is made before the row is written and
removed after the row is deleted. A volume is in use while any container,
running or not, has it among its mounts: `rm` then answers 409.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from typing import Any

from .. import apifilters
from ..errors import Conflict, InvalidParameter, NotFound
from ..model import ANONYMOUS_LABEL, Container, Volume
from ..steps import record
from .common import dir_size, new_id
from .core import Core

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
DRIVER = "local"
LOCAL_OPTIONS = ("type", "device", "o", "size")  # the local driver's keys (mount a device at _data)
LIST_FILTERS = ("dangling", "name", "driver", "label")
PRUNE_FILTERS = ("label", "label!", "all")


def check_driver(driver: str | None) -> str:
    """The local driver is the only one: another name is a plugin that is not there (Docker's 404)."""
    if driver in (None, "", DRIVER):
        return DRIVER
    raise NotFound(f'error looking up volume plugin {driver}: plugin "{driver}" not found')


def check_volume_name(name: str) -> None:
    if len(name) == 1:
        raise InvalidParameter("volume name is too short, names should be at least two alphanumeric characters")
    if not NAME_RE.match(name):
        raise InvalidParameter(f'"{name}" includes invalid characters for a local volume name, only '
                               '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, '
                               "use absolute path")


def check_options(options: dict[str, str] | None) -> None:
    for key in options or {}:
        if key not in LOCAL_OPTIONS:
            raise InvalidParameter(f'invalid option: "{key}"')
        raise InvalidParameter(f'volume option "{key}": minidock\'s local volumes are plain directories '
                               "(no device to mount); use a tmpfs mount (--tmpfs, --mount type=tmpfs) instead")


def _labels_match(labels: dict[str, str], wanted: list[str]) -> bool:
    for w in wanted:
        key, eq, value = w.partition("=")
        if key not in labels or (eq and labels[key] != value):
            return False
    return True


def _truth(values: list[str], what: str) -> bool:
    if len(values) != 1 or values[0].lower() not in ("1", "0", "true", "false"):
        raise InvalidParameter(f"invalid filter '{what}={','.join(values)}'")
    return values[0].lower() in ("1", "true")


def created_at(ts: float) -> str:
    """Docker's CreatedAt: RFC 3339 to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class Volumes:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.dir = os.path.join(core.root, "volumes")

    # -- paths
    def data_dir(self, name: str) -> str:
        return os.path.join(self.dir, name, "_data")

    # -- JSON
    def view(self, v: Volume) -> dict[str, Any]:
        return {"CreatedAt": created_at(v.created), "Driver": v.driver, "Labels": v.labels,
                "Mountpoint": self.data_dir(v.name), "Name": v.name, "Options": v.options, "Scope": "local"}

    # -- references
    def users(self, name: str) -> list[Container]:
        """The containers (any state) that mount volume `name`."""
        return [c for c in self.core.store.containers.view() if any(m.name == name for m in c.mounts)]

    # -- verbs
    def get(self, name: str) -> Volume:
        v = self.core.store.volumes.get(name)
        if v is None:
            raise NotFound(f"get {name}: no such volume")
        return v

    def inspect(self, name: str) -> dict[str, Any]:
        return self.view(self.get(name))

    def list(self, filters: str | None = None) -> dict[str, Any]:
        flt = apifilters.parse(filters, LIST_FILTERS)
        dangling = _truth(flt["dangling"], "dangling") if "dangling" in flt else None
        used = {m.name for c in self.core.store.containers.view() for m in c.mounts if m.name}
        out = []
        for v in self.core.store.volumes.view():
            if not apifilters.match(flt, "name", v.name):
                continue
            if "driver" in flt and v.driver not in flt["driver"]:
                continue
            if "label" in flt and not _labels_match(v.labels or {}, flt["label"]):
                continue
            if dangling is not None and (v.name in used) == dangling:
                continue
            out.append(self.view(v))
        return {"Volumes": out, "Warnings": None}  # Go's nil slice: Docker sends null when all went well

    def create(self, name: str | None, driver: str | None = None, options: dict[str, str] | None = None,
               labels: dict[str, str] | None = None) -> Volume:
        """Create volume `name` (a random one, marked anonymous, if none); an existing one is
        returned as it is (Docker's create is idempotent). The caller holds the "volumes" lock."""
        driver = check_driver(driver)
        if not name:
            name = new_id()
            labels = {**(labels or {}), ANONYMOUS_LABEL: ""}
        check_volume_name(name)
        check_options(options)
        have = self.core.store.volumes.get(name)
        if have is not None:
            return have
        v = Volume(name, time.time(), driver, dict(labels) if labels is not None else None,
                   dict(options) if options is not None else None)
        root = os.path.join(self.dir, name)
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        os.makedirs(root, mode=0o701, exist_ok=True)
        os.makedirs(os.path.join(root, "_data"), mode=0o755, exist_ok=True)
        try:
            self.core.store.volumes.put(v)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        self.core.events.volume(name, "create", driver=driver)
        record(f"volume {name}", "a volume is a plain directory on the host; a container that mounts it gets "
               "it bound at its destination, inside the container's own mount namespace",
               [f"mkdir -p -m 0755 {self.data_dir(name)}"])
        return v

    def remove(self, name: str, force: bool = False) -> None:
        """The caller holds the "volumes" lock."""
        v = self.core.store.volumes.get(name)
        if v is None:
            if force:
                return
            raise NotFound(f"get {name}: no such volume")
        users = self.users(name)
        if users:
            raise Conflict(f"remove {name}: volume is in use - [{', '.join(c.id for c in users)}]")
        self._destroy(v)
        record(f"volume {name}", "its data goes with it", [f"rm -rf {os.path.join(self.dir, name)}"])

    def prune(self, filters: str | None = None) -> dict[str, Any]:
        """Docker's prune since API 1.42: the unused anonymous volumes, or every unused one with
        the filter all=true. The caller holds the "volumes" lock."""
        flt = apifilters.parse(filters, PRUNE_FILTERS)
        every = _truth(flt["all"], "all") if "all" in flt else False
        used = {m.name for c in self.core.store.containers.view() for m in c.mounts if m.name}
        deleted, reclaimed = [], 0
        for v in self.core.store.volumes.all():
            labels = v.labels or {}
            if v.name in used or (not every and not v.anonymous) or v.options:
                continue
            if "label" in flt and not _labels_match(labels, flt["label"]):
                continue
            if "label!" in flt and any(_labels_match(labels, [w]) for w in flt["label!"]):
                continue
            reclaimed += dir_size(os.path.join(self.dir, v.name))
            self.remove(v.name)
            deleted.append(v.name)
        self.core.events.emit("volume", "prune", "", {"reclaimed": str(reclaimed)})
        return {"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed}

    def release(self, c: Container) -> list[str]:
        """`rm -v` (and --rm): remove the container's anonymous volumes that no other container
        uses; named ones stay (Docker's removeMountPoints). `c` is already out of the store."""
        gone = []
        for m in c.mounts:
            if m.type != "volume" or m.named or not m.name:
                continue
            v = self.core.store.volumes.get(m.name)
            if v is None or self.users(m.name):
                continue
            self._destroy(v)
            gone.append(m.name)
        return gone

    def _destroy(self, v: Volume) -> None:
        self.core.store.volumes.delete(v.name)
        shutil.rmtree(os.path.join(self.dir, v.name), ignore_errors=True)
        self.core.events.volume(v.name, "destroy", driver=v.driver)



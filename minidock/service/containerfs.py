"""A container's filesystem as a whole: `docker cp` (archive stat, get, put),
`export`, `commit` and `diff` (changes).

Where the files are (engine.py's picture): the image's root is the overlay's
lower layer, <root>/containers/<id>/upper holds what the container changed
(kept after it stops, until it is removed). The overlay itself is mounted only
inside the container's mount namespace, so:

    running    the helper joins that namespace (kernel/containerfs.py): a path
               resolves as the container's processes see it, volumes and the
               /etc files included, and a file copied in is there for them at once
    stopped    the helper mounts the overlay again in a namespace of its own
               (read-only, upper over lower, unless it writes), with the /etc
               files and the container's bind and volume mounts over it

`diff` needs no view: it walks the upper directory, where overlayfs records an
addition as a file, a deletion as a whiteout (a 0/0 character device) and a
directory whose lower content is hidden as an opaque one.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shlex
import shutil
import stat
import tarfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from ..errors import Conflict, InvalidParameter, MinidockError, NotFound
from ..kernel import containerfs, process
from ..kernel.containerfs import View, ViewError
from ..model import Container
from . import mounts
from .core import Core

# what the launcher makes in every container's root (Docker keeps these in its "init" layer,
# below the container's own): not the container's changes
INIT_FILES = {"/etc/hosts", "/etc/resolv.conf", "/etc/hostname"}
INIT_DIRS = {"/proc", "/dev", "/sys", "/etc", "/tmp"}
CHANGE_MODIFY, CHANGE_ADD, CHANGE_DELETE = 0, 1, 2


def _layer_binds(core: Core, c: Container) -> list[tuple[str, str, bool]]:
    """What a stopped view mounts over the overlay: the /etc files, then the container's
    bind and volume mounts."""
    files_dir = core.dir(c.joined) if c.joined and os.path.isdir(core.dir(c.joined)) else core.dir(c.id)
    binds = [(os.path.join(files_dir, n), f"/etc/{n}", False) for n in ("hosts", "resolv.conf", "hostname")
             if os.path.exists(os.path.join(files_dir, n))]
    # as the launcher mounts them: a volume's subpath resolved inside it, parents first
    return binds + [(m["source"], m["target"], m["ro"]) for m in mounts.launcher_mounts(c) if m["type"] == "bind"]


def _view(core: Core, c: Container, writable: bool = False, bare: bool = False) -> View:
    # a process that has just exited (its exit not handled yet) has no mount namespace left
    if c.running and process.alive(c.state.pid, c.state.start_time):
        return View.live(c.state.pid, bare=bare)
    d = core.layer_dir(c)
    if c.layer:
        core.spares.unmount(c.layer)  # one overlay at a time on its upper/
    return View.stopped(c.lower, os.path.join(d, "upper"), os.path.join(d, "work"), os.path.join(d, "merged"),
                        writable, [] if bare else _layer_binds(core, c))


def _failed(e: ViewError, path: str, ref: str) -> MinidockError:
    if e.kind == "notfound":
        return NotFound(f"Could not find the file {path} in container {ref}")
    if e.kind == "invalid":
        return InvalidParameter(e.message)
    return MinidockError(e.message)


def stat_header(st: dict[str, Any]) -> str:
    """X-Docker-Container-Path-Stat: the PathStat as base64 JSON."""
    return base64.b64encode(json.dumps(st, separators=(",", ":")).encode()).decode()


class ContainerFiles:
    def __init__(self, core: Core) -> None:
        self.core = core
        # a running container is paused while it is committed: the Resources' pause, wired by the engine
        self.pause: Callable[[str], Awaitable[None]] = _no_pause
        self.unpause: Callable[[str], Awaitable[None]] = _no_pause

    async def stat(self, ref: str, path: str) -> dict[str, Any]:
        c = self.core.container(ref)
        _check_path(path)
        try:
            return await containerfs.stat(_view(self.core, c), path)
        except ViewError as e:
            raise _failed(e, path, ref) from None

    async def get(self, ref: str, path: str) -> tuple[dict[str, Any], AsyncIterator[bytes]]:
        """The PathStat and a tar of `path`, its entries under its own name (as `docker cp`)."""
        c = self.core.container(ref)
        _check_path(path)
        try:
            out = await containerfs.tar_out(_view(self.core, c), "get", path)
        except ViewError as e:
            raise _failed(e, path, ref) from None
        self.core.events.container(c, "archive-path")
        return out

    async def put(self, ref: str, path: str, data: bytes, no_overwrite_dir_non_dir: bool) -> None:
        """Extract the tar `data` into directory `path` of the container."""
        c = self.core.container(ref)
        _check_path(path)
        # a stopped container's overlay is mounted writable for this: no start meanwhile
        async with self.core.locks.hold(c.id):
            c = self.core.container(c.id)
            try:
                await containerfs.untar(_view(self.core, c, writable=True), path, data, no_overwrite_dir_non_dir)
            except ViewError as e:
                raise _failed(e, path, ref) from None
        self.core.events.container(c, "extract-to-dir")

    async def export(self, ref: str) -> AsyncIterator[bytes]:
        """A tar of the container's root filesystem: the image and its changes, without what
        is mounted on it (/proc, volumes, the /etc files): Docker's `export`."""
        c = self.core.container(ref)
        try:
            _, chunks = await containerfs.tar_out(_view(self.core, c, bare=True), "export")
        except ViewError as e:
            raise MinidockError(f"Error exporting container {ref}: {e.message}") from None
        self.core.events.container(c, "export")
        return chunks

    def changes(self, ref: str) -> list[dict[str, Any]]:
        """Docker's ContainerChanges: Kind 0 modified, 1 added, 2 deleted, in walk order."""
        c = self.core.container(ref)
        return list(walk_changes(os.path.join(self.core.layer_dir(c), "upper"), c.lower))

    async def commit(self, ref: str, repo: str, tag: str, config: dict[str, Any], changes: list[str],
                     comment: str, author: str, pause: bool) -> str:
        """A new image from the container's root filesystem (paused meanwhile, unless told not
        to); its config is the container's, then `config`'s, then the Dockerfile `changes`."""
        c = self.core.container(ref)
        image_config = apply_changes({**c.config, **{k: v for k, v in config.items() if v}}, changes)
        ref_out = f"{repo}:{tag}" if repo and tag else repo
        if ref_out:
            self.core.images._check_ref(ref_out)
        scratch = os.path.join(self.core.images.dir, f".commit-{os.urandom(6).hex()}.tmp")
        paused_here = False
        if pause and c.running and not c.state.paused:
            with contextlib.suppress(Conflict):  # it exited meanwhile: nothing to pause
                await self.pause(c.id)
                paused_here = True
        try:
            await self.commit_into(c.id, scratch)
            meta = self.core.images.commit_from_dir(ref_out, scratch, {
                "parent": c.image_id, "config": image_config, "comment": comment, "author": author,
                "container": c.id})
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
            if paused_here:
                with contextlib.suppress(MinidockError):
                    await self.unpause(c.id)
        self.core.events.container(c, "commit", comment=comment, imageID=meta["id"], imageRef=ref_out)
        return str(meta["id"])

    async def commit_into(self, ref: str, into: str) -> None:
        """Write the container's root filesystem (as export gives it) into the new directory
        `into`: the root of a new image."""
        chunks = await self.export(ref)
        r, w = os.pipe2(os.O_CLOEXEC)
        loop = asyncio.get_running_loop()
        unpack = loop.run_in_executor(None, _unpack_pipe, r, into)
        try:
            with open(w, "wb") as out:
                async for chunk in chunks:
                    await loop.run_in_executor(None, out.write, chunk)
        except BrokenPipeError:
            pass  # the unpacking stopped: its error follows
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]
            await unpack


async def _no_pause(cid: str) -> None:
    return None


def apply_changes(config: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """The Dockerfile instructions `commit --change` takes, applied to an image config."""
    out = dict(config)
    for line in changes:
        for raw in line.splitlines():
            word, _, rest = raw.strip().partition(" ")
            word, rest = word.upper(), rest.strip()
            if not word:
                continue
            if word in ("CMD", "ENTRYPOINT"):
                out["Cmd" if word == "CMD" else "Entrypoint"] = _exec_form(rest)
            elif word == "EXPOSE":
                ports = dict(out.get("ExposedPorts") or {})
                for p in rest.split():
                    ports[p if "/" in p else f"{p}/tcp"] = {}
                out["ExposedPorts"] = ports
            elif word in ("ENV", "LABEL"):
                pairs = _pairs(rest)
                if word == "LABEL":
                    out["Labels"] = {**(out.get("Labels") or {}), **pairs}
                else:
                    env = [e for e in out.get("Env") or [] if e.split("=", 1)[0] not in pairs]
                    out["Env"] = env + [f"{k}={v}" for k, v in pairs.items()]
            elif word in ("WORKDIR", "USER", "STOPSIGNAL"):
                out[{"WORKDIR": "WorkingDir", "USER": "User", "STOPSIGNAL": "StopSignal"}[word]] = rest
            elif word == "VOLUME":
                vols = _exec_form(rest) if rest.startswith("[") else rest.split()
                out["Volumes"] = {**(out.get("Volumes") or {}), **{v: {} for v in vols}}
            elif word == "ONBUILD":
                out["OnBuild"] = [*(out.get("OnBuild") or []), rest]
            else:
                raise InvalidParameter(f"{word.lower()} is not a valid change command")
    return out


def _exec_form(rest: str) -> list[str]:
    if rest.startswith("["):
        try:
            value = json.loads(rest)
            if isinstance(value, list) and all(isinstance(x, str) for x in value):
                return value
        except ValueError:
            pass
    return ["/bin/sh", "-c", rest]


def _pairs(rest: str) -> dict[str, str]:
    words = shlex.split(rest)
    if len(words) == 2 and "=" not in words[0]:  # the old form: ENV key value
        return {words[0]: words[1]}
    return dict(w.split("=", 1) if "=" in w else (w, "") for w in words)


def _check_path(path: str) -> None:
    if not path:
        raise InvalidParameter("bad parameter: path cannot be empty")


def _unpack_pipe(fd: int, into: str) -> None:
    os.makedirs(into)
    with open(fd, "rb") as f, tarfile.open(fileobj=f, mode="r|") as tar:
        for member in tar:
            # the checks of tarfile's "tar" filter (nothing outside `into`, through a link
            # neither), but the modes as they were: /tmp keeps its sticky bit
            member.name = tarfile.tar_filter(member, into).name  # a leading / stripped, as the filter does
            tar.extract(member, into, numeric_owner=True, filter="fully_trusted")


def walk_changes(upper: str, lower: str) -> Iterator[dict[str, Any]]:
    """The changes recorded in `upper` over `lower`, as moby's overlay walk reports them."""
    if not os.path.isdir(upper):
        return
    changed_dirs: set[str] = set()
    out: list[dict[str, Any]] = []

    def lower_stat(path: str) -> os.stat_result | None:
        try:
            return os.stat(os.path.join(lower, path.lstrip("/")))
        except OSError:
            return None

    def visit(rel: str) -> None:
        full = os.path.join(upper, rel.lstrip("/"))
        try:
            names = sorted(os.listdir(full))
        except OSError:
            return
        for name in names:
            path = rel.rstrip("/") + "/" + name
            st = os.lstat(os.path.join(full, name))
            if path in INIT_FILES:
                continue
            is_dir = stat.S_ISDIR(st.st_mode)
            kind: int | None
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                kind = CHANGE_DELETE  # a whiteout
            elif is_dir and _opaque(os.path.join(full, name)) and lower_stat(path) is not None:
                kind = CHANGE_DELETE
            else:
                below = lower_stat(path)
                kind = CHANGE_ADD
                if below is not None:
                    kind = CHANGE_MODIFY
                    if is_dir and stat.S_ISDIR(below.st_mode) and (
                            _same_dir(st, below) or _init_only(path, os.path.join(full, name))):
                        kind = None  # a directory copied up for what is in it
                elif path in INIT_DIRS and is_dir:
                    kind = None  # a mount point the launcher made
            if kind is not None:
                if kind in (CHANGE_ADD, CHANGE_DELETE):
                    parent = os.path.dirname(path)
                    if parent != "/" and parent not in changed_dirs:
                        out.append({"Path": parent, "Kind": CHANGE_MODIFY})
                        changed_dirs.add(parent)
                out.append({"Path": path, "Kind": kind})
            if is_dir:
                if kind is not None:
                    changed_dirs.add(path)
                if path not in ("/proc", "/sys", "/dev"):
                    visit(path)

    visit("/")
    yield from out


def _opaque(path: str) -> bool:
    with contextlib.suppress(OSError):
        return os.getxattr(path, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
    return False


def _same_dir(a: os.stat_result, b: os.stat_result) -> bool:
    return a.st_size == b.st_size and a.st_mode == b.st_mode and a.st_mtime_ns // 1000 == b.st_mtime_ns // 1000


def _init_only(path: str, full: str) -> bool:
    """/etc, copied up only because the launcher made /etc/hosts and the like in it."""
    if path != "/etc":
        return False
    return all(f"/etc/{n}" in INIT_FILES for n in os.listdir(full))

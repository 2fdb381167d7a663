"""The daemon's side of kernel/fsview.py: one helper process per request that
enters a container's root (its mount namespace, or a private mount of its
overlay) and stats, tars or untars there. See fsview.py for the three views.

    View.live(pid)            a running container, as its processes see it
    View.live(pid, bare=True) a running container's layer alone (export)
    View.layer(...)           a stopped container's overlay, mounted again privately

No mount is ever made in the daemon's own namespace: each lives and dies with
its helper.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

FSVIEW = os.path.join(os.path.dirname(__file__), "fsview.py")
CHUNK = 1 << 16


class ViewError(Exception):
    """What the helper reported: kind is "notfound", "invalid" or "system"."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind, self.message = kind, message


@dataclass
class View:
    pid: int = 0
    bare: bool = False
    layer: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def live(pid: int, bare: bool = False) -> View:
        return View(pid=pid, bare=bare)

    @staticmethod
    def stopped(lower: str, upper: str, work: str, merged: str, writable: bool,
                binds: list[tuple[str, str, bool]]) -> View:
        """`binds`: (host source, path in the container, read-only) mounted over the overlay."""
        for d in (upper, work, merged):
            os.makedirs(d, exist_ok=True)
        return View(layer={"lower": lower, "upper": upper, "work": work, "merged": merged,
                           "writable": writable, "binds": [list(x) for x in binds]})

    def spec(self, op: str, **extra: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"op": op, **extra}
        if self.pid:
            out["pid"], out["bare"] = self.pid, self.bare
        else:
            out["layer"] = self.layer
        return out


class _Helper:
    def __init__(self, proc: asyncio.subprocess.Process, report: asyncio.StreamReader,
                 transport: asyncio.BaseTransport) -> None:
        self.proc, self.report, self.transport = proc, report, transport

    async def line(self) -> dict[str, Any]:
        raw = await self.report.readline()
        if not raw:
            await self.proc.wait()
            return {"error": f"the file helper exited with {self.proc.returncode}", "kind": "system"}
        return dict(json.loads(raw))

    async def close(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        await self.proc.wait()
        self.transport.close()


async def _spawn(spec: dict[str, Any], stdin: int | None, stdout: int | None) -> _Helper:
    r, w = os.pipe2(os.O_CLOEXEC)
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-I", "-S", FSVIEW, json.dumps(spec), str(w),
            stdin=stdin, stdout=stdout, stderr=asyncio.subprocess.DEVNULL, pass_fds=(w,))
    except BaseException:
        os.close(r)
        raise
    finally:
        os.close(w)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(r, "rb"))
    return _Helper(proc, reader, transport)


def _raise(answer: dict[str, Any]) -> None:
    if "error" in answer:
        raise ViewError(answer.get("kind", "system"), answer["error"])


async def stat(view: View, path: str) -> dict[str, Any]:
    """Docker's PathStat of `path` (name, size, mode as Go's FileMode, mtime, linkTarget)."""
    h = await _spawn(view.spec("stat", path=path), asyncio.subprocess.DEVNULL, asyncio.subprocess.DEVNULL)
    try:
        answer = await h.line()
        _raise(answer)
        return dict(answer["stat"])
    finally:
        await h.close()


async def tar_out(view: View, op: str, path: str = "/") -> tuple[dict[str, Any], AsyncIterator[bytes]]:
    """`op` "get" (a path, rebased to its own name, as `docker cp`) or "export" (the whole
    root): the stat at once (a missing path raises here), then the tar in chunks."""
    h = await _spawn(view.spec(op, path=path), asyncio.subprocess.DEVNULL, asyncio.subprocess.PIPE)
    try:
        first = await h.line()
        _raise(first)
    except BaseException:
        await h.close()
        raise

    async def chunks() -> AsyncIterator[bytes]:
        assert h.proc.stdout is not None
        try:
            while data := await h.proc.stdout.read(CHUNK):
                yield data
            last = await h.line()
            _raise(last)
        finally:
            await h.close()

    return dict(first.get("stat") or {}), chunks()


async def untar(view: View, path: str, data: bytes, no_overwrite_dir_non_dir: bool) -> None:
    """Extract the tar `data` (plain or compressed) into directory `path`, Docker's way: an
    existing entry is replaced unless both are directories (or, with
    `no_overwrite_dir_non_dir`, refused when a directory and a non-directory meet)."""
    h = await _spawn(view.spec("put", path=path, no_overwrite_dir_non_dir=no_overwrite_dir_non_dir),
                     asyncio.subprocess.PIPE, asyncio.subprocess.DEVNULL)
    try:
        first = await h.line()
        _raise(first)
        assert h.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            h.proc.stdin.write(data)
            await h.proc.stdin.drain()
        h.proc.stdin.close()
        _raise(await h.line())
    finally:
        await h.close()

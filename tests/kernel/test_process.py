"""kernel/process.py and kernel/launcher.py: a container process, spawned for real.

The root filesystem is an overlay of a directory holding only a static
busybox, with its upper and work directories in a temporary directory, so
the launcher's mounts and files never reach the machine's filesystem; its
mounts live in the container's own mount namespace. The test process is a
child subreaper for the length of a test, as the daemon is for its life,
so the orphaned container comes back to it to be reaped.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from minidock.kernel import libc, netns, process

from .nshelpers import sh

BUSYBOX = shutil.which("busybox")
pytestmark = pytest.mark.skipif(BUSYBOX is None, reason="needs a static busybox for the root filesystem")


@pytest.fixture
def subreaper() -> Iterator[None]:
    libc.set_child_subreaper()
    try:
        yield
    finally:
        ctypes.CDLL(None, use_errno=True).prctl(libc.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    lower = tmp_path / "lower" / "bin"
    lower.mkdir(parents=True)
    assert BUSYBOX is not None
    shutil.copy(BUSYBOX, lower / "busybox")
    for applet in ("sh", "sleep", "hostname", "cat", "ls"):
        (lower / applet).symlink_to("busybox")
    for sub in ("upper", "work", "merged", "files"):
        (tmp_path / sub).mkdir()
    for name, text in (("hosts", "127.0.0.1 localhost\n"), ("resolv.conf", "nameserver 127.0.0.11\n"),
                       ("hostname", "mdk-box\n")):
        (tmp_path / "files" / name).write_text(text)
    return tmp_path


def spec(root: Path, ns: str, argv: list[str]) -> dict[str, Any]:
    """What the engine hands the launcher (service/engine.py _spec), for one of our namespaces."""
    return {"netns": netns.path(ns), "share_uts": False, "lower": str(root / "lower"),
            "upper": str(root / "upper"), "work": str(root / "work"), "merged": str(root / "merged"),
            "files": {n: str(root / "files" / n) for n in ("hosts", "resolv.conf", "hostname")},
            "hostname": "mdk-box", "env": ["PATH=/bin", "HOME=/root"], "cwd": "/", "argv": argv, "tty": False}


async def run_to_exit(s: dict[str, Any], out: int) -> tuple[int, int | None]:
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        pid = await process.spawn(s, null, out, out)
    finally:
        os.close(null)
    done: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
    process.watch(pid, done.set_result)
    return pid, await asyncio.wait_for(done, 20)


def test_spawn_runs_inside_the_namespaces(ns: str, rootfs: Path, subreaper: None) -> None:
    sh("ip", "-n", ns, "link", "add", "mdk-br7", "type", "bridge")
    script = "echo pid=$$; hostname; cat /etc/resolv.conf; ls /sys/class/net; exit 3"
    out = rootfs / "out"
    fd = os.open(out, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        pid, code = asyncio.run(run_to_exit(spec(rootfs, ns, ["sh", "-c", script]), fd))
    finally:
        os.close(fd)
    assert code == 3
    assert out.read_text().split() == ["pid=1", "mdk-box", "nameserver", "127.0.0.11", "lo", "mdk-br7"]
    assert process.stat(pid) is None  # reaped
    assert not (Path(rootfs / "lower" / "etc")).exists()  # the image is untouched: writes went up
    assert (rootfs / "upper" / "etc" / "hostname").exists()


def test_a_running_container(ns: str, rootfs: Path, subreaper: None) -> None:
    async def run() -> None:
        null = os.open(os.devnull, os.O_RDWR)
        try:
            pid = await process.spawn(spec(rootfs, ns, ["sleep", "30"]), null, null, null)
        finally:
            os.close(null)
        done: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        process.watch(pid, done.set_result)
        try:
            started = process.start_time(pid)
            assert process.alive(pid, started)
            assert netns.pids_inside(ns) == [pid]
            assert process.pid_namespace_members(pid) == [pid]  # PID 1 of a namespace of its own
            assert os.readlink(f"/proc/{pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt")
            header, rows = process.ps_rows([pid])
            assert "PID" in header and [int(r[header.index("PID")]) for r in rows] == [pid]
        finally:
            process.kill(pid, signal.SIGKILL)
        assert await asyncio.wait_for(done, 10) == 128 + signal.SIGKILL
        assert not process.alive(pid, started)

    asyncio.run(run())


def test_spawn_error_reaches_the_caller(ns: str, rootfs: Path) -> None:
    with pytest.raises(process.SpawnError, match="executable file not found"):
        asyncio.run(run_to_exit(spec(rootfs, ns, ["no-such-program"]), 2))
    with pytest.raises(process.SpawnError, match="setns|No such file"):
        asyncio.run(run_to_exit({**spec(rootfs, ns, ["sh"]), "netns": "/run/netns/mdk-missing"}, 2))

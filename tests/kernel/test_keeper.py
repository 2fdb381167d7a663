"""kernel/keeper.py, launcher.py and process.py: a container process, launched
for real by a keeper we start, reached through keeperlink as the daemon reaches it.

The root filesystem is an overlay of a directory holding only a static
busybox, with its upper and work directories in a temporary directory, so
the launcher's mounts and files never reach the machine's filesystem; its
mounts live in the container's own mount namespace. The keeper is a child
subreaper: the container comes back to it to be reaped.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest

from minidock.kernel import netns, process
from minidock.kernel.keeperlink import Keeper, KeeperError

from .nshelpers import sh

BUSYBOX = shutil.which("busybox")
pytestmark = pytest.mark.skipif(BUSYBOX is None, reason="needs a static busybox for the root filesystem")


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


class Kept:
    """A keeper of the test's own (its root under the test's directory), and its exit events."""

    def __init__(self, root: Path) -> None:
        self.root = root / "keeper"
        self.root.mkdir(exist_ok=True)
        self.exits: asyncio.Queue[tuple[str, int, int | None]] = asyncio.Queue()
        self.link = self.connect()

    def connect(self) -> Keeper:
        return Keeper(str(self.root), lambda cid, pid, code: self.exits.put_nowait((cid, pid, code)),
                      lambda: None)

    async def start(self, cid: str, s: dict[str, Any]) -> tuple[int, dict[str, int]]:
        reply, fds = await self.link.call({"op": "start", "id": cid, "spec": s, "log": self.log(cid)})
        return int(reply["pid"]), dict(zip(reply["fds"], fds, strict=True))

    def log(self, cid: str) -> str:
        return str(self.root / f"{cid}.log")

    def output(self, cid: str) -> list[tuple[str, str]]:
        with open(self.log(cid)) as f:
            return [(e["stream"], e["log"]) for e in map(json.loads, f)]

    async def exit_of(self, cid: str) -> tuple[int, int | None]:
        got, pid, code = await asyncio.wait_for(self.exits.get(), 20)
        assert got == cid
        self.link.send({"op": "ack", "id": cid})
        return pid, code

    async def gone(self) -> None:
        """Close our end; the keeper, keeping nothing, ends (its pid file goes with it)."""
        await asyncio.sleep(0.1)  # the last ack
        pid = int((self.root / "keeper.pid").read_text().split()[0])
        self.link.close()
        for _ in range(100):
            if not (self.root / "keeper.pid").exists() and process.stat(pid) is None:
                return  # ended, and reaped by keeperlink's watch (it is our child)
            await asyncio.sleep(0.02)
        raise AssertionError("the keeper did not end")


def test_a_container_runs_inside_its_namespaces_and_its_exit_is_kept(ns: str, rootfs: Path) -> None:
    sh("ip", "-n", ns, "link", "add", "mdk-br7", "type", "bridge")
    script = "echo pid=$$; hostname; cat /etc/resolv.conf; ls /sys/class/net; echo oops >&2; exit 3"

    async def run() -> None:
        k = Kept(rootfs)
        await k.link.open()
        pid, fds = await k.start("c1", spec(rootfs, ns, ["sh", "-c", script]))
        assert sorted(fds) == ["err", "out"]  # the daemon's copies of the output pipes
        for fd in fds.values():
            os.close(fd)
        assert await k.exit_of("c1") == (pid, 3)
        out = k.output("c1")
        assert "".join(text for stream, text in out if stream == "stdout").split() == [
            "pid=1", "mdk-box", "nameserver", "127.0.0.11", "lo", "mdk-br7"]
        assert ("stderr", "oops\n") in out
        assert process.stat(pid) is None  # reaped by the keeper
        await k.gone()

    asyncio.run(run())
    assert not (Path(rootfs / "lower" / "etc")).exists()  # the image is untouched: writes went up
    assert (rootfs / "upper" / "etc" / "hostname").exists()


def test_a_running_container_and_an_exit_while_no_daemon_listens(ns: str, rootfs: Path) -> None:
    async def run() -> None:
        k = Kept(rootfs)
        await k.link.open()
        pid, fds = await k.start("c2", spec(rootfs, ns, ["sleep", "30"]))
        for fd in fds.values():
            os.close(fd)
        started = process.start_time(pid)
        assert process.alive(pid, started)
        assert netns.pids_inside(ns) == [pid]
        assert process.pid_namespace_members(pid) == [pid]  # PID 1 of a namespace of its own
        assert os.readlink(f"/proc/{pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt")
        header, rows = process.ps_rows([pid])
        assert "PID" in header and [int(r[header.index("PID")]) for r in rows] == [pid]
        # the "daemon" goes; the container is killed meanwhile; a new one hears of it in hello
        k.link.close()
        process.kill(pid, signal.SIGKILL)
        for _ in range(100):
            if process.stat(pid) is None:
                break
            await asyncio.sleep(0.02)
        assert process.stat(pid) is None  # reaped while no client was connected
        k.link = k.connect()
        hello = await k.link.open()
        assert hello["boxes"] == [] and hello["exited"] == [{"id": "c2", "pid": pid, "code": 128 + signal.SIGKILL}]
        k.link.send({"op": "ack", "id": "c2"})
        await k.gone()

    asyncio.run(run())


def test_a_start_error_reaches_the_caller(ns: str, rootfs: Path) -> None:
    async def run() -> None:
        k = Kept(rootfs)
        await k.link.open()
        with pytest.raises(KeeperError, match="executable file not found"):
            await k.start("c3", spec(rootfs, ns, ["no-such-program"]))
        with pytest.raises(KeeperError, match="setns|No such file"):
            await k.start("c4", {**spec(rootfs, ns, ["sh"]), "netns": "/run/netns/mdk-missing"})
        await k.gone()

    asyncio.run(run())

"""kernel/netns.py, sysctl.py, portbind.py and process.py's /proc readers, for real.

Namespaces made here live in the private /run/netns of the test run
(tests/conftest.py); the leak check makes sure each one is unmounted and
removed again.
"""

from __future__ import annotations

import asyncio
import errno
import os
import secrets
import signal
import socket
import subprocess
from collections.abc import Iterator

import pytest

from minidock.kernel import netns, portbind, process, sysctl
from minidock.kernel.rtnl import Rtnl
from tests.sandbox import wait_for

from .nshelpers import inside, ip_json, sh


@pytest.fixture
def name() -> Iterator[str]:
    """A namespace name for the test to create through netns.create; removed afterwards."""
    n = "mdk-" + secrets.token_hex(4)
    yield n
    netns.delete(n)


def here() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


def test_create_makes_a_named_namespace(name: str) -> None:
    async def run() -> int | None:
        raw = Rtnl(await netns.create(name))
        try:
            return raw.index("lo")
        finally:
            raw.close()

    lo = asyncio.run(run())
    assert lo == 1  # the socket is inside the new namespace: a fresh lo, nothing else
    assert netns.exists(name) and name in netns.names()
    assert name in sh("ip", "netns", "list")
    assert netns.inode(name) not in (None, here())
    assert [li["ifname"] for li in ip_json(name, "link")] == ["lo"]
    with pytest.raises(FileExistsError):
        asyncio.run(netns.create(name))


def test_delete_is_idempotent(name: str) -> None:
    async def make() -> None:
        (await netns.create(name)).close()

    asyncio.run(make())
    netns.delete(name)
    netns.delete(name)
    assert not netns.exists(name)
    assert netns.inode(name) is None
    assert name not in sh("ip", "netns", "list")


def test_run_in_runs_there_and_comes_back(ns: str) -> None:
    async def run() -> tuple[int, int]:
        there = await netns.run_in(ns, here)
        # the namespace thread itself, next time it runs anything: back home
        return there, await asyncio.get_running_loop().run_in_executor(netns._executor, here)

    there, after = asyncio.run(run())
    assert there == netns.inode(ns)
    assert after == here() != there


def test_open_socket_is_bound_to_the_namespace(ns: str) -> None:
    sh("ip", "-n", ns, "link", "add", "mdk-br9", "type", "bridge")

    async def run() -> int | None:
        raw = Rtnl(await netns.open_socket(ns))
        try:
            return raw.index("mdk-br9")
        finally:
            raw.close()

    assert asyncio.run(run()) == ip_json(ns, "link", "show", "mdk-br9")[0]["ifindex"]


def test_pids_inside_and_attach(ns: str, name: str) -> None:
    proc = subprocess.Popen(["ip", "netns", "exec", ns, "sleep", "30"])
    try:
        for _ in range(100):
            if proc.pid in netns.pids_inside(ns):
                break
            asyncio.run(asyncio.sleep(0.02))
        assert netns.pids_inside(ns) == [proc.pid]
        assert netns.pids_inside("mdk-missing") == []
        # name the process's namespace again, as after an `ip netns del` of a running container
        netns.attach(name, proc.pid)
        assert netns.inode(name) == netns.inode(ns)
        with pytest.raises(FileExistsError):
            netns.attach(name, proc.pid)
    finally:
        proc.kill()
        proc.wait()


def test_process_readers(ns: str) -> None:
    proc = subprocess.Popen(["ip", "netns", "exec", ns, "sleep", "30"], env={"MDK_MARK": "1", "PATH": "/usr/bin:/bin"})
    try:
        state, started = process.stat(proc.pid) or ("?", 0)
        # D too: `ip netns exec` may be caught mid-mount (uninterruptible) just after the fork
        assert state in "RSD" and started == process.start_time(proc.pid) > 0
        assert process.alive(proc.pid, started)
        assert not process.alive(proc.pid, started + 1)  # same PID, another process
        # in the midst of an exec (Popen's, then `ip`'s of sleep), /proc/PID/environ reads empty
        wait_for(lambda: process.environ(proc.pid), 5, "an environment to read")
        assert "MDK_MARK=1" in process.environ(proc.pid)
        process.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert process.stat(proc.pid) is None and not process.alive(proc.pid, started)
        process.kill(proc.pid)  # gone: not an error
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_process_watch_reports_the_exit_code() -> None:
    # not an asyncio child: its watcher would reap it first (a container is the daemon's
    # child only by adoption, so nothing else waits for it)
    child = subprocess.Popen(["sh", "-c", "sleep 0.2; exit 7"])

    async def run() -> int | None:
        done: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        process.watch(child.pid, done.set_result)
        return await asyncio.wait_for(done, 10)

    try:
        assert asyncio.run(run()) == 7
        assert process.stat(child.pid) is None  # reaped by watch
    finally:
        if process.stat(child.pid) is not None:
            child.kill()
            child.wait()


def test_sysctl(ns: str) -> None:
    sh("ip", "-n", ns, "link", "add", "mdk.br", "type", "bridge")

    async def run() -> tuple[bool, bool, str, str]:
        changed = sysctl.ensure("net.ipv4.ip_forward", "1")
        again = sysctl.ensure("net.ipv4.ip_forward", "1")
        # the slash form keeps the dot in an interface name
        sysctl.write("net/ipv4/conf/mdk.br/route_localnet", "1")
        return changed, again, sysctl.read("net.ipv4.ip_forward"), sysctl.read("net/ipv4/conf/mdk.br/route_localnet")

    assert inside(ns, run) == (True, False, "1", "1")
    assert sh("ip", "netns", "exec", ns, "sysctl", "-n", "net.ipv4.ip_forward").strip() == "1"
    assert sh("ip", "netns", "exec", ns, "cat", "/proc/sys/net/ipv4/conf/mdk.br/route_localnet").strip() == "1"


def test_portbind(ns: str) -> None:
    sh("ip", "-n", ns, "link", "set", "lo", "up")

    async def run() -> None:
        for proto in ("tcp", "udp"):
            held = portbind.reserve(proto, "127.0.0.1", 8080)
            try:
                assert not portbind.is_free(proto, "127.0.0.1", 8080)
                with pytest.raises(portbind.PortInUse):
                    portbind.reserve(proto, "127.0.0.1", 8080)
                with pytest.raises(portbind.PortInUse):
                    portbind.reserve(proto, "0.0.0.0", 8080)
                assert not held.get_inheritable()
                if proto == "tcp":
                    # bound, never listening: the port is ours but accepts nothing
                    with socket.socket() as c, pytest.raises(ConnectionRefusedError):
                        c.connect(("127.0.0.1", 8080))
            finally:
                held.close()
            assert portbind.is_free(proto, "127.0.0.1", 8080)
        with pytest.raises(OSError) as e:
            portbind.reserve("tcp", "192.0.2.1", 8080)  # not an address of this namespace
        assert e.value.errno == errno.EADDRNOTAVAIL and not isinstance(e.value, portbind.PortInUse)

    inside(ns, run)

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.sandbox import Sandbox

pytestmark = pytest.mark.kernel
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.geteuid() != 0:
        for item in items:
            if "e2e" in str(item.fspath) or "kernel" in str(item.fspath):
                item.add_marker(pytest.mark.skip(reason="needs root (namespaces, iptables)"))


def module_daemon(*daemon_flags: str) -> Iterator[Sandbox]:
    """A module's shared daemon (started with `daemon_flags`); nothing of it outlives the module."""
    sb = Sandbox(dns_upstream=["198.51.100.53"], daemon_flags=list(daemon_flags))
    sb.start()
    try:
        yield sb
    finally:
        sb.destroy()
        assert not os.path.exists(f"/run/netns/{sb.name}")


@pytest.fixture(scope="module")
def md() -> Iterator[Sandbox]:
    yield from module_daemon()


@pytest.fixture(autouse=True)
def no_residue(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test removes its containers; then nothing of theirs may be left."""
    yield
    if "md" not in request.fixturenames:
        return
    sb: Sandbox = request.getfixturevalue("md")
    if sb.proc is None:
        return
    ids = sb.cli("ps", "-aq", check=False).out.split()
    if ids:
        sb.cli("rm", "-f", *ids, check=False)
    left = sb.residue()
    assert not left, f"left behind after the test: {left}"


@contextlib.contextmanager
def running(sb: Sandbox) -> Iterator[Sandbox]:
    """A started sandbox daemon, destroyed (containers, namespaces, state) afterwards."""
    sb.start()
    try:
        yield sb
    finally:
        sb.destroy()


@pytest.fixture
def fresh() -> Iterator[Sandbox]:
    """A daemon of the test's own, for tests that kill, reset or crowd it."""
    with running(Sandbox()) as sb:
        yield sb


@pytest.fixture
def upstream(md: Sandbox) -> Iterator[str]:
    """A resolver "outside" (tests/upstream_dns.py) at 198.51.100.53, the daemon's upstream."""
    ns = md.name + "-out"
    if ns not in md.extra_ns:
        md.add_outside(outside_ip="198.51.100.53")
    proc = subprocess.Popen(
        ["nsenter", f"--net=/run/netns/{ns}", sys.executable, "-m", "tests.upstream_dns", "198.51.100.53", "120",
         "example.test=198.51.100.77", "other.test=198.51.100.78"],
        stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    try:
        yield ns
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def net_cleanup(md: Sandbox) -> Iterator[None]:
    """After the test: no container, no user network, no bridge of one left on the shared daemon."""
    yield
    ids = md.cli("ps", "-aq").out.split()
    if ids:
        md.cli("rm", "-f", *ids)
    md.cli("network", "prune", "-f")
    assert md.cli("network", "ls", "--format", "{{.Name}}").out.split() == ["bridge", "host", "none"]
    links = md.host("ip", "-o", "link").out
    assert "br-" not in links, links

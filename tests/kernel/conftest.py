"""Fixtures for the kernel adapter tests: throwaway namespaces, and the leak check.

Each test gets namespaces of its own (`ip netns add mdk-<random>`, inside the
private /run/netns of tests/conftest.py) and runs the adapters *inside* one
of them, on a thread that has joined it (`inside`, in nshelpers.py).

After every test the autouse `no_leak` fixture checks that nothing of ours
is left: no namespace, no mount, no process, no open descriptor (a socket
left open would pin a namespace), and that the machine's own namespace is
as it was (links, addresses, routes, firewall).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest

from minidock.kernel import netns

from .nshelpers import make_ns, sh


@pytest.fixture
def ns() -> Iterator[str]:
    """A fresh namespace (lo down, as the kernel makes it), deleted after the test."""
    name = make_ns()
    try:
        yield name
    finally:
        sh("ip", "netns", "del", name, check=False)


@pytest.fixture
def ns2() -> Iterator[str]:
    """A second namespace: a "container" for the veth tests."""
    name = make_ns()
    try:
        yield name
    finally:
        sh("ip", "netns", "del", name, check=False)


def _children() -> set[int]:
    me, out = os.getpid(), set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    data = f.read()
            except OSError:
                continue
            if int(data[data.rindex(")") + 2:].split()[1]) == me:
                out.add(int(entry))
    return out


def _mounts() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return sorted(line.split()[4] for line in f)


def _fds() -> set[str]:
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.add(f"{fd} {os.readlink(f'/proc/self/fd/{fd}')}")
        except OSError:
            continue  # the descriptor listdir itself used
    return out


def _machine() -> dict[str, str]:
    """The machine's own namespace, read only: what no kernel test may change."""
    rules = "\n".join(re.sub(r"\[\d+:\d+\]", "", ln) for ln in sh("iptables-save").splitlines()
                      if not ln.startswith("#"))
    return {
        "links": sh("ip", "-o", "link").replace(" state UP", "").replace(" state DOWN", ""),
        "addresses": sh("ip", "-o", "addr"),
        "routes": sh("ip", "route", "show", "table", "all"),
        "iptables": rules,
        "nft tables": sh("nft", "list", "tables"),
    }


@pytest.fixture(scope="session", autouse=True)
def _warm() -> None:
    # descriptors the adapters keep for the process's life, opened before the first snapshot:
    # the namespace module's handle on the home namespace
    netns._home()


@pytest.fixture(autouse=True)
def no_leak(_warm: None) -> Iterator[None]:
    """After each test: no namespace, mount, child process or descriptor of ours left,
    and the machine's namespace untouched."""
    before = (netns.names(), _mounts(), _children(), _fds(), _machine())
    yield
    after = (netns.names(), _mounts(), _children(), _fds(), _machine())
    for what, b, a in zip(("namespaces", "mounts", "processes", "descriptors"), before, after, strict=False):
        assert a == b, f"{what} left behind: {sorted(set(a) - set(b))} (gone: {sorted(set(b) - set(a))})"
    for key, text in before[4].items():
        assert after[4][key] == text, f"the machine's {key} changed:\n{text}\n---\n{after[4][key]}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.geteuid() != 0:
        for item in items:
            if "kernel" in str(item.fspath):
                item.add_marker(pytest.mark.skip(reason="needs root (namespaces, iptables)"))

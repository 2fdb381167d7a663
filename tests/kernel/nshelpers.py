"""Helpers of the kernel adapter tests: commands in a namespace, and running adapters inside one.

`inside(ns, fn)` runs the coroutine fn() on a thread that has joined
namespace NS, as the daemon runs in its own "host" namespace: iptables,
nft, sysctl and the netlink helpers then all see NS, never the machine's.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import subprocess
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from minidock.kernel import libc, netns

T = TypeVar("T")


def sh(*argv: str, check: bool = True, input: str | None = None) -> str:
    p = subprocess.run(list(argv), capture_output=True, text=True, timeout=30, input=input)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({p.returncode}): {p.stderr.strip()}")
    return p.stdout


def ip_json(ns: str, *args: str) -> Any:
    """`ip -n NS -j ARGS`, parsed: the kernel's state as iproute2 reads it."""
    return json.loads(sh("ip", "-n", ns, "-j", *args) or "[]")


def in_ns(ns: str, *argv: str, check: bool = True, input: str | None = None) -> str:
    return sh("ip", "netns", "exec", ns, *argv, check=check, input=input)


def iptables_rules(ns: str) -> str:
    """iptables-save of NS without comments and counters: what the rules are."""
    out = in_ns(ns, "iptables-save")
    return "\n".join(re.sub(r"\[\d+:\d+\]", "[0:0]", ln) for ln in out.splitlines() if not ln.startswith("#"))


def inside(ns: str, fn: Callable[[], Awaitable[T]]) -> T:
    """Run the coroutine `fn()` on a thread of its own inside namespace NS.

    Subprocesses it starts (iptables-restore), sockets it opens (netlink,
    nftables, bound ports) and /proc/sys it reads all belong to NS."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            fd = os.open(netns.path(ns), os.O_RDONLY | os.O_CLOEXEC)
            try:
                libc.setns(fd, libc.CLONE_NEWNET)
            finally:
                os.close(fd)
            # never run an adapter anywhere but where we meant: it would change the machine
            here = os.stat("/proc/thread-self/ns/net").st_ino
            if here != os.stat(netns.path(ns)).st_ino:
                raise RuntimeError(f"thread is not in namespace {ns}")
            result["value"] = asyncio.run(fn())
        except BaseException as e:  # noqa: BLE001 - handed to the test's thread
            result["error"] = e

    t = threading.Thread(target=run, name=f"in-{ns}")
    t.start()
    t.join(60)
    assert not t.is_alive(), f"adapter call in {ns} did not finish"
    if "error" in result:
        raise result["error"]
    return result["value"]


def make_ns() -> str:
    name = "mdk-" + secrets.token_hex(4)
    sh("ip", "netns", "add", name)
    return name

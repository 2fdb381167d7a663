"""Named network namespaces, made the way `ip netns add` makes them.

A namespace is a bind mount of a thread's /proc/thread-self/ns/net onto
/run/netns/NAME, so `ip netns list` and `ip netns exec NAME` work in a lab.

We never fork to reach a namespace. One dedicated thread does the switching:
it unshares (or setns) into the namespace, opens the netlink socket there
(a socket stays bound to the namespace it was opened in), and switches back
before it does anything else. The asyncio loop thread never changes
namespace.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from . import libc

T = TypeVar("T")
# iproute2's registry, where `ip netns` looks. Several daemons on one machine (a lab cluster of
# namespaces) each need one of their own, as separate machines have: MINIDOCK_NETNS_DIR.
NETNS_DIR = os.environ.get("MINIDOCK_NETNS_DIR", "/run/netns")
NETLINK_ROUTE = 0

_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="netns")
_home_fd: int | None = None


def _home() -> int:
    global _home_fd
    if _home_fd is None:
        _home_fd = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    return _home_fd


NETNS_PREFIX = "md-"  # our namespaces: md-<container name>, so `ip netns list` names them


def path(name: str) -> str:
    return os.path.join(NETNS_DIR, name)


def ensure_dir() -> None:
    """Like iproute2: /run/netns is a shared mount so later mounts propagate."""
    os.makedirs(NETNS_DIR, exist_ok=True)
    with open("/proc/self/mountinfo") as f:
        mounted = any(line.split()[4] == NETNS_DIR for line in f)
    if not mounted:
        libc.mount(NETNS_DIR, NETNS_DIR, None, libc.MS_BIND | libc.MS_REC)
    try:
        libc.mount(None, NETNS_DIR, None, libc.MS_SHARED | libc.MS_REC)
    except OSError:
        pass


def _netlink_socket() -> socket.socket:
    return socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, NETLINK_ROUTE)


def _create(name: str) -> socket.socket:
    target = path(name)
    home = _home()
    libc.unshare(libc.CLONE_NEWNET)
    try:
        fd = os.open(target, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
        os.close(fd)
        try:
            libc.mount("/proc/thread-self/ns/net", target, None, libc.MS_BIND)
        except OSError:
            os.unlink(target)
            raise
        return _netlink_socket()
    finally:
        libc.setns(home, libc.CLONE_NEWNET)


async def create(name: str) -> socket.socket:
    """Make /run/netns/NAME (a fresh namespace); returns a netlink socket in it."""
    return await asyncio.get_running_loop().run_in_executor(_executor, _create, name)


def _name(name: str, pid: int) -> socket.socket:
    attach(name, pid)
    try:
        return _run_in(name, _netlink_socket)
    except OSError:
        delete(name)
        raise


async def name(name: str, pid: int) -> socket.socket:
    """Name the network namespace process `pid` made /run/netns/NAME, as `ip netns attach`
    does (a bind mount of /proc/PID/ns/net); returns a netlink socket in it. In this thread:
    a mount and two setns calls take microseconds (making a namespace, in `create`, does not)."""
    return _name(name, pid)


async def open_socket(name: str) -> socket.socket:
    """A netlink socket inside the existing namespace NAME."""
    return await run_in(name, _netlink_socket)


def _run_in(name: str, fn: Callable[[], T]) -> T:
    home = _home()
    fd = os.open(path(name), os.O_RDONLY | os.O_CLOEXEC)
    try:
        libc.setns(fd, libc.CLONE_NEWNET)
    finally:
        os.close(fd)
    try:
        return fn()
    finally:
        libc.setns(home, libc.CLONE_NEWNET)


async def run_in(name: str, fn: Callable[[], T]) -> T:
    """Run `fn` (say, opening and binding sockets) inside namespace NAME.

    `fn` must be short and must not block: it runs on the namespace thread."""
    return await asyncio.get_running_loop().run_in_executor(_executor, _run_in, name, fn)


def attach(name: str, pid: int) -> None:
    """Name the network namespace of `pid` /run/netns/NAME again (after an `ip netns del`)."""
    target = path(name)
    fd = os.open(target, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
    os.close(fd)
    try:
        libc.mount(f"/proc/{pid}/ns/net", target, None, libc.MS_BIND)
    except OSError:
        os.unlink(target)
        raise


def rename(old: str, new: str) -> None:
    """Name namespace OLD as NEW instead: NEW is a bind mount of the same namespace, then
    OLD goes (a mount point cannot be renamed: rename(2) answers EBUSY)."""
    target = path(new)
    fd = os.open(target, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
    os.close(fd)
    try:
        libc.mount(path(old), target, None, libc.MS_BIND)
    except OSError:
        os.unlink(target)
        raise
    delete(old)


def pids_inside(name: str) -> list[int]:
    """The processes whose network namespace is /run/netns/NAME (by the namespace's inode)."""
    try:
        st = os.stat(path(name))
    except OSError:
        return []
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                ns = os.stat(f"/proc/{entry}/ns/net")
            except OSError:
                continue
            if (ns.st_dev, ns.st_ino) == (st.st_dev, st.st_ino):
                found.append(int(entry))
    return found


def exists(name: str) -> bool:
    return os.path.exists(path(name))


def names() -> list[str]:
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def delete(name: str) -> None:
    """`ip netns delete NAME`; a namespace already gone is not an error."""
    target = path(name)
    try:
        libc.umount(target, libc.MNT_DETACH)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOENT):
            raise
    try:
        os.unlink(target)
    except FileNotFoundError:
        pass


def inode(name: str) -> int | None:
    try:
        return os.stat(path(name)).st_ino
    except FileNotFoundError:
        return None

"""A container's network sandbox: its namespace, then one `driver.join` per
endpoint of its plan; and the teardown that undoes a start.

    /run/netns/md-<name>   lo up, eth0 … one per network, each its driver's
"""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..kernel import netns, process
from ..kernel.netlink import Netlink
from ..kernel.netns import NETNS_PREFIX
from ..model import Container, Endpoint, Network
from ..steps import Transaction, deferred, explained, undo_all
from .core import Core

LINK_LOCAL_PREFIX = {4: 16, 6: 64}  # libnetwork's linkLocalMask and linkLocalMaskIPv6
DYING_GRACE = 10.0  # seconds the kernel gets to delete the veths of a deleted namespace


@dataclass
class SandboxHandle:
    """A container's network namespace while it is being wired up (a driver's `Sandbox`)."""

    name: str
    netns: str
    _inside: Netlink | None = None

    @classmethod
    async def bound(cls, name: str, ns_name: str, sock: socket.socket) -> SandboxHandle:
        """The handle of a namespace just made, over the netlink socket opened inside it."""
        return cls(name, ns_name, await Netlink.open(sock, ns_name))

    async def inside(self) -> Netlink:
        if self._inside is None:
            self._inside = await Netlink.open(await netns.open_socket(self.netns), self.netns)
        return self._inside

    def close(self) -> None:
        if self._inside is not None:
            self._inside.close()
            self._inside = None


def namespace_of(c: Container) -> str:
    return NETNS_PREFIX + c.name


async def create(c: Container, tx: Transaction, pid: int) -> SandboxHandle:
    """The namespace the container's process `pid` made, named, with its loopback up;
    undone by the transaction."""
    ns_name = namespace_of(c)
    # `ip netns add` is what a student types for the same; ours is `ip netns attach NAME PID`
    sock = await tx.step("namespace", netns.name(ns_name, pid),
                         undo=explained("remove the namespace", lambda: _delete(ns_name),
                                        [f"ip netns del {ns_name}"]),
                         commands=[f"ip netns add {ns_name}"],
                         why=f"the container's own network stack (its process made it: here it is named, as "
                             f"`ip netns attach {ns_name} {pid}` would)")
    sb = await SandboxHandle.bound(c.name, ns_name, sock)
    await tx.step("loopback", (await sb.inside()).loopback_up(), commands=[f"ip -n {ns_name} link set lo up"])
    return sb


async def join(core: Core, net: Network, c: Container, ep: Endpoint, sb: SandboxHandle, tx: Transaction) -> None:
    """Plug `ep` in through its driver; on a global network, claim its address in the
    cluster's store first (which may change it, if another host was quicker)."""
    driver = core.driver(net)
    if driver.scope == "global" and core.cluster is not None:
        cluster = core.cluster
        attachment = c.networks.get(net.name)
        await tx.step("cluster endpoint", cluster.publish(net, c, ep, attachment.ipv4 if attachment else ""),
                      undo=lambda: cluster.withdraw(net.id, ep.ip),
                      why="the address is claimed cluster-wide, and the other hosts learn where it lives")
    await driver.join(net, ep, sb, tx)
    attachment = c.networks.get(net.name)
    if attachment is not None and attachment.link_local:
        await _link_local(attachment.link_local, ep, sb, tx)


async def _link_local(addresses: list[str], ep: Endpoint, sb: SandboxHandle, tx: Transaction) -> None:
    """IPAMConfig.LinkLocalIPs, added to the endpoint's interface (/16 for IPv4, /64 for IPv6,
    as libnetwork does): the container answers on them from its neighbours on the link."""
    inside = await sb.inside()
    idx = await inside.index(ep.ifname)
    if idx is None:
        raise RuntimeError(f"no interface {ep.ifname} in {sb.netns}")
    for addr in addresses:
        six = ":" in addr
        plen = LINK_LOCAL_PREFIX[6 if six else 4]
        await tx.step("link-local address",
                      inside.ensure_addr6(idx, addr, plen) if six else inside.ensure_addr(idx, addr, plen),
                      commands=[f"ip -n {sb.netns} addr add {addr}/{plen} dev {ep.ifname}" + (" nodad" if six else "")],
                      why="an address asked for with --link-local-ip: its neighbours on the link reach it "
                          "without a router")


async def _delete(ns_name: str, stragglers: bool = False) -> None:
    if stragglers:
        # --pid host: the main process's end did not end its children, as a PID namespace's
        # init would; any process still in the container's network namespace is one of them
        for pid in netns.pids_inside(ns_name):
            process.kill(pid, signal.SIGKILL)
            process.watch(pid, lambda _code: None)  # re-parented to the daemon: reap it
    netns.delete(ns_name)


async def teardown(core: Core, c: Container, withdraw: Callable[[], Awaitable[None]]) -> list[Exception]:
    """Undo a start. A container with a namespace of its own loses it, and the kernel
    deletes its veth pairs with it in the background: deleting each veth here would
    wait ~20 ms per pair for the kernel's synchronize_net, with nothing to gain.
    `withdraw` is the coroutine function that withdraws its published ports."""
    core.dns.stop(c.id)
    own_ns = bool(c.netns) and not c.joined  # a joined container's namespace is its owner's
    steps = []
    if c.ports or c.id in core.holds:
        steps.append(("published ports", withdraw))
    for ep in core.store.endpoints(container_id=c.id):
        net = core.store.networks.get(ep.network_id)
        if net is not None and net.driver == "overlay" and core.cluster is not None and ep.ip:
            steps.append(("cluster endpoint", deferred(core.cluster.withdraw, net.id, ep.ip)))
        if net is not None:
            steps.append((f"leave {net.name}", _leave(core, net, ep, not own_ns, c.netns)))
            if own_ns and ep.veth:
                core.dying_links[ep.veth] = time.monotonic() + DYING_GRACE
        steps.append(("release", deferred(core.store.release, ep.network_id, c.id)))
        steps.append(("endpoint", deferred(core.store.delete_endpoint, c.id, ep.network_id)))
    if own_ns:
        ns_name, host_pid = c.netns, c.host_config.setting("PidMode") == "host"
        steps.append(("namespace", explained("namespace", lambda: _delete(ns_name, host_pid), [f"ip netns del {ns_name}"],
                                             "the container's network stack goes, and its veth pairs with it "
                                             "(the kernel deletes them in the background)")))
    return await undo_all(steps)


def _leave(core: Core, net: Network, ep: Endpoint, delete_link: bool,
           netns_name: str) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        await core.driver(net).leave(net, ep, delete_link, netns_name)
    return run

"""`minidock system check | repair | reset`: the store against the kernel.

Someone deletes a bridge, a veth or a namespace by hand, or flushes the
firewall (what firewalld does on reload). `check` lists the drift, each item
a line a student can read; `repair` puts the kernel back as the store says
(the daemon does it at start-up too); `reset` removes everything minidock
ever made, found by our names and aliases, and nothing else. Orphans (links
and namespaces of ours that no record explains) are found here too.

Works over the store, the drivers and the firewall (through `Core`), not
over the engine.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Awaitable, Callable

from ..drivers import ALIAS_PREFIX
from ..drivers.macvlan import parent_of
from ..kernel import iptables, netns, process
from ..kernel.netlink import Link
from ..kernel.netns import NETNS_PREFIX
from ..model import CHILD_LINK_DRIVERS, Container, Endpoint, Network
from ..steps import Transaction
from . import trace
from .core import Core
from .sandbox import SandboxHandle

log = logging.getLogger("minidock.system")


class System:
    def __init__(self, core: Core, kill_and_reap: Callable[[int], Awaitable[None]]) -> None:
        self.core = core
        self.kill_and_reap = kill_and_reap

    def wired(self) -> list[Container]:
        """Running containers with a network namespace of their own (not host mode, not joined)."""
        return [c for c in self.core.store.containers.all() if c.running and c.netns and not c.joined]

    def overlays(self) -> list[Network]:
        """The cluster's networks, on a host that is in one."""
        if self.core.cluster is None:
            return []
        return [n for n in self.core.store.networks.all() if n.driver == "overlay"]

    def known_objects(self) -> tuple[set[str], set[str]]:
        """The links and namespaces the records explain: what is ours and not an orphan."""
        core = self.core
        known_links = {n.bridge for n in core.store.networks.view() if n.bridge}
        now = time.monotonic()
        core.dying_links = {name: t for name, t in core.dying_links.items() if t > now}
        known_links.update(core.dying_links)
        known_ns = set()
        for c in self.wired():
            known_ns.add(c.netns)
            known_links.update(ep.veth for ep in core.store.endpoints(container_id=c.id))
        return known_links, known_ns

    async def remove_orphans(self) -> None:
        """Delete links and namespaces of ours that no record explains."""
        known_links, known_ns = self.known_objects()
        for link in await self.core.host.links():
            if (link.alias or "").startswith(ALIAS_PREFIX) and link.name not in known_links:
                log.info("removing stale link %s (%s)", link.name, link.alias)
                await self.core.host.delete_link(link.name)
        for name in netns.names():
            if name.startswith(NETNS_PREFIX) and name not in known_ns:
                log.info("removing stale namespace %s", name)
                for pid in netns.pids_inside(name):  # a process spawned by a start that never committed
                    await self.kill_and_reap(pid)
                netns.delete(name)
        for name in self.stale_overlays():
            log.info("removing stale overlay namespace %s", name)
            netns.delete(name)

    def stale_overlays(self) -> list[str]:
        """This host's overlay namespaces of networks the store no longer has."""
        if self.core.cluster is None:
            return []
        driver = self.core.cluster.driver
        known = {driver.namespace(n) for n in self.overlays()}
        return [n for n in driver.namespaces() if n not in known]

    async def check(self) -> list[str]:
        """Every difference between what the store says and what the kernel holds."""
        core = self.core
        problems: list[str] = []
        links = {link.name: link for link in await core.host.links()}
        bridges: dict[str, Link | None] = {}
        for net in core.store.networks.all():
            if net.driver != "bridge":
                continue
            bridge = bridges[net.id] = links.get(net.bridge)
            if bridge is None:
                problems.append(f"network {net.name}: bridge {net.bridge} is missing")
                continue
            gw, prefix = net.gateway, net.ipam[0].prefixlen
            if f"{gw}/{prefix}" not in await core.host.addresses(bridge.index):
                problems.append(f"network {net.name}: gateway address {gw}/{prefix} is missing from {net.bridge}")
        for net in core.store.networks.all():
            if net.driver in CHILD_LINK_DRIVERS:
                parent = parent_of(net)
                if parent not in links:
                    problems.append(f"network {net.name}: its parent interface {parent} is missing")
        for net in self.overlays():
            assert core.cluster is not None
            veths = [ep.veth for c in self.wired() for ep in core.store.endpoints(container_id=c.id)
                     if ep.network_id == net.id]
            problems += await core.cluster.driver.check(net, core.cluster.remote(net.id), veths)
        for c in self.wired():
            if not netns.exists(c.netns):
                problems.append(f"container {c.name}: namespace {c.netns} is missing from {netns.NETNS_DIR}")
            eps = core.store.endpoints(container_id=c.id)
            plugged = []  # endpoints whose veth is there, so their inside can be looked at
            for ep in eps:
                if ep.network_id not in bridges:
                    net = core.store.networks.get(ep.network_id)
                    if net is not None and net.driver in CHILD_LINK_DRIVERS:  # a link inside only: looked at there
                        plugged.append(ep)
                    elif net is not None and core.cluster is not None and await core.cluster.driver.has_port(
                            net, ep.veth):  # an overlay's veth: checked with its network above
                        plugged.append(ep)
                    continue
                veth, br = links.get(ep.veth), bridges[ep.network_id]
                if veth is None:
                    problems.append(f"container {c.name}: veth {ep.veth} ({ep.ifname}) is missing")
                    continue
                if br is not None and veth.master != br.index:
                    problems.append(f"container {c.name}: veth {ep.veth} is not on its bridge")
                plugged.append(ep)
            if netns.exists(c.netns) and eps:
                problems += await self._inside(c, plugged, eps)
        known_links, known_ns = self.known_objects()  # as remove_orphans sees them
        for link in links.values():
            if (link.alias or "").startswith(ALIAS_PREFIX) and link.name not in known_links:
                problems.append(f"link {link.name} ({link.alias}) belongs to nothing minidock knows")
        for name in netns.names():
            if name.startswith(NETNS_PREFIX) and name not in known_ns:
                problems.append(f"namespace {name} belongs to no running container")
        problems += [f"overlay namespace {name} belongs to no network" for name in self.stale_overlays()]
        before = await iptables.save()
        changes = iptables.explain(before, core.firewall.ruleset(), iptables.jump_lines(before))
        if await core.firewall.ipv6():
            before6 = await iptables.save(6)
            changes += iptables.explain(before6, core.firewall.ruleset(6), iptables.jump_lines(before6, 6), "ip6tables")
        if changes:
            problems.append(f"firewall: {len(changes)} rule changes needed, the first: {changes[0]}")
        problems += [f"nftables {t} is left from an interrupted trace" for t in trace.stale_tables()]
        return problems + core.firewall.differences()

    async def _inside(self, c: Container, plugged: list[Endpoint], eps: list[Endpoint]) -> list[str]:
        """A container's own addresses (on the endpoints whose veth is there: a missing one is
        reported already) and default route, as its namespace has them."""
        problems = []
        sb = SandboxHandle(c.name, c.netns)
        try:
            inside = await sb.inside()
            for ep in plugged:
                if not ep.ip:
                    continue
                idx = await inside.index(ep.ifname)
                if idx is None:
                    problems.append(f"container {c.name}: {ep.ifname} is missing from {c.netns}")
                elif ep.cidr not in await inside.addresses(idx):
                    problems.append(f"container {c.name}: {ep.ifname} lacks its address {ep.cidr}")
            gw = next((ep for ep in eps if ep.gateway_endpoint and ep.gateway), None)
            if gw is not None and await inside.default_gateway() != gw.gateway:
                problems.append(f"container {c.name}: the default route via {gw.gateway} is missing")
        finally:
            sb.close()
        return problems

    async def repair(self) -> list[str]:
        """Put the kernel back as the store says; returns what was wrong."""
        problems = await self.check()
        if not problems:
            return []
        core = self.core
        trace.remove_stale()
        present = {link.name: link for link in await core.host.links()}
        for net in core.store.networks.all():
            if net.driver != "bridge":
                continue
            if net.bridge not in present:  # the first start, or deleted by hand
                async with Transaction(context="failed to repair network") as tx:
                    await core.driver(net).create_network(net, tx)
            else:
                idx, gw, prefix = present[net.bridge].index, net.gateway, net.ipam[0].prefixlen
                if f"{gw}/{prefix}" not in await core.host.addresses(idx):
                    await core.host.ensure_addr(idx, gw, prefix)
        for net in self.overlays():
            assert core.cluster is not None
            await core.cluster.driver.repair(net, core.cluster.remote(net.id))
        links = {link.name: link for link in await core.host.links()}
        for c in self.wired():
            if not netns.exists(c.netns):
                netns.attach(c.netns, c.state.pid)
            sb = SandboxHandle(c.name, c.netns)
            try:
                for ep in core.store.endpoints(container_id=c.id):
                    net = core.store.networks.get(ep.network_id)
                    if net is not None and net.driver in ("bridge", "overlay", *CHILD_LINK_DRIVERS):
                        await self._repair_endpoint(net, ep, sb, links)
            finally:
                sb.close()
        await self.remove_orphans()
        await core.firewall.apply("repair: our chains as the store says")
        return problems

    async def _repair_endpoint(self, net: Network, ep: Endpoint, sb: SandboxHandle, links: dict[str, Link]) -> None:
        bridge = links.get(net.bridge)  # there: made above if it was missing
        veth = links.get(ep.veth)
        if net.driver == "overlay" and self.core.cluster is not None:
            there = await self.core.cluster.driver.has_port(net, ep.veth)
        elif net.driver in CHILD_LINK_DRIVERS:
            there = await (await sb.inside()).index(ep.ifname) is not None
        else:
            there = veth is not None
        if not there:
            async with Transaction(context="failed to repair container networking") as tx:
                await self.core.driver(net).join(net, ep, sb, tx)
            return
        if veth is not None and bridge is not None and veth.master != bridge.index:
            await self.core.host.attach_port(veth.index, bridge.index)
        inside = await sb.inside()  # an address or the default route removed inside
        await inside.configure_interface(ep.ifname, ep.mac if net.driver != "ipvlan" else None, ep.ip, ep.prefixlen)
        if ep.gateway_endpoint and ep.gateway and not net.internal:
            await inside.ensure_default_route(ep.gateway)

    async def reset(self) -> list[str]:
        """Remove every container, network, link, namespace, rule and file of ours."""
        core = self.core
        removed: list[str] = []
        for c in core.store.containers.all():
            if c.running and process.alive(c.state.pid, c.state.start_time):
                await self.kill_and_reap(c.state.pid)
            core.dns.stop(c.id)
            removed.append(f"container {c.name}")
        core.holds.close_all()
        for link in await core.host.links():
            if (link.alias or "").startswith(ALIAS_PREFIX):
                await core.host.delete_link(link.name)
                removed.append(f"link {link.name} ({link.alias})")
        for name in netns.names():
            if name.startswith(NETNS_PREFIX):
                for pid in netns.pids_inside(name):
                    await self.kill_and_reap(pid)
                netns.delete(name)
                removed.append(f"namespace {name}")
        removed += await core.firewall.remove_all()
        removed += [f"nftables {t} (an interrupted trace)" for t in trace.remove_stale()]
        if core.cluster is not None:
            await core.cluster.close()
            removed += await core.cluster.leave()
        core.store.wipe()
        core.spares.close()
        for sub in ("containers", "layers", "images", "volumes"):
            shutil.rmtree(os.path.join(core.root, sub), ignore_errors=True)
        removed.append(f"state under {core.root}")
        return removed

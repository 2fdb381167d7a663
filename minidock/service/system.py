"""`minidock system check | repair | reset`: the store against the kernel.

Someone deletes a bridge, a veth or a namespace by hand, or flushes the
firewall (what firewalld does on reload). `check` lists the drift, each item
a line a student can read; `repair` puts the kernel back as the store says
(the daemon does it at start-up too); `reset` removes everything minidock
ever made, found by our names and aliases, and nothing else.
"""

from __future__ import annotations

import logging
import os
import shutil
from typing import TYPE_CHECKING, Any

from ..drivers.bridge import ALIAS_PREFIX
from ..kernel import iptables, netns, nftables, process
from ..kernel.netns import NETNS_PREFIX
from ..steps import Transaction

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger("minidock.system")


async def check(engine: Engine) -> list[str]:
    """Every difference between what the store says and what the kernel holds."""
    problems: list[str] = []
    links = {link.name: link for link in await engine.host.links()}
    bridges = {}
    for net in engine.store.all("networks"):
        if net["driver"] != "bridge":
            continue
        bridges[net["id"]] = links.get(net["bridge"])
        if bridges[net["id"]] is None:
            problems.append(f"network {net['name']}: bridge {net['bridge']} is missing")
            continue
        gw, prefix = _gateway(net)
        if f"{gw}/{prefix}" not in await engine.host.addresses(bridges[net["id"]].index):
            problems.append(f"network {net['name']}: gateway address {gw}/{prefix} is missing from {net['bridge']}")
    for c in engine.wired():
        if not netns.exists(c["netns"]):
            problems.append(f"container {c['name']}: namespace {c['netns']} is missing from /run/netns")
        eps = engine.store.endpoints(container_id=c["id"])
        for ep in eps:
            veth, br = links.get(ep["veth"]), bridges.get(ep["network_id"])
            if veth is None:
                problems.append(f"container {c['name']}: veth {ep['veth']} ({ep['ifname']}) is missing")
            elif br is not None and veth.master != br.index:
                problems.append(f"container {c['name']}: veth {ep['veth']} is not on its bridge")
        if netns.exists(c["netns"]) and eps:
            problems += await _inside(engine, c, eps, links)
    known_links, known_ns = engine.known_objects()  # as remove_orphans sees them
    for link in links.values():
        if (link.alias or "").startswith(ALIAS_PREFIX) and link.name not in known_links:
            problems.append(f"link {link.name} ({link.alias}) belongs to nothing minidock knows")
    for name in netns.names():
        if name.startswith(NETNS_PREFIX) and name not in known_ns:
            problems.append(f"namespace {name} belongs to no running container")
    before = await iptables.save()
    changes = iptables.explain(before, engine.ruleset(), iptables.jump_lines(before))
    if changes:
        problems.append(f"firewall: {len(changes)} rule changes needed, the first: {changes[0]}")
    if engine.nft is not None:
        wrong = nftables.differences(engine.nft, engine._published())
        problems += [f"port maps: {w}" for w in wrong]
    return problems


def _gateway(net: dict[str, Any]) -> tuple[str, int]:
    """The bridge's own address and prefix length."""
    cfg = net["ipam"]["config"][0]
    return cfg["gateway"], int(cfg["subnet"].split("/")[1])


async def _inside(engine: Engine, c: dict[str, Any], eps: list[dict[str, Any]], links: dict[str, Any]) -> list[str]:
    """A container's own addresses and default route, as its namespace has them."""
    problems = []
    sb = engine.sandbox(c)
    try:
        inside = await sb.inside()
        for ep in eps:
            if ep["veth"] not in links or not ep.get("ip"):
                continue  # reported as a missing veth already
            idx = await inside.index(ep["ifname"])
            want = f"{ep['ip']}/{ep['prefixlen']}"
            if idx is None or want not in await inside.addresses(idx):
                problems.append(f"container {c['name']}: {ep['ifname']} lacks its address {want}")
        gw = next((ep for ep in eps if ep.get("gateway_endpoint") and ep.get("gateway")), None)
        if gw is not None and await inside.default_gateway() != gw["gateway"]:
            problems.append(f"container {c['name']}: the default route via {gw['gateway']} is missing")
    finally:
        sb.close()
    return problems


async def repair(engine: Engine) -> list[str]:
    """Put the kernel back as the store says; returns what was wrong."""
    problems = await check(engine)
    if not problems:
        return []
    present = {link.name: link for link in await engine.host.links()}
    for net in engine.store.all("networks"):
        if net["driver"] != "bridge":
            continue
        if net["bridge"] not in present:  # the first start, or deleted by hand
            async with Transaction() as tx:
                await engine.drivers["bridge"].create_network(net, tx)
        else:
            idx, (gw, prefix) = present[net["bridge"]].index, _gateway(net)
            if f"{gw}/{prefix}" not in await engine.host.addresses(idx):
                await engine.host.ensure_addr(idx, gw, prefix)
    links = {link.name: link for link in await engine.host.links()}
    for c in engine.wired():
        if not netns.exists(c["netns"]):
            netns.attach(c["netns"], c["state"]["pid"])
        sb = engine.sandbox(c)
        try:
            for ep in engine.store.endpoints(container_id=c["id"]):
                net = engine.store.get("networks", ep["network_id"])
                if net is None or net["driver"] != "bridge":
                    continue
                bridge = links.get(net["bridge"])  # there: made above if it was missing
                veth = links.get(ep["veth"])
                if veth is None:
                    async with Transaction() as tx:
                        await engine.drivers["bridge"].join(net, ep, sb, tx)
                    continue
                if bridge is not None and veth.master != bridge.index:
                    await engine.host.attach_port(veth.index, bridge.index)
                inside = await sb.inside()  # an address or the default route removed inside
                await inside.configure_interface(ep["ifname"], ep["mac"], ep["ip"], ep["prefixlen"])
                if ep.get("gateway_endpoint") and ep.get("gateway") and not net.get("internal"):
                    await inside.ensure_default_route(ep["gateway"])
        finally:
            sb.close()
    await engine.remove_orphans()
    await engine.apply_firewall("repair: our chains as the store says")
    return problems


async def reset(engine: Engine) -> list[str]:
    """Remove every container, network, link, namespace, rule and file of ours."""
    removed: list[str] = []
    for c in engine.store.all("containers"):
        st = c["state"]
        if st["status"] == "running" and process.alive(st["pid"], st.get("start_time", 0)):
            await engine.kill_and_reap(st["pid"])
        engine.dns.stop(c["id"])
        removed.append(f"container {c['name']}")
    engine.close_port_holds()
    for link in await engine.host.links():
        if (link.alias or "").startswith(ALIAS_PREFIX):
            await engine.host.delete_link(link.name)
            removed.append(f"link {link.name} ({link.alias})")
    for name in netns.names():
        if name.startswith(NETNS_PREFIX):
            for pid in netns.pids_inside(name):
                await engine.kill_and_reap(pid)
            netns.delete(name)
            removed.append(f"namespace {name}")
    await iptables.remove_all()
    removed.append("firewall chains MINIDOCK* and their jumps")
    if engine.nft is not None:
        engine.nft.run(nftables.remove_text())
        removed.append(f"nftables table ip {nftables.TABLE}")
    engine.store.wipe()
    for sub in ("containers", "images"):
        shutil.rmtree(os.path.join(engine.root, sub), ignore_errors=True)
    removed.append(f"state under {engine.root}")
    return removed

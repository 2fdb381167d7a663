"""Start-up: make the kernel match the store. The predefined networks exist;
operations a crash interrupted (the journal) are finished or undone; running
containers whose process outlived the daemon are watched again, dead ones
are marked exited; starts that never committed are undone; then `system
repair` puts right what changed while we were away and removes our orphans.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from ..kernel import process
from ..model import Container
from .core import Core
from .lifecycle import Lifecycle
from .networks import Networks
from .system import System

log = logging.getLogger("minidock.reconcile")


class Reconciler:
    def __init__(self, core: Core, life: Lifecycle, networks: Networks, system: System) -> None:
        self.core, self.life, self.networks, self.system = core, life, networks, system

    async def run(self) -> None:
        core, store = self.core, self.core.store
        await self.networks.ensure_predefined()
        removals: list[str] = []
        for entry_id, op, data in store.journal():
            log.warning("a crash interrupted %s %s: finishing or undoing it", op, data)
            try:
                await self._recover(op, data, removals)
            finally:
                store.journal_end(entry_id)
        core.firewall.load(((n.id, core.driver(n).firewall(n)) for n in store.networks.all()),
                           ((c.id, c.ports) for c in store.containers.all() if c.running))
        procs = self.life.procs
        for c in store.containers.all():
            kept_exit = procs.kept_exits.pop(c.id, None)
            if c.running and kept_exit is not None and kept_exit[0] == c.state.pid:
                log.info("container %s exited with %s while the daemon was away", c.name, kept_exit[1])
                await self.life.teardown(c)
                self.life.mark_exited(c, kept_exit[1])
                self.life.died(c)
                procs.acknowledge(c.id)
            elif c.running and process.alive(c.state.pid, c.state.start_time):
                kept = procs.kept.get(c.id)
                if kept is None or kept["pid"] != c.state.pid or not await procs.reattach(c.id, c.state.pid):
                    procs.adopt(c.id, c.state.pid)  # it outlived the keeper too: no terminal, no log
                core.holds.rehold(c)
                await core.holds.relay_loopback(c.id, c.ports)
            elif c.running:
                log.info("container %s died while the daemon was away", c.name)
                await self.life.teardown(c)
                self.life.mark_exited(c, None)
                self.life.died(c)
            else:
                await self._undo_unrecorded(c)
        for c in store.containers.all():
            if c.state.status == "exited" and c.id not in removals:
                self.life.restart_at_start(c)
        for cid in procs.kept_exits:  # exits of starts that were never recorded
            procs.acknowledge(cid)
        procs.kept_exits.clear()
        procs.reconciled()
        for cid in removals:
            gone = store.containers.get(cid)
            if gone is not None:
                self.life.remove_record(gone)
        # what someone changed by hand while we were away (a bridge, a veth, a namespace, the
        # firewall) is put right as `minidock system repair` does; orphans of ours go
        await self.system.repair()
        nets = core.nets_by_id()
        from .dnsrecords import uses_dns

        for c in store.containers.all():
            if c.id in self.life.procs.runtime and uses_dns(c, nets):
                try:
                    await core.dns.serve(c.id, c.netns)
                except OSError as e:
                    log.warning("DNS for %s: %s", c.name, e)
        core.refresh_dns()

    async def _undo_unrecorded(self, c: Container) -> None:
        """A container not running by its record: a start the crash cut short left nothing
        recorded, and may have left a process (the keeper keeps it) that must not run on.
        (A store from before the keeper may have its pidfile instead.)"""
        kept = self.life.procs.kept.get(c.id)
        pid, started = (int(kept["pid"]), int(kept["start"])) if kept else (0, 0)
        pidfile = os.path.join(self.core.dir(c.id), "pid")
        if not pid and os.path.exists(pidfile):
            try:
                with open(pidfile) as f:
                    pid, started = (int(x) for x in f.read().split())
            except (OSError, ValueError):
                pid = started = 0
            os.unlink(pidfile)
        if pid and process.alive(pid, started):
            log.warning("container %s: stopping process %d of a start a crash cut short", c.name, pid)
            await self.life.kill_and_reap(pid)
        # endpoints and leases live only while a container runs: a start or stop
        # cut short may have left some behind (their links go with the orphans)
        self.core.store.drop_endpoints(c.id)
        if c.netns:
            c.netns = ""
            self.core.store.containers.put(c)

    async def _recover(self, op: str, data: dict[str, Any], removals: list[str]) -> None:
        """Finish or undo an operation that a crash interrupted (its journal entry)."""
        core, store = self.core, self.core.store
        c = store.containers.get(data["id"]) if "id" in data else None
        if op == "network create" and store.networks.get(data["network"]) is None:
            await core.host.delete_link(data["bridge"])  # made, never recorded: undo
        elif op == "network rm":
            net = store.networks.get(data["network"])
            if net is not None and not store.endpoints(network_id=net.id):
                await core.driver(net).delete_network(net)  # finish
                store.release_network(net.id)
                store.networks.delete(net.id)
        elif op in ("connect", "disconnect") and c is not None:
            net = store.networks.get(data["network"])
            joined = net is not None and net.name in c.networks
            unrecorded_connect = op == "connect" and net is not None and not joined
            if unrecorded_connect or op == "disconnect":  # undo the one, finish the other
                for ep in store.drop_endpoints(c.id, data["network"]):
                    await core.host.delete_link(ep.veth)
                if joined and op == "disconnect" and net is not None:
                    del c.networks[net.name]
                    store.containers.put(c)
        elif op in ("stop", "rm") and c is not None:
            if c.running and process.alive(c.state.pid, c.state.start_time):
                await self.life.kill_and_reap(c.state.pid)  # finish the stop; the pass above tears down
            if op == "rm":
                removals.append(c.id)

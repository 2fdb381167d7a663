"""A container's life after `create`: start (plan, apply, commit once),
stop, kill, restart, wait, remove, and what its exit means for the records.

A start is plan then apply: `planner.plan_start` reads the store once; the
sandbox, each driver's join, the DNS stub, the host ports, the /etc files and
the process are then made inside one Transaction (undone in reverse on a
failure); one store transaction at the end records the leases, endpoints and
the running state. A crash before that commit leaves nothing recorded: the
restart removes the namespace (and stops any process in it) as an orphan.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import shutil
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..errors import Conflict, InvalidParameter, no_such_container
from ..kernel import netns, process, procstats
from ..model import Container, Network, PortBinding, State
from ..steps import (
    Transaction,
    current_operation,
    current_recording,
    deferred,
    record,
    reset_operation,
    set_operation,
    use_recording,
)
from . import links, mounts, planner, sandbox, settings
from .common import journaled
from .core import Core
from .planner import StartPlan
from .supervisor import ReadyGone, Runtime, Supervisor

log = logging.getLogger("minidock.lifecycle")
STOP_GRACE = 10
RESTART_FIRST, RESTART_MAX, RESTART_RESET = 0.1, 60.0, 10.0  # moby's restartmanager back-off
EXIT_REPORT_WAIT = 2  # after a SIGKILL, how long an exit report may take before we look ourselves
KILL_WAIT = 10  # moby's daemon.Kill waits this long for the exit of a SIGKILL
TIMINGS = bool(os.environ.get("MINIDOCK_TIMINGS"))  # log the network part of each start (make bench)
WAIT_CONDITIONS = ("not-running", "next-exit", "removed", "")


async def _no_gateway_bridge() -> None:
    raise RuntimeError("no gateway bridge maker wired")


@dataclass
class Early:
    """A container handed to the process made ready as soon as its start's plan had read it."""

    pid: int
    spec: dict[str, Any]
    rt: Runtime
    prepared: asyncio.Future[int]


class Lifecycle:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.procs = Supervisor(self.on_exit, core.root)
        # makes the gateway bridge network (an overlay's way out) when a plan first needs it
        self.gateway_bridge: Callable[[], Awaitable[Any]] = _no_gateway_bridge
        # --explain of a stop or wait: the teardown runs in the exit handler's task, not the request's
        self.exit_recordings: dict[str, Any] = {}
        self.exit_operations: dict[str, str] = {}
        # restart policies: containers a stop or kill ended (not restarted), pending restarts, back-offs
        self.stopped_by_user: set[str] = set()
        self.restarts: dict[str, asyncio.Task[None]] = {}
        self.backoff: dict[str, float] = {}

    # -- start
    async def start(self, cid: str) -> None:
        """Start container `cid` (an id: the caller looked it up), unless it runs already."""
        async with self.core.locks.hold(cid):
            # no journal entry: an unrecorded start is undone by the orphan pass of reconcile;
            # the operation's name still lets the crash tests stop it after any step
            token = set_operation("start") if not current_operation() else None
            try:
                try:
                    await self._start(cid, fast=True)
                except ReadyGone:  # the process made ready died before it was taken: make one
                    await self._start(cid, fast=False)
            finally:
                if token is not None:
                    reset_operation(token)
                self.procs.attempt_over(cid)

    async def _start(self, cid: str, fast: bool) -> None:
        # the process first: it sets up its root filesystem while the network is wired in the
        # namespace it made, and execs only when that is done (`go`). The keeper has one made
        # ready, whose PID we know: it takes the container as soon as the plan has read it,
        # before its endpoints are planned (its root is the slower half), and its network is
        # wired while it sets that up
        handed: list[Early] = []

        def hand(c: Container) -> None:
            early = self._hand_early(c) if fast and not handed else None
            if early is not None:
                handed.append(early)

        try:
            try:
                plan = planner.plan_start(self.core, cid, hand)
            except planner.NeedsGatewayBridge:
                await self.gateway_bridge()
                plan = planner.plan_start(self.core, cid, hand)
        except BaseException:
            await self._let_go(cid, next(iter(handed), None))
            self.procs.start_failed(cid)
            raise
        if plan is None:  # running already (nothing was handed over)
            return
        early = next(iter(handed), None)
        rt = early.rt if early is not None else Runtime()
        sb: sandbox.SandboxHandle | None = None
        prepared: asyncio.Future[int] | None = None
        try:
            async with Transaction(passthrough=(process.SpawnError,)) as tx:
                spec = self._spec(plan)
                if early is not None and early.spec != spec:  # planned otherwise: not that process
                    await self._let_go(cid, early)
                    early, rt = None, Runtime()
                ready = early.pid if early is not None else self.procs.claim_ready(spec) if fast else 0
                if ready:
                    prepared = early.prepared if early is not None else asyncio.ensure_future(
                        self.procs.prepare(cid, spec, self.log_path(plan.c), rt, ready, self._root_ahead(plan.c)))
                    tx.on_undo("process", lambda: self._unprepare(cid, prepared, ready))
                    pid = ready
                else:
                    pid = await self._prepare(cid, spec, tx, self.procs.prepare(
                        cid, spec, self.log_path(plan.c), rt, root=self._root_ahead(plan.c)), undo=True)
                # once the process has the container: it binds these files, their text is for
                # its exec (made ahead, they are written in place)
                self._write_files(plan)
                t0 = time.perf_counter()
                if plan.mode == "own":
                    try:
                        sb = await sandbox.create(plan.c, tx, pid)
                    except Exception:
                        if prepared is not None:
                            await prepared  # ReadyGone: the namespace could not be named for that
                        raise
                    for ep in plan.endpoints:
                        await sandbox.join(self.core, plan.nets[ep.network_id], plan.c, ep, sb, tx)
                    if plan.dns:
                        await tx.step("dns", self.core.dns.serve(plan.c.id, plan.ns_name),
                                      undo=deferred(self.core.dns.stop, plan.c.id),
                                      commands=[f"# minidock answers on 127.0.0.11:53 inside {plan.ns_name}: "
                                                "a socket the daemon opened there, no command"],
                                      why="the embedded DNS server at 127.0.0.11 inside the container")
                    await self._publish(plan, tx)
                    self.core.starting.add(cid)
                    self._records(plan)
                if TIMINGS:  # written once the answer is out: a log line is a write to a file
                    asyncio.get_running_loop().call_soon(log.info, "%s: network attach %.2f ms", plan.c.name,
                                                         (time.perf_counter() - t0) * 1000)
                if prepared is not None:
                    await self._prepare(cid, spec, tx, prepared, undo=False)
                if plan.mode == "own":
                    self._rewrite_hosts(plan)
                await self._go(plan, pid, rt, tx)
        except ReadyGone:
            rt.close()
            raise
        except process.SpawnError as e:
            rt.close()
            self._spawn_failed(cid, str(e))
            raise InvalidParameter(
                f"failed to create task for container: OCI runtime create failed: {e}: unknown") from None
        except BaseException:
            rt.close()
            self.procs.start_failed(cid)
            raise
        finally:
            planner.release(self.core, cid)
            self.core.starting.discard(cid)
            if not plan.c.running:  # a failed start: its records go
                self.core.records.update(cid, [])
            if not plan.c.running:
                self.procs.spawn_over(cid)
            if sb is not None:
                sb.close()
        # no DNS refresh here: the records were built before the spawn, while it was starting
        self.procs.started(cid, pid, rt)
        self.procs.spawn_over(cid)
        self._network_events(plan.c, "connect", plan.nets)
        mounts.volume_events(self.core, plan.c, "mount")
        self.core.events.container(plan.c, "start")

    def _network_events(self, c: Container, action: str, nets: dict[str, Network] | None = None) -> None:
        """Docker's `network connect` per network at a start, `disconnect` at the exit."""
        if c.joined:
            return
        nets = self.core.nets_by_id() if nets is None else nets
        for attachment in c.networks.values():
            net = nets.get(attachment.network_id)
            if net is not None:
                self.core.events.network(net, action, container=c.id)

    def _records(self, plan: StartPlan) -> None:
        from .dnsrecords import link_aliases, records_of

        self.core.records.update(plan.c.id, records_of(plan.c, plan.endpoints, plan.nets, True))
        self.core.records.set_links(plan.c.id, link_aliases(plan.c, plan.nets))

    async def _publish(self, plan: StartPlan, tx: Transaction) -> None:
        """Hold the host ports and forward them to the container where its default route is."""
        if not plan.ports or plan.way_out is None:
            return
        c, ep = plan.c, plan.way_out
        net = plan.nets[ep.network_id]
        tx.on_undo("ports", lambda: self.withdraw(c))
        six = net.ipam6
        if not ep.ip6:  # an IPv6 host address for a container without IPv6: nothing to forward to
            dropped = [f"[{ip}]:{hp}" for _, ip, hp, _ in plan.ports if ":" in ip]
            if dropped:
                log.warning("%s has no IPv6 address: %s not published", c.name, ", ".join(dropped))
            plan.ports = [p for p in plan.ports if ":" not in p[1]]
        self.core.holds.hold(c.id, c.name, plan.ports)
        c.ports = [PortBinding(proto, ip, hp, cp, ep.ip6 if ":" in ip else ep.ip, net.bridge,
                               six.subnet if ":" in ip and six else net.subnet, c.name)
                   for proto, ip, hp, cp in plan.ports]
        record("hold the host ports", "bound, never listening: no host program can take them (no command)",
               [f"# {p.host_ip}:{p.host_port}/{p.proto}" for p in c.ports])
        why = "the host forwards its ports to the container in the kernel (DNAT), no proxy process"
        await tx.step("published ports", self.core.firewall.publish(c.id, c.ports, why))
        await self.core.holds.relay_loopback(c.id, c.ports)

    async def withdraw(self, c: Container) -> None:
        """Drop the forwarding first, then let go of the host ports."""
        if c.ports:
            c.ports = []
            await self.core.firewall.withdraw(c.id, f"{c.name}'s published ports are withdrawn")
        self.core.holds.release(c.id)

    def _write_files(self, plan: StartPlan) -> None:
        """The container's /etc/hosts, resolv.conf and hostname (a joined container has its
        owner's). Made ahead with its directory (spares.py): these are writes, not creations."""
        if plan.mode != "joined":
            d = self.core.dir(plan.c.id)
            for name, text in (("hosts", plan.hosts), ("resolv.conf", plan.resolv), ("hostname", plan.hostname)):
                _write(os.path.join(d, name), text)

    def _rewrite_hosts(self, plan: StartPlan) -> None:
        """A cluster may have given an endpoint another address than planned (another host was
        quicker): the container's /etc/hosts says the one it got."""
        if not any(self.core.driver(plan.nets[ep.network_id]).scope == "global" for ep in plan.endpoints):
            return
        hosts = planner.hosts_text(self.core, plan.c, plan.endpoints, False)
        if hosts != plan.hosts:
            plan.hosts = hosts
            _write(os.path.join(self.core.dir(plan.c.id), "hosts"), hosts)

    async def _prepare(self, cid: str, spec: dict[str, Any], tx: Transaction, answer: Awaitable[int],
                       undo: bool) -> int:
        """The step of the process's `prepare`: the keeper's `answer`, awaited here (`undo`: the
        step's to register; a process made ready has its undo registered already)."""
        pid = await tx.step("process", answer, undo=(lambda: self._undo_process(cid, pid)) if undo else None,
                            commands=mounts.explain(spec["mounts"]),
                            why="the container's first process (minidock's keeper has one ready, in namespaces "
                                "of its own, its network one included) mounts its root filesystem, /etc files "
                                "and volumes, then waits for its network")
        return int(pid)

    async def _go(self, plan: StartPlan, pid: int, rt: Runtime, tx: Transaction) -> None:
        """The last step, and the start's one write to the store. The write is made while the
        keeper lets the process go (a round trip of two hand-offs, ~0.8 ms here), not after
        it; undone if the process never got past its gate."""
        c = plan.c
        where = f"ip netns exec {c.netns} " if plan.mode != "host" else ""
        going = self.procs.go(c.id, rt)
        before = c.state, c.manually_stopped
        try:
            self._commit(plan, pid, rt.start)
        except BaseException:
            with contextlib.suppress(Exception):  # its fds are rt's, closed with it
                await going
            raise
        try:
            await tx.step("exec", going, commands=[f"# {where}{shlex.join(c.argv)}"],
                          why="the network is ready: the process takes the container's user and execs its command")
        except BaseException:
            c.state, c.manually_stopped = before
            with self.core.store.transaction():
                self.core.store.drop_endpoints(c.id)
                self.core.store.containers.put(c)
            raise

    def _commit(self, plan: StartPlan, pid: int, start: int) -> None:
        """The one write of a start: leases, endpoints, the running state (`start`: the process's
        start time, read by the keeper before it could exit and be reaped)."""
        c, store = plan.c, self.core.store
        c.state = State("running", pid, start, started_at=time.time())
        c.manually_stopped = False
        with store.transaction():
            for ep in plan.endpoints:
                for ip in (ep.ip, ep.ip6):
                    if ip and not store.lease(ep.network_id, ip, c.id):
                        raise Conflict(f"Address already in use: {ip} on network {plan.nets[ep.network_id].name}")
                store.put_endpoint(ep)
            store.containers.put(c)
        self.core.holds.settle(c.id)

    def _spawn_failed(self, cid: str, msg: str) -> None:
        c = self.core.container(cid)
        c.state.status = "created" if c.state.status == "created" else "exited"
        c.state.error, c.state.exit_code = msg, 127 if "not found" in msg else 128
        c.netns = ""
        self.core.store.containers.put(c)

    def _hand_early(self, c: Container) -> Early | None:
        """Container `c` (of a namespace of its own, as the plan has just read it) to the
        process made ready, now, before the rest of its start is planned: its process's spec
        does not depend on the plan (the start checks that it did not)."""
        try:
            spec = self._spec(StartPlan(c, "own"))
        except Exception:  # noqa: BLE001 - the plan says what is wrong, as ever
            return None
        pid = self.procs.claim_ready(spec)
        if not pid:
            return None
        rt = Runtime()
        return Early(pid, spec, rt, asyncio.ensure_future(
            self.procs.prepare(c.id, spec, self.log_path(c), rt, pid, self._root_ahead(c))))

    def _root_ahead(self, c: Container) -> int | None:
        """The container's overlay, mounted ahead with its layer (spares.py), for its first start."""
        fd = self.core.spares.root_ahead(c.layer, c.lower) if c.layer and c.lower else None
        if fd is not None:
            log.debug("%s: its root filesystem was mounted ahead (layer %s)", c.name, c.layer[:12])
        return fd

    async def _let_go(self, cid: str, early: Early | None) -> None:
        """Undo a hand-over made before the plan, which the start does not go on with."""
        if early is None:
            return
        try:
            await self._unprepare(cid, early.prepared, early.pid)
        except Exception as e:  # noqa: BLE001 - the start's own outcome is the one to report
            log.warning("%s: the process handed the container before its plan: %s", cid[:12], e)
        finally:
            early.rt.close()
            self.procs.spawn_over(cid)

    async def _unprepare(self, cid: str, prepared: asyncio.Future[int], pid: int) -> None:
        """Undo the `prepare` of a process made ready, once the keeper has it as ours."""
        try:
            await prepared
        except process.SpawnError:
            return  # not ours: nothing to kill
        await self._undo_process(cid, pid)

    async def _undo_process(self, cid: str, pid: int) -> None:
        """The keeper forgets a start stopped at the gate; one past it is killed (its exit is
        reported, and acknowledged: the start was never recorded)."""
        if not await self.procs.cancel(cid):
            await self.kill_and_reap(pid)

    def _spec(self, plan: StartPlan) -> dict[str, Any]:
        c, mode = plan.c, plan.mode
        files_dir = self.core.dir((plan.owner or c).id)
        d = self.core.layer_dir(c)
        env = [*links.link_env(self.core, c), *c.config["Env"]]
        # HOME, unless given, is the user's home in the container's /etc/passwd (the launcher's)
        for key, value in (("HOSTNAME", c.hostname), ("TERM", "xterm" if c.tty else "")):
            if value and not any(e.startswith(key + "=") for e in env):
                env.append(f"{key}={value}")
        host_mode = mode == "host"
        return {
            # a namespace of its own is made by the process itself; a joined one is the owner's
            "netns": netns.path(c.netns) if mode == "joined" else None, "new_netns": mode == "own",
            "share_uts": host_mode or c.host_config.setting("UTSMode") == "host",
            "share_pid": c.host_config.setting("PidMode") == "host", "lower": c.lower,
            "upper": os.path.join(d, "upper"), "work": os.path.join(d, "work"),
            "merged": os.path.join(d, "merged"),
            "files": {n: os.path.join(files_dir, n) for n in ("hosts", "resolv.conf", "hostname")},
            "hostname": c.hostname, "env": env, "cwd": c.config["WorkingDir"] or "/", "argv": c.argv,
            "tty": c.tty, "stdin": bool(c.config.get("OpenStdin")) and not c.tty, "init": bool(c.host_config.setting("Init")),
            "user": c.config.get("User") or "", "group_add": c.host_config.setting("GroupAdd", []),
            "mounts": mounts.launcher_mounts(c),
        }

    def log_path(self, c: Container) -> str:
        return self.procs.log_path(c.id)

    # -- exit
    async def on_exit(self, cid: str, code: int | None) -> None:
        use_recording(self.exit_recordings.pop(cid, None))
        set_operation(self.exit_operations.pop(cid, ""))
        async with self.core.locks.hold(cid):
            c = self.core.store.containers.get(cid)
            rt = self.procs.runtime.pop(cid, None)
            if rt is not None and rt.tap is not None:
                await asyncio.sleep(0.05)  # let the relay drain the tap's last output
            # (the log is whole already: the keeper writes the last lines before it reports an exit)
            if c is None or not c.running:
                if rt:
                    rt.close()
                    rt.exited.set()
                return
            errors = await self.teardown(c)
            self._network_events(c, "disconnect")
            c.manually_stopped = cid in self.stopped_by_user
            self.mark_exited(c, code)
            self.died(c)
            mounts.volume_events(self.core, c, "unmount")
            self.procs.last_exit[cid] = c.state.exit_code
            self.procs.wake(cid, "exit", c.state.exit_code)
            if rt:
                rt.close()
                rt.exited.set()
            for err in errors:
                log.warning("teardown of %s: %s", c.name, err)
            if c.host_config.auto_remove:
                self.remove_record(c, volumes=True)  # --rm takes the anonymous volumes too
            elif settings.restart_wanted(c.host_config.setting("RestartPolicy", {}), c.state.exit_code,
                                         c.restart_count, cid in self.stopped_by_user):
                self._schedule_restart(c)
            self.stopped_by_user.discard(cid)
            self.core.refresh_dns(cid)

    def died(self, c: Container) -> None:
        self.core.events.container(c, "die", exitCode=c.state.exit_code,
                                   execDuration=int(max(c.state.finished_at - c.state.started_at, 0)))

    def restart_at_start(self, c: Container) -> None:
        """The daemon has just started: a container its restart policy wants running starts."""
        if settings.restart_at_start(c.host_config.setting("RestartPolicy", {}), c.state.exit_code,
                                     c.restart_count, c.manually_stopped):
            self._schedule_restart(c)

    def _schedule_restart(self, c: Container) -> None:
        """Start it again after Docker's back-off (100 ms, doubling while it keeps dying within
        10 s of its start); meanwhile it is "restarting" and refuses a plain remove."""
        quick = c.state.finished_at - c.state.started_at < RESTART_RESET
        delay = self.backoff.get(c.id, RESTART_FIRST / 2) * 2 if quick else RESTART_FIRST
        self.backoff[c.id] = delay = min(delay, RESTART_MAX)
        c.restart_count += 1
        self.core.store.containers.put(c)
        self.core.restarting.add(c.id)

        async def again() -> None:
            try:
                await asyncio.sleep(delay)
                if c.id in self.core.restarting:
                    await self.start(c.id)
            except Exception as e:  # noqa: BLE001 - a failed restart is logged, as Docker does
                log.warning("restart of %s failed: %s", c.name, e)
            finally:
                self.core.restarting.discard(c.id)
                self.restarts.pop(c.id, None)

        self.restarts[c.id] = asyncio.get_running_loop().create_task(again())

    def cancel_restart(self, cid: str) -> bool:
        """Stop a pending restart (stop, kill, rm -f); True if there was one."""
        task = self.restarts.pop(cid, None)
        self.core.restarting.discard(cid)
        self.backoff.pop(cid, None)
        if task is not None:
            task.cancel()
        return task is not None

    async def teardown(self, c: Container) -> list[Exception]:
        return await sandbox.teardown(self.core, c, lambda: self.withdraw(c))

    def mark_exited(self, c: Container, code: int | None) -> None:
        stopping = c.state.stopping_signal
        if code is None:
            code = 128 + stopping if stopping else 255
        c.state.status, c.state.exit_code, c.state.pid = "exited", code, 0
        c.state.paused = False
        c.state.finished_at, c.state.stopping_signal = time.time(), None
        c.netns = ""
        self.core.store.containers.put(c)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.core.dir(c.id), "pid"))

    async def kill_and_reap(self, pid: int) -> None:
        """SIGKILL, then wait (2 s at most) until the process is gone or a zombie."""
        process.kill(pid, signal.SIGKILL)
        for _ in range(100):
            if not process.alive(pid, 0):
                return
            await asyncio.sleep(0.02)

    # -- stop, kill, restart, wait, remove
    async def stop(self, ref: str, timeout: int | None = None, sig: int = signal.SIGTERM,
                   stop_event: bool = True) -> None:
        c = self.core.container(ref)
        rt = self.procs.runtime.get(c.id)
        self.cancel_restart(c.id)
        if not c.running or rt is None:
            return
        self.stopped_by_user.add(c.id)
        if timeout is None and c.config.get("StopTimeout") is not None:
            timeout = int(c.config["StopTimeout"])  # the container's own, given at create
        grace: float | None = STOP_GRACE if timeout is None else None if timeout < 0 else timeout
        async with journaled(self.core.store, "stop", id=c.id):
            self._explain_exit(c.id)
            c.state.stopping_signal = signal.SIGKILL
            self.core.store.containers.put(c)
            process.kill(c.state.pid, sig)
            self.core.events.container(c, "kill", signal=int(sig))
            self.resume_after_signal(c)
            try:
                await asyncio.wait_for(rt.exited.wait(), timeout=grace)
            except TimeoutError:
                process.kill(c.state.pid, signal.SIGKILL)
                self.core.events.container(c, "kill", signal=int(signal.SIGKILL))
                await self._exit_recorded(c, rt)
        if stop_event:  # `rm -f` kills: Docker reports kill, die, destroy and no stop
            self.core.events.container(c, "stop")

    async def _exit_recorded(self, c: Container, rt: Runtime) -> None:
        """Wait for the exit to be recorded; should its report never come while the process is
        gone (a bug, or a keeper lost with it), record it here rather than wait forever."""
        while True:
            try:
                await asyncio.wait_for(rt.exited.wait(), EXIT_REPORT_WAIT)
                return
            except TimeoutError:
                if not process.alive(c.state.pid, c.state.start_time):
                    log.warning("%s: its process is gone and no exit was reported: recorded now", c.name)
                    await self.on_exit(c.id, None)
                    return

    async def kill(self, ref: str, sig: int) -> None:
        c = self.core.container(ref)
        if not c.running and self.cancel_restart(c.id):
            return  # a kill of a restarting container ends its restarts
        if not c.running:
            raise Conflict(f"Cannot kill container: {ref}: Container {c.id} is not running")
        self.stopped_by_user.add(c.id)
        rt = self.procs.runtime.get(c.id)
        process.kill(c.state.pid, sig)
        self.core.events.container(c, "kill", signal=int(sig))
        self.resume_after_signal(c)
        if sig == signal.SIGKILL and rt is not None:
            # as moby's daemon.Kill: answer once the exit is recorded, so that an inspect or a
            # remove right after the kill sees the container exited
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(rt.exited.wait(), KILL_WAIT)

    def resume_after_signal(self, c: Container) -> None:
        """A paused container is resumed after a signal, so that the signal acts (as Docker does)."""
        if c.state.paused:
            procstats.continue_all(c.state.pid)
            c.state.paused = False
            self.core.store.containers.put(c)
            self.core.events.container(c, "unpause")

    async def restart(self, ref: str, timeout: int | None) -> None:
        c = self.core.container(ref)
        await self.stop(c.id, timeout)
        await self.start(c.id)
        self.core.events.container(self.core.container(c.id), "restart")

    async def wait(self, ref: str, condition: str = "not-running") -> int:  # the route checks `condition`
        """Docker's wait conditions: `not-running` (now, if it is not running), `next-exit`
        (the next exit, even of a container not started yet: `docker run` waits so before it
        starts), `removed` (the exit, then the removal: `docker run --rm`)."""
        c = self.core.store.containers.find(ref)
        if c is None:
            for cid, code in self.procs.last_exit.items():
                if cid == ref or cid.startswith(ref):
                    return code
            raise no_such_container(ref)
        if condition in ("next-exit", "removed") and c.id not in self.procs.runtime:
            self._explain_exit(c.id)
            return await self.procs.wait_for(c.id, condition)
        rt = self.procs.runtime.get(c.id)
        if rt is not None:
            self._explain_exit(c.id)
            await rt.exited.wait()
        elif c.running:
            # exiting this very moment: on_exit holds the lock until the code is recorded
            async with self.core.locks.hold(c.id):
                pass
        if condition == "removed" and self.core.store.containers.get(c.id) is not None:
            return await self.procs.wait_for(c.id, "removed")
        if c.id in self.procs.last_exit:
            return self.procs.last_exit[c.id]
        c = self.core.store.containers.get(c.id) or c
        return c.state.exit_code

    async def remove(self, ref: str, force: bool, volumes: bool = False) -> None:
        """Remove a container; with `volumes` (rm -v) its anonymous volumes too."""
        c = self.core.container(ref)
        if c.id in self.core.restarting and not force:
            raise Conflict(f"You cannot remove a restarting container {c.id}. "
                           "Stop the container before attempting removal or force remove")
        if c.running and not force:
            raise Conflict(f"You cannot remove a running container {c.id}. "
                           "Stop the container before attempting removal or force remove")
        self.cancel_restart(c.id)
        async with journaled(self.core.store, "rm", id=c.id):
            if c.running:
                await self.stop(c.id, timeout=0, sig=signal.SIGKILL, stop_event=False)
            async with self.core.locks.hold(c.id):
                gone = self.core.store.containers.get(c.id)
                if gone is not None:
                    self.remove_record(gone, volumes)
        self.core.refresh_dns(c.id)

    def _explain_exit(self, cid: str) -> None:
        """The exit handler's task tears down: hand it this request's recording and operation."""
        rec = current_recording()
        if rec is not None:
            self.exit_recordings.setdefault(cid, rec)
        if current_operation():
            self.exit_operations.setdefault(cid, current_operation())

    def remove_record(self, c: Container, volumes: bool = False) -> None:
        self.core.store.drop_endpoints(c.id)
        self.core.store.containers.delete(c.id)
        if volumes:
            self.core.volumes.release(c)
        shutil.rmtree(self.core.dir(c.id), ignore_errors=True)
        if c.layer:
            self.core.spares.unmount(c.layer)
            shutil.rmtree(self.core.spares.layer_dir(c.layer), ignore_errors=True)
        self.procs.wake(c.id, "removed", self.procs.last_exit.get(c.id, c.state.exit_code))
        self.core.events.container(c, "destroy")

    def top(self, ref: str, ps_args: str) -> dict[str, Any]:
        c = self.core.container(ref)
        if not c.running:
            raise Conflict(f"Container {c.id} is not running")
        header, rows = process.ps_rows(process.pid_namespace_members(c.state.pid), ps_args or "-ef")
        return {"Titles": header, "Processes": rows}


def _write(path: str, text: str) -> None:
    """In place, not by rename: a running container has this inode bind-mounted. Truncated
    only if it held more, and its mode set only if not 0644: it is made ahead, empty, 0644
    (spares.py), and on this ext4 a truncate or a chmod costs ~40 µs, a start writes three."""
    data = text.encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        st = os.fstat(fd)
        if st.st_size > len(data):
            os.ftruncate(fd, len(data))
        if st.st_mode & 0o7777 != 0o644:
            os.fchmod(fd, 0o644)
    finally:
        os.close(fd)

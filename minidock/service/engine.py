"""The engine: every operation on networks and containers, and start-up
reconcile. It validates a request completely, then changes the kernel
through drivers inside a Transaction (undone in reverse on failure), then
records the result in the store.

Per container, at run time:

    /run/netns/md-<name>  ── network namespace (lo, eth0 → veth on a bridge)
    <root>/containers/<id>/
        hosts resolv.conf hostname   bound over /etc/… inside the container
        upper/ work/ merged/         the overlay over the image's root
        container.log                everything the container printed
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import shlex
import shutil
import signal
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from netaddr import IPAddress, IPNetwork

from .. import dnsstub, ipam, ports
from ..drivers.bridge import ALIAS_PREFIX, BridgeDriver
from ..drivers.host import HostDriver
from ..drivers.null import NullDriver
from ..errors import (
    CONTAINER_MODE_CONFLICTS,
    HOST_MODE_PORTS,
    Conflict,
    Forbidden,
    InvalidParameter,
    MinidockError,
    no_such_container,
    no_such_network,
)
from ..explain import Recording
from ..kernel import iptables, netns, nftables, portbind, process
from ..kernel.netlink import Netlink
from ..kernel.netns import NETNS_PREFIX
from ..steps import (
    Transaction,
    current_operation,
    current_recording,
    explained,
    faults,
    record,
    reset_operation,
    set_operation,
    undo_all,
    use_recording,
)
from ..store import Store
from . import files, networks, system
from .common import KeyedLocks, check_name, new_id, random_name, watch_fd
from .images import Images

log = logging.getLogger("minidock.engine")
STOP_GRACE = 10
DYING_GRACE = 10.0  # seconds the kernel gets to delete the veths of a deleted namespace
TIMINGS = bool(os.environ.get("MINIDOCK_TIMINGS"))  # log the network part of each start (make bench)


def _pinned_networks(c: dict[str, Any]) -> list[str]:
    """The networks on which container `c` asked for an address of its own (--ip)."""
    return [name for name, cfg in c["networks"].items() if cfg.get("ipv4")]


@dataclass
class SandboxHandle:
    """A container's network namespace while it is being wired up."""

    name: str
    netns: str
    _inside: Netlink | None = None

    async def inside(self) -> Netlink:
        if self._inside is None:
            self._inside = await Netlink.open(await netns.open_socket(self.netns), self.netns)
        return self._inside

    def close(self) -> None:
        if self._inside is not None:
            self._inside.close()
            self._inside = None


@dataclass
class Runtime:
    """What the daemon holds for a running container besides its record."""

    exited: asyncio.Event = field(default_factory=asyncio.Event)
    master: int | None = None  # pty master (Tty containers)
    stdin_w: int | None = None  # write end of stdin (OpenStdin without Tty)
    subscribers: set[asyncio.Queue[bytes | None]] = field(default_factory=set)
    log_fd: int | None = None


class Engine:
    def __init__(self, root: str, upstreams: list[str], port_maps: bool = False) -> None:
        self.root = root
        # published ports as nftables map elements instead of iptables rules (--port-maps)
        self.nft: nftables.Nft | None = nftables.Nft() if port_maps else None
        self.store = Store(os.path.join(root, "minidock.db"))
        # containers by the networks on which they pinned an address (--ip): every start
        # must avoid those, and scanning 1000 containers for them cost 0.8 ms
        self.store.add_index("containers", "pinned", _pinned_networks)
        self.images = Images(root)
        self.upstreams = upstreams
        self.locks = KeyedLocks()
        self.host: Netlink | None = None
        self.drivers: dict[str, Any] = {}
        self.runtime: dict[str, Runtime] = {}
        self.last_exit: dict[str, int] = {}
        # --explain of a stop or wait: the teardown runs in the exit handler's task, not the request's
        self.exit_recordings: dict[str, Recording] = {}
        self.exit_waiters: dict[str, list[tuple[str, asyncio.Future[int]]]] = {}
        self.exit_operations: dict[str, str] = {}
        self.shutdown: Callable[[], None] = lambda: None  # the server's stop, once it serves
        self.execs: dict[str, dict[str, Any]] = {}
        self._fw_lock = asyncio.Lock()
        self.port_holds: dict[str, list[Any]] = {}  # container id -> bound sockets keeping its host ports
        self._held: dict[str, tuple[dict[str, Any], list[ports.Published]]] = {}
        # joined its networks, process not yet running: its name resolves and it may ask already
        self.starting: set[str] = set()
        # host ends of veth pairs whose namespace is gone: the kernel deletes them in the
        # background (cleanup_net); until then they are ours, not orphans (name -> deadline)
        self.dying_links: dict[str, float] = {}
        self.background: set[asyncio.Task[Any]] = set()
        # attach requests that arrived before the start they wait for (docker run attaches first)
        self.pending_subscribers: dict[str, set[asyncio.Queue[bytes | None]]] = {}
        self.start_attempts: dict[str, asyncio.Event] = {}
        self.records = dnsstub.Records()
        self.dns = dnsstub.DnsServer(self.records, self._upstreams_for)

    # ------------------------------------------------------------------ start-up
    async def open(self) -> None:
        netns.ensure_dir()
        self.host = await Netlink.open()
        self.drivers = {"bridge": BridgeDriver(self.host), "host": HostDriver(), "null": NullDriver()}
        os.makedirs(os.path.join(self.root, "containers"), mode=0o700, exist_ok=True)
        await self.reconcile()

    async def close(self) -> None:
        self.dns.close()
        for rt in self.runtime.values():
            self._close_runtime(rt)
        if self.host:
            self.host.close()
        if self.nft is not None:
            self.nft.close()
        self.store.close()

    async def reconcile(self) -> None:
        """Make the kernel match the store: predefined networks exist, dead
        containers are marked exited, objects of ours nobody knows are removed."""
        nets = {n["name"]: n for n in self.store.all("networks")}
        if "bridge" not in nets:
            rec = networks.default_bridge_record()
            networks.finish_subnet(rec, self._subnets_in_use(), await self.host.routes())
            self.store.put("networks", rec)
        for name, driver in (("host", "host"), ("none", "null")):
            if name not in nets:
                self.store.put("networks", networks.simple_record(name, driver))
        removals: list[str] = []
        for entry_id, op, data in self.store.journal():
            log.warning("a crash interrupted %s %s: finishing or undoing it", op, data)
            try:
                await self._recover(op, data, removals)
            finally:
                self.store.journal_end(entry_id)
        for c in self.store.all("containers"):
            if c["id"] not in removals:
                self._adopt(c)
            st = c["state"]
            if st["status"] == "running" and process.alive(st["pid"], st.get("start_time", 0)):
                self.runtime[c["id"]] = Runtime()
                self._watch(c["id"], st["pid"])
                self._rehold_ports(c)
            elif st["status"] == "running":
                log.info("container %s died while the daemon was away", c["name"])
                await self._teardown_network(c)
                self._mark_exited(c, None)
            else:
                # endpoints and leases live only while a container runs: a start or stop
                # cut short may have left some behind (their links go with the orphans below)
                self.store.drop_endpoints(c["id"])
                if c.get("netns"):
                    c["netns"] = ""
                    self.store.put("containers", c)
        for cid in removals:
            c = self.store.get("containers", cid)
            if c is not None:
                self._remove_record(c)
        # what someone changed by hand while we were away (a bridge, a veth, a namespace, the
        # firewall) is put right as `minidock system repair` does; orphans of ours go
        await system.repair(self)
        for c in self.store.all("containers"):
            if c["id"] in self.runtime and self._uses_dns(c):
                try:
                    await self.dns.serve(c["id"], c["netns"])
                except OSError as e:
                    log.warning("DNS for %s: %s", c["name"], e)
        self.refresh_dns()

    def wired(self) -> list[dict[str, Any]]:
        """Running containers with a network namespace of their own (not host mode, not joined)."""
        return [c for c in self.store.all("containers")
                if c["state"]["status"] == "running" and c.get("netns") and not _joined(c)]

    def known_objects(self) -> tuple[set[str], set[str]]:
        """The links and namespaces the records explain: what is ours and not an orphan."""
        known_links = {n["bridge"] for n in self.store.view("networks") if n.get("bridge")}
        now = time.monotonic()
        self.dying_links = {name: t for name, t in self.dying_links.items() if t > now}
        known_links.update(self.dying_links)
        known_ns = set()
        for c in self.wired():
            known_ns.add(c["netns"])
            known_links.update(ep["veth"] for ep in self.store.endpoints(container_id=c["id"]))
        return known_links, known_ns

    async def remove_orphans(self) -> None:
        """Delete links and namespaces of ours that no record explains."""
        known_links, known_ns = self.known_objects()
        for link in await self.host.links():
            if (link.alias or "").startswith(ALIAS_PREFIX) and link.name not in known_links:
                log.info("removing stale link %s (%s)", link.name, link.alias)
                await self.host.delete_link(link.name)
        for name in netns.names():
            if name.startswith(NETNS_PREFIX) and name not in known_ns:
                log.info("removing stale namespace %s", name)
                for pid in netns.pids_inside(name):  # a process spawned by a start that never finished
                    await self.kill_and_reap(pid)
                netns.delete(name)

    def sandbox(self, c: dict[str, Any]) -> SandboxHandle:
        return SandboxHandle(name=c["name"], netns=c["netns"])

    def close_port_holds(self) -> None:
        for holds in self.port_holds.values():
            for sock in holds:
                sock.close()
        self.port_holds.clear()

    @contextlib.asynccontextmanager
    async def _op(self, op: str, **data: Any) -> AsyncIterator[None]:
        """Journal an operation: its intent is stored before the kernel is touched and
        dropped when it is over (done or rolled back); a crash leaves it for reconcile."""
        entry = self.store.journal_begin(op, data)
        token = set_operation(op) if not current_operation() else None  # rm's stop is part of rm
        try:
            yield
        finally:
            if token is not None:
                reset_operation(token)
            self.store.journal_end(entry)

    async def _recover(self, op: str, data: dict[str, Any], removals: list[str]) -> None:
        """Finish or undo an operation that a crash interrupted (its journal entry)."""
        c = self.store.get("containers", data.get("id", "")) if "id" in data else None
        if op == "network create" and self.store.get("networks", data["network"]) is None:
            await self.host.delete_link(data["bridge"])  # made, never recorded: undo
        elif op == "network rm":
            net = self.store.get("networks", data["network"])
            if net is not None and not self.store.endpoints(network_id=net["id"]):
                await self.drivers[net["driver"]].delete_network(net)  # finish
                self.store.release_network(net["id"])
                self.store.delete("networks", net["id"])
        elif op in ("connect", "disconnect") and c is not None:
            net = self.store.get("networks", data["network"])
            joined = net is not None and net["name"] in c["networks"]
            unrecorded_connect = op == "connect" and net is not None and not joined
            if unrecorded_connect or op == "disconnect":  # undo the one, finish the other
                for ep in self.store.drop_endpoints(c["id"], data["network"]):
                    await self.host.delete_link(ep["veth"])
                if joined and op == "disconnect":
                    del c["networks"][net["name"]]  # type: ignore[index]
                    self.store.put("containers", c)
        elif op in ("stop", "rm") and c is not None:
            st = c["state"]
            if st["status"] == "running" and process.alive(st["pid"], st.get("start_time", 0)):
                await self.kill_and_reap(st["pid"])  # finish the stop; reconcile tears down
            if op == "rm":
                removals.append(c["id"])
        # "start": nothing here. A process that was spawned but not recorded is adopted from its
        # pidfile; everything else of an unfinished start is an orphan the generic pass removes.

    async def kill_and_reap(self, pid: int) -> None:
        """SIGKILL, then wait (2 s at most) until the process is gone or a zombie."""
        process.kill(pid, signal.SIGKILL)
        for _ in range(100):
            if not process.alive(pid, 0):
                return
            await asyncio.sleep(0.02)

    def _adopt(self, c: dict[str, Any]) -> bool:
        """A process spawned by a start the crash cut short: the start is finished, not undone."""
        try:
            with open(os.path.join(self._dir(c["id"]), "pid")) as f:
                pid, started = (int(x) for x in f.read().split())
        except (OSError, ValueError):
            return False
        if c["state"]["status"] == "running" or not process.alive(pid, started):
            return False
        log.warning("container %s: adopting process %d that a crash left unrecorded", c["name"], pid)
        c["state"] = {"status": "running", "pid": pid, "start_time": started, "exit_code": 0, "error": "",
                      "started_at": time.time(), "finished_at": 0}
        self.store.put("containers", c)
        return True

    def _rehold_ports(self, c: dict[str, Any]) -> None:
        """Bind again the host ports of a container that outlived a daemon restart."""
        for p in ports.held(c):
            try:
                self.port_holds.setdefault(c["id"], []).append(portbind.reserve(p.proto, p.host_ip, p.host_port))
            except OSError as e:
                log.warning("%s: host port %s/%s was taken while the daemon was away: %s",
                            c["name"], p.host_port, p.proto, e)

    def _subnets_in_use(self, exclude: str = "") -> list[IPNetwork]:
        return [IPNetwork(c["subnet"]) for n in self.store.view("networks") if n["id"] != exclude
                for c in n["ipam"]["config"]]

    def ruleset(self) -> iptables.Ruleset:
        """Every rule of ours, as the store says it should be."""
        rules = [r for n in self.store.view("networks")
                 if (r := self.drivers[n["driver"]].firewall(n)) is not None]
        return iptables.ruleset(rules, self._published(), maps=self.nft is not None)

    async def apply_firewall(self, why: str = "") -> None:
        """Rebuild our chains (and port maps) from the store; --explain shows the rules that changed."""
        async with self._fw_lock:
            changed = await iptables.apply(self.ruleset())
            if self.nft is not None:
                table = nftables.table_text(self._published())
                self.nft.run(table)
                changed.append(f"nft -f - <<'EOF'\n{table}EOF")
        record("firewall", why, changed)
        faults.step_done("firewall")

    async def _change_port_maps(self, commands: list[str], why: str) -> None:
        assert self.nft is not None
        async with self._fw_lock:
            self.nft.run("\n".join(commands))
        record("port maps", why, [f"nft {c}" for c in commands])
        faults.step_done("firewall")

    def _published(self, exclude: str = "") -> list[ports.Published]:
        out = []
        for c in self.store.view("containers"):
            if c["id"] != exclude and c.get("ports"):
                memo = self._held.get(c["id"])
                if memo is None or memo[0] is not c:  # `view` hands out a new object after each put
                    memo = self._held[c["id"]] = (c, ports.held(c))
                out += memo[1]
        return out

    def _choose_ports(self, bindings: dict[str, list[dict[str, str]]], who: str,
                      exclude: str = "") -> list[tuple[str, str, int, int]]:
        try:
            return ports.choose(ports.wanted(bindings), self._published(exclude), portbind.is_free)
        except ports.PortAllocated as e:
            raise _not_published(who, e) from None

    async def _publish(self, c: dict[str, Any], tx: Transaction) -> None:
        """Hold the host ports and add the NAT rules for the container's primary network."""
        bindings = c["host_config"]["PortBindings"]
        if c["host_config"].get("PublishAllPorts"):
            bindings = ports.normalise(bindings, c["config"].get("ExposedPorts") or {}, True)
        net = self.network(next(iter(c["networks"]))) if c["networks"] else None
        if not bindings or net is None or net["driver"] != "bridge" or net.get("internal"):
            return
        ep = self.store.endpoints(container_id=c["id"], network_id=net["id"])[0]
        async with self.locks.hold("ports"):
            chosen = self._choose_ports(bindings, c["name"], exclude=c["id"])
            holds = self.port_holds.setdefault(c["id"], [])
            tx._undo.append(("ports", lambda: self._unpublish(c)))
            for proto, ip, hp, _ in chosen:
                try:
                    holds.append(portbind.reserve(proto, ip, hp))
                except portbind.PortInUse:  # taken between the check and now
                    raise _not_published(c["name"], ports.PortAllocated(ip, hp)) from None
            published = [ports.Published(proto, ip, hp, cp, ep["ip"], net["bridge"],
                                         net["ipam"]["config"][0]["subnet"], c["name"])
                         for proto, ip, hp, cp in chosen]
            c["ports"] = [p.to_dict() for p in published]
            self.store.put("containers", c)
        record("hold the host ports", "bound, never listening: no host program can take them (no command)",
               [f"# {p.host_ip}:{p.host_port}/{p.proto}" for p in published])
        why = "the host forwards its ports to the container in the kernel (DNAT), no proxy process"
        if self.nft is not None:
            await tx.step("published ports", self._change_port_maps(nftables.add_commands(published), why))
        else:
            await tx.step("published ports", self.apply_firewall(why))

    async def _unpublish(self, c: dict[str, Any]) -> None:
        """Drop the rules first, then let go of the host ports."""
        if c.get("ports"):
            gone = ports.held(c)
            c["ports"] = []
            self.store.put("containers", c)
            self._held.pop(c["id"], None)
            why = f"{c['name']}'s published ports are withdrawn"
            if self.nft is not None:
                await self._change_port_maps(nftables.delete_commands(gone), why)
            else:
                await self.apply_firewall(why)
        for sock in self.port_holds.pop(c["id"], []):
            sock.close()

    # ------------------------------------------------------------------ lookups
    def network(self, ref: str) -> dict[str, Any]:
        net = self.store.find("networks", ref)
        if net is None:
            raise no_such_network(ref)
        return net

    def container(self, ref: str) -> dict[str, Any]:
        c = self.store.find("containers", ref)
        if c is None:
            raise no_such_container(ref)
        return c

    def container_names(self) -> dict[str, str]:
        return {c["id"]: c["name"] for c in self.store.view("containers")}

    # ------------------------------------------------------------------ networks
    def network_view(self, net: dict[str, Any]) -> dict[str, Any]:
        return networks.network_json(net, self.store.endpoints(network_id=net["id"]), self.container_names())

    async def create_network(self, req: dict[str, Any]) -> dict[str, Any]:
        existing = self.store.all("networks")
        net = networks.validate_create(req, existing)
        async with self.locks.hold("networks"):
            existing = self.store.all("networks")
            networks.validate_create({**req}, existing)  # again, under the lock
            networks.finish_subnet(net, self._subnets_in_use(), await self.host.routes())
            async with self._op("network create", network=net["id"], bridge=net["bridge"]), Transaction() as tx:
                await self.drivers["bridge"].create_network(net, tx)
                self.store.put("networks", net)
                tx._undo.append(("store", _coro(self.store.delete, "networks", net["id"])))
                await self.apply_firewall(f"let {net['name']} out through NAT and keep it apart from other bridges")
        return {"Id": net["id"], "Warning": ""}

    async def remove_network(self, ref: str) -> None:
        net = self.network(ref)
        if net.get("predefined"):
            raise Forbidden(f"{net['name']} is a pre-defined network and cannot be removed")
        async with self.locks.hold("networks", net["id"]):
            eps = self.store.endpoints(network_id=net["id"])
            users = [c for c in self.store.view("containers") if net["name"] in c["networks"]
                     and c["state"]["status"] == "running"]
            if eps or users:
                names = ", ".join(sorted({c["name"] for c in users}))
                raise Forbidden(
                    f"error while removing network: network {net['name']} id {net['id']} has active endpoints"
                    + (f" ({names})" if names else ""))
            async with self._op("network rm", network=net["id"]):
                await self.drivers[net["driver"]].delete_network(net)
                faults.step_done("bridge")
                self.store.release_network(net["id"])
                self.store.delete("networks", net["id"])
                await self.apply_firewall(f"the rules of {net['name']} go")

    async def prune_networks(self) -> list[str]:
        removed = []
        for net in self.store.all("networks"):
            if net.get("predefined"):
                continue
            if any(net["name"] in c["networks"] for c in self.store.view("containers")):
                continue
            try:
                await self.remove_network(net["id"])
                removed.append(net["name"])
            except MinidockError:
                continue
        return removed

    # ------------------------------------------------------------------ containers: create
    async def create_container(self, name: str | None, body: dict[str, Any]) -> dict[str, Any]:
        hc = body.get("HostConfig") or {}
        mode = hc.get("NetworkMode") or "default"
        mode_net = "bridge" if mode == "default" else mode
        if name:
            name = name.lstrip("/")
            check_name(name)
        else:
            name = random_name()
            while self.store.find("containers", name):
                name = random_name()
        if not body.get("Image"):
            raise InvalidParameter("image name is required")
        image_name, lower, note = self.images.resolve(body["Image"])
        entrypoint = body.get("Entrypoint") or []
        if isinstance(entrypoint, str):
            entrypoint = [entrypoint]
        cmd = body.get("Cmd") or []
        if isinstance(cmd, str):
            cmd = [cmd]
        argv = [*entrypoint, *cmd] or (["sh"] if lower != "/" else ["bash"])
        endpoints_cfg = (body.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}
        want: dict[str, dict[str, Any]] = {}
        joined = mode_net.startswith("container:")
        if joined:
            mode = self._joined_mode(mode_net, body, hc)
            net = self.network("none")  # no network of its own: the driver checks below see "none"
        else:
            net = self.network(mode_net)
        for netref, cfg in [] if joined else [
                (mode_net, endpoints_cfg.get(mode_net) or endpoints_cfg.get(mode) or {}),
                *[(k, v) for k, v in endpoints_cfg.items() if k not in (mode_net, mode)]]:
            n = self.network(netref)
            cfg = cfg or {}
            ip = ((cfg.get("IPAMConfig") or {}).get("IPv4Address")) or ""
            aliases = list(cfg.get("Aliases") or [])
            if n["name"] == "bridge" and ip:
                raise InvalidParameter("user specified IP address is supported on user defined networks only")
            if n["name"] == "bridge" and aliases:
                raise InvalidParameter("network-scoped alias is supported only for containers in user defined networks")
            if n["driver"] in ("host", "null") and len(want) > 0:
                raise InvalidParameter(f"container cannot be connected to {n['name']} network and others")
            if ip:
                self._check_pinned_ip(n, ip)
            want[n["name"]] = {"network_id": n["id"], "aliases": aliases, "ipv4": ip}
        if hc.get("PortBindings") and net["driver"] == "host":
            raise InvalidParameter(HOST_MODE_PORTS)
        declared = ports.normalise(hc.get("PortBindings"))
        exposed = sorted({f"{p}/{proto}" for p, proto in map(ports.parse_key, body.get("ExposedPorts") or {})}
                         | set(declared))
        bindings = ports.normalise(declared, exposed, bool(hc.get("PublishAllPorts")))
        if net["driver"] == "bridge":
            # refuse a taken port now, so that `run` leaves no container behind
            self._choose_ports(bindings, name)
        for spec in hc.get("ExtraHosts") or []:
            try:
                files.parse_extra_host(spec, "0.0.0.0")
            except ValueError as e:
                raise InvalidParameter(str(e)) from None
        for ns in hc.get("Dns") or []:
            ipam.parse_address(ns, "IP address for --dns") if ":" not in ns else None
        for kv in body.get("Env") or []:
            if "=" not in kv:
                raise InvalidParameter(f"invalid environment variable: {kv}")
        hostname = body.get("Hostname") or ""
        if hostname and not all(c.isalnum() or c in "-." for c in hostname):
            raise InvalidParameter(f"invalid hostname format: {hostname}")
        cid = new_id()
        doc = {
            "id": cid,
            "name": name,
            "created": time.time(),
            "image": body["Image"],
            "image_name": image_name,
            "lower": lower,
            "argv": argv,
            "config": {
                # a joined container takes its hostname from the other one when it starts
                "Hostname": hostname or ("" if joined else cid[:12] if net["driver"] != "host"
                                         else os.uname().nodename),
                "Domainname": body.get("Domainname") or "",
                "User": body.get("User") or "",
                "AttachStdin": bool(body.get("AttachStdin")),
                "AttachStdout": bool(body.get("AttachStdout", True)),
                "AttachStderr": bool(body.get("AttachStderr", True)),
                "Tty": bool(body.get("Tty")),
                "OpenStdin": bool(body.get("OpenStdin")),
                "StdinOnce": bool(body.get("StdinOnce")),
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                        *(body.get("Env") or [])],
                "Cmd": cmd or None,
                "Image": body["Image"],
                "WorkingDir": body.get("WorkingDir") or "",
                "Entrypoint": entrypoint or None,
                "Labels": body.get("Labels") or {},
                "ExposedPorts": {key: {} for key in exposed} or None,
            },
            "host_config": {
                "NetworkMode": mode,
                "Dns": list(hc.get("Dns") or []),
                "ExtraHosts": list(hc.get("ExtraHosts") or []),
                "AutoRemove": bool(hc.get("AutoRemove")),
                "PortBindings": declared,
                "PublishAllPorts": bool(hc.get("PublishAllPorts")),
                "Links": list(hc.get("Links") or []),
            },
            "networks": want,
            "state": {"status": "created", "pid": 0, "start_time": 0, "exit_code": 0, "error": "",
                      "started_at": 0, "finished_at": 0},
            "netns": "",
            "restart_count": 0,
        }
        async with self.locks.hold("names"):
            other = self.store.find("containers", name)
            if other is not None and other["name"] == name:
                raise Conflict(
                    f'Conflict. The container name "/{name}" is already in use by container "{other["id"]}". '
                    "You have to remove (or rename) that container to be able to reuse that name.")
            os.makedirs(self._dir(cid), mode=0o700)
            os.close(os.open(os.path.join(self._dir(cid), "container.log"), os.O_CREAT | os.O_WRONLY, 0o600))
            self.store.put("containers", doc)
        warnings = [note] if note and self._announce(image_name) else []
        return {"Id": cid, "Warnings": warnings}

    def _joined_mode(self, mode: str, body: dict[str, Any], hc: dict[str, Any]) -> str:
        """Validate `--network container:<name|id>`; return the mode naming the other by its ID.

        The conflicts and their wording are the Docker daemon's (validateNetContainerMode):
        everything that shapes a network stack belongs to the container that owns it.
        """
        ref = mode.partition(":")[2]
        if not ref:
            raise InvalidParameter("Invalid network mode: invalid container format container:<name|id>")
        given = {"hostname": body.get("Hostname"), "links": hc.get("Links"), "dns": hc.get("Dns"),
                 "extra_hosts": hc.get("ExtraHosts"), "ports": hc.get("PortBindings") or hc.get("PublishAllPorts"),
                 "expose": body.get("ExposedPorts")}
        for option, message in CONTAINER_MODE_CONFLICTS.items():
            if given[option]:
                raise InvalidParameter(message)
        for cfg in ((body.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}).values():
            if (cfg or {}).get("Aliases"):
                raise InvalidParameter("network-scoped aliases are only supported for user-defined networks")
        other = self.store.find("containers", ref)
        # like Docker, a name that matches nothing yet is kept and looked up again at start
        return f"container:{other['id']}" if other else mode

    def _joined_owner(self, c: dict[str, Any]) -> dict[str, Any] | None:
        """The running container whose network namespace `c` shares, if `c` is in container mode."""
        if not _joined(c):
            return None
        other = self.container(c["host_config"]["NetworkMode"].partition(":")[2])
        if other["state"]["status"] != "running" or not other.get("netns"):
            raise Conflict(f"cannot join network of a non running container: {other['id']}")
        return other

    def _announce(self, image_name: str) -> bool:
        key = f"announced:{image_name}"
        if self.store.meta_get(key):
            return False
        self.store.meta_set(key, "1")
        return True

    def _check_pinned_ip(self, net: dict[str, Any], ip: str) -> None:
        """A --ip must be in the subnet, not the gateway, and nobody else's."""
        addr = ipam.parse_address(ip, "IPv4 address")
        cfg = net["ipam"]["config"][0] if net["ipam"]["config"] else None
        if cfg is None or addr not in IPNetwork(cfg["subnet"]):
            raise InvalidParameter(f"no configured subnet or ip-range contain the IP address {ip}")
        if str(addr) == cfg["gateway"]:
            raise Conflict(f"Address already in use: {ip} is the gateway of network {net['name']}")
        holder = self.store.leases(net["id"]).get(str(addr))
        pinned_by = [c["name"] for c in self.store.indexed("containers", "pinned", net["name"])
                     if c["networks"][net["name"]]["ipv4"] == str(addr)]
        if holder or pinned_by:
            raise Conflict(f"Address already in use: {ip} on network {net['name']}")

    def _dir(self, cid: str) -> str:
        return os.path.join(self.root, "containers", cid)

    # ------------------------------------------------------------------ containers: start
    async def start(self, ref: str) -> None:
        c = self.container(ref)
        async with self.locks.hold(c["id"]):
            c = self.container(c["id"])
            if c["state"]["status"] == "running":
                return
            async with self._op("start", id=c["id"]):
                await self._start(c)

    def start_attempt(self, cid: str) -> asyncio.Event:
        """Set when the next start of `cid` has succeeded or failed."""
        return self.start_attempts.setdefault(cid, asyncio.Event())

    async def _start(self, c: dict[str, Any]) -> None:
        try:
            await self._start_inner(c)
        except BaseException:
            for q in self.pending_subscribers.pop(c["id"], set()):
                q.put_nowait(None)
            raise
        finally:
            event = self.start_attempts.pop(c["id"], None)
            if event is not None:
                event.set()

    async def _start_inner(self, c: dict[str, Any]) -> None:
        cid = c["id"]
        mode_net = self.network(next(iter(c["networks"]))) if c["networks"] else self.network("none")
        host_mode = mode_net["driver"] == "host"
        owner = self._joined_owner(c)
        rt = Runtime()
        sb: SandboxHandle | None = None
        opened: list[int] = []
        try:
            async with Transaction() as tx:
                t0 = time.perf_counter()
                if owner is not None:
                    # nothing to build: the process enters the other container's namespace and
                    # sees its interfaces, addresses, routes, hosts file and DNS stub
                    c["netns"] = owner["netns"]
                    c["config"]["Hostname"] = owner["config"]["Hostname"]
                    c["config"]["Domainname"] = owner["config"]["Domainname"]
                elif not host_mode:
                    ns_name = NETNS_PREFIX + c["name"]
                    sock = await tx.step("namespace", netns.create(ns_name),
                                         undo=explained("remove the namespace", _coro(netns.delete, ns_name),
                                                        [f"ip netns del {ns_name}"]),
                                         commands=[f"ip netns add {ns_name}"],
                                         why="the container's own network stack")
                    sb = SandboxHandle(name=c["name"], netns=ns_name, _inside=await Netlink.open(sock, ns_name))
                    await tx.step("loopback", sb._inside.loopback_up(),
                                  commands=[f"ip -n {ns_name} link set lo up"])
                    c["netns"] = ns_name
                    for index, (_netname, cfg) in enumerate(c["networks"].items()):
                        net = self.network(cfg["network_id"])
                        await self._plug(c, net, cfg, sb, tx, f"eth{index}",
                                         gateway=index == 0 and not net.get("internal"))
                    if self._uses_dns(c):
                        await tx.step("dns", self.dns.serve(cid, ns_name), undo=_coro(self.dns.stop, cid),
                                      commands=[f"# minidock answers on 127.0.0.11:53 inside {ns_name}: a socket "
                                                "the daemon opened there, no command"],
                                      why="the embedded DNS server at 127.0.0.11 inside the container")
                    await self._publish(c, tx)
                    self.starting.add(cid)
                    self.refresh_dns(cid)
                if TIMINGS:
                    log.info("%s: network attach %.2f ms", c["name"], (time.perf_counter() - t0) * 1000)
                if owner is None:
                    self._write_files(c, host_mode)
                stdin, stdout, stderr = self._stdio(c, rt, opened)
                spec = self._spec(c, host_mode, self._dir((owner or c)["id"]))
                console = process.Console() if c["config"]["Tty"] else None
                try:
                    # the last step: nothing after it can fail and need it undone
                    where = "ip netns exec " + spec["netns"].rsplit("/", 1)[1] + " " if spec["netns"] else ""
                    pid = await tx.step("process", self._spawn(c, spec, stdin, stdout, stderr, console),
                                        commands=[f"# {where}{shlex.join(c['argv'])}"],
                                        why="the container's process starts inside (minidock's launcher also "
                                            "gives it its own root filesystem, hostname and /etc files)")
                    if console is not None:
                        rt.master = console.receive()
                finally:
                    if console is not None:
                        console.close()
                for fd in opened:
                    os.close(fd)
                opened.clear()
                c["state"] = {"status": "running", "pid": pid, "start_time": process.start_time(pid),
                              "exit_code": 0, "error": "", "started_at": time.time(), "finished_at": 0}
                self.store.put("containers", c)
        except process.SpawnError as e:
            self._close_runtime(rt)
            msg = str(e)
            c["state"].update({"status": "created" if c["state"]["status"] == "created" else "exited",
                               "error": msg, "exit_code": 127 if "not found" in msg else 128})
            c["netns"] = ""
            self.store.put("containers", c)
            raise InvalidParameter(
                f"failed to create task for container: OCI runtime create failed: {msg}: unknown") from None
        except BaseException:
            self._close_runtime(rt)
            raise
        finally:
            self.starting.discard(cid)
            if c["state"]["status"] != "running":  # a failed start: its records go
                self.refresh_dns(cid)
            for fd in opened:
                os.close(fd)
            if sb is not None:
                sb.close()
        self.runtime[cid] = rt
        if rt.master is not None:
            rt.subscribers |= self.pending_subscribers.pop(cid, set())
            self._relay(cid, rt)
        # no refresh_dns here: the records were built before the spawn, while it was starting
        self._watch(cid, c["state"]["pid"])

    async def _spawn(self, c: dict[str, Any], spec: dict[str, Any], stdin: int, stdout: int, stderr: int,
                     console: process.Console | None) -> int:
        """Spawn, and note the PID at once: a crash before the store knows it leaves a way back."""
        pid = await process.spawn(spec, stdin, stdout, stderr, console)
        _write(os.path.join(self._dir(c["id"]), "pid"), f"{pid} {process.start_time(pid)}\n")
        return pid

    async def _plug(self, c: dict[str, Any], net: dict[str, Any], cfg: dict[str, Any],
                    sb: SandboxHandle, tx: Transaction, ifname: str, gateway: bool) -> dict[str, Any]:
        """Lease an address and wire one endpoint; recorded in the store."""
        ep: dict[str, Any] = {"container_id": c["id"], "network_id": net["id"], "id": new_id(),
                              "ifname": ifname, "veth": "veth" + new_id()[:7],
                              "aliases": cfg.get("aliases", []), "gateway_endpoint": gateway}
        if net["driver"] == "bridge":
            ip = self._lease(net, c["id"], cfg.get("ipv4") or "")
            tx._undo.append(("lease", _coro(self.store.release, net["id"], c["id"])))
            subnet = IPNetwork(net["ipam"]["config"][0]["subnet"])
            ep.update(ip=str(ip), prefixlen=subnet.prefixlen, mac=ipam.mac_for(ip),
                      gateway=net["ipam"]["config"][0]["gateway"])
        await self.drivers[net["driver"]].join(net, ep, sb, tx)
        self.store.put_endpoint(ep)
        tx._undo.append(("endpoint", _coro(self.store.delete_endpoint, c["id"], net["id"])))
        return ep

    def _lease(self, net: dict[str, Any], owner: str, wanted: str) -> IPAddress:
        cfg = net["ipam"]["config"][0]
        if wanted:
            if not self.store.lease(net["id"], wanted, owner):
                raise Conflict(f"Address already in use: {wanted} on network {net['name']}")
            return IPAddress(wanted)
        pinned = {ipam.number(c["networks"][net["name"]]["ipv4"])
                  for c in self.store.indexed("containers", "pinned", net["name"]) if c["id"] != owner}
        subnet = IPNetwork(cfg["subnet"])
        rng = IPNetwork(cfg["ip_range"]) if cfg.get("ip_range") else None
        for _ in range(3):
            ip = ipam.lowest_free(subnet, self.store.lease_numbers(net["id"]),
                                  {ipam.number(cfg["gateway"]), *pinned}, rng)
            if ip is None:
                raise Forbidden(f"no available IPv4 addresses on network {net['name']}")
            if self.store.lease(net["id"], str(ip), owner):
                return ip
        raise Conflict(f"could not lease an address on network {net['name']}")

    def _write_files(self, c: dict[str, Any], host_mode: bool) -> None:
        d = self._dir(c["id"])
        eps = self.store.endpoints(container_id=c["id"])
        hostname = c["config"]["Hostname"]
        gw = next((ep["gateway"] for ep in eps if ep.get("gateway")), None)
        extra = [files.parse_extra_host(s, gw or "127.0.0.1") for s in c["host_config"]["ExtraHosts"]]
        for link in c["host_config"]["Links"]:
            target, _, alias = link.partition(":")
            other = self.store.find("containers", target.lstrip("/"))
            if other:
                ip = next((ep.get("ip") for ep in self.store.endpoints(container_id=other["id"])
                           if ep.get("ip")), None)
                if ip:
                    names = " ".join(dict.fromkeys([alias or other["name"], other["config"]["Hostname"],
                                                    other["name"]]))
                    extra.append((names, ip))
        if host_mode:
            with open("/etc/hosts") as f:
                hosts = f.read()
            hosts += "".join(f"{ip}\t{n}\n" for n, ip in extra)
        else:
            own = [(ep["ip"], hostname) for ep in eps if ep.get("ip")][:1]
            hosts = files.hosts(own, extra)
        if self._uses_dns(c):
            resolv = f"nameserver {dnsstub.STUB_ADDRESS}\noptions ndots:0\n"
        else:
            resolv = files.resolv_conf(c["host_config"]["Dns"] or self.upstreams)
        _write(os.path.join(d, "hosts"), hosts)
        _write(os.path.join(d, "resolv.conf"), resolv)
        _write(os.path.join(d, "hostname"), hostname + "\n")

    def _stdio(self, c: dict[str, Any], rt: Runtime, opened: list[int]) -> tuple[int, int, int]:
        log_path = os.path.join(self._dir(c["id"]), "container.log")
        if c["config"]["Tty"]:
            # the launcher opens the pty inside the container and sends us its master
            rt.log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
            opened.append(null)
            return null, null, null
        out = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        opened.append(out)
        if c["config"]["OpenStdin"]:
            r, w = os.pipe2(os.O_CLOEXEC)
            rt.stdin_w = w
            opened.append(r)
            return r, out, out
        null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        opened.append(null)
        return null, out, out

    def _spec(self, c: dict[str, Any], host_mode: bool, files_dir: str) -> dict[str, Any]:
        d = self._dir(c["id"])
        for sub in ("upper", "work", "merged"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        env = list(c["config"]["Env"])
        if not any(e.startswith("HOSTNAME=") for e in env):
            env.append(f"HOSTNAME={c['config']['Hostname']}")
        if not any(e.startswith("HOME=") for e in env):
            env.append("HOME=/root")
        if c["config"]["Tty"] and not any(e.startswith("TERM=") for e in env):
            env.append("TERM=xterm")
        return {
            "netns": None if host_mode else netns.path(c["netns"]),
            "share_uts": host_mode,
            "lower": c["lower"],
            "upper": os.path.join(d, "upper"),
            "work": os.path.join(d, "work"),
            "merged": os.path.join(d, "merged"),
            "files": {n: os.path.join(files_dir, n) for n in ("hosts", "resolv.conf", "hostname")},
            "hostname": c["config"]["Hostname"],
            "env": env,
            "cwd": c["config"]["WorkingDir"] or "/",
            "argv": c["argv"],
            "tty": c["config"]["Tty"],
        }

    # ------------------------------------------------------------------ containers: running
    def _relay(self, cid: str, rt: Runtime) -> None:
        """Copy a Tty container's output to its log and to attached clients."""
        assert rt.master is not None

        def deliver(data: bytes | None) -> None:
            if data is not None and rt.log_fd is not None:
                os.write(rt.log_fd, data)
            for q in list(rt.subscribers):
                q.put_nowait(data)

        watch_fd(rt.master, deliver)

    def _watch(self, cid: str, pid: int) -> None:
        def exited(code: int | None) -> None:
            asyncio.get_running_loop().create_task(self._on_exit(cid, code))

        process.watch(pid, exited)

    async def _on_exit(self, cid: str, code: int | None) -> None:
        use_recording(self.exit_recordings.pop(cid, None))
        set_operation(self.exit_operations.pop(cid, ""))
        async with self.locks.hold(cid):
            c = self.store.get("containers", cid)
            rt = self.runtime.pop(cid, None)
            if rt is not None and rt.master is not None:
                await asyncio.sleep(0.05)  # let the relay drain the pty's last output
            if c is None or c["state"]["status"] != "running":
                if rt:
                    self._close_runtime(rt)
                    rt.exited.set()
                return
            errors = await self._teardown_network(c)
            self._mark_exited(c, code)
            self.last_exit[cid] = c["state"]["exit_code"]
            self._wake_waiters(cid, "exit", c["state"]["exit_code"])
            if rt:
                self._close_runtime(rt)
                rt.exited.set()
            for err in errors:
                log.warning("teardown of %s: %s", c["name"], err)
            if c["host_config"]["AutoRemove"]:
                self._remove_record(c)
            self.refresh_dns(cid)

    def _mark_exited(self, c: dict[str, Any], code: int | None) -> None:
        stopping = c["state"].get("stopping_signal")
        if code is None:
            code = 128 + stopping if stopping else 255
        c["state"] = {**c["state"], "status": "exited", "exit_code": code, "pid": 0,
                      "finished_at": time.time()}
        c["state"].pop("stopping_signal", None)
        c["netns"] = ""
        self.store.put("containers", c)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self._dir(c["id"]), "pid"))

    def _close_runtime(self, rt: Runtime) -> None:
        for attr in ("master", "stdin_w", "log_fd"):
            fd = getattr(rt, attr)
            if fd is not None:
                if attr == "master":
                    try:
                        asyncio.get_running_loop().remove_reader(fd)
                    except RuntimeError:
                        pass
                try:
                    os.close(fd)
                except OSError:
                    pass
                setattr(rt, attr, None)
        for q in list(rt.subscribers):
            q.put_nowait(None)

    async def _teardown_network(self, c: dict[str, Any]) -> list[Exception]:
        """Undo a start. A container with a namespace of its own loses it, and the kernel
        deletes its veth pairs with it in the background: deleting each veth here would
        wait ~20 ms per pair for the kernel's synchronize_net, with nothing to gain."""
        self.dns.stop(c["id"])
        own_ns = bool(c.get("netns")) and not _joined(c)  # a joined container's namespace is its owner's
        steps = []
        if c.get("ports") or c["id"] in self.port_holds:
            steps.append(("published ports", lambda: self._unpublish(c)))
        for ep in self.store.endpoints(container_id=c["id"]):
            net = self.store.get("networks", ep["network_id"])
            if net is not None:
                leave = self.drivers[net["driver"]].leave
                steps.append((f"leave {net['name']}", _coro_async(leave, net, ep, not own_ns)))
                if own_ns and ep.get("veth"):
                    self.dying_links[ep["veth"]] = time.monotonic() + DYING_GRACE
            steps.append(("release", _coro(self.store.release, ep["network_id"], c["id"])))
            steps.append(("endpoint", _coro(self.store.delete_endpoint, c["id"], ep["network_id"])))
        if own_ns:
            steps.append(("namespace", explained("namespace", _coro(netns.delete, c["netns"]),
                                                 [f"ip netns del {c['netns']}"],
                                                 "the container's network stack goes, and its veth pairs with it "
                                                 "(the kernel deletes them in the background)")))
        return await undo_all(steps)

    async def stop(self, ref: str, timeout: int | None = None, sig: int = signal.SIGTERM) -> None:
        c = self.container(ref)
        rt = self.runtime.get(c["id"])
        if c["state"]["status"] != "running" or rt is None:
            return
        grace = STOP_GRACE if timeout is None else timeout
        async with self._op("stop", id=c["id"]):
            self._explain_exit(c["id"])
            c["state"]["stopping_signal"] = signal.SIGKILL
            self.store.put("containers", c)
            process.kill(c["state"]["pid"], sig)
            try:
                await asyncio.wait_for(rt.exited.wait(), timeout=max(grace, 0))
            except TimeoutError:
                process.kill(c["state"]["pid"], signal.SIGKILL)
                await rt.exited.wait()

    async def kill(self, ref: str, sig: int) -> None:
        c = self.container(ref)
        if c["state"]["status"] != "running":
            raise Conflict(f"Cannot kill container: {ref}: Container {c['id']} is not running")
        process.kill(c["state"]["pid"], sig)

    async def restart(self, ref: str, timeout: int | None) -> None:
        await self.stop(ref, timeout)
        await self.start(ref)

    async def wait(self, ref: str, condition: str = "not-running") -> int:  # the route checks `condition`
        """Docker's wait conditions: `not-running` (now, if it is not running), `next-exit`
        (the next exit, even of a container not started yet: `docker run` waits so before it
        starts), `removed` (the exit, then the removal: `docker run --rm`)."""
        c = self.store.find("containers", ref)
        if c is None:
            for cid, code in self.last_exit.items():
                if cid == ref or cid.startswith(ref):
                    return code
            raise no_such_container(ref)
        if condition in ("next-exit", "removed") and c["id"] not in self.runtime:
            self._explain_exit(c["id"])
            return await self._wait_for(c["id"], condition)
        rt = self.runtime.get(c["id"])
        if rt is not None:
            self._explain_exit(c["id"])
            await rt.exited.wait()
        elif c["state"]["status"] == "running":
            # exiting this very moment: _on_exit holds the lock until the code is recorded
            async with self.locks.hold(c["id"]):
                pass
        if condition == "removed" and self.store.get("containers", c["id"]) is not None:
            return await self._wait_for(c["id"], "removed")
        if c["id"] in self.last_exit:
            return self.last_exit[c["id"]]
        c = self.store.get("containers", c["id"]) or c
        return c["state"]["exit_code"]

    async def _wait_for(self, cid: str, condition: str) -> int:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.exit_waiters.setdefault(cid, []).append((condition, future))
        return int(await future)

    def _wake_waiters(self, cid: str, event: str, code: int) -> None:
        """Resolve the waits that `event` ("exit" or "removed") ends."""
        keep = []
        for condition, future in self.exit_waiters.pop(cid, []):
            if future.done():
                continue
            if event == "removed" or condition == "next-exit":
                future.set_result(code)
            else:
                keep.append((condition, future))
        if keep:
            self.exit_waiters[cid] = keep

    async def remove(self, ref: str, force: bool) -> None:
        c = self.container(ref)
        if c["state"]["status"] == "running":
            if not force:
                raise Conflict(
                    f"You cannot remove a running container {c['id']}. "
                    "Stop the container before attempting removal or force remove")
        async with self._op("rm", id=c["id"]):
            if c["state"]["status"] == "running":
                await self.stop(c["id"], timeout=0, sig=signal.SIGKILL)
            async with self.locks.hold(c["id"]):
                c = self.store.get("containers", c["id"])
                if c is not None:
                    self._remove_record(c)
        self.refresh_dns(c["id"])

    def _explain_exit(self, cid: str) -> None:
        """The exit handler's task tears down: hand it this request's recording and operation."""
        rec = current_recording()
        if rec is not None:
            self.exit_recordings.setdefault(cid, rec)
        if current_operation():
            self.exit_operations.setdefault(cid, current_operation())

    def _remove_record(self, c: dict[str, Any]) -> None:
        self.store.drop_endpoints(c["id"])
        self.store.delete("containers", c["id"])
        shutil.rmtree(self._dir(c["id"]), ignore_errors=True)
        self._wake_waiters(c["id"], "removed", self.last_exit.get(c["id"], c["state"]["exit_code"]))

    # ------------------------------------------------------------------ DNS records
    def _user_network(self, net: dict[str, Any] | None) -> bool:
        return net is not None and net["driver"] == "bridge" and not net.get("predefined")

    def _uses_dns(self, c: dict[str, Any]) -> bool:
        """Like Docker: a container on a user-defined network resolves through 127.0.0.11."""
        return any(self._user_network(self.store.get("networks", cfg["network_id"]))
                   for cfg in c["networks"].values())

    def _upstreams_for(self, cid: str) -> list[str]:
        c = self.store.get("containers", cid)
        return (c["host_config"]["Dns"] if c else None) or self.upstreams

    def refresh_dns(self, cid: str | None = None) -> None:
        """Rebuild the name records from the live endpoints of user networks: of every
        container (start-up), or of the one container `cid` that started, stopped or moved."""
        if cid is None:
            self.records.rebuild([r for c in self.store.view("containers") for r in self._records_of(c)])
            return
        c = self.store.get("containers", cid)
        self.records.update(cid, self._records_of(c) if c is not None else [])

    def _records_of(self, c: dict[str, Any]) -> list[dnsstub.Record]:
        if c["state"]["status"] != "running" and c["id"] not in self.starting:
            return []
        records = []
        for ep in self.store.endpoints(container_id=c["id"]):
            net = self.store.get("networks", ep["network_id"])
            if not self._user_network(net) or not ep.get("ip"):
                continue
            names = [c["name"], *ep.get("aliases", []), c["config"]["Hostname"], c["id"][:12]]
            records.append(dnsstub.Record(c["id"], ep["network_id"], ep["ip"], list(dict.fromkeys(names))))
        return records

    # ------------------------------------------------------------------ connect, disconnect
    async def connect(self, netref: str, cref: str, ip: str = "", aliases: list[str] | None = None) -> None:
        net, c = self.network(netref), self.container(cref)
        aliases = list(aliases or [])
        mode = self.network(next(iter(c["networks"]))) if c["networks"] else None
        if _joined(c):
            raise Forbidden("container sharing network namespace with another container or host cannot be "
                            "connected to any other network")
        if net["driver"] == "host" or (mode is not None and mode["driver"] == "host"):
            raise Forbidden("container cannot be disconnected from host network or connected to host network")
        if net["driver"] == "null" or (mode is not None and mode["driver"] == "null"):
            raise Forbidden("container cannot be connected to multiple networks with one of the networks "
                            "in private (none) mode")
        if net["name"] in c["networks"]:
            raise Forbidden(f"endpoint with name {c['name']} already exists in network {net['name']}")
        if net["name"] == "bridge" and ip:
            raise InvalidParameter("user specified IP address is supported on user defined networks only")
        if net["name"] == "bridge" and aliases:
            raise InvalidParameter("network-scoped alias is supported only for containers in user defined networks")
        if ip:
            self._check_pinned_ip(net, ip)
        async with self.locks.hold(c["id"], net["id"]), self._op("connect", id=c["id"], network=net["id"]):
            c = self.container(c["id"])
            if net["name"] in c["networks"]:  # a racing connect got here first
                raise Forbidden(f"endpoint with name {c['name']} already exists in network {net['name']}")
            cfg = {"network_id": net["id"], "aliases": aliases, "ipv4": ip}
            if c["state"]["status"] == "running" and c.get("netns"):
                used = {ep["ifname"] for ep in self.store.endpoints(container_id=c["id"])}
                ifname = next(f"eth{i}" for i in range(len(used) + 1) if f"eth{i}" not in used)
                sb = self.sandbox(c)
                try:
                    async with Transaction() as tx:
                        await self._plug(c, net, cfg, sb, tx, ifname, gateway=False)
                        if self._user_network(net):
                            await tx.step("dns", self.dns.serve(c["id"], c["netns"]),
                                          undo=_coro(self.dns.stop, c["id"]))
                finally:
                    sb.close()
            c["networks"][net["name"]] = cfg
            self.store.put("containers", c)
        self.refresh_dns(c["id"])

    async def disconnect(self, netref: str, cref: str, force: bool = False) -> None:
        net, c = self.network(netref), self.container(cref)
        if net["name"] not in c["networks"]:
            raise Forbidden(f"container {c['id']} is not connected to network {net['name']}")
        if net["driver"] == "host":
            raise Forbidden("container cannot be disconnected from host network or connected to host network")
        async with self.locks.hold(c["id"], net["id"]), self._op("disconnect", id=c["id"], network=net["id"]):
            c = self.container(c["id"])
            if net["name"] not in c["networks"]:  # a racing disconnect got here first
                raise Forbidden(f"container {c['id']} is not connected to network {net['name']}")
            if any(p["bridge"] == net["bridge"] for p in c.get("ports") or []):
                await self._unpublish(c)
            for ep in self.store.endpoints(container_id=c["id"], network_id=net["id"]):
                await self.drivers[net["driver"]].leave(net, ep)
                faults.step_done("leave")
                self.store.release(net["id"], c["id"])
                faults.step_done("release")
                self.store.delete_endpoint(c["id"], net["id"])
                faults.step_done("endpoint")
            del c["networks"][net["name"]]
            self.store.put("containers", c)
            if not any(self._user_network(self.store.get("networks", cfg["network_id"]))
                       for cfg in c["networks"].values()):
                self.dns.stop(c["id"])
        self.refresh_dns(c["id"])

    # ------------------------------------------------------------------ attach, logs, exec
    def log_path(self, c: dict[str, Any]) -> str:
        return os.path.join(self._dir(c["id"]), "container.log")

    def exited_event(self, cid: str) -> asyncio.Event | None:
        rt = self.runtime.get(cid)
        return rt.exited if rt else None

    async def write_stdin(self, cid: str, data: bytes) -> None:
        rt = self.runtime.get(cid)
        if rt is None:
            return
        fd = rt.master if rt.master is not None else rt.stdin_w
        if fd is None:
            return
        view = memoryview(data)
        while view:
            try:
                n = os.write(fd, view)
                view = view[n:]
            except BlockingIOError:
                await asyncio.sleep(0.01)
            except OSError as e:
                if e.errno in (errno.EPIPE, errno.EIO, errno.EBADF):
                    return
                raise

    def close_stdin(self, cid: str) -> None:
        rt = self.runtime.get(cid)
        if rt is not None and rt.stdin_w is not None:
            os.close(rt.stdin_w)
            rt.stdin_w = None

    def resize(self, cid: str, rows: int, cols: int) -> None:
        import fcntl
        import struct
        import termios

        rt = self.runtime.get(cid)
        if rt is not None and rt.master is not None:
            fcntl.ioctl(rt.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def subscribe(self, cid: str) -> asyncio.Queue[bytes | None]:
        """A queue of a Tty container's output; before its start, it waits for it."""
        q: asyncio.Queue[bytes | None] = asyncio.Queue()
        rt = self.runtime.get(cid)
        if rt is not None and rt.master is not None:
            rt.subscribers.add(q)
        else:
            self.pending_subscribers.setdefault(cid, set()).add(q)
        return q

    def unsubscribe(self, cid: str, q: asyncio.Queue[bytes | None]) -> None:
        rt = self.runtime.get(cid)
        if rt is not None:
            rt.subscribers.discard(q)
        self.pending_subscribers.get(cid, set()).discard(q)

    def create_exec(self, ref: str, body: dict[str, Any]) -> str:
        c = self.container(ref)
        if c["state"]["status"] != "running":
            raise Conflict(f"Container {c['id']} is not running")
        cmd = body.get("Cmd") or []
        if not cmd:
            raise InvalidParameter("No exec command specified")
        eid = new_id()
        self.execs[eid] = {"id": eid, "container_id": c["id"], "cmd": list(cmd), "tty": bool(body.get("Tty")),
                           "stdin": bool(body.get("AttachStdin")), "env": list(body.get("Env") or []),
                           "workdir": body.get("WorkingDir") or "", "running": False, "exit_code": None,
                           "pid": 0}
        return eid

    def top(self, ref: str, ps_args: str) -> dict[str, Any]:
        c = self.container(ref)
        if c["state"]["status"] != "running":
            raise Conflict(f"Container {c['id']} is not running")
        header, rows = process.ps_rows(process.pid_namespace_members(c["state"]["pid"]), ps_args or "-ef")
        return {"Titles": header, "Processes": rows}


def _not_published(who: str, e: ports.PortAllocated) -> Conflict:
    # Docker's words; a taken port is the client's conflict (409), not a daemon failure (500)
    return Conflict(f"driver failed programming external connectivity on endpoint {who} ({new_id()}): {e}")


WAIT_CONDITIONS = ("not-running", "next-exit", "removed", "")


def _joined(c: dict[str, Any]) -> bool:
    return str(c["host_config"]["NetworkMode"]).startswith("container:")


def _write(path: str, text: str) -> None:
    """In place, not by rename: a running container has this inode bind-mounted."""
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)


def _coro(fn: Any, *args: Any) -> Any:
    async def run() -> Any:
        return fn(*args)

    return run


def _coro_async(fn: Any, *args: Any) -> Any:
    async def run() -> Any:
        return await fn(*args)

    return run

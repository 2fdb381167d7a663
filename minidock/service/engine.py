"""The engine: wires the services together, and nothing else.

    core.py       what they share: store, drivers, firewall, ports, addresses, DNS, locks
    networks.py   network CRUD and Docker's network JSON
    volumes.py    named volumes; mounts.py what a container mounts (binds, volumes, tmpfs)
    create.py     a create request checked, one Container record
    planner.py    a start planned from one read of the store
    sandbox.py    the namespace and each driver's join; the teardown
    lifecycle.py  start (plan, apply, commit once), stop, kill, wait, remove, exits
    supervisor.py the processes: stdio, spawn, exit watch, tty relay, waits
    connect.py    network connect / disconnect
    firewall.py   the firewall backends (iptables, nft maps) over in-memory state
    publish.py    host ports chosen and held
    addresses.py  container addresses, pinned or the lowest free
    dnsrecords.py the names the DNS stub answers
    reconcile.py  start-up: journal recovery, adoption, orphans
    system.py     check / repair / reset
    views.py      Docker's container JSON; queries for the API
    trace.py      minidock trace: a probe, and its path as the kernel traced it
    containerfs.py a container's files: cp (archive), export, commit, diff
    resources.py  pause, unpause, update, stats

Per container, at run time:

    /run/netns/md-<name>  ── network namespace (lo, eth0 → veth on a bridge)
    <root>/containers/<id>/
        hosts resolv.conf hostname   bound over /etc/… inside the container
        container.log                everything the container printed, as Docker's json-file lines
    <root>/layers/<layer>/
        upper/ work/ merged/         its writable layer: the overlay over the image's root
    <root>/containers/.spare-<layer>/  two to eight such, with their layers, made ahead (spares.py)
    <root>/volumes/<name>/_data      a volume's data, bound where containers mount it
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Any

from .. import dnsstub
from ..drivers.bridge import BridgeDriver
from ..drivers.host import HostDriver
from ..drivers.macvlan import ParentDriver
from ..drivers.null import NullDriver
from ..errors import Unavailable
from ..kernel import netns
from ..kernel.netlink import Netlink
from ..store import Store
from . import create, execs, firewall
from .addresses import Addresses
from .cluster import Cluster
from .clusterconfig import ClusterConfig
from .connect import Connector
from .containerfs import ContainerFiles
from .core import Core
from .images import Images
from .lifecycle import WAIT_CONDITIONS, Lifecycle
from .networks import Networks
from .reconcile import Reconciler
from .resources import Resources
from .system import System
from .trace import Tracer, remove_stale
from .views import Queries
from .volumes import Volumes

__all__ = ["WAIT_CONDITIONS", "Engine"]

log = logging.getLogger("minidock.engine")


class Engine:
    def __init__(self, root: str, upstreams: list[str], port_maps: bool = False,
                 cluster: ClusterConfig | None = None, ipv6: str | None = None) -> None:
        store = Store(os.path.join(root, "minidock.db"))
        records = dnsstub.Records()
        self.core = Core(root=root, store=store, firewall=firewall.make(port_maps), images=Images(root),
                         upstreams=upstreams, records=records, dns=None,  # type: ignore[arg-type]
                         addresses=Addresses(store))
        self.core.dns = dnsstub.DnsServer(records, self.core.upstreams_for)
        self.core.volumes = self.volumes = Volumes(self.core)
        self.networks = Networks(self.core)
        self.networks.default_ipv6 = ipv6
        self.life = Lifecycle(self.core)
        self.life.gateway_bridge = self.networks.ensure_gateway_bridge
        self.cluster_config = cluster
        self.procs = self.life.procs
        self.connector = Connector(self.core, self.life)
        self.system = System(self.core, self.life.kill_and_reap)
        self.queries = Queries(self.core)
        self.files = ContainerFiles(self.core)  # cp, export, commit, diff
        self.resources = Resources(self.core)  # pause, update, stats
        self.files.pause, self.files.unpause = self.resources.pause, self.resources.unpause
        self.tracer = Tracer(self.core)
        self.execs: dict[str, dict[str, Any]] = {}
        self.background: set[asyncio.Task[Any]] = set()
        self.shutdown: Callable[[], None] = lambda: None  # the server's stop, once it serves

    @property
    def root(self) -> str:
        return self.core.root

    @property
    def images(self) -> Images:
        return self.core.images

    @property
    def locks(self) -> Any:
        return self.core.locks

    async def open(self) -> None:
        netns.ensure_dir()
        remove_stale()  # a trace the last run did not finish
        host = self.core.host = await Netlink.open()
        self.core.drivers.update({"bridge": BridgeDriver(host), "host": HostDriver(), "null": NullDriver(),
                                  "macvlan": ParentDriver(host, "macvlan"), "ipvlan": ParentDriver(host, "ipvlan")})
        os.makedirs(os.path.join(self.core.root, "containers"), mode=0o700, exist_ok=True)
        self.core.spares.open()
        cluster = None
        if self.cluster_config is not None:
            cluster = self.core.cluster = Cluster(self.core, self.cluster_config)
            self.core.drivers["overlay"] = cluster.driver
            self.core.addresses.elsewhere = cluster.taken
            await cluster.join()  # the global networks, before the containers on them
        await self.procs.open()  # the keeper: what it kept while we were away
        await Reconciler(self.core, self.life, self.networks, self.system).run()
        if cluster is not None:
            cluster.seed()
            if cluster.up:
                try:
                    await cluster.republish()
                except Unavailable as e:  # the keepalive republishes once etcd answers
                    log.warning("endpoints not republished yet: %s", e)
                self.core.refresh_dns()
        newest = max(self.core.store.containers.view(), key=lambda c: c.created, default=None)
        if newest is not None:
            self.core.spares.expect(newest.lower)
        self.core.spares.top_up()

    async def close(self) -> None:
        if self.core.cluster is not None:
            await self.core.cluster.close()
        self.core.dns.close()
        self.procs.close()
        self.core.spares.close()
        if self.core.host:
            self.core.host.close()
        self.core.firewall.close()
        self.core.store.close()

    # -- the API's verbs, each a service's
    async def create_container(self, name: str | None, body: dict[str, Any]) -> dict[str, Any]:
        return await create.create_container(self.core, name, body)

    def create_exec(self, ref: str, body: dict[str, Any]) -> str:
        return execs.create(self.core, self.execs, ref, body)

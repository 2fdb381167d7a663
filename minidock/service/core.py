"""What the services share, made once by the engine: the store, the host's
netlink socket, the drivers, the firewall, port holds, pending addresses, the
DNS stub and its records, locks, the event log, and where containers keep their files.

A plain bundle, not a god object: it holds no behaviour beyond lookups, so a
service's dependencies are these fields and nothing else.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .. import dnsstub
from ..drivers import Driver
from ..errors import Forbidden, no_such_container, no_such_network
from ..kernel.netlink import Netlink
from ..model import Container, Network
from ..store import Store
from .addresses import Addresses
from .common import KeyedLocks
from .events import Events
from .firewall import IptablesFirewall
from .images import Images
from .publish import PortHolds
from .spares import Spares

if TYPE_CHECKING:
    from .cluster import Cluster
    from .volumes import Volumes


@dataclass
class Core:
    root: str
    store: Store
    firewall: IptablesFirewall
    images: Images
    upstreams: list[str]
    records: dnsstub.Records
    dns: dnsstub.DnsServer
    addresses: Addresses
    holds: PortHolds = field(default_factory=PortHolds)
    locks: KeyedLocks = field(default_factory=KeyedLocks)
    events: Events = field(default_factory=Events)  # GET /events: every service emits here
    drivers: dict[str, Driver] = field(default_factory=dict)
    host: Netlink = None  # type: ignore[assignment]  # opened by Engine.open
    # host ends of veth pairs whose namespace is gone: the kernel deletes them in the
    # background (cleanup_net); until then they are ours, not orphans (name -> deadline)
    dying_links: dict[str, float] = field(default_factory=dict)
    # joined its networks, process not yet running: its name resolves and it may ask already
    starting: set[str] = field(default_factory=set)
    # exited, to be started again by its restart policy after a back-off (Docker's "restarting")
    restarting: set[str] = field(default_factory=set)
    cluster: Cluster | None = None  # this host in a cluster (daemon --cluster-store), if it is in one
    volumes: Volumes = None  # type: ignore[assignment]  # made by the engine: it needs the core
    spares: Spares = None  # type: ignore[assignment]  # containers' directories made ahead

    def __post_init__(self) -> None:
        if self.spares is None:
            self.spares = Spares(self.root)

    def network(self, ref: str) -> Network:
        net = self.store.networks.find(ref)
        if net is None:
            raise no_such_network(ref)
        return net

    def container(self, ref: str) -> Container:
        c = self.store.containers.find(ref)
        if c is None:
            raise no_such_container(ref)
        return c

    def driver(self, net: Network) -> Driver:
        driver = self.drivers.get(net.driver)
        if driver is None:  # an overlay recorded by a run that was in a cluster
            raise Forbidden(f"network {net.name} needs driver {net.driver}, which this daemon does not run: "
                            "for overlay, start it with --cluster-store and --cluster-advertise")
        return driver

    def dir(self, cid: str) -> str:
        return os.path.join(self.root, "containers", cid)

    def layer_dir(self, c: Container) -> str:
        """Where container `c`'s writable layer is (upper/, work/, merged/): layers/<its layer>,
        or its own directory for one made before layers were apart."""
        return self.spares.layer_dir(c.layer) if c.layer else self.dir(c.id)

    def nets_by_id(self) -> dict[str, Network]:
        return {n.id: n for n in self.store.networks.view()}

    def refresh_dns(self, cid: str | None = None) -> None:
        """Rebuild the name records from the live endpoints of user networks: of every
        container (start-up), or of the one container `cid` that started, stopped or moved."""
        from .dnsrecords import link_aliases, records_of

        nets = self.nets_by_id()
        if cid is None:
            for c in self.store.containers.view():
                self.records.set_links(c.id, link_aliases(c, nets))
            self.records.rebuild([r for c in self.store.containers.view()
                                  for r in records_of(c, self.store.endpoints(container_id=c.id), nets,
                                                      c.running or c.id in self.starting)]
                                 + (self.cluster.remote_records() if self.cluster else []))
            return
        c = self.store.containers.get(cid)
        self.records.update(cid, records_of(c, self.store.endpoints(container_id=cid), nets,
                                            c.running or cid in self.starting) if c is not None else [])
        self.records.set_links(cid, link_aliases(c, nets) if c is not None else {})

    def upstreams_for(self, cid: str) -> list[str]:
        c = self.store.containers.get(cid)
        return (c.host_config.dns if c else None) or self.upstreams



"""This host in a cluster of daemons that share one etcd (Docker's classic
`--cluster-store`): the global networks, their VNIs, every endpoint on them
wherever it runs, and which hosts are alive.

What the store holds, each key readable with `etcdctl get --prefix /minidock/`:

    /minidock/nodes/<node>              {"name", "address"}      every host that ever joined
    /minidock/alive/<node>              address                  on the host's lease: alive while it renews
    /minidock/networks/<id>             the network record (model.Network's JSON)
    /minidock/names/<name>              id     one network per name, cluster-wide
    /minidock/vni/<vni>                 id     one network per VNI, from 256
    /minidock/subnets/<a.b.c.d-len>     id     one network per subnet
    /minidock/endpoints/<id>/<ip>       {"container", "name", "names", "ip", "mac", "node", "vtep"}
                                        the address lease and the endpoint in one key, on the host's lease

Every claim is one transaction whose compares say "this key does not exist
yet" (a compare-and-swap on create_revision): two hosts asking at the same
moment for one address, VNI, name or subnet cannot both get it. A start on
an overlay costs one round trip (its endpoint key), a stop one more.

A watch on /minidock/ keeps this host's view current: a network made
elsewhere appears in the local store and gets its namespace here; a remote
endpoint becomes FDB and neighbour entries in that namespace and DNS records
for the stub; when its key goes (removed, or its host's lease expired) they
go. When etcd is away the kernel keeps what it has (traffic keeps flowing)
and claims fail within seconds; when it returns, the watch resumes from the
last revision it saw, or resyncs whole if that was compacted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shlex
from dataclasses import dataclass
from typing import Any

from netaddr import IPNetwork

from .. import etcd, ipam
from ..dnsstub import Record
from ..drivers.overlay import OverlayDriver
from ..errors import Conflict, Forbidden, InvalidParameter, Unavailable
from ..model import OPT_VNI, Container, Endpoint, Network
from ..steps import Transaction, record
from .clusterconfig import ClusterConfig
from .core import Core
from .dnsrecords import names_of

log = logging.getLogger("minidock.cluster")
P = "/minidock/"
FIRST_VNI = 256  # as Docker's overlay: VNIs below are left to other uses


@dataclass
class Peer:
    """An endpoint of a global network, on any host."""

    network: str
    container: str
    name: str
    names: list[str]
    ip: str
    mac: str
    node: str
    vtep: str

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)

    @staticmethod
    def from_json(text: str) -> Peer:
        return Peer(**json.loads(text))


def subnet_key(subnet: str) -> str:
    return f"{P}subnets/{subnet.replace('/', '-')}"


def endpoint_key(net_id: str, ip: str) -> str:
    return f"{P}endpoints/{net_id}/{ip}"


class Cluster:
    def __init__(self, core: Core, cfg: ClusterConfig) -> None:
        """Made once the host's netlink socket is open (core.host)."""
        self.core = core
        self.url = cfg.url
        self.etcd = etcd.Etcd(etcd.parse_endpoints(cfg.url))
        self.advertise, self.node, self.ttl = cfg.advertise, cfg.node, cfg.ttl
        self.driver = OverlayDriver(core.host, cfg.node, cfg.advertise)
        self.lease = 0
        self.revision = 0  # the last revision this host has applied
        self.networks: dict[str, Network] = {}
        self.peers: dict[str, Peer] = {}  # endpoint key -> its record, every host's
        # this host's endpoint keys: what its lease must carry. Only publish and withdraw
        # change it (and seed, once, from the store); the lock keeps a republish from
        # putting back a key a remove has just withdrawn, or deleting one a start just put.
        self.mine: dict[str, Peer] = {}
        self.seeded = False
        self.behind = False  # `mine` is not all on our lease (or not known to be): republish it
        self.dropping: set[str] = set()  # withdrawn keys whose delete failed: tried again
        self._mine_lock = asyncio.Lock()
        self.alive: dict[str, str] = {}  # node -> address, of hosts whose lease lives
        self.nodes: dict[str, dict[str, Any]] = {}
        self.up = False  # the last call to etcd succeeded
        self._tasks: list[asyncio.Task[Any]] = []
        self._lease_file = os.path.join(core.root, "cluster-lease")

    # -- joining -------------------------------------------------------------
    async def join(self) -> None:
        """Hold a lease (the one an earlier run of this daemon held, if it is still alive:
        a restart within the TTL changes nothing), announce this host, read everything."""
        try:
            await self._take_lease()
            await self._resync()
        except etcd.EtcdError as e:
            log.warning("cluster store %s: %s; overlay networks wait for it", self.url, e)
            self.up = False
        self._tasks.append(asyncio.create_task(self._keepalive_loop(), name="cluster keepalive"))
        self._tasks.append(asyncio.create_task(self._watch_loop(), name="cluster watch"))

    async def _take_lease(self) -> None:
        old = 0
        with contextlib.suppress(OSError, ValueError):
            with open(self._lease_file) as f:
                old = int(f.read().strip() or 0)
        holder = await self.etcd.get(f"{P}alive/{self.node}")
        if holder is not None and holder.lease != old and holder.value != self.advertise:
            raise InvalidParameter(f"node name {self.node} is taken by the live host at {holder.value}")
        if old and await self.etcd.keepalive(old) > 0:
            self.lease = old
        else:
            self.lease = await self.etcd.grant(self.ttl)
            with open(self._lease_file, "w") as f:
                f.write(str(self.lease))
        record("join the cluster", f"this host ({self.node}, {self.advertise}) is alive while its lease "
               f"of {self.ttl} s is renewed",
               [f"etcdctl put {P}nodes/{self.node} '{{\"address\": \"{self.advertise}\"}}'",
                f"etcdctl put --lease=$(etcdctl lease grant {self.ttl} | cut -d' ' -f2) "
                f"{P}alive/{self.node} {self.advertise}"])
        await self.etcd.txn([], [
            etcd.put_op(f"{P}nodes/{self.node}", json.dumps({"name": self.node, "address": self.advertise})),
            etcd.put_op(f"{P}alive/{self.node}", self.advertise, self.lease)])
        self.up = True

    async def _keepalive_loop(self) -> None:
        while True:
            await asyncio.sleep(max(self.ttl / 3, 0.5))
            try:
                if not self.lease:
                    await self._take_lease()
                    self.behind = self.seeded  # our lease may have expired while the store was away
                    await self._resync()
                elif await self.etcd.keepalive(self.lease) <= 0:
                    # the expired lease stays ours until another is granted: a claim meanwhile
                    # fails (no such lease) rather than put a key on no lease at all
                    log.warning("our cluster lease expired: joining again and republishing our endpoints")
                    await self._take_lease()
                    self.behind = True
                if self.behind and self.seeded:
                    await self.republish()
                if self.dropping:
                    await self._drop_again()
                self.up = True
            except (etcd.EtcdError, Unavailable) as e:
                if self.up:
                    log.warning("cluster store unreachable: %s", e)
                self.up = False
            except Exception:
                log.exception("cluster keepalive")

    # -- the view: a full read, then the watch --------------------------------
    async def _resync(self) -> None:
        kvs, rev = await self.etcd.range(P)
        nets, peers, alive, nodes = {}, {}, {}, {}
        for kv in kvs:
            kind, _, rest = kv.key[len(P):].partition("/")
            if kind == "networks":
                nets[rest] = Network.from_json(json.loads(kv.value))
            elif kind == "endpoints":
                peers[kv.key] = Peer.from_json(kv.value)
            elif kind == "alive":
                alive[rest] = kv.value
            elif kind == "nodes":
                nodes[rest] = json.loads(kv.value)
        for net_id in [n for n in self.networks if n not in nets]:
            await self._network_gone(net_id)
        for net in nets.values():
            await self._network_seen(net)
        for key in [k for k in self.peers if k not in peers]:
            await self._peer_gone(key)
        for key, peer in peers.items():
            await self._peer_seen(key, peer)
        self.alive, self.nodes = alive, nodes
        self.revision = rev
        self.up = True

    async def _watch_loop(self) -> None:
        while True:
            try:
                if not self.revision:
                    await self._resync()
                async for batch in self.etcd.watch(P, self.revision + 1, self._progress):
                    for ev in batch:
                        await self._apply(ev)
                        self.revision = max(self.revision, ev.revision)
            except etcd.Compacted:
                log.warning("the cluster store compacted past revision %d: reading it whole", self.revision)
                self.revision = 0
            except etcd.EtcdError as e:
                self.up = False
                log.info("cluster watch: %s; trying again", e)
                await asyncio.sleep(1)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("cluster watch")
                await asyncio.sleep(1)

    def _progress(self, revision: int) -> None:
        self.up = True
        self.revision = max(self.revision, revision)

    async def _apply(self, ev: etcd.Event) -> None:
        kind, _, rest = ev.kv.key[len(P):].partition("/")
        if kind == "networks":
            if ev.kind == "put":
                await self._network_seen(Network.from_json(json.loads(ev.kv.value)))
            else:
                await self._network_gone(rest)
        elif kind == "endpoints":
            if ev.kind == "put":
                await self._peer_seen(ev.kv.key, Peer.from_json(ev.kv.value))
            else:
                await self._peer_gone(ev.kv.key)
        elif kind == "alive":
            if ev.kind == "put":
                self.alive[rest] = ev.kv.value
            else:
                self.alive.pop(rest, None)
        elif kind == "nodes" and ev.kind == "put":
            self.nodes[rest] = json.loads(ev.kv.value)

    async def _network_seen(self, net: Network) -> None:
        """A global network exists: in the local store (so every command finds it) and, on
        this host, its namespace, bridge and VXLAN device."""
        store = self.core.store
        self.networks[net.id] = net
        local = store.networks.get(net.id)
        if local is None:
            clash = store.networks.find(net.name)
            if clash is not None and clash.id != net.id:
                log.warning("global network %s is shadowed by a local network of that name", net.name)
                return
            async with Transaction(context=f"failed to set up overlay network {net.name}") as tx:
                await self.driver.create_network(net, tx)
            store.networks.put(net)
            for peer in self.peers.values():
                if peer.network == net.id and peer.node != self.node:
                    await self.driver.add_peer(net, peer.ip, peer.mac, peer.vtep)

    async def _network_gone(self, net_id: str) -> None:
        net = self.networks.pop(net_id, None) or self.core.store.networks.get(net_id)
        if net is None or net.driver != "overlay":
            return
        if self.core.store.endpoints(network_id=net_id):
            log.warning("overlay %s removed from the store while containers here use it", net.name)
        await self.driver.delete_network(net)
        with self.core.store.transaction():
            self.core.store.release_network(net_id)
            self.core.store.networks.delete(net_id)

    async def _peer_seen(self, key: str, peer: Peer) -> None:
        old = self.peers.get(key)
        self.peers[key] = peer
        if peer.node == self.node:
            return
        net = self.networks.get(peer.network)
        if net is None:
            return
        if old is not None and old != peer and old.node != self.node:
            await self.driver.remove_peer(net, old.ip, old.mac, old.vtep)
        await self.driver.add_peer(net, peer.ip, peer.mac, peer.vtep)
        self.core.records.update(key, [Record(key, peer.network, peer.ip, peer.names)])

    async def _peer_gone(self, key: str) -> None:
        peer = self.peers.pop(key, None)
        if peer is None or peer.node == self.node:
            return
        net = self.networks.get(peer.network)
        if net is not None:
            await self.driver.remove_peer(net, peer.ip, peer.mac, peer.vtep)
        self.core.records.update(key, [])

    def remote_records(self) -> list[Record]:
        return [Record(k, p.network, p.ip, p.names) for k, p in self.peers.items() if p.node != self.node]

    def taken(self, net_id: str) -> set[int]:
        """The addresses of `net_id` held anywhere in the cluster, as this host has seen them."""
        return {ipam.number(p.ip) for p in self.peers.values() if p.network == net_id}

    # -- networks ------------------------------------------------------------
    def _need_up(self) -> None:
        if not self.up:
            raise Unavailable(f"cluster store unavailable: no etcd member of {self.url} answers")

    async def call(self, coro: Any) -> Any:
        """An etcd call whose failure is one clear error (and marks the store down)."""
        try:
            result = await coro
        except etcd.EtcdError as e:
            self.up = False
            raise Unavailable(str(e)) from None
        self.up = True
        return result

    def pick_subnet(self, local: list[IPNetwork], routes: list[IPNetwork]) -> IPNetwork:
        """Docker's global default pool: the first free /24 of 10.0.0.0/8."""
        used = local + [IPNetwork(n.subnet) for n in self.networks.values()] + [r for r in routes if r.prefixlen]
        for sub in IPNetwork("10.0.0.0/8").subnet(24):
            if not any(ipam.overlaps(sub, u) for u in used):
                return sub
        raise Forbidden("could not find an available, non-overlapping IPv4 address pool among the defaults "
                        "to assign to the network")

    async def create_network(self, net: Network) -> None:
        """Claim name, subnet and the lowest free VNI in one transaction; retry on a race."""
        for _ in range(8):
            kvs, _rev = await self.call(self.etcd.range(f"{P}vni/"))
            used = {int(kv.key.rsplit("/", 1)[1]) for kv in kvs}
            vni = next(v for v in range(FIRST_VNI, FIRST_VNI + len(used) + 1) if v not in used)
            net.options[OPT_VNI] = str(vni)
            name_key, vni_key, sub_key = f"{P}names/{net.name}", f"{P}vni/{vni}", subnet_key(net.subnet)
            record("claim the network", f"name {net.name}, VNI {vni} and subnet {net.subnet}, each only if "
                   "nobody holds it yet (one transaction)",
                   [f"etcdctl txn <<< $'create(\"{name_key}\") = \"0\"\\ncreate(\"{vni_key}\") = \"0\"\\n"
                    f"create(\"{sub_key}\") = \"0\"\\n\\nput {P}networks/{net.id} <record>\\n"
                    f"put {name_key} {net.id}\\nput {vni_key} {net.id}\\nput {sub_key} {net.id}\\n\\n'"])
            ok = await self.call(self.etcd.txn(
                [etcd.absent(name_key), etcd.absent(vni_key), etcd.absent(sub_key)],
                [etcd.put_op(f"{P}networks/{net.id}", json.dumps(net.to_json())), etcd.put_op(name_key, net.id),
                 etcd.put_op(vni_key, net.id), etcd.put_op(sub_key, net.id)]))
            if ok:
                self.networks[net.id] = net
                return
            if await self.call(self.etcd.get(name_key)) is not None:
                raise Conflict(f"network with name {net.name} already exists")
            if await self.call(self.etcd.get(sub_key)) is not None:
                raise Forbidden("Pool overlaps with other one on this address space")
        raise Conflict("could not claim a VNI: too many networks made at once")

    async def delete_network(self, net: Network) -> None:
        kvs, _ = await self.call(self.etcd.range(f"{P}endpoints/{net.id}/"))
        if kvs:
            where = sorted({f"{Peer.from_json(kv.value).name} on {Peer.from_json(kv.value).node}" for kv in kvs})
            raise Forbidden(f"error while removing network: network {net.name} id {net.id} has active endpoints"
                            f" ({', '.join(where)})")
        keys = [f"{P}networks/{net.id}", f"{P}names/{net.name}", f"{P}vni/{net.vni}", subnet_key(net.subnet)]
        record("release the network", "its name, VNI and subnet are free again", [f"etcdctl del {k}" for k in keys])
        await self.call(self.etcd.txn([], [etcd.delete_op(k) for k in keys]))
        self.networks.pop(net.id, None)

    # -- endpoints -----------------------------------------------------------
    async def publish(self, net: Network, c: Container, ep: Endpoint, pinned: str) -> None:
        """Claim ep's address cluster-wide and publish the endpoint, in one transaction. If
        another host took the address first, take the next free one (unless it was pinned)."""
        self._need_up()
        async with self._mine_lock:
            await self._claim(net, c, ep, pinned)

    async def _claim(self, net: Network, c: Container, ep: Endpoint, pinned: str) -> None:
        for _ in range(16):
            key = endpoint_key(net.id, ep.ip)
            peer = Peer(net.id, c.id, c.name, names_of(c, ep), ep.ip, ep.mac, self.node, self.advertise)
            record("claim the address", f"{ep.ip} is this container's on {net.name} on every host, unless "
                   "another holds it; on this host's lease, so it goes if the host dies",
                   [f"etcdctl txn <<< $'create(\"{key}\") = \"0\"\\n\\nput --lease={self.lease:x} {key} "
                    f"{shlex.quote(peer.to_json())}\\n\\n'"])
            self.dropping.add(key)  # if the answer is lost, the claim may have been made all the same
            ok = await self.call(self.etcd.txn([etcd.absent(key)], [etcd.put_op(key, peer.to_json(), self.lease)]))
            self.dropping.discard(key)
            kv = None if ok else await self.call(self.etcd.get(key))
            if ok or (kv is not None and kv.value == peer.to_json()):  # ours: a member answered late
                self.peers[key] = self.mine[key] = peer
                return
            if pinned:
                raise Conflict(f"Address already in use: {ep.ip} on network {net.name}")
            if kv is not None:
                self.peers[key] = Peer.from_json(kv.value)
            addr = self.core.addresses.choose(net, c.id, "")
            ep.ip, ep.mac = str(addr), ipam.mac_for(addr)
        raise Conflict(f"no address could be claimed on network {net.name}: too many starts at once")

    async def withdraw(self, net_id: str, ip: str, stays: bool = False) -> None:
        """Delete the endpoint's key (if it is still ours: after our lease expired, another
        host may have claimed the address). If etcd does not hear it, the endpoint goes all
        the same and the delete is tried again later; unless it `stays` (a disconnect that
        fails on this keeps the endpoint, and so its key)."""
        key = endpoint_key(net_id, ip)
        record("release the address", f"{ip} may be claimed again", [f"etcdctl del {key}"])
        async with self._mine_lock:
            peer = self.mine.pop(key, None)
            self.dropping.add(key)
            try:
                if peer is None:
                    await self.call(self.etcd.delete(key))
                else:
                    await self.call(self.etcd.txn([etcd.holds(key, peer.to_json())], [etcd.delete_op(key)]))
            except Unavailable:
                if stays and peer is not None:
                    self.mine[key] = peer
                    self.dropping.discard(key)
                raise
            self.dropping.discard(key)
            if key in self.peers and self.peers[key].node == self.node:  # not another host's claim
                del self.peers[key]

    async def _drop_again(self) -> None:
        """The withdrawn keys etcd did not hear about (it was away, or slow): deleted now,
        unless another host has claimed the address since our lease expired."""
        async with self._mine_lock:
            for key in list(self.dropping):
                kv = await self.etcd.get(key)
                try:
                    ours = kv is not None and Peer.from_json(kv.value).node == self.node
                except (ValueError, TypeError, KeyError):
                    ours = False  # not a record of ours, whatever it is
                if key not in self.mine and ours and kv is not None:
                    await self.etcd.txn([etcd.unchanged(key, kv.mod_revision)], [etcd.delete_op(key)])
                self.dropping.discard(key)

    def _from_store(self) -> dict[str, Peer]:
        """The endpoint keys the store's running containers explain, with their names now."""
        out = {}
        for c in self.core.store.containers.all():
            if not c.running:
                continue
            for ep in self.core.store.endpoints(container_id=c.id):
                # the local store's record: at a start with etcd away, self.networks is empty
                net = self.networks.get(ep.network_id) or self.core.store.networks.get(ep.network_id)
                if net is not None and net.driver == "overlay" and ep.ip:
                    out[endpoint_key(net.id, ep.ip)] = Peer(net.id, c.id, c.name, names_of(c, ep), ep.ip,
                                                            ep.mac, self.node, self.advertise)
        return out

    def seed(self) -> None:
        """At the daemon's start, once the containers are reconciled: this host's endpoints
        are its running containers' (a start or stop a crash cut short left others)."""
        self.mine, self.seeded, self.behind = self._from_store(), True, True

    async def republish(self) -> None:
        """Our endpoints, again (after our lease expired while we were away or cut off, or a
        rename changed their names); and none of ours that they do not explain."""
        async with self._mine_lock:
            now = self._from_store()
            self.mine = {k: now.get(k, p) for k, p in self.mine.items()}
            kvs, _ = await self.call(self.etcd.range(f"{P}endpoints/"))
            for kv in kvs:
                peer = Peer.from_json(kv.value)
                if peer.node == self.node and kv.key not in self.mine:
                    log.info("dropping endpoint %s of a start or stop a crash cut short", kv.key)
                    await self.call(self.etcd.delete(kv.key))
                    self.peers.pop(kv.key, None)
            for key, peer in self.mine.items():
                await self.call(self.etcd.put(key, peer.to_json(), self.lease))
                self.peers[key] = peer
            self.behind = False

    def _remote_peers(self, net_id: str) -> list[Peer]:
        """The network's endpoints on other hosts, as the store has them."""
        return [p for p in self.peers.values() if p.network == net_id and p.node != self.node]

    def remote(self, net_id: str) -> list[tuple[str, str, str]]:
        """(ip, mac, host address) of the network's endpoints on other hosts."""
        return sorted((p.ip, p.mac, p.vtep) for p in self._remote_peers(net_id))

    # -- views ---------------------------------------------------------------
    def node_list(self) -> list[dict[str, Any]]:
        names = sorted(set(self.nodes) | set(self.alive) | {self.node})
        return [{"Name": n, "Address": self.alive.get(n) or self.nodes.get(n, {}).get("address", ""),
                 "Alive": n in self.alive, "Self": n == self.node} for n in names]

    def network_peers(self, net: Network) -> list[dict[str, str]]:
        nodes = sorted({(p.node, p.vtep) for p in self.peers.values() if p.network == net.id}
                       | {(self.node, self.advertise)})
        return [{"Name": n, "IP": a} for n, a in nodes]

    def topology(self) -> dict[str, Any]:
        """The hosts and, for each overlay, what this host holds of it and where the rest lives."""
        overlays = []
        for net in sorted(self.networks.values(), key=lambda n: n.name):
            remote = [{"ip": p.ip, "mac": p.mac, "name": p.name, "node": p.node, "vtep": p.vtep}
                      for p in sorted(self._remote_peers(net.id), key=lambda p: (p.node, p.ip))]
            overlays.append({"name": net.name, "vni": net.vni, "subnet": net.subnet, "gateway": net.gateway,
                             "namespace": self.driver.namespace(net), "vxlan": self.driver.vxlan(net),
                             "remote": remote})
        return {"store": self.url, "node": self.node, "hosts": self.node_list(), "overlays": overlays}

    def info(self) -> dict[str, Any]:
        return {"ClusterStore": self.url, "ClusterAdvertise": f"{self.advertise}:0", "Node": self.node,
                "StoreReachable": self.up, "StoreRoundTrips": self.etcd.round_trips, "Nodes": self.node_list()}

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        self.driver.close()

    async def leave(self) -> list[str]:
        """`system reset` on this host: its lease revoked (its endpoints and its alive key go
        with it, on every host), its overlay namespaces deleted. The networks stay: they are
        the cluster's, and this host sees them again when its daemon next starts."""
        removed = []
        if self.lease:
            record("leave the cluster", "revoking the lease deletes every key on it",
                   [f"etcdctl lease revoke {self.lease:x}"])
            with contextlib.suppress(etcd.EtcdError):  # unreachable: the keys go with the TTL anyway
                await self.etcd.revoke(self.lease)
                removed.append(f"cluster lease {self.lease:x} and the endpoints on it")
        with contextlib.suppress(OSError):
            os.unlink(self._lease_file)
        self.mine.clear()
        self.dropping.clear()
        return removed + [f"overlay namespace {name}" for name in await self.driver.delete_all()]


"""This host's endpoint keys in the cluster store when a republish (after the lease
expired) runs while a start or a remove is half done, when etcd misses a withdraw or
loses a claim's answer, and when the daemon starts with etcd away: the interleavings
the e2e overlay tests can only hit by chance, made certain with an etcd that waits
where the test says. The e2e overlay tests run the same code against a real etcd."""

from __future__ import annotations

import asyncio
import base64
import types
from typing import Any

import pytest

from minidock import etcd
from minidock.errors import Unavailable
from minidock.etcd import KV
from minidock.model import Endpoint, IPAMConfig, Network
from minidock.service.cluster import Cluster, Peer, endpoint_key
from minidock.service.clusterconfig import ClusterConfig

NET = Network(id="n" * 64, name="ov", driver="overlay", created=0.0, ipam=[IPAMConfig("10.0.0.0/24", "10.0.0.1")],
              options={"com.docker.network.driver.overlay.vxlanid_list": "256"})
LEASE = 7


def _key(b: dict[str, Any]) -> str:
    return base64.b64decode(b["key"]).decode()


class SlowEtcd:
    """Keys with their mod revisions; the call named `where` stops at `gate` (once it is
    set up) until the test opens it; `deaf` makes the next writes time out (etcd slow or
    away), `lost` makes the next write be done and its answer lost."""

    def __init__(self) -> None:
        self.kv: dict[str, tuple[str, int]] = {}
        self.rev = 1
        self.gate: asyncio.Event | None = None
        self.where = "range"
        self.stopped = asyncio.Event()
        self.deaf = self.lost = 0

    async def _wait(self, call: str) -> None:
        if self.gate is not None and call == self.where:
            self.stopped.set()
            await self.gate.wait()

    def _write(self) -> bool:
        """Whether this write is done; raises for a deaf one."""
        if self.deaf:
            self.deaf -= 1
            raise etcd.Unavailable("cluster store unavailable: no etcd member answered (timed out)")
        return True

    def _answer_lost(self) -> None:
        if self.lost:
            self.lost -= 1
            raise etcd.Unavailable("cluster store unavailable: no etcd member answered (timed out)")

    def _put(self, key: str, value: str, lease: int) -> None:
        assert lease == LEASE, f"{key} put on lease {lease}"  # never on none, nor an old one
        self.rev += 1
        self.kv[key] = (value, self.rev)

    def _holds(self, c: dict[str, Any]) -> bool:
        held = self.kv.get(_key(c))
        if c["target"] == "CREATE":
            return held is None
        if c["target"] == "MOD":
            return held is not None and held[1] == int(c["mod_revision"])
        return held is not None and held[0] == base64.b64decode(c["value"]).decode()

    async def txn(self, compares: list[dict[str, Any]], ops: list[dict[str, Any]]) -> bool:
        self._write()
        if not all(self._holds(c) for c in compares):
            return False
        for op in ops:
            if "request_put" in op:
                put = op["request_put"]
                self._put(_key(put), base64.b64decode(put["value"]).decode(), int(put.get("lease", 0)))
            else:
                self.kv.pop(_key(op["request_delete_range"]), None)
        self._answer_lost()
        return True

    async def range(self, prefix: str) -> tuple[list[KV], int]:
        await self._wait("range")
        return [KV(k, v, r, r) for k, (v, r) in self.kv.items() if k.startswith(prefix)], self.rev

    async def put(self, key: str, value: str, lease: int = 0) -> None:
        await self._wait("put")
        self._write()
        self._put(key, value, lease)

    async def delete(self, key: str) -> None:
        self._write()
        self.kv.pop(key, None)

    async def get(self, key: str) -> KV | None:
        held = self.kv.get(key)
        return KV(key, held[0], held[1], held[1]) if held else None

    def value(self, ip: str) -> str | None:
        held = self.kv.get(endpoint_key(NET.id, ip))
        return held[0] if held else None


class FakeStore:
    """What `Cluster._from_store` reads: running containers, their endpoints, the networks."""

    def __init__(self) -> None:
        self.running: list[tuple[Any, Endpoint]] = []
        self.containers = types.SimpleNamespace(all=lambda: [c for c, _ in self.running])
        self.networks = types.SimpleNamespace(get=lambda nid: NET if nid == NET.id else None)

    def endpoints(self, container_id: str) -> list[Endpoint]:
        return [ep for c, ep in self.running if c.id == container_id]


def cluster(networks_known: bool = True) -> tuple[Cluster, SlowEtcd, FakeStore]:
    """A Cluster on a fake etcd and store (`networks_known`: it has read etcd's networks)."""
    store = FakeStore()
    core = types.SimpleNamespace(host=None, root="/nonexistent", store=store)
    cl = Cluster(core, ClusterConfig("etcd://192.0.2.11:2379", "192.0.2.1", "n1", 3))  # type: ignore[arg-type]
    cl.etcd = fake = SlowEtcd()  # type: ignore[assignment]
    cl.up, cl.lease = True, LEASE
    if networks_known:
        cl.networks = {NET.id: NET}
    return cl, fake, store


def container(name: str, ip: str) -> tuple[Any, Endpoint]:
    c = types.SimpleNamespace(id=name * 8, name=name, hostname=name, networks={}, running=True)
    ep = Endpoint(container_id=c.id, network_id=NET.id, id="e" * 64, ifname="eth0", ip=ip, mac="02:42:0a:00:00:02")
    return c, ep


def theirs(ip: str) -> str:
    return Peer(NET.id, "z" * 64, "theirs", ["theirs"], ip, "m", "n2", "192.0.2.2").to_json()


async def republish_paused(cl: Cluster, fake: SlowEtcd, meanwhile: Any, where: str = "range") -> None:
    """Run `meanwhile` while a republish is stopped inside its read of the store's keys
    (`range`) or its write of one of ours (`put`)."""
    fake.gate, fake.where = asyncio.Event(), where
    again = asyncio.create_task(cl.republish())
    await asyncio.wait_for(fake.stopped.wait(), 2)
    other = asyncio.create_task(meanwhile)
    await asyncio.sleep(0.05)  # the other call goes as far as it can
    fake.gate.set()
    await asyncio.wait_for(asyncio.gather(again, other), 2)
    fake.gate = None


async def unheard_withdraw(cl: Cluster, fake: SlowEtcd, name: str, ip: str, stays: bool = False) -> Endpoint:
    """A container's endpoint published, then withdrawn while etcd hears nothing."""
    c, ep = container(name, ip)
    await cl.publish(NET, c, ep, "")
    fake.deaf = 1
    with pytest.raises(Unavailable):
        await cl.withdraw(NET.id, ep.ip, stays=stays)
    return ep


@pytest.mark.parametrize("where", ["range", "put"])
def test_a_remove_during_a_republish_leaves_no_key(where: str) -> None:
    """The removed container is still running in the store while its teardown withdraws
    its key: the republish must not put it back, on a lease this host renews for ever."""
    async def go() -> None:
        cl, fake, store = cluster()
        c, ep = container("told", "10.0.0.3")
        store.running.append((c, ep))
        cl.seed()
        await cl.publish(NET, c, ep, "")
        await republish_paused(cl, fake, cl.withdraw(NET.id, ep.ip), where)
        assert fake.value(ep.ip) is None and not cl.mine
    asyncio.run(go())


def test_a_start_during_a_republish_keeps_its_key() -> None:
    """A start has claimed its address; the store says running only at its commit. A
    republish whose read of etcd comes after the claim must not delete it as a crash's
    leftover."""
    async def go() -> None:
        cl, fake, _ = cluster()
        cl.seed()
        c, ep = container("fresh", "10.0.0.4")
        await republish_paused(cl, fake, cl.publish(NET, c, ep, ""))
        assert fake.value("10.0.0.4") is not None and endpoint_key(NET.id, "10.0.0.4") in cl.mine
    asyncio.run(go())


def test_republish_drops_what_a_crash_left_and_renames() -> None:
    """At the daemon's start: a key of this host no running container explains goes, and
    another host's stays; a running container's key is put again, with its names as the
    store has them now (a rename)."""
    async def go() -> None:
        cl, fake, store = cluster()
        c, ep = container("kept", "10.0.0.5")
        store.running.append((c, ep))
        fake._put(endpoint_key(NET.id, "10.0.0.9"),
                  Peer(NET.id, "x" * 64, "gone", ["gone"], "10.0.0.9", "m", "n1", "192.0.2.1").to_json(), LEASE)
        fake._put(endpoint_key(NET.id, "10.0.0.10"), theirs("10.0.0.10"), LEASE)
        cl.seed()
        await cl.republish()
        assert set(fake.kv) == {endpoint_key(NET.id, ep.ip), endpoint_key(NET.id, "10.0.0.10")}
        c.name = "renamed"
        await cl.republish()
        assert Peer.from_json(fake.value(ep.ip) or "").name == "renamed"
    asyncio.run(go())


def test_a_daemon_started_with_etcd_away_keeps_its_endpoints() -> None:
    """etcd answered nothing at the daemon's start, so no network is known from it; the
    running containers' endpoints are still this host's, and put back once it answers."""
    async def go() -> None:
        cl, fake, store = cluster(networks_known=False)
        c, ep = container("early", "10.0.0.8")
        store.running.append((c, ep))
        cl.seed()
        assert endpoint_key(NET.id, ep.ip) in cl.mine and cl.behind
        await cl.republish()  # as the keepalive does once etcd answers
        assert fake.value(ep.ip) is not None and not cl.behind
    asyncio.run(go())


def test_a_withdraw_etcd_did_not_hear_is_done_again() -> None:
    """The remove went on without etcd; the key is deleted at the next keepalive that
    reaches it, but not if another host holds the address by then."""
    async def go() -> None:
        cl, fake, _ = cluster()
        cl.seed()
        ep = await unheard_withdraw(cl, fake, "lost", "10.0.0.6")
        assert fake.value(ep.ip) is not None and not cl.mine
        await cl._drop_again()
        assert fake.value(ep.ip) is None and not cl.dropping
        cl.up = True  # as the keepalive that reached etcd leaves it
        ep2 = await unheard_withdraw(cl, fake, "late", "10.0.0.7")
        fake._put(endpoint_key(NET.id, ep2.ip), theirs(ep2.ip), LEASE)  # our lease expired; n2 claimed it
        await cl._drop_again()
        assert fake.value(ep2.ip) == theirs(ep2.ip) and not cl.dropping
    asyncio.run(go())


def test_a_disconnect_etcd_did_not_hear_keeps_its_key() -> None:
    """A disconnect that fails on etcd keeps its endpoint: its key stays ours, is not
    deleted later, and a republish puts it back."""
    async def go() -> None:
        cl, fake, _ = cluster()
        cl.seed()
        ep = await unheard_withdraw(cl, fake, "stay", "10.0.0.11", stays=True)
        cl.up = True
        await cl._drop_again()
        await cl.republish()
        assert fake.value(ep.ip) is not None and endpoint_key(NET.id, ep.ip) in cl.mine
    asyncio.run(go())


def test_a_withdraw_after_our_lease_expired_leaves_another_hosts_claim() -> None:
    async def go() -> None:
        cl, fake, _ = cluster()
        cl.seed()
        c, ep = container("cut", "10.0.0.12")
        await cl.publish(NET, c, ep, "")
        fake.kv.clear()  # our lease expired while we were cut off
        fake._put(endpoint_key(NET.id, ep.ip), theirs(ep.ip), LEASE)
        await cl.withdraw(NET.id, ep.ip)
        assert fake.value(ep.ip) == theirs(ep.ip)
    asyncio.run(go())


def test_a_claim_whose_answer_was_lost() -> None:
    """etcd made the claim but its answer never came: the start failed, and the key,
    ours and no endpoint's, goes at the next keepalive; a start again of the same
    container takes it as its own."""
    async def go() -> None:
        cl, fake, _ = cluster()
        cl.seed()
        c, ep = container("slow", "10.0.0.13")
        fake.lost = 1
        with pytest.raises(Unavailable):
            await cl.publish(NET, c, ep, "")
        assert fake.value(ep.ip) is not None and not cl.mine
        cl.up = True
        await cl.publish(NET, c, ep, "")  # the key it finds is its own: taken, not skipped
        assert ep.ip == "10.0.0.13" and endpoint_key(NET.id, ep.ip) in cl.mine
        await cl._drop_again()
        assert fake.value(ep.ip) is not None  # an endpoint's now: kept
        c2, ep2 = container("gave", "10.0.0.14")
        fake.lost = 1
        with pytest.raises(Unavailable):
            await cl.publish(NET, c2, ep2, "")
        cl.up = True
        await cl._drop_again()
        assert fake.value(ep2.ip) is None and not cl.dropping
    asyncio.run(go())

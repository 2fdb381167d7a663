"""This host's endpoint keys in the cluster store when a republish (after the lease
expired) runs while a start or a remove is half done: the interleavings the e2e
overlay tests can only hit by chance, made certain with an etcd that waits where
the test says. The e2e overlay tests run the same code against a real etcd."""

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


class SlowEtcd:
    """Keys in a dict; the call named `where` stops at `gate` (once it is set up) until
    the test opens it."""

    def __init__(self) -> None:
        self.kv: dict[str, str] = {}
        self.gate: asyncio.Event | None = None
        self.where = "range"
        self.stopped = asyncio.Event()
        self.deaf = 0  # the next this many deletes time out (etcd slow or away)

    async def _wait(self, call: str) -> None:
        if self.gate is not None and call == self.where:
            self.stopped.set()
            await self.gate.wait()

    async def txn(self, compares: list[dict[str, Any]], ops: list[dict[str, Any]]) -> bool:
        def key(b: dict[str, Any]) -> str:
            return base64.b64decode(b["key"]).decode()
        if any(key(c) in self.kv if c["target"] == "CREATE" else key(c) not in self.kv for c in compares):
            return False
        for op in ops:
            if "request_put" in op:
                put = op["request_put"]
                self.kv[key(put)] = base64.b64decode(put["value"]).decode()
            else:
                self.kv.pop(key(op["request_delete_range"]), None)
        return True

    async def range(self, prefix: str) -> tuple[list[KV], int]:
        kvs = [KV(k, v, 1, 1) for k, v in self.kv.items() if k.startswith(prefix)]
        await self._wait("range")
        return kvs, 1

    async def put(self, key: str, value: str, lease: int = 0) -> None:
        await self._wait("put")
        self.kv[key] = value

    async def delete(self, key: str) -> None:
        if self.deaf:
            self.deaf -= 1
            raise etcd.Unavailable("cluster store unavailable: no etcd member answered (timed out)")
        self.kv.pop(key, None)

    async def get(self, key: str) -> KV | None:
        return KV(key, self.kv[key], 1, 1) if key in self.kv else None


def cluster(running: dict[str, Peer]) -> tuple[Cluster, SlowEtcd]:
    """A Cluster on a fake etcd whose store's running containers explain `running`."""
    core = types.SimpleNamespace(host=None, root="/nonexistent")
    cl = Cluster(core, ClusterConfig("etcd://192.0.2.11:2379", "192.0.2.1", "n1", 3))  # type: ignore[arg-type]
    cl.etcd = fake = SlowEtcd()  # type: ignore[assignment]
    cl.up, cl.lease, cl.networks = True, 7, {NET.id: NET}
    cl._from_store = lambda: dict(running)  # type: ignore[method-assign]
    return cl, fake


def container(name: str, ip: str) -> tuple[Any, Endpoint, Peer]:
    c = types.SimpleNamespace(id=name * 8, name=name, hostname=name, networks={})
    ep = Endpoint(container_id=c.id, network_id=NET.id, id="e" * 64, ifname="eth0", ip=ip, mac="02:42:0a:00:00:02")
    return c, ep, Peer(NET.id, c.id, name, [name], ip, ep.mac, "n1", "192.0.2.1")


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


@pytest.mark.parametrize("where", ["range", "put"])
def test_a_remove_during_a_republish_leaves_no_key(where: str) -> None:
    """The removed container is still running in the store while its teardown withdraws
    its key: the republish must not put it back, on a lease this host renews for ever."""
    async def go() -> None:
        c, ep, peer = container("told", "10.0.0.3")
        running = {endpoint_key(NET.id, ep.ip): peer}
        cl, fake = cluster(running)
        cl.seed()
        await cl.publish(NET, c, ep, "")
        await republish_paused(cl, fake, cl.withdraw(NET.id, ep.ip), where)
        assert endpoint_key(NET.id, ep.ip) not in fake.kv
        assert not cl.mine
    asyncio.run(go())


def test_a_start_during_a_republish_keeps_its_key() -> None:
    """A start has claimed its address; the store says running only at its commit. A
    republish meanwhile must not delete the claim as a crash's leftover."""
    async def go() -> None:
        cl, fake = cluster({})
        cl.seed()
        c, ep, _ = container("fresh", "10.0.0.4")
        await republish_paused(cl, fake, cl.publish(NET, c, ep, ""))
        assert endpoint_key(NET.id, "10.0.0.4") in fake.kv
    asyncio.run(go())


def test_republish_drops_what_a_crash_left_and_renames() -> None:
    """At the daemon's start: a key of this host no running container explains goes; a
    running container's key is put again, with its names as the store has them now."""
    async def go() -> None:
        _, ep, peer = container("kept", "10.0.0.5")
        running = {endpoint_key(NET.id, ep.ip): peer}
        cl, fake = cluster(running)
        stale = endpoint_key(NET.id, "10.0.0.9")
        fake.kv[stale] = Peer(NET.id, "x" * 64, "gone", ["gone"], "10.0.0.9", "m", "n1", "192.0.2.1").to_json()
        other = endpoint_key(NET.id, "10.0.0.10")
        fake.kv[other] = Peer(NET.id, "y" * 64, "far", ["far"], "10.0.0.10", "m", "n2", "192.0.2.2").to_json()
        cl.seed()
        await cl.republish()
        assert set(fake.kv) == {endpoint_key(NET.id, ep.ip), other}
        running[endpoint_key(NET.id, ep.ip)] = Peer(**{**vars(peer), "name": "renamed", "names": ["renamed"]})
        await cl.republish()
        assert Peer.from_json(fake.kv[endpoint_key(NET.id, ep.ip)]).name == "renamed"
    asyncio.run(go())


def test_a_withdraw_etcd_did_not_hear_is_done_again() -> None:
    """The remove went on without etcd; the key is deleted at the next keepalive that
    reaches it, but not if another host holds the address by then."""
    async def go() -> None:
        cl, fake = cluster({})
        cl.seed()
        c, ep, _ = container("lost", "10.0.0.6")
        await cl.publish(NET, c, ep, "")
        fake.deaf = 1
        with pytest.raises(Unavailable):
            await cl.withdraw(NET.id, ep.ip)
        assert endpoint_key(NET.id, ep.ip) in fake.kv
        await cl._drop_again()
        assert endpoint_key(NET.id, ep.ip) not in fake.kv and not cl.dropping
        cl.up = True  # as the keepalive that reached etcd leaves it
        c2, ep2, _ = container("late", "10.0.0.7")
        await cl.publish(NET, c2, ep2, "")
        fake.deaf = 1
        with pytest.raises(Unavailable):
            await cl.withdraw(NET.id, ep2.ip)
        theirs = Peer(NET.id, "z" * 64, "theirs", ["theirs"], ep2.ip, "m", "n2", "192.0.2.2").to_json()
        fake.kv[endpoint_key(NET.id, ep2.ip)] = theirs  # our lease expired; n2 claimed it
        await cl._drop_again()
        assert fake.kv[endpoint_key(NET.id, ep2.ip)] == theirs and not cl.dropping
    asyncio.run(go())

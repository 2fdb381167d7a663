"""A start reads the store once and writes it once: the planner's one
`store.reading()` batch, then the commit. The kernel is replaced by fakes
(namespace, driver joins, DNS stub, firewall, process): this counts store
traffic, the e2e tests check the packets."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from minidock import dnsstub
from minidock.kernel import process
from minidock.model import Attachment, Container, Endpoint, Network
from minidock.service import create, lifecycle, planner, sandbox
from minidock.service.addresses import Addresses
from minidock.service.core import Core
from minidock.service.firewall import IptablesFirewall
from minidock.service.images import Images
from minidock.service.networks import Networks, default_bridge_record, finish_subnet, simple_record
from minidock.steps import Transaction
from minidock.store import Store


class CountingStore(Store):
    """Counts reads, read batches and outer write transactions, and where each read happens."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.reads = self.batches = self.commits = self.reads_outside = 0
        self.counting = False

    def count_read(self) -> None:
        if self.counting:
            self.reads += 1
            if not self._reading and not self._depth:
                self.reads_outside += 1

    @contextmanager
    def reading(self) -> Iterator[None]:
        if self.counting and not self._reading and not self._depth:
            self.batches += 1
        with super().reading():
            yield

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        if self.counting and not self._depth:
            self.commits += 1
        with super().transaction() as db:
            yield db


class FakeBridge:
    name, scope = "bridge", "local"
    leases_addresses = publishes_ports = own_namespace = True
    needs_gateway_bridge = False

    def __init__(self) -> None:
        self.joined: list[Endpoint] = []

    async def join(self, net: Network, ep: Endpoint, sb: Any, tx: Transaction) -> None:
        await tx.step("veth pair", asyncio.sleep(0))
        self.joined.append(ep)

    def firewall(self, net: Network) -> None:
        return None


class FakeNull(FakeBridge):
    name = "null"
    leases_addresses = publishes_ports = False


class QuietFirewall(IptablesFirewall):
    async def apply(self, why: str = "") -> None:
        self.applied = getattr(self, "applied", 0) + 1


class FakeDns:
    async def serve(self, cid: str, ns: str) -> None:
        return None

    def stop(self, cid: str) -> None:
        return None


class FakeSandbox:
    def close(self) -> None:
        return None


@pytest.fixture
def core(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Core]:
    store = CountingStore(str(tmp_path / "minidock.db"))
    c = Core(root=str(tmp_path), store=store, firewall=QuietFirewall(), images=Images(str(tmp_path)),
             upstreams=["192.0.2.53"], records=dnsstub.Records(), dns=FakeDns(),  # type: ignore[arg-type]
             addresses=Addresses(store))
    c.drivers.update({"bridge": FakeBridge(), "null": FakeNull(), "host": FakeNull()})  # type: ignore[dict-item]
    bridge = default_bridge_record()
    finish_subnet(bridge, [], [])
    store.networks.put(bridge)
    store.networks.put(simple_record("none", "null"))

    async def fake_create(c: Container, tx: Transaction, pid: int) -> FakeSandbox:
        await tx.step("namespace", asyncio.sleep(0))
        return FakeSandbox()

    monkeypatch.setattr(sandbox, "create", fake_create)
    yield c
    store.close()


def _lab(core: Core) -> Network:
    req = {"Name": "lab", "IPAM": {"Config": [{"Subnet": "10.9.0.0/24"}]}}
    net = Networks(core)
    from minidock.service.networks import validate_create

    rec = validate_create(req, core.store.networks.all())
    finish_subnet(rec, net.subnets_in_use(), [])
    core.store.networks.put(rec)
    return rec


def _started(core: Core, monkeypatch: pytest.MonkeyPatch, names: list[str]) -> list[Container]:
    life = lifecycle.Lifecycle(core)

    async def prepare(cid: str, spec: dict[str, Any], log_path: str, rt: Any, ready: int = 0, root: int | None = None) -> int:
        return os.getpid()

    async def go(cid: str, rt: Any) -> None:
        return None

    monkeypatch.setattr(life.procs, "prepare", prepare)
    monkeypatch.setattr(life.procs, "go", go)
    monkeypatch.setattr(life.procs, "started", lambda cid, pid, rt: None)
    monkeypatch.setattr(process, "start_time", lambda pid: 1)

    async def run() -> list[str]:
        ids = []
        for name in names:
            body = {"Image": "busybox", "Cmd": ["sleep", "1"], "HostConfig": {"NetworkMode": "lab"}}
            ids.append((await create.create_container(core, name, body))["Id"])
        store: CountingStore = core.store  # type: ignore[assignment]
        store.counting = True
        await asyncio.gather(*(life.start(cid) for cid in ids))
        store.counting = False
        return ids

    ids = asyncio.run(run())
    return [c for cid in ids if (c := core.store.containers.get(cid)) is not None]


def test_a_start_reads_the_store_once_and_commits_once(core: Core, monkeypatch: pytest.MonkeyPatch) -> None:
    _lab(core)
    (c,) = _started(core, monkeypatch, ["web"])
    store: CountingStore = core.store  # type: ignore[assignment]
    assert store.batches == 1, "the plan's one read batch"
    assert store.reads_outside == 0, "no read outside the plan"
    assert store.reads > 0
    assert store.commits == 1, "the start's one write"
    assert c.running and c.netns == "md-web"
    (ep,) = store.endpoints(container_id=c.id)
    assert (ep.ip, ep.ifname, ep.gateway) == ("10.9.0.2", "eth0", "10.9.0.1")
    assert store.leases(ep.network_id) == {"10.9.0.2": c.id}


def test_concurrent_plans_never_choose_one_address(core: Core, monkeypatch: pytest.MonkeyPatch) -> None:
    _lab(core)
    started = _started(core, monkeypatch, [f"c{i}" for i in range(5)])
    ips = sorted(ep.ip for c in started for ep in core.store.endpoints(container_id=c.id))
    assert ips == [f"10.9.0.{i}" for i in range(2, 7)]
    assert core.addresses.pending == {} and core.holds.pending == {}  # nothing left reserved


def test_a_failed_plan_leaves_nothing_pending(core: Core) -> None:
    net = _lab(core)
    c = Container.from_json({"id": "f" * 64, "name": "x", "config": {"Hostname": "x"},
                             "networks": {"lab": Attachment(net.id).to_json(),
                                          "gone": Attachment("no-such-network").to_json()}})
    core.store.containers.put(c)
    with pytest.raises(Exception, match="not found"):
        planner.plan_start(core, c.id)
    assert core.addresses.pending == {}

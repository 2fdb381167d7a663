"""Unit tests for minidock.store (SQLite, in a temporary directory)."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from minidock.ipam import number
from minidock.model import Container, Endpoint, Network
from minidock.store import SCHEMA_VERSION, Store

ID_A = "a1b2c3" + "0" * 58
ID_B = "a1ffff" + "1" * 58
ID_C = "c0ffee" + "2" * 58


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(str(tmp_path / "state" / "minidock.db"))
    yield s
    s.close()


def net(doc_id: str, name: str, driver: str = "bridge", labels: dict[str, str] | None = None,
        v: int = 0) -> Network:
    return Network(doc_id, name, driver, created=float(v), labels=labels or {})


def ctr(doc_id: str, name: str, **networks: dict[str, str]) -> Container:
    return Container.from_json({"id": doc_id, "name": name, "networks": {
        n: {"network_id": "n-" + n, **cfg} for n, cfg in networks.items()}})


def found(store: Store, ref: str) -> Container:
    doc = store.containers.find(ref)
    assert doc is not None, f"{ref!r} not found"
    return doc


def test_schema_version_is_recorded(store: Store) -> None:
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    tables = {r[0] for r in store.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"networks", "containers", "endpoints", "leases", "meta"} <= tables


def test_reopening_keeps_data_and_does_not_migrate_again(tmp_path: Path) -> None:
    path = str(tmp_path / "state" / "minidock.db")
    first = Store(path)
    first.networks.put(net(ID_A, "alpha"))
    first.close()
    second = Store(path)  # would fail with "table networks already exists" if re-migrated
    try:
        assert second.networks.get(ID_A) == net(ID_A, "alpha")
    finally:
        second.close()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state" / "minidock.db"
    path.parent.mkdir()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(RuntimeError, match="newer than"):
        Store(str(path))


def test_database_files_are_private(store: Store, tmp_path: Path) -> None:
    store.networks.put(net(ID_A, "alpha"))  # makes the -wal and -shm files exist
    state = tmp_path / "state"
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    files = sorted(p.name for p in state.iterdir())
    assert "minidock.db" in files
    for name in files:
        assert stat.S_IMODE((state / name).stat().st_mode) == 0o600, name


def test_put_get_and_all_keep_documents(store: Store) -> None:
    store.networks.put(net(ID_A, "alpha", driver="bridge", labels={"x": "1"}))
    store.networks.put(net(ID_C, "gamma"))
    assert store.networks.get(ID_A) == net(ID_A, "alpha", driver="bridge", labels={"x": "1"})
    assert store.networks.get(ID_B) is None
    assert store.containers.get(ID_A) is None  # tables are separate
    assert [d.name for d in store.networks.all()] == ["alpha", "gamma"]


def test_put_replaces_a_document_with_the_same_id(store: Store) -> None:
    store.networks.put(net(ID_A, "alpha", v=1))
    store.networks.put(net(ID_A, "alpha", v=2))
    assert store.networks.all() == [net(ID_A, "alpha", v=2)]


def test_the_same_name_may_be_used_in_different_tables(store: Store) -> None:
    store.networks.put(net(ID_A, "same"))
    store.containers.put(ctr(ID_B, "same"))
    assert found(store, "same").id == ID_B
    assert store.networks.get(ID_A) is not None


def test_put_refuses_a_taken_name_instead_of_deleting_the_other_document(store: Store) -> None:
    store.networks.put(net(ID_A, "same"))
    with pytest.raises(sqlite3.IntegrityError):
        store.networks.put(net(ID_B, "same"))
    assert store.networks.get(ID_A) == net(ID_A, "same")


def test_delete(store: Store) -> None:
    store.containers.put(ctr(ID_A, "web"))
    store.containers.delete(ID_A)
    assert store.containers.get(ID_A) is None and store.containers.find("web") is None


def test_find_by_full_id_name_and_unique_prefix(store: Store) -> None:
    store.containers.put(ctr(ID_A, "web"))
    store.containers.put(ctr(ID_B, "db"))
    store.containers.put(ctr(ID_C, "cache"))
    assert found(store, ID_A).name == "web"
    assert found(store, "db").id == ID_B
    assert found(store, "c0f").name == "cache"
    assert found(store, "a1b").name == "web"


def test_find_returns_none_for_ambiguous_or_unknown_refs(store: Store) -> None:
    store.containers.put(ctr(ID_A, "web"))
    store.containers.put(ctr(ID_B, "db"))
    assert store.containers.find("a1") is None  # prefix of both ids
    assert store.containers.find("dead") is None
    assert store.containers.find("nosuchname") is None
    assert store.containers.find("") is None
    assert store.containers.find("%") is None  # no LIKE wildcards from user input


def test_find_prefers_exact_name_over_id_prefix(store: Store) -> None:
    # Docker: a container named like another one's id prefix wins by name.
    store.containers.put(ctr(ID_C, "cache"))
    store.containers.put(ctr(ID_A, "c0ffee"))
    assert found(store, "c0ffee").id == ID_A


def test_find_prefers_full_id_over_a_name_equal_to_it(store: Store) -> None:
    store.containers.put(ctr(ID_A, ID_B))  # name is literally the other one's id
    store.containers.put(ctr(ID_B, "db"))
    assert found(store, ID_B).name == "db"


def test_a_leased_address_cannot_be_leased_twice(store: Store) -> None:
    assert store.lease("net1", "172.18.0.2", "ctr-a")
    assert not store.lease("net1", "172.18.0.2", "ctr-b")
    assert store.leases("net1") == {"172.18.0.2": "ctr-a"}
    assert store.lease("net2", "172.18.0.2", "ctr-b")  # another network: independent


def test_release_frees_only_that_owners_leases(store: Store) -> None:
    store.lease("net1", "172.18.0.2", "ctr-a")
    store.lease("net1", "172.18.0.3", "ctr-b")
    store.lease("net2", "172.19.0.2", "ctr-a")
    store.release("net1", "ctr-a")
    assert store.leases("net1") == {"172.18.0.3": "ctr-b"}
    assert store.leases("net2") == {"172.19.0.2": "ctr-a"}
    assert store.lease("net1", "172.18.0.2", "ctr-c")
    store.release_network("net1")
    assert store.leases("net1") == {}


def test_transaction_rolls_back_everything_on_exception(store: Store) -> None:
    store.networks.put(net(ID_A, "kept"))
    with pytest.raises(ValueError, match="boom"):
        with store.transaction():
            store.networks.put(net(ID_B, "lost"))
            store.lease("net1", "10.0.0.2", "x")
            store.networks.delete(ID_A)
            raise ValueError("boom")
    assert [d.name for d in store.networks.all()] == ["kept"]
    assert store.leases("net1") == {}
    # the store is usable again afterwards
    store.networks.put(net(ID_C, "after"))
    assert store.networks.get(ID_C) is not None


def test_nested_transactions_commit_once_at_the_outer_level(store: Store) -> None:
    with store.transaction():
        with store.transaction():
            store.networks.put(net(ID_A, "alpha"))
        assert store.db.in_transaction  # the inner exit did not commit
    assert not store.db.in_transaction
    assert store.networks.get(ID_A) is not None


def test_endpoints_filter_by_container_and_network(store: Store) -> None:
    for cid, nid, ip in (("c1", "n1", "10.0.0.2"), ("c1", "n2", "10.1.0.2"), ("c2", "n1", "10.0.0.3")):
        store.put_endpoint(Endpoint(cid, nid, "e-" + ip, "eth0", ip=ip))
    assert [e.ip for e in store.endpoints(container_id="c1")] == ["10.0.0.2", "10.1.0.2"]
    assert [e.ip for e in store.endpoints(network_id="n1")] == ["10.0.0.2", "10.0.0.3"]
    store.delete_endpoint("c1", "n1")
    assert [e.ip for e in store.endpoints()] == ["10.1.0.2", "10.0.0.3"]


def test_meta_round_trip(store: Store) -> None:
    assert store.meta_get("k") is None
    store.meta_set("k", "v1")
    store.meta_set("k", "v2")
    assert store.meta_get("k") == "v2"


def _committed(store: Store, network_id: str) -> dict[str, str]:
    """The leases another connection reads: what is really in the database."""
    other = Store(store.path)
    try:
        return other.leases(network_id)
    finally:
        other.close()


def test_cached_leases_follow_every_change_and_a_rollback(store: Store) -> None:
    assert store.leases("net1") == {} and store.lease_numbers("net1") == []  # the caches are primed from here on
    store.lease("net1", "10.0.0.2", "ctr-a")
    store.lease("net1", "10.0.0.3", "ctr-b")
    assert not store.lease("net1", "10.0.0.3", "ctr-c")
    assert store.lease_numbers("net1") == [number("10.0.0.2"), number("10.0.0.3")]
    store.release("net1", "ctr-a")
    assert store.lease_numbers("net1") == [number("10.0.0.3")]  # before the rollback below rebuilds them
    with pytest.raises(ValueError):
        with store.transaction():
            store.lease("net1", "10.0.0.4", "ctr-d")
            assert "10.0.0.4" in store.leases("net1")  # seen inside the transaction
            raise ValueError("boom")
    assert store.leases("net1") == _committed(store, "net1") == {"10.0.0.3": "ctr-b"}
    assert store.lease_numbers("net1") == [number("10.0.0.3")]
    store.release_network("net1")
    assert store.leases("net1") == _committed(store, "net1") == {}


def _pins(doc: Container) -> list[str]:
    return list(doc.pinned)


def test_an_index_follows_put_delete_and_a_rollback(store: Store) -> None:
    store.containers.add_index("pinned", _pins)
    store.containers.put(ctr(ID_A, "a", lab={"ipv4": "10.0.0.9"}))
    store.containers.put(ctr(ID_B, "b", lab={}))
    assert [c.name for c in store.containers.indexed("pinned", "lab")] == ["a"]
    store.containers.put(ctr(ID_B, "b", lab={"ipv4": "10.0.0.8"}, other={"ipv4": "10.1.0.8"}))
    store.containers.put(ctr(ID_A, "a", lab={}))  # no longer pinned
    assert [c.name for c in store.containers.indexed("pinned", "lab")] == ["b"]
    assert [c.name for c in store.containers.indexed("pinned", "other")] == ["b"]
    with pytest.raises(ValueError):
        with store.transaction():
            store.containers.delete(ID_B)
            assert store.containers.indexed("pinned", "lab") == []
            raise ValueError("boom")
    assert [c.name for c in store.containers.indexed("pinned", "lab")] == ["b"]  # rebuilt
    store.containers.delete(ID_B)
    assert store.containers.indexed("pinned", "lab") == store.containers.indexed("pinned", "other") == []


def test_a_read_batch_is_one_snapshot_and_refuses_writes(store: Store) -> None:
    store.networks.put(net(ID_A, "alpha"))
    with store.reading():
        assert store.db.in_transaction  # one snapshot for every read inside
        with store.reading():  # nested: joins it
            assert store.networks.get(ID_A) is not None
        with pytest.raises(AssertionError, match="a write inside"):
            store.networks.put(net(ID_B, "beta"))
    assert not store.db.in_transaction
    assert store.networks.get(ID_B) is None

"""The stub's name records: rebuilt whole, or replaced one container at a time."""

from minidock.dnsstub import Record, Records


def _recs() -> list[Record]:
    return [
        Record("a", "n1", "10.0.0.2", ["web", "shared"]),
        Record("b", "n1", "10.0.0.3", ["db", "shared"]),
        Record("b", "n2", "10.1.0.3", ["db"]),
        Record("c", "n2", "10.1.0.4", ["cache"]),
    ]


def test_update_matches_a_rebuild() -> None:
    whole, incremental = Records(), Records()
    whole.rebuild(_recs())
    for cid in ("a", "b", "c"):
        incremental.update(cid, [r for r in _recs() if r.container_id == cid])
    for asker in ("a", "b", "c"):
        for name in ("web", "db", "shared", "cache", "nothing"):
            assert whole.lookup(asker, name) == incremental.lookup(asker, name)
    assert incremental.lookup("a", "shared") == ["10.0.0.2", "10.0.0.3"]
    assert incremental.lookup("a", "cache") is None  # not on a network a shares
    assert incremental.reverse("c", "10.1.0.3") == "db"


def test_a_container_that_goes_leaves_no_trace() -> None:
    r = Records()
    r.rebuild(_recs())
    r.update("b", [])
    assert r.lookup("a", "shared") == ["10.0.0.2"]
    assert r.lookup("a", "db") is None
    assert r.lookup("c", "db") is None
    assert r.reverse("c", "10.1.0.3") is None
    assert r.networks_of.get("b") is None
    r.update("a", [])
    assert "shared" not in r.by_network["n1"]


def test_replacing_a_containers_records_moves_it() -> None:
    r = Records()
    r.rebuild(_recs())
    r.update("c", [Record("c", "n1", "10.0.0.9", ["cache"])])  # disconnected from n2, connected to n1
    assert r.lookup("a", "cache") == ["10.0.0.9"]
    assert r.lookup("b", "cache") == ["10.0.0.9"]
    assert "cache" not in r.by_network["n2"]


def test_every_change_moves_the_version_on() -> None:
    """The UDP thread forgets the answers it kept when the version moves: any change must move it."""
    r = Records()
    seen = [r.version]
    r.rebuild(_recs())
    seen.append(r.version)
    r.update("c", [Record("c", "n1", "10.0.0.9", ["cache"])])
    seen.append(r.version)
    r.update("c", [])
    seen.append(r.version)
    r.lookup("a", "shared", rotate=True)  # a lookup, even a rotating one, changes no record
    seen.append(r.version)
    assert seen == [0, 1, 2, 3, 3]

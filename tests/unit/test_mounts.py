"""Mount specs as Docker parses them (-v, --mount, VolumesFrom), the CLI's --mount
flag, and a compose file's volumes: pure functions, no daemon."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
import yaml

from minidock.cli.volumes import parse_mount_flag
from minidock.compose import ComposeError, _Loader, plan
from minidock.errors import Conflict, InvalidParameter, NotFound
from minidock.model import Container, MountPoint
from minidock.service.mounts import (
    parse_bind,
    parse_mount,
    parse_volumes_from,
    tmpfs_data,
    valid_mode,
)
from minidock.service.volumes import Volumes


@pytest.mark.parametrize("mode,ok", [("", True), ("ro", True), ("rw,Z", True), ("ro,rshared,nocopy", True),
                                     ("ro,rw", False), ("shared,slave", False), ("bogus", False)])
def test_mode_words_as_docker_counts_them(mode: str, ok: bool) -> None:
    assert valid_mode(mode) is ok


def test_bind_volume_and_anonymous_specs() -> None:
    m, want = parse_bind("/srv/data:/data:ro,rshared")
    assert (m.type, m.source, m.destination, m.rw, m.mode, m.propagation, want) == \
        ("bind", "/srv/data", "/data", False, "ro,rshared", "rshared", None)
    assert m.make_source  # -v makes a missing host directory; --mount does not
    m, want = parse_bind("cache:/var/cache/")
    assert (m.type, m.name, m.destination, m.rw, m.mode, m.named) == ("volume", "cache", "/var/cache", True, "z", True)
    assert want is not None and want.name == "cache" and want.mounts == [m]
    m, want = parse_bind("/scratch")
    assert (m.type, m.name, m.named, want is not None and want.name) == ("volume", "", False, "")


@pytest.mark.parametrize("raw,message", [
    ("/a:rw", "invalid volume specification: '/a:rw'"),
    ("/a:/b:/c:/d", "invalid volume specification: '/a:/b:/c:/d'"),
    ("/a:/b:xx", "invalid mode: xx"),
    ("/a:rel", "invalid mount path: 'rel' mount path must be absolute"),
    ("/a:/", "destination can't be '/'"),
    ("x:/y", "volume name is too short"),
    ("no@pe:/y", "includes invalid characters for a local volume name"),
])
def test_bad_binds_say_what_docker_says(raw: str, message: str) -> None:
    with pytest.raises(InvalidParameter, match=message.replace("(", r"\(").replace("'", "'")):
        parse_bind(raw)


def test_mount_entries(tmp_path: object) -> None:
    m, _ = parse_mount({"Type": "bind", "Source": str(tmp_path), "Target": "/x", "ReadOnly": True})
    assert (m.rw, m.propagation, m.make_source) == (False, "rprivate", False)
    with pytest.raises(InvalidParameter, match='invalid mount config for type "bind": bind source path does not exist'):
        parse_mount({"Type": "bind", "Source": "/nonexistent/minidock", "Target": "/x"})
    m, want = parse_mount({"Type": "volume", "Source": "v1", "Target": "/v",
                           "VolumeOptions": {"Subpath": "a/b", "Labels": {"k": "v"}}})
    assert (m.subpath, m.named, want and want.labels) == ("a/b", True, {"k": "v"})
    for bad, message in [({"Type": "volume", "Target": "/v", "VolumeOptions": {"Subpath": "a"}},
                          "must not set Subpath when using anonymous volumes"),
                         ({"Type": "volume", "Source": "v1", "Target": "/v", "VolumeOptions": {"Subpath": "../a"}},
                          "subpath must be a relative path within the volume"),
                         ({"Type": "tmpfs", "Source": "x", "Target": "/t"}, "field Source must not be specified"),
                         ({"Type": "tmpfs", "Target": "/t", "BindOptions": {}}, "field BindOptions must not be"),
                         ({"Type": "nfs", "Target": "/t"}, "mount type unknown")]:
        with pytest.raises(InvalidParameter, match=message):
            parse_mount(bad)
    m, _ = parse_mount({"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 3 << 20, "Mode": 0o700}})
    assert m.options == "noexec,nosuid,nodev,mode=700,size=3m"
    assert tmpfs_data({"Options": [["exec"]]}, True) == "ro,exec"


def test_volumes_from_modes() -> None:
    assert parse_volumes_from("data") == ("data", "rw")
    assert parse_volumes_from("data:ro") == ("data", "ro")
    for bad in ("data:rshared", "data:nocopy", "data:xx"):
        with pytest.raises(InvalidParameter, match="invalid mode"):
            parse_volumes_from(bad)


def test_cli_mount_flag() -> None:
    assert parse_mount_flag("type=bind,src=/a,dst=/b,readonly,bind-propagation=rslave") == {
        "Type": "bind", "Source": "/a", "Target": "/b", "ReadOnly": True, "BindOptions": {"Propagation": "rslave"}}
    assert parse_mount_flag("source=v,target=/v,volume-label=a=b,volume-subpath=s") == {
        "Type": "volume", "Source": "v", "Target": "/v", "VolumeOptions": {"Labels": {"a": "b"}, "Subpath": "s"}}
    assert parse_mount_flag("type=tmpfs,target=/t,tmpfs-size=64m,tmpfs-mode=1770") == {
        "Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 64 << 20, "Mode": 0o1770}}


def load(text: str) -> object:
    return plan(yaml.load(text, Loader=_Loader), "proj", "/srv/proj/docker-compose.yml")  # noqa: S506


def test_compose_volumes_become_binds_mounts_and_volume_requests() -> None:
    pj = load("""
services:
  web:
    image: busybox
    volumes: ["./site:/site:ro", "data:/data", "/anon", {type: tmpfs, target: /t, tmpfs: {size: 1m}}]
    tmpfs: /run
  side:
    image: busybox
    volumes_from: ["web:ro"]
volumes:
  data: {labels: {a: b}}
""")
    web = next(s for s in pj.services if s.name == "web")  # type: ignore[attr-defined]
    side = next(s for s in pj.services if s.name == "side")  # type: ignore[attr-defined]
    hc = web.body["HostConfig"]
    assert hc["Binds"] == ["/srv/proj/site:/site:ro"]
    assert hc["Mounts"] == [{"Type": "volume", "Source": "proj_data", "Target": "/data", "ReadOnly": False},
                            {"Type": "volume", "Target": "/anon"},
                            {"Type": "tmpfs", "Target": "/t", "ReadOnly": False, "TmpfsOptions": {"SizeBytes": 1 << 20}}]
    assert hc["Tmpfs"] == {"/run": ""}
    assert side.body["HostConfig"]["VolumesFrom"] == ["proj-web-1:ro"] and side.depends_on == ["web"]
    assert pj.volumes["data"]["Name"] == "proj_data"  # type: ignore[attr-defined]
    assert pj.volumes["data"]["Labels"]["com.docker.compose.volume"] == "data"  # type: ignore[attr-defined]
    assert pj.normalised["volumes"] == {"data": {"name": "proj_data"}}  # type: ignore[attr-defined]
    assert pj.normalised["services"]["web"]["volumes"][0] == "./site:/site:ro"  # type: ignore[attr-defined]
    with pytest.raises(ComposeError, match='refers to undefined volume nope'):
        load("services: {web: {image: busybox, volumes: ['nope:/x']}}")


class _Core:
    """The fields of Core the volume service uses."""

    def __init__(self, root: str) -> None:
        from minidock.service.events import Events
        from minidock.store import Store

        self.root = root
        self.store = Store(os.path.join(root, "minidock.db"))
        self.events = Events()


@pytest.fixture
def vols(tmp_path: object) -> Iterator[Volumes]:
    core = _Core(str(tmp_path))
    yield Volumes(core)  # type: ignore[arg-type]
    core.store.close()


def test_volume_records_filters_references_and_prune(vols: Volumes) -> None:
    a = vols.create("alpha", labels={"team": "red"})
    assert vols.create("alpha").created == a.created  # idempotent: the same volume
    anon = vols.create(None)
    assert anon.anonymous and len(anon.name) == 64 and os.path.isdir(vols.data_dir(anon.name))
    doc = vols.inspect("alpha")
    assert doc == {"CreatedAt": doc["CreatedAt"], "Driver": "local", "Labels": {"team": "red"},
                   "Mountpoint": vols.data_dir("alpha"), "Name": "alpha", "Options": None, "Scope": "local"}
    names = lambda f: [v["Name"] for v in vols.list(json.dumps(f))["Volumes"]]  # noqa: E731
    assert names({"label": ["team=red"]}) == ["alpha"]
    assert names({"name": {"alp": True}}) == ["alpha"]
    c = Container.from_json({"id": "c" * 64, "name": "user"})
    c.mounts = [MountPoint("volume", "/a", name="alpha", named=True), MountPoint("volume", "/b", name=anon.name)]
    vols.core.store.containers.put(c)
    assert names({"dangling": ["true"]}) == []
    with pytest.raises(Conflict, match=f"remove alpha: volume is in use - \\[{'c' * 64}\\]"):
        vols.remove("alpha")
    assert vols.prune()["VolumesDeleted"] == []  # in use: kept
    vols.core.store.containers.delete(c.id)
    assert vols.release(c) == [anon.name]  # rm -v: the anonymous one goes, the named one stays
    vols.create(None)
    assert len(vols.prune()["VolumesDeleted"]) == 1 and names({}) == ["alpha"]
    assert vols.prune(json.dumps({"all": ["1"], "label!": ["team=red"]}))["VolumesDeleted"] == []
    assert vols.prune(json.dumps({"all": ["true"]}))["VolumesDeleted"] == ["alpha"]
    assert not os.path.exists(os.path.dirname(vols.data_dir("alpha")))
    with pytest.raises(NotFound, match="get alpha: no such volume"):
        vols.remove("alpha")
    vols.remove("alpha", force=True)
    with pytest.raises(NotFound, match='plugin "nfs" not found'):
        vols.create("x1", driver="nfs")
    with pytest.raises(InvalidParameter, match='invalid option: "nope"'):
        vols.create("x1", options={"nope": "1"})
    with pytest.raises(InvalidParameter, match="invalid filter 'bogus'"):
        vols.list(json.dumps({"bogus": ["1"]}))
    seen = [(e["Action"], e["Actor"]["ID"]) for e in vols.core.events.ring]  # type: ignore[attr-defined]
    assert seen[:2] == [("create", "alpha"), ("create", anon.name)]
    assert ("destroy", "alpha") in seen and ("prune", "") in seen


@pytest.mark.parametrize("cfg,message", [
    ({"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": "3m"}},
     "json: cannot unmarshal string into Go struct field TmpfsOptions.SizeBytes of type int64"),
    ({"Type": "tmpfs", "Target": "/t", "TmpfsOptions": [1]}, "cannot unmarshal array into Go struct field Mount"),
    ({"Type": "volume", "Source": "vv", "Target": "/t", "VolumeOptions": {"Labels": [1]}},
     "cannot unmarshal array into Go struct field VolumeOptions.Labels"),
    ({"Type": "bind", "Source": "/tmp", "Target": "/t", "BindOptions": "x"}, "field Mount.BindOptions"),
])
def test_mount_fields_of_the_wrong_json_type_are_a_400(cfg: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidParameter, match=message):
        parse_mount(cfg)

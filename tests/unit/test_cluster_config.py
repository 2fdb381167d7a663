"""The cluster's flags and the etcd gateway's shapes, without etcd (the e2e overlay
tests run a real one)."""

from __future__ import annotations

import base64

import pytest

from minidock import etcd
from minidock.service.cluster import Peer, endpoint_key, subnet_key
from minidock.service.clusterconfig import DEFAULT_TTL, ClusterConfig


def test_no_store_no_cluster() -> None:
    assert ClusterConfig.parse("", "", [], "") is None
    with pytest.raises(ValueError, match="--cluster-advertise needs --cluster-store"):
        ClusterConfig.parse("", "192.0.2.1", [], "")


def test_store_advertise_ttl_and_node() -> None:
    cfg = ClusterConfig.parse("etcd://192.0.2.11:2379,192.0.2.12", "192.0.2.1:0", ["discovery.ttl=5"], "n1")
    assert cfg == ClusterConfig("etcd://192.0.2.11:2379,192.0.2.12", "192.0.2.1", "n1", 5)
    assert ClusterConfig.parse("etcd://h:2379", "192.0.2.1", [], "n1").ttl == DEFAULT_TTL  # type: ignore[union-attr]


@pytest.mark.parametrize(("url", "advertise", "opts", "node", "says"), [
    ("consul://h:8500", "192.0.2.1", [], "n", "expected etcd://HOST:PORT"),
    (",", "192.0.2.1", [], "n", "expected etcd://HOST:PORT"),
    ("etcd://h:2379", "", [], "n", "needs --cluster-advertise"),
    ("etcd://h:2379", "eth0", [], "n", "invalid --cluster-advertise"),
    ("etcd://h:2379", "192.0.2.1", ["discovery.ttl=1"], "n", "discovery.ttl=SECONDS"),
    ("etcd://h:2379", "192.0.2.1", ["kv.path=/x"], "n", "discovery.ttl=SECONDS"),
    ("etcd://h:2379", "192.0.2.1", [], "a/b", "invalid --node-name"),
])
def test_bad_flags_say_which(url: str, advertise: str, opts: list[str], node: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        ClusterConfig.parse(url, advertise, opts, node)


def test_endpoints_default_port_and_plain_host() -> None:
    assert etcd.parse_endpoints("etcd://a:1,b, http://c:3") == [("a", 1), ("b", 2379), ("c", 3)]


def test_prefix_range_and_ops_in_the_gateway_json() -> None:
    assert etcd.prefix_end("/minidock/") == "/minidock0"
    op = etcd.put_op("/k", "v", lease=7)["request_put"]
    assert base64.b64decode(op["key"]) == b"/k" and base64.b64decode(op["value"]) == b"v" and op["lease"] == "7"
    # "nobody holds it yet": the key's create revision is 0
    assert etcd.absent("/k") == {"key": op["key"], "target": "CREATE", "result": "EQUAL", "create_revision": "0"}
    d = etcd.delete_op("/p/", prefix=True)["request_delete_range"]
    assert base64.b64decode(d["range_end"]) == b"/p0"
    kv = etcd.KV.of({"key": op["key"], "value": op["value"], "mod_revision": "9", "lease": "7"})
    assert (kv.key, kv.value, kv.mod_revision, kv.lease) == ("/k", "v", 9, 7)


def test_peer_round_trips_and_keys() -> None:
    p = Peer("net1", "c1", "web", ["web", "front"], "10.0.0.2", "02:42:0a:00:00:02", "n1", "192.0.2.1")
    assert Peer.from_json(p.to_json()) == p
    assert endpoint_key("net1", "10.0.0.2") == "/minidock/endpoints/net1/10.0.0.2"
    assert subnet_key("10.0.0.0/24") == "/minidock/subnets/10.0.0.0-24"

"""Unit tests of the network API's pure parts: Docker's filters (apifilters and the network
list's Filter), EndpointSettings parsing (epconfig), the container-wide MAC's migration, the
DNS stub's per-container link aliases, and the router's trailing slash."""

from __future__ import annotations

import json
from typing import Any

import pytest

from minidock import apifilters
from minidock.daemon.http import Router
from minidock.dnsstub.records import Record, Records
from minidock.errors import InvalidParameter
from minidock.model import Network
from minidock.service import networks
from minidock.service.epconfig import endpoint_extras, migrate_container_mac, parse_link, parse_mac
from minidock.service.networks import LIST_FILTERS, check_list_filters, matches


def net(name: str, driver: str = "bridge", labels: dict[str, str] | None = None, nid: str = "") -> Network:
    return Network(id=nid or (name.encode().hex() * 8)[:64], name=name, driver=driver, created=0.0,
                   labels=labels or {})


def test_both_json_shapes_of_filters_are_read_and_unknown_keys_refused() -> None:
    assert apifilters.parse(json.dumps({"name": {"web": True}}), LIST_FILTERS) == {"name": ["web"]}
    assert apifilters.parse(json.dumps({"label": ["a=b", "c"]}), LIST_FILTERS) == {"label": ["a=b", "c"]}
    assert apifilters.parse("", LIST_FILTERS) == {}
    with pytest.raises(InvalidParameter, match="^invalid filter 'colour'$"):
        apifilters.parse(json.dumps({"colour": ["red"]}), LIST_FILTERS)
    with pytest.raises(InvalidParameter, match="^invalid filter$"):
        apifilters.parse("{nope", LIST_FILTERS)


def test_name_and_id_match_as_moby_regexps() -> None:
    f = {"name": ["web"]}
    assert apifilters.match(f, "name", "myweb1") and not apifilters.match(f, "name", "db")
    assert apifilters.match({"name": ["^we"]}, "name", "web") and not apifilters.match({"name": ["^we"]}, "name", "xweb")
    assert apifilters.match({"name": ["a[b"]}, "name", "a[b")  # no regexp: only itself
    assert apifilters.match({}, "name", "anything")


def test_labels_match_by_key_or_key_and_value() -> None:
    assert apifilters.match_labels({"label": ["tier"]}, "label", {"tier": "web"})
    assert apifilters.match_labels({"label": ["tier=web"]}, "label", {"tier": "web"})
    assert not apifilters.match_labels({"label": ["tier=db"]}, "label", {"tier": "web"})
    assert not apifilters.match_labels({"label": ["tier"]}, "label", {})


@pytest.mark.parametrize(("f", "want"), [
    ({"type": ["builtin"]}, ["bridge", "none"]),
    ({"type": ["custom"]}, ["front", "back"]),
    ({"driver": ["null"]}, ["none"]),
    ({"dangling": ["true"]}, ["front"]),
    ({"dangling": ["0"]}, ["bridge", "none", "back"]),
    ({"label": ["tier=db"]}, ["back"]),
    ({"scope": ["local"], "name": ["ront"]}, ["front"]),
])
def test_the_network_list_filter_is_mobys(f: dict[str, list[str]], want: list[str]) -> None:
    nets = [net("bridge"), net("none", "null"), net("front", labels={"tier": "web"}),
            net("back", labels={"tier": "db"})]
    attached = {"back"}
    check_list_filters(f)
    assert [n.name for n in nets if matches(f, n, "local", n.name in attached)] == want


@pytest.mark.parametrize(("f", "message"), [
    ({"dangling": ["maybe"]}, "invalid value for filter 'dangling'"),
    ({"dangling": ["1", "0"]}, 'got more than one value for filter key "dangling"'),
    ({"type": ["odd"]}, "invalid filter: 'type'='odd'"),
])
def test_bad_filter_values_are_mobys_400(f: dict[str, list[str]], message: str) -> None:
    with pytest.raises(InvalidParameter, match=message):
        check_list_filters(f)


@pytest.mark.parametrize(("given", "mac"), [("02:42:AC:11:00:02", "02:42:ac:11:00:02"),
                                             ("02-42-ac-11-00-02", "02:42:ac:11:00:02"),
                                             ("0242.ac11.0002", "02:42:ac:11:00:02")])
def test_mac_addresses_in_go_s_forms(given: str, mac: str) -> None:
    assert parse_mac(given) == mac


@pytest.mark.parametrize("bad", ["02:42:ac:11:00", "zz:42:ac:11:00:02", "03:42:ac:11:00:02", "00:00:00:00:00:00",
                                 "02:42-ac:11:00:02"])
def test_bad_mac_addresses_are_refused(bad: str) -> None:
    with pytest.raises(InvalidParameter, match=f"^invalid MAC address {bad}"):
        parse_mac(bad)


def test_links_parse_as_moby_parse_link() -> None:
    assert parse_link("db:database") == ("db", "database")
    assert parse_link("db") == ("db", "db")
    assert parse_link("/db:/web/database") == ("db", "database")
    with pytest.raises(InvalidParameter, match="bad format for links: a:b:c"):
        parse_link("a:b:c")


def test_endpoint_extras_are_checked_and_kept() -> None:
    extras = endpoint_extras(net("n"), {"Links": ["up:bar"], "MacAddress": "02:42:0a:00:00:09",
                                        "IPAMConfig": {"LinkLocalIPs": ["169.254.8.8", "fe80::8"]},
                                        "DriverOpts": {"k": "v"}})
    assert extras == {"links": ["up:bar"], "mac": "02:42:0a:00:00:09", "link_local": ["169.254.8.8", "fe80::8"],
                      "driver_opts": {"k": "v"}}
    for bad in ("nope", "0.0.0.0", "1.2.3", "10.0.0.0/8"):
        with pytest.raises(InvalidParameter, match=f"invalid link-local IP address: {bad}"):
            endpoint_extras(net("n"), {"IPAMConfig": {"LinkLocalIPs": [bad]}})
    with pytest.raises(InvalidParameter, match="ipvlan interfaces do not support custom mac"):
        endpoint_extras(net("l2", "ipvlan"), {"MacAddress": "02:42:0a:00:00:09"})


def body(**kw: Any) -> dict[str, Any]:
    return {"Image": "busybox", "MacAddress": "02:42:ac:11:00:0a", **kw}


def test_the_container_wide_mac_moves_to_the_main_network_s_endpoint() -> None:
    b = body()
    assert "deprecated" in migrate_container_mac(b)
    assert b["NetworkingConfig"]["EndpointsConfig"] == {"bridge": {"MacAddress": "02:42:ac:11:00:0a"}}
    assert b["MacAddress"] == ""
    b = body(HostConfig={"NetworkMode": "app"}, NetworkingConfig={"EndpointsConfig": {"app": {"Aliases": ["x"]}}})
    migrate_container_mac(b)
    assert b["NetworkingConfig"]["EndpointsConfig"]["app"] == {"Aliases": ["x"], "MacAddress": "02:42:ac:11:00:0a"}
    with pytest.raises(InvalidParameter, match="must match the endpoint-specific MAC address"):
        migrate_container_mac(body(HostConfig={"NetworkMode": "app"}, NetworkingConfig={
            "EndpointsConfig": {"app": {"MacAddress": "02:42:ac:11:00:0b"}}}))
    with pytest.raises(InvalidParameter, match="NetworkMode must match"):
        migrate_container_mac(body(HostConfig={"NetworkMode": "app"}, NetworkingConfig={
            "EndpointsConfig": {"other": {}}}))
    b = body(HostConfig={"NetworkMode": "host"})
    migrate_container_mac(b)
    assert "NetworkingConfig" not in b and b["MacAddress"] == ""
    assert migrate_container_mac({"Image": "busybox"}) == ""


def test_a_link_alias_resolves_for_the_linking_container_only() -> None:
    r = Records()
    r.rebuild([Record("up", "n1", "10.0.0.2", ["upstream"]), Record("me", "n1", "10.0.0.3", ["me"]),
               Record("other", "n1", "10.0.0.4", ["other", "bar"])])
    assert r.lookup("me", "bar") == ["10.0.0.4"]  # no link yet: the name itself
    r.set_links("me", {"n1": {"bar": "upstream"}})
    assert r.lookup("me", "bar") == ["10.0.0.2"]  # the link's alias first, as libnetwork's resolver
    assert r.lookup("other", "bar") == ["10.0.0.4"]
    version = r.version
    r.set_links("me", {})
    assert r.version > version and r.lookup("me", "bar") == ["10.0.0.4"]


def test_a_trailing_slash_falls_back_to_its_route() -> None:
    router = Router()

    async def listing(req: Any) -> Any:
        return None

    async def one(req: Any) -> Any:
        return None

    router.add("GET", "/networks", listing)
    router.add("GET", "/networks/{id}", one)
    assert router.match("GET", "/networks/")[0] is listing
    assert router.match("GET", "/networks/abc/")[:2] == (one, {"id": "abc"})
    assert router.match("GET", "/nosuch/") == (None, {}, False)


def test_predefined_names_include_default() -> None:
    assert networks.PREDEFINED_NAMES == ("bridge", "host", "none", "default")



@pytest.mark.parametrize(("req", "message"), [
    ({"Scope": "swarm"}, "cannot create a swarm scoped network when swarm is not active"),
    ({"Ingress": True}, "Ingress network can only be global scope network"),
    ({"ConfigOnly": True}, "no configuration-only networks"),
    ({"ConfigFrom": {"Network": "base"}}, "no configuration-only networks"),
])
def test_swarm_and_config_only_networks_are_refused(req: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidParameter if "configuration" in message else Exception, match=message):
        networks.validate_create({"Name": "n", **req}, [])


def test_a_scope_asked_for_is_kept() -> None:
    assert networks.validate_create({"Name": "n", "Scope": "local"}, []).scope == "local"

"""Unit tests for minidock.service.networks: /networks/create validation and subnet picking."""

from __future__ import annotations

import re
from typing import Any

import pytest
from netaddr import IPNetwork

from minidock.errors import Conflict, Forbidden, InvalidParameter
from minidock.model import IPAMConfig, Network
from minidock.service import networks
from minidock.service.networks import finish_subnet, validate_create


def predefined() -> list[Network]:
    bridge = networks.default_bridge_record()
    bridge.ipam = [IPAMConfig("172.17.0.0/16", "172.17.0.1")]
    return [bridge, networks.simple_record("host", "host"), networks.simple_record("none", "null")]


def create(existing: list[Network] | None = None, **req: Any) -> dict[str, Any]:
    """The record's JSON: what the store keeps, and what these checks read."""
    return validate_create({"Name": "appnet", **req}, predefined() if existing is None else existing).to_json()


def finished(rec: dict[str, Any], **kw: Any) -> dict[str, Any]:
    net = Network.from_json(rec)
    finish_subnet(net, **kw)
    return net.to_json()


def ipam_req(**config: str) -> dict[str, Any]:
    return {"Driver": "default", "Config": [config]}


def test_valid_request_produces_a_record_with_the_given_subnet_and_gateway() -> None:
    rec = create(IPAM=ipam_req(Subnet="10.20.0.0/16", Gateway="10.20.0.254"),
                 Internal=True, Labels={"team": "net"},
                 Options={"com.docker.network.driver.mtu": "1400"})
    assert rec["name"] == "appnet" and rec["driver"] == "bridge"
    assert rec["ipam"]["config"] == [{"subnet": "10.20.0.0/16", "gateway": "10.20.0.254"}]
    assert rec["internal"] is True and rec["predefined"] is False
    assert rec["labels"] == {"team": "net"}
    assert rec["options"] == {"com.docker.network.driver.mtu": "1400"}
    assert len(rec["id"]) == 64 and all(c in "0123456789abcdef" for c in rec["id"])
    assert rec["bridge"] == ""  # finish_subnet names it


def test_subnet_without_gateway_gets_the_first_host_and_ip_range_is_kept() -> None:
    rec = create(IPAM=ipam_req(Subnet="10.30.0.0/24", IPRange="10.30.0.128/25"))
    assert rec["ipam"]["config"] == [
        {"subnet": "10.30.0.0/24", "ip_range": "10.30.0.128/25", "gateway": "10.30.0.1"}]


def test_no_ipam_config_leaves_the_subnet_to_the_caller() -> None:
    assert create()["ipam"]["config"] == []


def test_duplicate_name_is_a_conflict() -> None:
    existing = [*predefined(), networks.simple_record("appnet", "bridge")]
    with pytest.raises(Conflict, match="^network with name appnet already exists$") as exc:
        create(existing, Name="appnet")
    assert exc.value.status == 409


@pytest.mark.parametrize("name", ["bridge", "host", "none", "default"])
def test_a_predefined_name_is_forbidden_in_moby_words(name: str) -> None:
    with pytest.raises(Forbidden) as exc:
        create(Name=name)
    assert exc.value.message == f"operation is not permitted on predefined {name} network "


def test_a_space_inside_a_name_is_allowed_as_docker_does() -> None:
    assert create(Name="test 01")["name"] == "test 01"


@pytest.mark.parametrize("name", ["", "-lead", " lead", "a/b", 'a"b', "   "])
def test_bad_names(name: str) -> None:
    with pytest.raises(InvalidParameter):
        create(Name=name)


@pytest.mark.parametrize("subnet", ["10.0.0.0", "not-a-net", "fd00::", "fd00::1/64", "fd00:zz::/64"])
def test_bad_subnet(subnet: str) -> None:
    with pytest.raises(InvalidParameter, match=re.escape(f"invalid subnet {subnet}")):
        create(IPAM=ipam_req(Subnet=subnet))


def test_dual_stack_configs_one_per_family() -> None:
    rec = create(EnableIPv6=True, IPAM={"Driver": "default", "Config": [
        {"Subnet": "fd00:1::/64", "Gateway": "fd00:1::fe"}, {"Subnet": "10.7.0.0/24"}]})
    assert rec["enable_ipv6"] and [c["subnet"] for c in rec["ipam"]["config"]] == ["10.7.0.0/24", "fd00:1::/64"]
    assert rec["ipam"]["config"][1]["gateway"] == "fd00:1::fe"
    with pytest.raises(InvalidParameter, match="only one IPv6 subnet per network"):
        create(EnableIPv6=True, IPAM={"Driver": "default", "Config": [{"Subnet": "fd00:1::/64"},
                                                                     {"Subnet": "fd00:2::/64"}]})
    with pytest.raises(InvalidParameter, match="invalid gateway fd00:9::1: it must be a host address"):
        create(EnableIPv6=True, IPAM=ipam_req(Subnet="fd00:1::/64", Gateway="fd00:9::1"))
    taken = Network.from_json(create(Name="six", EnableIPv6=True, IPAM=ipam_req(Subnet="fd00:1::/64")))
    with pytest.raises(Forbidden, match="Pool overlaps"):
        create([taken], EnableIPv6=True, IPAM=ipam_req(Subnet="fd00:1::/48"))


def test_ipv6_default_pool_is_a_ula_64() -> None:
    net = Network.from_json(create(EnableIPv6=True))
    finish_subnet(net, [], [], seed="host-a")
    six = net.ipam6
    assert net.ipam[0].subnet.startswith("172.17.") and six is not None
    assert six.subnet.startswith("fd") and six.subnet.endswith("::/64")
    assert six.gateway == str(IPNetwork(six.subnet).network + 1)
    other = Network.from_json(create(Name="b", EnableIPv6=True))
    finish_subnet(other, [IPNetwork(net.ipam[0].subnet), IPNetwork(six.subnet)], [], seed="host-a")
    assert other.ipam6 is not None and other.ipam6.subnet != six.subnet


def test_overlapping_subnet_is_forbidden() -> None:
    with pytest.raises(Forbidden, match="Pool overlaps with other one on this address space") as exc:
        create(IPAM=ipam_req(Subnet="172.17.128.0/17"))
    assert exc.value.status == 403
    with pytest.raises(Forbidden):
        create(IPAM=ipam_req(Subnet="172.0.0.0/8"))  # a supernet overlaps too


def test_gateway_outside_subnet_or_on_its_edges() -> None:
    for gw in ("10.40.1.1", "10.40.0.0", "10.40.0.255"):
        with pytest.raises(InvalidParameter, match=f"invalid gateway {gw}"):
            create(IPAM=ipam_req(Subnet="10.40.0.0/24", Gateway=gw))
    with pytest.raises(InvalidParameter, match="invalid gateway"):
        create(IPAM=ipam_req(Subnet="10.40.0.0/24", Gateway="10.40.0"))


def test_ip_range_outside_subnet() -> None:
    with pytest.raises(InvalidParameter, match="invalid ip-range 10.50.1.0/24: it must be inside"):
        create(IPAM=ipam_req(Subnet="10.50.0.0/24", IPRange="10.50.1.0/24"))
    with pytest.raises(InvalidParameter, match="it must be inside"):
        create(IPAM=ipam_req(Subnet="10.50.0.0/24", IPRange="10.50.0.0/23"))


def test_ip_range_or_gateway_without_subnet() -> None:
    with pytest.raises(InvalidParameter, match="need a subnet"):
        create(IPAM=ipam_req(Gateway="10.0.0.1"))


def test_unknown_driver() -> None:
    with pytest.raises(InvalidParameter, match='plugin "weave" not found'):
        create(Driver="weave")


@pytest.mark.parametrize(("options", "says"), [
    ({"macvlan_mode": "hub"}, "requested macvlan mode 'hub' is not valid, 'bridge' mode is the macvlan driver"),
    ({"parent": "lo"}, "loopback interface is not a valid macvlan parent link"),
    ({"parent": "eth0.x"}, "required interface name format is: name.vlan_id"),
    ({"parent": "eth0.5000"}, "vlan id must be between 1-4094, received: 5000"),
])
def test_macvlan_options_are_checked_as_docker_does(options: dict[str, str], says: str) -> None:
    with pytest.raises(InvalidParameter, match=re.escape(says)):
        create(Driver="macvlan", Options=options)


def test_passthru_takes_its_parent_whole() -> None:
    first = Network.from_json(create(Driver="macvlan", Name="a", Options={"parent": "eth0", "macvlan_mode": "passthru"}))
    with pytest.raises(Forbidden, match="is already using parent interface eth0 in mode passthru"):
        validate_create({"Name": "b", "Driver": "macvlan", "Options": {"parent": "eth0"}}, [first])
    with pytest.raises(Forbidden, match="cannot use mode passthru, macvlan network .* is already using parent"):
        validate_create({"Name": "b", "Driver": "macvlan", "Options": {"parent": "eth1", "macvlan_mode": "passthru"}},
                        [Network.from_json(create(Driver="macvlan", Name="c", Options={"parent": "eth1"}))])
    # two bridge-mode networks may share a parent (moby since 23)
    shared = Network.from_json(create(Driver="macvlan", Name="c", Options={"parent": "eth1"}))
    assert validate_create({"Name": "d", "Driver": "macvlan", "Options": {"parent": "eth1"}}, [shared]).name == "d"


@pytest.mark.parametrize("driver", ["host", "null"])
def test_host_and_null_drivers_are_single_instance(driver: str) -> None:
    with pytest.raises(Forbidden, match=f'only one instance of "{driver}" network is allowed'):
        create(Driver=driver)


def test_unknown_docker_option_is_rejected_but_foreign_options_pass() -> None:
    with pytest.raises(InvalidParameter, match="unknown option com.docker.network.bridge.bogus"):
        create(Options={"com.docker.network.bridge.bogus": "1"})
    assert create(Options={"org.example.key": "v"})["options"] == {"org.example.key": "v"}


@pytest.mark.parametrize("mtu", ["abc", "67", "65536", "-1", "1500.0", ""])
def test_bad_mtu(mtu: str) -> None:
    with pytest.raises(InvalidParameter, match="invalid MTU value"):
        create(Options={"com.docker.network.driver.mtu": mtu})


def test_mtu_bounds_are_inclusive_and_numbers_are_stringified() -> None:
    assert create(Options={"com.docker.network.driver.mtu": 68})["options"] == \
        {"com.docker.network.driver.mtu": "68"}
    create(Options={"com.docker.network.driver.mtu": "65535"})


def test_bad_icc_value_and_bridge_name() -> None:
    with pytest.raises(InvalidParameter, match="it must be true or false"):
        create(Options={"com.docker.network.bridge.enable_icc": "maybe"})
    with pytest.raises(InvalidParameter, match="invalid bridge name"):
        create(Options={"com.docker.network.bridge.name": "a-name-too-long-for-linux"})
    with pytest.raises(Conflict, match="bridge name minidock0 is already used"):
        create(Options={"com.docker.network.bridge.name": "minidock0"})


def test_only_default_ipam_driver_and_one_subnet() -> None:
    with pytest.raises(InvalidParameter, match="not supported"):
        create(IPAM={"Driver": "dhcp", "Config": []})
    with pytest.raises(InvalidParameter, match="only one IPv4 subnet"):
        create(IPAM={"Config": [{"Subnet": "10.1.0.0/24"}, {"Subnet": "10.2.0.0/24"}]})


# --- finish_subnet ------------------------------------------------------------------------


def test_finish_subnet_picks_a_default_pool_and_names_the_bridge() -> None:
    rec = create()
    rec = finished(rec, in_use=[IPNetwork("172.17.0.0/16")], routes=[IPNetwork("0.0.0.0/0")])
    assert rec["ipam"]["config"] == [{"subnet": "172.18.0.0/16", "gateway": "172.18.0.1"}]
    assert rec["bridge"] == "br-" + rec["id"][:12]
    assert len(rec["bridge"]) == 15  # IFNAMSIZ - 1


def test_finish_subnet_skips_host_routes() -> None:
    rec = create()
    rec = finished(rec, in_use=[IPNetwork("172.17.0.0/16")], routes=[IPNetwork("172.18.3.0/24")])
    assert rec["ipam"]["config"][0]["subnet"] == "172.19.0.0/16"


def test_finish_subnet_keeps_a_requested_subnet_and_bridge_name() -> None:
    rec = create(IPAM=ipam_req(Subnet="10.60.0.0/24"),
                 Options={"com.docker.network.bridge.name": "lab0"})
    rec = finished(rec, in_use=[], routes=[IPNetwork("0.0.0.0/0")])
    assert rec["ipam"]["config"] == [{"subnet": "10.60.0.0/24", "gateway": "10.60.0.1"}]
    assert rec["bridge"] == "lab0"


def test_finish_subnet_refuses_a_requested_subnet_that_overlaps_a_host_route() -> None:
    rec = create(IPAM=ipam_req(Subnet="10.0.2.0/24"))
    with pytest.raises(Forbidden, match="Pool overlaps"):
        finished(rec, in_use=[], routes=[IPNetwork("10.0.0.0/16")])

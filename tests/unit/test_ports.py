"""Unit tests for minidock.ports: -p parsing, PortBindings, host port choice, display."""

from __future__ import annotations

import pytest

from minidock.cli.format import displayable
from minidock.errors import InvalidParameter
from minidock.ports import (
    PortAllocated,
    Published,
    choose,
    normalise,
    parse_spec,
    settings,
    wanted,
)


@pytest.mark.parametrize("spec, expected", [
    ("8080:80", [("80/tcp", {"HostIp": "", "HostPort": "8080"})]),
    ("127.0.0.1:8080:80", [("80/tcp", {"HostIp": "127.0.0.1", "HostPort": "8080"})]),
    ("8080:80/udp", [("80/udp", {"HostIp": "", "HostPort": "8080"})]),
    ("80", [("80/tcp", {"HostIp": "", "HostPort": ""})]),
    ("127.0.0.1::80", [("80/tcp", {"HostIp": "127.0.0.1", "HostPort": ""})]),
    ("8000-8001:9000-9001", [("9000/tcp", {"HostIp": "", "HostPort": "8000"}),
                             ("9001/tcp", {"HostIp": "", "HostPort": "8001"})]),
    ("8000-8005:80", [("80/tcp", {"HostIp": "", "HostPort": "8000-8005"})]),
    ("53/UDP", [("53/udp", {"HostIp": "", "HostPort": ""})]),
])
def test_parse_spec_accepts_every_docker_form(spec: str, expected: list[object]) -> None:
    assert parse_spec(spec) == expected


@pytest.mark.parametrize("spec, message", [
    ("99999:80", "invalid hostPort: 99999"),
    ("abc", "invalid containerPort: abc"),
    ("8080:80/sctpx", "invalid proto: sctpx"),
    ("1.2.3:80:80", "invalid IP address: 1.2.3"),
    ("8000-8002:80-81", "invalid ranges specified for container and host Ports: 80-81 and 8000-8002"),
    ("0", "invalid containerPort: 0"),
    ("$(reboot):80", "invalid hostPort: $(reboot)"),
])
def test_parse_spec_refuses_with_dockers_wording(spec: str, message: str) -> None:
    with pytest.raises(InvalidParameter, match=None) as e:
        parse_spec(spec)
    assert str(e.value) == message


def test_normalise_adds_exposed_ports_only_with_publish_all() -> None:
    assert normalise({}, ["5000/tcp"]) == {}
    assert normalise({}, ["5000/tcp"], True) == {"5000/tcp": [{"HostIp": "", "HostPort": ""}]}
    assert normalise({"80": None}) == {"80/tcp": [{"HostIp": "", "HostPort": ""}]}
    with pytest.raises(InvalidParameter):
        normalise({"80/tcp": [{"HostIp": "not-an-ip", "HostPort": "1"}]})


def pub(proto: str, ip: str, port: int) -> Published:
    return Published(proto, ip, port, 80, "172.17.0.2", "minidock0", "172.17.0.0/16", "c")


def test_choose_refuses_an_overlapping_port_and_takes_the_next_free_for_ranges() -> None:
    taken = [pub("tcp", "0.0.0.0", 8080)]
    every_port_free = lambda proto, ip, port: True  # noqa: E731
    with pytest.raises(PortAllocated, match=r"Bind for 127.0.0.1:8080 failed: port is already allocated"):
        choose(wanted({"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}), taken, every_port_free)
    # another protocol, or another address when neither is 0.0.0.0, does not overlap
    assert choose(wanted({"80/udp": [{"HostIp": "", "HostPort": "8080"}]}), taken, every_port_free) == \
        [("udp", "0.0.0.0", 8080, 80)]
    assert choose(wanted({"80/tcp": [{"HostIp": "", "HostPort": "8080-8082"}]}), taken, every_port_free) == \
        [("tcp", "0.0.0.0", 8081, 80)]


def test_choose_asks_the_host_and_never_hands_one_port_out_twice() -> None:
    host_holds = {32768}
    chosen = choose(wanted({"80/tcp": [{"HostIp": "", "HostPort": ""}, {"HostIp": "", "HostPort": ""}]}), [],
                    lambda proto, ip, port: port not in host_holds)
    assert chosen == [("tcp", "0.0.0.0", 32769, 80), ("tcp", "0.0.0.0", 32770, 80)]
    with pytest.raises(PortAllocated, match="0.0.0.0:9000-9001"):
        choose(wanted({"80/tcp": [{"HostIp": "", "HostPort": "9000-9001"}]}), [], lambda *a: False)


def test_displayable_groups_ranges_as_the_docker_cli() -> None:
    api = [{"IP": "0.0.0.0", "PrivatePort": p, "PublicPort": p, "Type": "tcp"} for p in (9002, 9000, 9001)]
    api += [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
            {"IP": "127.0.0.1", "PrivatePort": 80, "PublicPort": 8081, "Type": "tcp"},
            {"PrivatePort": 5000, "Type": "tcp"}]
    # groups in the order first seen (by private port), then the host mappings: as Docker 28's `ps`
    assert displayable(api) == ("5000/tcp, 0.0.0.0:9000-9002->9000-9002/tcp, "
                                "0.0.0.0:8080->80/tcp, 127.0.0.1:8081->80/tcp")
    assert displayable([]) == ""


def test_settings_lists_exposed_ports_with_null_and_published_with_bindings() -> None:
    assert settings([pub("tcp", "0.0.0.0", 8080)], ["80/tcp", "81/tcp"]) == {
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "81/tcp": None}

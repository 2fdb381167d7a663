"""`minidock daemon --port-maps`: published ports as nftables map elements.

The behaviour tests of test_ports run again on a daemon started with
--port-maps (real connections from an outside namespace, the host's
loopback, a container's hairpin, another bridge); the tests here look at the
maps themselves, where the default layout has one iptables rule per port.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import module_daemon
from tests.e2e.test_ports import (  # noqa: F401, F811 - collected again, on this module's daemon
    HOST,
    outside,
    tcp,
    test_bad_publish_specs_are_refused_with_dockers_wording,
    test_bridges_talk_through_a_published_port_and_never_directly,
    test_conflicts_are_refused_and_change_nothing,
    test_every_publish_form,
    test_hairpin_a_container_reaches_its_own_and_a_neighbours_published_port,
    test_host_gateway_reaches_a_service_on_the_host,
    test_loopback_binding_is_not_reachable_from_another_host,
    test_published_port_answers_from_outside_and_from_the_hosts_loopback,
    web,
)
from tests.sandbox import Sandbox, sh


@pytest.fixture(scope="module")
def md() -> Iterator[Sandbox]:
    yield from module_daemon("--port-maps")


def maps(md: Sandbox) -> str:
    return md.host("nft", "list", "table", "ip", "minidock").out


def test_a_port_is_a_map_element_and_no_rule(md: Sandbox, outside: str) -> None:  # noqa: F811
    ip = web(md, "mapped", "8600:80", "127.0.0.1:8601:80")
    table = maps(md)
    assert f"tcp . 8600 : {ip} . 80" in table, table
    assert f"127.0.0.1 . tcp . 8601 : {ip} . 80" in table, table
    nat = md.host("iptables-save", "-t", "nat").out
    assert "--dport 8600" not in nat and "-j DNAT" not in nat, nat
    assert tcp(md, outside, HOST, 8600) == "mapped"
    assert tcp(md, "host", "127.0.0.1", 8601) == "mapped"
    md.cli("stop", "-t", "0", "mapped")
    assert "8600" not in maps(md) and "8601" not in maps(md)
    assert tcp(md, outside, HOST, 8600) == ""
    md.cli("start", "mapped")
    assert tcp(md, outside, HOST, 8600) == "mapped"
    md.cli("rm", "-f", "mapped")
    assert "8600" not in maps(md)


def test_explain_shows_the_nft_commands(md: Sandbox) -> None:
    r = md.cli("--explain", "run", "-d", "--name", "told", "-p", "8700:80", "busybox", "sleep", "60")
    assert "nft add element ip minidock ports { tcp . 8700 :" in r.err, r.err
    r = md.cli("--explain", "rm", "-f", "told")
    assert "nft delete element ip minidock ports { tcp . 8700 }" in r.err, r.err


def test_maps_are_rebuilt_at_start_up(md: Sandbox, outside: str) -> None:  # noqa: F811
    web(md, "kept", "8800:80")
    md.stop(sig=9)
    md.host("nft", "flush", "map", "ip", "minidock", "ports")  # damage while the daemon is away
    time.sleep(0.2)
    md.start()
    assert "tcp . 8800" in maps(md)
    assert tcp(md, outside, HOST, 8800) == "kept"
    md.cli("rm", "-f", "kept")


def test_system_reset_removes_the_table(md: Sandbox) -> None:
    md.cli("system", "reset", "-f")
    assert sh("nsenter", f"--net=/run/netns/{md.name}", "nft", "list", "table", "ip", "minidock",
              check=False).code != 0
    md.start()


def test_ipv6_ports_are_elements_of_the_ip6_table(md: Sandbox) -> None:
    md.cli("network", "create", "--ipv6", "--subnet", "fd00:6a::/64", "mapped6")
    try:
        md.cli("run", "-d", "--name", "m6", "--network", "mapped6", "-p", "8093:80", "busybox", "nc", "-ll", "-p",
               "80", "-e", "echo", "mapped v6")
        table = md.host("nft", "list", "table", "ip6", "minidock").out
        assert "tcp . 8093 : fd00:6a::2 . 80" in table, table
        assert "8093" not in md.host("ip6tables-save").out  # an element, not a rule
        md.host("ip", "link", "set", "lo", "up")
        md.host("ip", "-6", "addr", "add", "fd98::1/128", "dev", "lo")
        assert md.host("nc", "-6", "-w", "2", "fd98::1", "8093").out.strip() == "mapped v6"  # DNAT by the map
        assert md.host("nc", "-6", "-w", "2", "::1", "8093").out.strip() == "mapped v6"  # the loopback relay
        assert md.cli("system", "check").code == 0
        md.cli("rm", "-f", "m6")
        assert "8093" not in md.host("nft", "list", "table", "ip6", "minidock").out
    finally:
        md.host("ip", "-6", "addr", "del", "fd98::1/128", "dev", "lo", check=False)
        md.cli("rm", "-f", "m6", check=False)
        md.cli("network", "rm", "mapped6")

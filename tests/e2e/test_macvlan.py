"""macvlan and ipvlan networks: containers straight on a LAN.

The LAN is made here: a bridge "lan" in a namespace of its own, a "LAN box"
(192.168.77.1, the LAN's router) plugged into it, and the sandbox host's
parent interface lan0, a veth whose peer is a port of that bridge. Every check
is a packet: pings, a TCP answer, what tcpdump on the LAN box sees.

This machine kind's kernel has macvlan but no ipvlan, vlan or dummy link
types and cannot load modules: minidock refuses those networks (tested here),
and their behaviour tests skip with that reason where the kernel lacks them.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.sandbox import Sandbox, sh

SUBNET, GATEWAY = "192.168.77.0/24", "192.168.77.1"
MAC = "{{range .NetworkSettings.Networks}}{{.MacAddress}}{{end}}"
IP = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"


def kernel_has(kind: str) -> bool:
    if os.geteuid() != 0:
        return False  # the e2e tests skip without root anyway
    ns = "mdprobe-" + kind
    sh("ip", "netns", "add", ns)
    try:
        r = sh("ip", "-n", ns, "link", "add", "probe0", "type", kind, check=False)
        return "Unknown device type" not in r.err
    finally:
        sh("ip", "netns", "del", ns)


def needs(kind: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(not kernel_has(kind), reason=f"this kernel has no {kind} link type "
                              "(Unknown device type) and cannot load modules")


@pytest.fixture(scope="module")
def lan(md: Sandbox) -> Iterator[dict[str, str]]:
    """The LAN: switch namespace, LAN box, and lan0 on the sandbox host."""
    switch, box = md.name + "-lan", md.name + "-box"
    for ns in (switch, box):
        sh("ip", "netns", "add", ns)
        md.extra_ns.append(ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    sh("ip", "-n", switch, "link", "add", "lan", "type", "bridge")
    sh("ip", "-n", switch, "link", "set", "lan", "up")
    sh("ip", "-n", switch, "link", "add", "p-host", "type", "veth", "peer", "name", "lan0", "netns", md.name)
    sh("ip", "-n", switch, "link", "add", "p-box", "type", "veth", "peer", "name", "eth0", "netns", box)
    for port in ("p-host", "p-box"):
        sh("ip", "-n", switch, "link", "set", port, "master", "lan", "up")
    md.host("ip", "link", "set", "lan0", "up")
    sh("ip", "-n", box, "addr", "add", f"{GATEWAY}/24", "dev", "eth0")
    sh("ip", "-n", box, "link", "set", "eth0", "up")
    yield {"switch": switch, "box": box}
    md.host("ip", "link", "del", "lan0", check=False)


@pytest.fixture
def mv(md: Sandbox, lan: dict[str, str]) -> Iterator[str]:
    """A macvlan network on lan0 (mode bridge), removed after the test with its containers."""
    md.cli("network", "create", "-d", "macvlan", "--subnet", SUBNET, "--gateway", GATEWAY, "-o", "parent=lan0",
           "mv")
    yield "mv"
    ids = md.cli("ps", "-aq", check=False).out.split()
    if ids:
        md.cli("rm", "-f", *ids)
    md.cli("network", "rm", "mv", check=False)


def on_box(lan: dict[str, str], *argv: str, check: bool = True) -> str:
    return sh("nsenter", f"--net=/run/netns/{lan['box']}", *argv, check=check, timeout=20).out


def test_a_container_is_on_the_lan_itself_no_nat(md: Sandbox, lan: dict[str, str], mv: str) -> None:
    md.cli("run", "-d", "--name", "m1", "--network", mv, "busybox", "nc", "-ll", "-p", "80", "-e", "echo", "on the lan")
    ip, mac = md.inspect("m1", IP), md.inspect("m1", MAC)
    assert ip == "192.168.77.2" and mac == "02:42:c0:a8:4d:02"
    dump = subprocess.Popen(["nsenter", f"--net=/run/netns/{lan['box']}", "tcpdump", "-l", "-e", "-nn", "-i", "eth0",
                             "-c", "1", "icmp"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        time.sleep(0.5)
        md.cli("exec", "m1", "ping", "-c", "2", "-W", "2", GATEWAY)
        seen, _ = dump.communicate(timeout=10)
    finally:
        if dump.poll() is None:
            dump.kill()
            dump.wait()
    # the LAN box sees the container's own MAC and address: no bridge, no NAT in between
    assert f"{mac} > " in seen and f"{ip} > {GATEWAY}: ICMP echo request" in seen, seen
    assert on_box(lan, "nc", "-w", "2", ip, "80").strip() == "on the lan"
    assert md.cli("exec", "m1", "ip", "route").out.startswith(f"default via {GATEWAY} dev eth0")
    # nothing of it in the host's firewall
    assert "192.168.77." not in md.host("iptables-save").out


@pytest.mark.parametrize(("mode", "talk"), [("bridge", True), ("private", False), ("vepa", False)])
def test_two_containers_on_one_parent_by_mode(md: Sandbox, lan: dict[str, str], mode: str, talk: bool) -> None:
    md.cli("network", "create", "-d", "macvlan", "--subnet", SUBNET, "-o", "parent=lan0",
           "-o", f"macvlan_mode={mode}", "modal")
    try:
        md.cli("run", "-d", "--name", "a", "--network", "modal", "busybox", "sleep", "600")
        md.cli("run", "-d", "--name", "b", "--network", "modal", "busybox", "sleep", "600")
        assert (md.cli("exec", "a", "ping", "-c", "1", "-W", "1", md.inspect("b", IP), check=False).code == 0) == talk
        assert md.cli("exec", "a", "ping", "-c", "1", "-W", "2", GATEWAY).code == 0  # the LAN, always
        if mode == "vepa":  # vepa sends everything to the switch: a hairpinning port sends it back
            sh("ip", "-n", lan["switch"], "link", "set", "p-host", "type", "bridge_slave", "hairpin", "on")
            try:
                assert md.cli("exec", "a", "ping", "-c", "1", "-W", "2", md.inspect("b", IP)).code == 0
            finally:
                sh("ip", "-n", lan["switch"], "link", "set", "p-host", "type", "bridge_slave", "hairpin", "off")
    finally:
        md.cli("rm", "-f", "a", "b", check=False)
        md.cli("network", "rm", "modal")


def test_the_host_reaches_its_child_only_through_a_macvlan_of_its_own(md: Sandbox, lan: dict[str, str],
                                                                        mv: str) -> None:
    md.cli("run", "-d", "--name", "kid", "--network", mv, "busybox", "sleep", "600")
    ip = md.inspect("kid", IP)
    md.host("ip", "addr", "add", "192.168.77.250/24", "dev", "lan0")
    try:
        # the parent's own frames leave on the wire; the switch does not send them back
        assert md.host("ping", "-c", "1", "-W", "1", ip, check=False).code != 0
        md.host("ip", "link", "add", "mv-host", "link", "lan0", "type", "macvlan", "mode", "bridge")
        md.host("ip", "addr", "add", "192.168.77.251/32", "dev", "mv-host")
        md.host("ip", "link", "set", "mv-host", "up")
        md.host("ip", "route", "add", f"{ip}/32", "dev", "mv-host")
        assert md.host("ping", "-c", "1", "-W", "2", ip).code == 0
    finally:
        md.host("ip", "link", "del", "mv-host", check=False)
        md.host("ip", "addr", "del", "192.168.77.250/24", "dev", "lan0", check=False)


def test_names_resolve_on_a_macvlan_network(md: Sandbox, mv: str) -> None:
    md.cli("run", "-d", "--name", "web", "--network", mv, "--network-alias", "www", "busybox", "sleep", "600")
    md.cli("run", "-d", "--name", "client", "--network", mv, "busybox", "sleep", "600")
    r = md.cli("exec", "client", "ping", "-c", "1", "-W", "2", "www")
    assert f"({md.inspect('web', IP)})" in r.out


def test_published_ports_are_ignored_as_docker_does(md: Sandbox, mv: str) -> None:
    md.cli("run", "-d", "--name", "pub", "--network", mv, "-p", "8089:80", "busybox", "sleep", "600")
    assert "8089" not in md.host("iptables-save").out
    assert "macvlan driver does not support port mappings" in md.daemon_log()
    # as Docker 20.10 shows it: no ports at all, in inspect, port and ps
    assert md.inspect("pub", "{{json .NetworkSettings.Ports}}") == "{}"
    assert md.cli("port", "pub").out == ""
    assert md.cli("ps", "--filter", "name=pub", "--format", "{{.Ports}}").out.strip() == ""


def test_check_and_repair_know_a_macvlan_link(md: Sandbox, mv: str) -> None:
    md.cli("run", "-d", "--name", "fix", "--network", mv, "busybox", "sleep", "600")
    assert md.cli("system", "check").code == 0
    md.in_ns("md-fix", "ip", "link", "del", "eth0")
    r = md.cli("system", "check", check=False)
    assert r.code == 1 and "fix" in r.out and "eth0" in r.out, r
    md.cli("system", "repair")
    assert md.cli("exec", "fix", "ping", "-c", "1", "-W", "2", GATEWAY).code == 0
    topo = md.cli("topology").out
    assert "lan0" in topo and "macvlan bridge" in topo and f"eth0 {md.inspect('fix', IP)}/24  fix" in topo, topo


def test_explain_shows_the_child_link(md: Sandbox, mv: str) -> None:
    err = md.cli("--explain", "run", "-d", "--name", "told", "--network", mv, "busybox", "sleep", "600").err
    assert "ip link add eth0 link lan0 address 02:42:c0:a8:4d:" in err and "type macvlan mode bridge" in err, err


# -- refusals: one line, nothing made ------------------------------------------------------
def _nothing_made(md: Sandbox, argv: list[str], says: str) -> None:
    before = md.snapshot()
    r = md.cli("network", "create", *argv, check=False)
    assert r.code != 0 and says in r.err and len(r.err.strip().splitlines()) == 1, r
    assert md.snapshot() == before


def test_a_missing_parent_is_refused(md: Sandbox, lan: dict[str, str]) -> None:
    _nothing_made(md, ["-d", "macvlan", "-o", "parent=eth9", "nope"],
                  "invalid subinterface vlan name eth9, example formatting is eth0.10")
    _nothing_made(md, ["-d", "macvlan", "-o", "parent=eth9.10", "nope"],
                  "-o parent interface was not found on the host: eth9")


def test_an_overlapping_subnet_on_the_same_parent_is_refused(md: Sandbox, mv: str) -> None:
    _nothing_made(md, ["-d", "macvlan", "--subnet", "192.168.77.128/25", "-o", "parent=lan0", "again"],
                  "Pool overlaps with other one on this address space")


@pytest.mark.skipif(kernel_has("ipvlan"), reason="this kernel has ipvlan: the refusal cannot be seen here")
def test_ipvlan_without_the_kernel_module_is_refused(md: Sandbox, lan: dict[str, str]) -> None:
    _nothing_made(md, ["-d", "ipvlan", "--subnet", "192.168.78.0/24", "-o", "parent=lan0", "ipv"],
                  "this kernel has no ipvlan links")


@pytest.mark.skipif(kernel_has("vlan"), reason="this kernel has 802.1q VLANs: the refusal cannot be seen here")
def test_a_vlan_parent_without_the_kernel_module_is_refused(md: Sandbox, lan: dict[str, str]) -> None:
    _nothing_made(md, ["-d", "macvlan", "--subnet", "192.168.79.0/24", "-o", "parent=lan0.10", "tagged"],
                  "this kernel has no 802.1q VLAN sub-interfaces")


@pytest.mark.skipif(kernel_has("dummy"), reason="this kernel has dummy links: the refusal cannot be seen here")
def test_no_parent_without_dummy_links_is_refused(md: Sandbox) -> None:
    _nothing_made(md, ["-d", "macvlan", "--subnet", "192.168.80.0/24", "alone"], "this kernel has no dummy interfaces")


# -- where the kernel has them ---------------------------------------------------------------
@needs("vlan")
def test_a_vlan_parent_is_made_and_removed_with_the_network(md: Sandbox, lan: dict[str, str]) -> None:
    md.cli("network", "create", "-d", "macvlan", "--subnet", "192.168.79.0/24", "-o", "parent=lan0.10", "tagged")
    assert "vlan protocol 802.1Q id 10" in md.host("ip", "-d", "link", "show", "lan0.10").out
    md.cli("network", "rm", "tagged")
    assert md.host("ip", "link", "show", "lan0.10", check=False).code != 0
    assert md.host("ip", "link", "show", "lan0").code == 0  # and nothing else


@needs("ipvlan")
def test_ipvlan_l2_shares_the_parents_mac(md: Sandbox, lan: dict[str, str]) -> None:
    md.cli("network", "create", "-d", "ipvlan", "--subnet", SUBNET, "--gateway", GATEWAY, "-o", "parent=lan0", "ipv")
    try:
        md.cli("run", "-d", "--name", "i1", "--network", "ipv", "busybox", "sleep", "600")
        assert md.cli("exec", "i1", "ping", "-c", "1", "-W", "2", GATEWAY).code == 0
        parent_mac = json.loads(md.host("ip", "-j", "link", "show", "lan0").out)[0]["address"]
        assert parent_mac in on_box(lan, "ip", "neigh")
    finally:
        md.cli("rm", "-f", "i1", check=False)
        md.cli("network", "rm", "ipv")


def test_an_aux_address_is_never_handed_out(md: Sandbox, lan: dict[str, str]) -> None:
    """Docker's way to keep the host's own macvlan address out of the containers' pool."""
    md.cli("network", "create", "-d", "macvlan", "--subnet", SUBNET, "--gateway", GATEWAY,
           "--aux-address", "host=192.168.77.2", "-o", "parent=lan0", "aux")
    try:
        cfg = json.loads(md.cli("network", "inspect", "aux").out)[0]["IPAM"]["Config"][0]
        assert cfg["AuxiliaryAddresses"] == {"host": "192.168.77.2"}
        md.cli("run", "-d", "--name", "x1", "--network", "aux", "busybox", "sleep", "600")
        assert md.inspect("x1", IP) == "192.168.77.3"
        r = md.cli("run", "-d", "--name", "x2", "--network", "aux", "--ip", "192.168.77.2", "busybox", "sleep", "600",
                   check=False)
        assert r.code != 0 and "Address already in use" in r.err
        # the host takes it: a macvlan of its own, and it reaches x1
        md.host("ip", "link", "add", "mv-host", "link", "lan0", "type", "macvlan", "mode", "bridge")
        md.host("ip", "addr", "add", "192.168.77.2/24", "dev", "mv-host")
        md.host("ip", "link", "set", "mv-host", "up")
        assert md.host("ping", "-c", "1", "-W", "2", "192.168.77.3").code == 0
    finally:
        md.host("ip", "link", "del", "mv-host", check=False)
        md.cli("rm", "-f", "x1", "x2", check=False)
        md.cli("network", "rm", "aux")

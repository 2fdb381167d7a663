"""IPv6 dual stack on bridge networks: pings and TCP over IPv6, AAAA answers from
the stub, ip6tables isolation and NAT66 seen from an "outside" namespace made here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.sandbox import MINIDOCK, Sandbox, sh

IP6 = "{{range .NetworkSettings.Networks}}{{.GlobalIPv6Address}}{{end}}"


@pytest.fixture
def six(md: Sandbox) -> Iterator[str]:
    md.cli("network", "create", "--ipv6", "--subnet", "fd00:61::/64", "six")
    yield "six"
    ids = md.cli("ps", "-aq", check=False).out.split()
    if ids:
        md.cli("rm", "-f", *ids)
    for net in ("six", "six2", "inner6"):
        md.cli("network", "rm", net, check=False)


def run(md: Sandbox, name: str, net: str, *args: str) -> str:
    md.cli("run", "-d", "--name", name, "--network", net, *args, "busybox", "sleep", "600")
    return md.inspect(name, IP6)


def dig(md: Sandbox, container: str, qtype: str, name: str) -> str:
    return md.in_ns(f"md-{container}", "dig", "@127.0.0.11", "+time=2", "+tries=1", qtype, name).out


def test_two_containers_ping_and_talk_over_ipv6_by_name(md: Sandbox, six: str) -> None:
    a = run(md, "a6", six)
    b = run(md, "b6", six, "--ip6", "fd00:61::99")
    assert a == "fd00:61::2" and b == "fd00:61::99"
    r = md.cli("exec", "a6", "ping", "-6", "-c", "1", "-W", "2", "b6")
    assert "PING b6 (fd00:61::99)" in r.out and " 0% packet loss" in r.out
    md.cli("run", "-d", "--name", "srv6", "--network", six, "busybox", "nc", "-ll", "-p", "80", "-e", "echo", "v6 hi")
    assert md.cli("exec", "a6", "sh", "-c", "nc -w 2 srv6 80 </dev/null").out.strip() == "v6 hi"
    assert "fd00:61::99" in dig(md, "a6", "AAAA", "b6") and "status: NOERROR" in dig(md, "a6", "AAAA", "b6")
    assert "172." in dig(md, "a6", "A", "b6")
    # inspect as Docker shows it
    ep = json.loads(md.cli("inspect", "b6").out)[0]["NetworkSettings"]["Networks"][six]
    assert (ep["GlobalIPv6Address"], ep["GlobalIPv6PrefixLen"], ep["IPv6Gateway"]) == ("fd00:61::99", 64, "fd00:61::1")
    assert ep["IPAMConfig"] == {"IPv6Address": "fd00:61::99"}
    net = json.loads(md.cli("network", "inspect", six).out)[0]
    assert net["EnableIPv6"] is True and net["IPAM"]["Config"][1] == {"Subnet": "fd00:61::/64", "Gateway": "fd00:61::1"}
    assert net["Containers"][md.inspect("b6", "{{.Id}}")]["IPv6Address"] == "fd00:61::99/64"
    # the address works at once: no duplicate address detection, no "tentative"
    assert "tentative" not in md.in_ns("md-a6", "ip", "-6", "addr", "show", "dev", "eth0").out


def test_a_name_with_ipv4_only_has_an_empty_aaaa_answer(md: Sandbox) -> None:
    md.cli("network", "create", "four")
    try:
        run(md, "v4only", "four")
        out = dig(md, "v4only", "AAAA", "v4only")
        assert "status: NOERROR" in out and "ANSWER: 0" in out, out
    finally:
        md.cli("rm", "-f", "v4only")
        md.cli("network", "rm", "four")


def test_ipv6_networks_are_isolated_both_ways(md: Sandbox, six: str) -> None:
    md.cli("network", "create", "--ipv6", "--subnet", "fd00:62::/64", "six2")
    a = run(md, "i1", six)
    b = run(md, "i2", "six2")
    assert md.cli("exec", "i1", "ping", "-6", "-c", "1", "-W", "1", b, check=False).code != 0
    assert md.cli("exec", "i2", "ping", "-6", "-c", "1", "-W", "1", a, check=False).code != 0
    rules = md.host("ip6tables-save").out
    assert '-m comment --comment "network six2" -j MINIDOCK-ISOLATION-STAGE-2' in rules


@pytest.fixture
def outside6(md: Sandbox) -> Iterator[str]:
    """An IPv6 "outside world": a namespace on a veth from the host, fd99::2 (the host fd99::1)."""
    ns = md.name + "-out6"
    sh("ip", "netns", "add", ns)
    md.host("ip", "link", "add", "uplink6", "type", "veth", "peer", "name", "wan0", "netns", ns)
    md.host("ip", "-6", "addr", "add", "fd99::1/64", "dev", "uplink6", "nodad")
    md.host("ip", "link", "set", "uplink6", "up")
    sh("ip", "-n", ns, "-6", "addr", "add", "fd99::2/64", "dev", "wan0", "nodad")
    sh("ip", "-n", ns, "link", "set", "wan0", "up")
    sh("ip", "-n", ns, "link", "set", "lo", "up")
    for _ in range(50):  # the new link's neighbour discovery settles within some ms
        if sh("ip", "netns", "exec", ns, "ping", "-6", "-c", "1", "-W", "1", "fd99::1", check=False).code == 0:
            break
        time.sleep(0.1)
    try:
        yield ns
    finally:
        md.host("ip", "link", "del", "uplink6", check=False)
        sh("ip", "netns", "del", ns, check=False)


def test_nat66_out_the_outside_sees_the_host(md: Sandbox, six: str, outside6: str) -> None:
    run(md, "out1", six)
    dump = subprocess.Popen(["nsenter", f"--net=/run/netns/{outside6}", "tcpdump", "-l", "-nn", "-i", "wan0", "-c", "1",
                             "icmp6 and ip6[40] == 128"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        time.sleep(0.5)
        assert md.cli("exec", "out1", "ping", "-6", "-c", "2", "-W", "2", "fd99::2").code == 0
        seen, _ = dump.communicate(timeout=10)
    finally:
        if dump.poll() is None:
            dump.kill()
            dump.wait()
    assert "fd99::1 > fd99::2: ICMP6, echo request" in seen, seen  # masqueraded: the host's address
    assert "-s fd00:61::/64 ! -o br-" in md.host("ip6tables-save", "-t", "nat").out


def test_an_internal_ipv6_network_has_no_way_out(md: Sandbox, six: str, outside6: str) -> None:
    md.cli("network", "create", "--ipv6", "--internal", "--subnet", "fd00:63::/64", "inner6")
    run(md, "in1", "inner6")
    assert "default" not in md.in_ns("md-in1", "ip", "-6", "route").out
    assert md.cli("exec", "in1", "ping", "-6", "-c", "1", "-W", "1", "fd99::2", check=False).code != 0
    assert md.cli("exec", "in1", "ping", "-6", "-c", "1", "-W", "1", "fd00:63::1").code == 0  # its gateway, yes


@pytest.mark.parametrize(("args", "says"), [
    (["--ipv6", "--subnet", "fd00:zz::/64"], "invalid subnet fd00:zz::/64"),
    (["--ipv6", "--subnet", "fd00:64::/64", "--gateway", "fd00:65::1"], "invalid gateway fd00:65::1"),
    (["--ipv6", "--subnet", "fd00:61::/48"], "Pool overlaps with other one on this address space"),
])
def test_bad_ipv6_networks_are_refused_with_nothing_made(md: Sandbox, six: str, args: list[str], says: str) -> None:
    before = md.snapshot()
    r = md.cli("network", "create", *args, "bad6", check=False)
    assert r.code != 0 and says in r.err and len(r.err.strip().splitlines()) == 1, r
    assert md.snapshot() == before


def test_a_pinned_ipv6_address_is_taken_once(md: Sandbox, six: str) -> None:
    run(md, "p1", six, "--ip6", "fd00:61::50")
    r = md.cli("run", "-d", "--name", "p2", "--network", six, "--ip6", "fd00:61::50", "busybox", "sleep", "600",
               check=False)
    assert r.code != 0 and "Address already in use" in r.err


def test_default_pool_is_a_ula_64_and_explain_shows_ip6(md: Sandbox) -> None:
    err = md.cli("--explain", "network", "create", "--ipv6", "auto6").err
    try:
        sub = json.loads(md.cli("network", "inspect", "auto6").out)[0]["IPAM"]["Config"][1]["Subnet"]
        assert sub.startswith("fd") and sub.endswith("::/64")
        assert f"ip -6 addr add {sub[:-3]}1/64 dev br-" in err and "nodad" in err, err
        assert "ip6tables -t nat -A MINIDOCK-POSTROUTING -s " + sub in err, err
    finally:
        md.cli("network", "rm", "auto6")


def test_a_published_port_answers_on_ipv6_too(md: Sandbox, six: str, outside6: str) -> None:
    md.cli("run", "-d", "--name", "web6", "--network", six, "-p", "8086:80", "busybox", "nc", "-ll", "-p", "80",
           "-e", "echo", "web over v6")
    # Docker's two lines: the port on every IPv4 address and on every IPv6 address
    assert md.cli("port", "web6").out.splitlines() == ["80/tcp -> 0.0.0.0:8086", "80/tcp -> [::]:8086"]
    assert md.cli("ps", "--filter", "name=web6", "--format", "{{.Ports}}").out.strip() == \
        "0.0.0.0:8086->80/tcp, [::]:8086->80/tcp"
    # from the outside namespace, to the host's IPv6 address: DNAT in ip6tables, no proxy
    out = sh("ip", "netns", "exec", outside6, "nc", "-6", "-w", "2", "fd99::1", "8086", check=False).out
    assert out.strip() == "web over v6"
    assert "--to-destination [fd00:61::2]:80" in md.host("ip6tables-save", "-t", "nat").out
    # held, as IPv4's: a host program cannot take [::]:8086
    r = md.host("python3", "-c", "import socket; s=socket.socket(socket.AF_INET6); "
                "s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1); s.bind(('::', 8086))", check=False)
    assert r.code != 0 and "Address already in use" in r.err
    md.cli("rm", "-f", "web6")
    assert "8086" not in md.host("ip6tables-save").out


def test_topology_shows_the_ipv6_addresses(md: Sandbox, six: str) -> None:
    run(md, "t6", six)
    out = md.cli("topology").out
    assert "fd00:61::/64  gateway fd00:61::1" in out and "fd00:61::2/64  t6" in out, out


def test_daemon_ipv6_puts_the_default_bridge_on_ipv6() -> None:
    sb = Sandbox(daemon_flags=["--ipv6", "--fixed-cidr-v6", "fd00:d0::/64"])
    sb.start()
    try:
        net = json.loads(sb.cli("network", "inspect", "bridge").out)[0]
        assert net["EnableIPv6"] and net["IPAM"]["Config"][1]["Subnet"] == "fd00:d0::/64"
        sb.cli("run", "-d", "--name", "d1", "busybox", "sleep", "600")
        sb.cli("run", "-d", "--name", "d2", "busybox", "sleep", "600")
        ip6 = sb.inspect("d2", "{{.NetworkSettings.GlobalIPv6Address}}")
        assert ip6 == "fd00:d0::3"
        assert sb.cli("exec", "d1", "ping", "-6", "-c", "1", "-W", "2", ip6).code == 0
        assert "fd00:d0::1/64" in sb.host("ip", "-6", "addr", "show", "minidock0").out
    finally:
        sb.destroy()
    # a bad subnet: one line, and no daemon (started in a namespace of its own all the same)
    bad = Sandbox()
    bad.create_host()
    try:
        r = bad.host(*MINIDOCK, "daemon", "--root", bad.root, "--socket", bad.socket, "--ipv6",
                     "--fixed-cidr-v6", "fd00:zz::/64", check=False, timeout=20)
        assert r.code != 0 and "--fixed-cidr-v6: invalid subnet fd00:zz::/64" in r.err, r
        assert not os.path.exists(bad.socket)
    finally:
        bad.destroy()


def test_the_hosts_own_ipv6_loopback_reaches_a_published_port(md: Sandbox, six: str) -> None:
    md.cli("run", "-d", "--name", "lo6", "--network", six, "-p", "8087:80", "busybox", "nc", "-ll", "-p", "80",
           "-e", "echo", "via ::1")
    md.cli("run", "-d", "--name", "lo6b", "--network", six, "-p", "[::1]:8088:80", "busybox", "nc", "-ll", "-p",
           "80", "-e", "echo", "only ::1")
    md.host("ip", "link", "set", "lo", "up")
    assert md.host("nc", "-6", "-w", "2", "::1", "8087").out.strip() == "via ::1"
    assert md.host("nc", "-6", "-w", "2", "::1", "8088").out.strip() == "only ::1"
    assert md.host("nc", "-w", "2", "127.0.0.1", "8087").out.strip() == "via ::1"  # and IPv4's loopback, by DNAT
    md.cli("rm", "-f", "lo6", "lo6b")
    assert md.host("nc", "-6", "-w", "1", "::1", "8087", check=False).out.strip() == ""


def test_an_ipv6_upstream_resolver_answers_through_the_stub() -> None:
    """The daemon's --dns-upstream may be IPv6: a resolver at fd99::53 in an outside namespace."""
    sb = Sandbox(dns_upstream=["fd99::53"])
    sb.create_host()
    ns = sb.name + "-dns6"
    sh("ip", "netns", "add", ns)
    sb.extra_ns.append(ns)
    sb.host("ip", "link", "add", "uplink6", "type", "veth", "peer", "name", "wan0", "netns", ns)
    sb.host("ip", "-6", "addr", "add", "fd99::1/64", "dev", "uplink6", "nodad")
    sb.host("ip", "link", "set", "uplink6", "up")
    sh("ip", "-n", ns, "-6", "addr", "add", "fd99::53/64", "dev", "wan0", "nodad")
    sh("ip", "-n", ns, "link", "set", "wan0", "up")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.Popen(["nsenter", f"--net=/run/netns/{ns}", sys.executable, "-m", "tests.upstream_dns", "fd99::53",
                             "60", "far.test=198.51.100.99"], stdout=subprocess.PIPE, text=True, cwd=repo)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        sb.start()
        sb.cli("network", "create", "--ipv6", "up6")
        sb.cli("run", "-d", "--name", "asker", "--network", "up6", "busybox", "sleep", "600")
        r = sb.cli("exec", "asker", "nslookup", "far.test", "127.0.0.11", check=False)
        assert "198.51.100.99" in r.out, r
    finally:
        proc.kill()
        proc.wait()
        sb.destroy()


def test_direct_access_from_outside_is_dropped_and_icc_false_holds(md: Sandbox, six: str, outside6: str) -> None:
    target = run(md, "direct6", six)
    # the outside knows the way (a route to the subnet via the host), and is dropped all the same
    sh("ip", "-n", outside6, "-6", "route", "add", "fd00:61::/64", "via", "fd99::1")
    assert sh("ip", "netns", "exec", outside6, "ping", "-6", "-c", "1", "-W", "1", target, check=False).code != 0
    assert '! -i br-' in md.host("ip6tables-save").out
    md.cli("network", "create", "--ipv6", "--subnet", "fd00:64::/64", "-o", "com.docker.network.bridge.enable_icc=false",
           "six2")
    a, b = run(md, "q1", "six2"), run(md, "q2", "six2")
    assert md.cli("exec", "q1", "ping", "-6", "-c", "1", "-W", "1", b, check=False).code != 0
    assert md.cli("exec", "q2", "ping", "-6", "-c", "1", "-W", "1", a, check=False).code != 0
    assert md.cli("exec", "q1", "ping", "-6", "-c", "1", "-W", "2", "fd00:64::1").code == 0  # the gateway, yes

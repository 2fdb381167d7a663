"""`minidock trace`: a real probe, and its path as the kernel traced it.

Each test sends real packets between namespaces of the sandbox (the host, its
containers, an "outside" namespace wired to the host) and checks the trace
against the kernel itself: the counter of the rule the trace names as the
one that dropped the packet moved, the listener the DNAT leads to got the
connection, the namespace without a route has none. No trace table is left
in the host's ruleset afterwards, even when the trace is interrupted.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.e2e.conftest import running
from tests.sandbox import MINIDOCK, Sandbox

OUTSIDE = "198.51.100.2"


@pytest.fixture
def outside(md: Sandbox) -> str:
    ns = md.name + "-out"
    if ns not in md.extra_ns:
        md.add_outside(outside_ip=OUTSIDE)
    return ns


def trace(md: Sandbox, *args: str) -> tuple[dict[str, object], str]:
    """The trace as JSON (to look into) and as text (what a student reads), of two probes."""
    res = json.loads(md.cli("trace", "--json", *args).out)
    text = md.cli("trace", *args, check=False)
    assert text.code == (0 if res["Probe"]["Reached"] else 1), text  # type: ignore[index]
    return res, text.out


def counter(md: Sandbox, table: str, rule: str) -> int:
    """Packets the kernel counted on the rule (as iptables-save writes it) that holds `rule`."""
    for line in md.host("iptables-save", "-c", "-t", table).out.splitlines():
        if rule in line and line.startswith("["):
            return int(line[1:].split(":")[0])
    raise AssertionError(f"no rule {rule!r} in table {table}")


def no_trace_table(md: Sandbox) -> bool:
    return "minidock_trace" not in md.host("nft", "list", "ruleset").out


def bridge_of(md: Sandbox, net: str) -> str:
    return "br-" + md.cli("network", "inspect", "-f", "{{.Id}}", net).out.strip()[:12]


def host_veth(md: Sandbox, container: str) -> str:
    links = md.host("ip", "-o", "-d", "link").out
    m = re.search(rf"^\d+: (veth\w+)@.* alias minidock:container {container}\b", links, re.M)
    assert m, links
    return m.group(1)


def test_isolation_drop_across_two_bridges(md: Sandbox, net_cleanup: None) -> None:
    md.cli("network", "create", "n1")
    md.cli("network", "create", "n2")
    md.cli("run", "-d", "--name", "alpine1", "--network", "n1", "busybox", "sleep", "300")
    md.cli("run", "-d", "--name", "alpine3", "--network", "n2", "busybox", "sleep", "300")
    br1, br2 = bridge_of(md, "n1"), bridge_of(md, "n2")
    drop = f'-A MINIDOCK-ISOLATION-STAGE-2 -o {br2} -m comment --comment "network n2" -j DROP'
    before = counter(md, "filter", drop)
    res, text = trace(md, "alpine1", "alpine3", "--timeout", "1")
    # the rule the trace names is the one whose counter the kernel moved
    assert counter(md, "filter", drop) == before + 2  # two probes
    assert res["Probe"]["Reached"] is False  # type: ignore[index]
    last = res["Path"][-1]  # type: ignore[index]
    assert (last["Table"], last["Chain"], last["Verdict"], last["Comment"]) == \
        ("filter", "MINIDOCK-ISOLATION-STAGE-2", "drop", "network n2")
    assert res["Verdict"].startswith("dropped in ip filter MINIDOCK-ISOLATION-STAGE-2 by the rule of network n2")  # type: ignore[union-attr]
    # in through alpine1's veth and n1's bridge, routed towards n2's bridge
    assert res["Interfaces"] == ["alpine1:eth0", host_veth(md, "alpine1"), br1, br2]
    chains = [(s["Table"], s["Chain"]) for s in res["Path"] if not s["Ours"]]  # type: ignore[index, union-attr]
    assert chains.index(("filter", "MINIDOCK-ISOLATION-STAGE-1")) < chains.index(("filter", "MINIDOCK-ISOLATION-STAGE-2"))
    assert drop in text
    assert f"in {br1} out {br2}" in text
    assert "verdict: dropped in ip filter MINIDOCK-ISOLATION-STAGE-2 by the rule of network n2" in text
    # the same two containers on one network: the probe is answered, nothing drops it
    md.cli("network", "connect", "n2", "alpine1")
    res, _ = trace(md, "alpine1", "alpine3")
    assert res["Probe"]["Reached"] is True and "drop" not in [s["Verdict"] for s in res["Path"]]  # type: ignore[index, union-attr]
    assert no_trace_table(md)


def test_published_port_shows_the_dnat_to_the_container(md: Sandbox, net_cleanup: None, outside: str) -> None:
    md.cli("network", "create", "n2")
    md.cli("run", "-d", "--name", "web", "--network", "n2", "-p", "8080:80", "busybox", "sleep", "300")
    web = md.inspect("web", "{{(index .NetworkSettings.Networks \"n2\").IPAddress}}")
    listener = subprocess.Popen(["nsenter", "--net=/run/netns/md-web", "busybox", "nc", "-l", "-p", "80", "-e",
                                 "echo", "traced"], stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        res = json.loads(md.cli("trace", "--json", "host", "8080").out)
        # the probe's connection reached the listener the DNAT leads to: it served it and exited
        assert listener.wait(timeout=5) == 0
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.wait()
    assert res["Probe"]["Reached"] is True, res["Probe"]
    dnat = [r for r in res["Rewrites"] if "DNAT" in r["Kind"]]
    assert dnat and dnat[0]["From"].endswith("127.0.0.1:8080 tcp") and dnat[0]["To"].endswith(f"{web}:80 tcp"), dnat
    assert '--comment "container web" -j DNAT --to-destination' in dnat[0]["By"]
    # from the host's loopback the source is masqueraded onto the bridge (route_localnet)
    assert any(r["Kind"] == "SNAT" and r["To"].startswith(md.inspect("web", "{{(index .NetworkSettings.Networks \"n2\").Gateway}}"))
               for r in res["Rewrites"]), res["Rewrites"]
    assert res["Verdict"] == f"sent out through {host_veth(md, 'web')} (a bridge port)"

    # from outside: DNATed in prerouting, let through by the port's ACCEPT, out by web's veth
    res, text = trace(md, OUTSIDE, "host:8080", "--timeout", "1")
    assert res["Source"]["Namespace"] == outside  # type: ignore[index]
    steps = [(s["Hook"], s["Table"], s["Chain"], s["Verdict"]) for s in res["Path"] if not s["Ours"]]  # type: ignore[index, union-attr]
    assert ("prerouting", "nat", "MINIDOCK", "accept") in steps
    assert ("forward", "filter", "MINIDOCK", "accept") in steps
    assert res["Interfaces"] == ["uplink", bridge_of(md, "n2"), host_veth(md, "web"), "web:eth0"]
    assert re.search(rf"⇒ DNAT: {OUTSIDE}:\d+ → 198\.51\.100\.1:8080 tcp  becomes  {OUTSIDE}:\d+ → {web}:80 tcp",
                     text), text
    assert no_trace_table(md)


def test_a_container_on_none_has_no_route(md: Sandbox, outside: str) -> None:
    md.cli("run", "-d", "--name", "alone", "--network", "none", "busybox", "sleep", "300")
    assert md.in_ns("md-alone", "ip", "-4", "route").out.strip() == ""  # the kernel's view: no route at all
    res, text = trace(md, "alone", OUTSIDE)
    assert res["Probe"]["Left"] is False and res["Path"] == []  # type: ignore[index]
    assert "Network is unreachable in the source's namespace" in res["Verdict"]  # type: ignore[operator]
    assert "verdict: no route: Network is unreachable in the source's namespace: the probe never left it" in text
    md.cli("rm", "-f", "alone")


def test_an_internal_network_has_no_way_out(md: Sandbox, net_cleanup: None, outside: str) -> None:
    md.cli("network", "create", "--internal", "inner")
    md.cli("run", "-d", "--name", "shut", "--network", "inner", "busybox", "sleep", "300")
    res, _ = trace(md, "shut", OUTSIDE)
    assert "no route" in res["Verdict"]  # type: ignore[operator]  # no default route: nothing to leave by
    # a user adds one by hand: the packet reaches the host, and --internal's DROP stops it
    gateway = md.inspect("shut", "{{(index .NetworkSettings.Networks \"inner\").Gateway}}")
    md.in_ns("md-shut", "ip", "route", "add", "default", "via", gateway)
    br = bridge_of(md, "inner")
    subnet = md.cli("network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", "inner").out.strip()
    drop = f'-A MINIDOCK-ISOLATION-STAGE-1 ! -d {subnet} -i {br} -m comment --comment "network inner" -j DROP'
    before = counter(md, "filter", drop)
    res, text = trace(md, "shut", OUTSIDE, "--timeout", "1")
    assert counter(md, "filter", drop) == before + 2
    last = res["Path"][-1]  # type: ignore[index]
    assert (last["Chain"], last["Verdict"], last["Comment"]) == ("MINIDOCK-ISOLATION-STAGE-1", "drop", "network inner")
    assert drop in text
    assert no_trace_table(md)


def test_udp_probe_is_refused_by_the_port_unreachable_of_a_container(md: Sandbox) -> None:
    md.cli("run", "-d", "--name", "quiet", "busybox", "sleep", "300")
    res, _ = trace(md, "host", "quiet:5353", "--proto", "udp")
    assert res["Probe"]["Outcome"].startswith("refused")  # type: ignore[index]  # an ICMP port unreachable came back
    assert res["Interfaces"][-2:] == [host_veth(md, "quiet"), "quiet:eth0"]  # type: ignore[index]
    md.cli("rm", "-f", "quiet")


@contextmanager
def trace_under_way(sb: Sandbox, timeout: str) -> Iterator[subprocess.Popen[bytes]]:
    """a1 on n1, a3 on n2, and `minidock trace a1 a3` running: yields its process once the
    daemon's trace table is in (the trace is under way); the process is killed after."""
    sb.cli("network", "create", "n1")
    sb.cli("network", "create", "n2")
    sb.cli("run", "-d", "--name", "a1", "--network", "n1", "busybox", "sleep", "300")
    sb.cli("run", "-d", "--name", "a3", "--network", "n2", "busybox", "sleep", "300")
    cli = subprocess.Popen([*MINIDOCK, "trace", "a1", "a3", "--timeout", timeout], env=sb.env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while no_trace_table(sb):
            assert time.monotonic() < deadline and cli.poll() is None, "the trace never started"
            time.sleep(0.05)
        yield cli
    finally:
        cli.kill()
        cli.wait()


def test_an_interrupted_trace_leaves_no_rule(md: Sandbox, net_cleanup: None) -> None:
    with trace_under_way(md, "4") as cli:
        os.kill(cli.pid, signal.SIGKILL)
    deadline = time.monotonic() + 8
    while not no_trace_table(md):
        assert time.monotonic() < deadline, md.host("nft", "list", "ruleset").out
        time.sleep(0.1)
    # and a trace after it works as before
    res = json.loads(md.cli("trace", "--json", "a1", "a3", "--timeout", "0.5").out)
    assert res["Path"][-1]["Chain"] == "MINIDOCK-ISOLATION-STAGE-2"
    assert no_trace_table(md)


@pytest.fixture
def own() -> Iterator[Sandbox]:
    with running(Sandbox()) as sb:
        yield sb


def test_a_daemon_killed_mid_trace_removes_the_table_when_it_starts(own: Sandbox) -> None:
    sb = own
    with trace_under_way(sb, "5"):
        sb.stop(signal.SIGKILL)  # no finally runs: the table stays
    assert not no_trace_table(sb)
    sb.start()
    assert no_trace_table(sb)
    # one put there by hand is what `system check` reports and `system repair` removes
    sb.host("nft", "add", "table", "inet", "minidock_trace")
    r = sb.cli("system", "check", check=False)
    assert r.code == 1 and "nftables table inet minidock_trace is left from an interrupted trace" in r.out, r
    sb.cli("system", "repair", check=False)
    assert no_trace_table(sb)
    assert sb.cli("system", "check", check=False).code == 0


def test_port_maps_dnat_is_traced_in_its_own_nft_table() -> None:
    with running(Sandbox(daemon_flags=["--port-maps"])) as sb:
        sb.add_outside()
        sb.cli("run", "-d", "--name", "web", "-p", "8080:80", "busybox", "sleep", "300")
        web = sb.ip_of("web")
        listener = subprocess.Popen(["nsenter", f"--net={sb.netns_dir}/md-web", "busybox", "nc", "-l", "-p", "80",
                                     "-e", "echo", "traced"], stdout=subprocess.DEVNULL)
        try:
            time.sleep(0.3)
            res = json.loads(sb.cli("trace", "--json", OUTSIDE, "host:8080").out)
            assert listener.wait(timeout=5) == 0  # the DNATed probe reached web's listener
        finally:
            if listener.poll() is None:
                listener.kill()
                listener.wait()
        (dnat,) = [r for r in res["Rewrites"] if r["Kind"] == "DNAT"]
        assert dnat["To"].endswith(f"{web}:80 tcp") and "map @ports" in dnat["By"], dnat
        step = res["Path"][dnat["After"]]
        assert (step["Family"], step["Table"], step["Hook"]) == ("ip", "minidock", "prerouting")
        assert res["Interfaces"][-2:] == [host_veth(sb, "web"), "web:eth0"]
        sb.cli("rm", "-f", "web")
        assert no_trace_table(sb)


def test_bad_requests_are_refused_before_any_table(md: Sandbox) -> None:
    for args, code, message in (
            (["ghost", "host"], 1, "No such container: ghost"),
            (["host", "ghost"], 1, "No such container: ghost"),
            (["host", "host", "--port", "80", "--proto", "icmp"], 1, "an icmp probe has no port"),
            (["host", "host", "--proto", "tcp"], 1, "a tcp probe needs a port"),
            (["203.0.113.9", "host"], 1, "no namespace holds address 203.0.113.9")):
        r = md.cli("trace", *args, check=False)
        assert r.code == code and message in r.err, (args, r)
    assert no_trace_table(md)

"""The catalogue of bad input: every malformed or hostile value of every
option gets one clear line on stderr, a non-zero exit, no traceback, and
leaves the kernel and the store as they were (snapshots compared)."""

from __future__ import annotations

import os

import pytest

from tests.sandbox import Sandbox

LONG = "n" * 300
HOSTILE = "x;touch /tmp/minidock-pwned"

CATALOGUE: list[list[str]] = [
    # network create: CIDRs, addresses, drivers, options, names
    ["network", "create", "--subnet", "10.0.0.0/33", "n1"],
    ["network", "create", "--subnet", "300.1.1.0/24", "n1"],
    ["network", "create", "--subnet", "not-a-cidr", "n1"],
    ["network", "create", "--subnet", "10.1.0.0/16", "--gateway", "10.9.9.9", "n1"],
    ["network", "create", "--subnet", "10.1.0.0/16", "--gateway", "10.1.0.999", "n1"],
    ["network", "create", "--subnet", "10.1.0.0/16", "--ip-range", "10.2.0.0/24", "n1"],
    ["network", "create", "--subnet", "172.17.0.0/16", "n1"],
    ["network", "create", "--gateway", "10.1.0.1", "n1"],
    ["network", "create", "--driver", "overlay", "n1"],
    ["network", "create", "--driver", "$(reboot)", "n1"],
    ["network", "create", "-o", "com.docker.network.driver.mtu=abc", "n1"],
    ["network", "create", "-o", "com.docker.network.driver.mtu=99999999", "n1"],
    ["network", "create", "-o", "com.docker.network.bridge.name=waytoolongbridgename", "n1"],
    ["network", "create", "-o", "com.docker.network.bridge.name=a;b", "n1"],
    ["network", "create", HOSTILE],
    ["network", "create", LONG],
    ["network", "create", "bridge"],
    ["network", "create", "host"],
    ["network", "create", ""],
    # predefined and missing networks
    ["network", "rm", "bridge"], ["network", "rm", "host"], ["network", "rm", "none"],
    ["network", "rm", "nosuch"], ["network", "inspect", "nosuch"],
    ["network", "connect", "nosuch", "x"], ["network", "connect", "bridge", "nosuch"],
    ["network", "disconnect", "bridge", "nosuch"],
    # run: networks, ports, addresses, names, hosts, dns, images
    ["run", "-d", "--network", "nosuch", "busybox", "true"],
    ["run", "-d", "--network", "host", "-p", "80:80", "busybox", "true"],
    ["run", "-d", "-p", "99999:80", "busybox", "true"],
    ["run", "-d", "-p", "80:0", "busybox", "true"],
    ["run", "-d", "-p", "abc", "busybox", "true"],
    ["run", "-d", "-p", "1.2.3:80:80", "busybox", "true"],
    ["run", "-d", "-p", "80:80/quic", "busybox", "true"],
    ["run", "-d", "-p", "8000-8005:80-81", "busybox", "true"],
    ["run", "-d", "--expose", "abc", "busybox", "true"],
    ["run", "-d", "--ip", "172.17.0.50", "busybox", "true"],
    ["run", "-d", "--network-alias", "a", "busybox", "true"],
    ["run", "-d", "--name", "a b", "busybox", "true"],
    ["run", "-d", "--name", HOSTILE, "busybox", "true"],
    ["run", "-d", "--name", LONG, "busybox", "true"],
    ["run", "-d", "--hostname", "bad host", "busybox", "true"],
    ["run", "-d", "--hostname", HOSTILE, "busybox", "true"],
    ["run", "-d", "--add-host", "noip", "busybox", "true"],
    ["run", "-d", "--add-host", "x:999.1.1.1", "busybox", "true"],
    ["run", "-d", "--dns", "notanip", "busybox", "true"],
    ["run", "-d", "--network", "container:", "busybox", "true"],
    ["run", "-d", "--network", "container:nosuch", "--hostname", "h", "busybox", "true"],
    ["run", "-d", "UPPERCASE", "true"],
    ["run", "-d", "busybox:", "true"],
    ["run", "-d", ""],
    # missing containers
    ["start", "nosuch"], ["stop", "nosuch"], ["restart", "nosuch"], ["rm", "nosuch"], ["kill", "nosuch"],
    ["exec", "nosuch", "true"], ["logs", "nosuch"], ["inspect", "nosuch"], ["port", "nosuch"], ["top", "nosuch"],
    ["wait", "nosuch"], ["network", "connect", "bridge", HOSTILE],
    # images
    ["image", "rm", "nosuch"], ["image", "import", "bad name", "/nonexistent"], ["image", "import", "x", "/nonexistent"],
]


def test_every_bad_value_gets_one_line_and_changes_nothing(md: Sandbox) -> None:
    md.cli("run", "-d", "--name", "target", "busybox", "sleep", "600")
    before = md.snapshot()
    bad = []
    for argv in CATALOGUE:
        r = md.cli(*argv, check=False)
        lines = r.err.strip().splitlines()
        if r.code == 0 or len(lines) != 1 or "Traceback" in r.err or not lines[0].strip():
            bad.append(f"{argv}: exit {r.code}, stderr {r.err!r}")
    assert not bad, "\n".join(bad)
    assert md.snapshot() == before
    assert not os.path.exists("/tmp/minidock-pwned")
    md.cli("rm", "-f", "target")


@pytest.mark.parametrize("signal_name", ["BOGUS", "99", "-1"])
def test_kill_with_a_bad_signal(md: Sandbox, signal_name: str) -> None:
    md.cli("run", "-d", "--name", "victim", "busybox", "sleep", "600")
    r = md.cli("kill", "-s", signal_name, "victim", check=False)
    assert r.code != 0 and len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err, r
    assert md.inspect("victim", "{{.State.Status}}") == "running"
    md.cli("rm", "-f", "victim")

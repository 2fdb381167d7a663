"""Outside interference: a bridge, a veth, a namespace or the firewall
removed by hand. `system check` reports the drift, `system repair` and the
daemon's start-up put it right (proved by packets), `system reset` removes
everything of ours and nothing else."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import running
from tests.sandbox import Sandbox, sh


@pytest.fixture
def lab() -> Iterator[Sandbox]:
    with running(Sandbox()) as sb:
        sb.cli("network", "create", "lab")
        sb.cli("run", "-d", "--name", "web", "--network", "lab", "-p", "8080:80", "busybox",
               "nc", "-ll", "-p", "80", "-e", "echo", "hello-web")
        sb.cli("run", "-d", "--name", "peer", "--network", "lab", "busybox", "sleep", "600")
        yield sb


def works(sb: Sandbox) -> None:
    """Names resolve, packets flow across the bridge, the published port answers."""
    assert sb.cli("system", "check").out.startswith("no drift"), sb.cli("system", "check", check=False)
    assert sb.cli("exec", "peer", "ping", "-c", "1", "-W", "2", "web", check=False).code == 0
    out = ""
    for _ in range(20):
        out = sb.host("nc", "-w", "2", "127.0.0.1", "8080", check=False).out
        if out:
            break
    assert out.strip() == "hello-web"


def bridge_of(sb: Sandbox, net: str) -> str:
    return "br-" + sb.cli("network", "inspect", "-f", "{{.Id}}", net).out.strip()[:12]


def drift(sb: Sandbox) -> str:
    r = sb.cli("system", "check", check=False)
    assert r.code == 1, r
    return r.out


def test_check_and_repair_after_hand_made_damage(lab: Sandbox) -> None:
    sb = lab
    works(sb)
    br = bridge_of(sb, "lab")
    veth = sb.host("ip", "-o", "-d", "link").out.split("alias minidock:container web")[0].rsplit("\n", 1)[-1]
    veth = veth.split(":")[1].strip().split("@")[0]
    gw = sb.cli("network", "inspect", "-f", "{{range .IPAM.Config}}{{.Gateway}}{{end}}", "lab").out.strip()
    web_ip = sb.inspect("web", '{{(index .NetworkSettings.Networks "lab").IPAddress}}')
    damage = [
        (["ip", "addr", "flush", "dev", br], f"network lab: gateway address {gw}/16 is missing from {br}"),
        (["ip", "-n", "md-web", "addr", "flush", "dev", "eth0"], f"container web: eth0 lacks its address {web_ip}/16"),
        (["ip", "-n", "md-web", "route", "del", "default"], f"container web: the default route via {gw} is missing"),
        (["ip", "link", "del", br], f"network lab: bridge {br} is missing"),
        (["ip", "link", "del", veth], f"container web: veth {veth} (eth0) is missing"),
        (["ip", "netns", "del", "md-web"], "container web: namespace md-web is missing from /run/netns"),
        (["sh", "-c", "iptables -F && iptables -X && iptables -t nat -F && iptables -t nat -X"],
         "firewall: "),
    ]
    for argv, expected in damage:
        if argv[:3] == ["ip", "netns", "del"]:
            sh(*argv)  # /run/netns is the test's own, not the host namespace's
        else:
            sb.host(*argv)
        report = drift(sb)
        assert expected in report, (argv, report)
        r = sb.cli("system", "repair")
        assert f"repaired: {expected}" in r.out, (argv, r)
        works(sb)


def test_start_up_repairs_what_changed_while_the_daemon_was_away(lab: Sandbox) -> None:
    sb = lab
    sb.stop()  # containers keep running
    sb.host("ip", "link", "del", bridge_of_offline(sb))
    sb.host("sh", "-c", "iptables -F && iptables -X && iptables -t nat -F && iptables -t nat -X")
    sb.start()
    works(sb)


def bridge_of_offline(sb: Sandbox) -> str:
    links = sb.host("ip", "-o", "-d", "link").out
    line = next(ln for ln in links.splitlines() if "alias minidock:network lab" in ln)
    return line.split(":")[1].strip()


def test_reset_removes_everything_of_ours_and_nothing_else(lab: Sandbox) -> None:
    sb = lab
    pids = [sb.inspect(n, "{{.State.Pid}}") for n in ("web", "peer")]
    # someone else's bridge, rule and namespace on the same host
    sb.host("ip", "link", "add", "notours", "type", "bridge")
    sb.host("iptables", "-A", "FORWARD", "-i", "notours", "-m", "comment", "--comment", "not ours", "-j", "ACCEPT")
    foreign = sb.name + "-foreign"
    sh("ip", "netns", "add", foreign)
    sb.extra_ns.append(foreign)
    r = sb.cli("system", "reset", "-f")
    assert "removed container web" in r.out and "removed firewall chains" in r.out
    assert sb.proc is not None
    sb.proc.wait(timeout=15)  # the daemon ends after a reset
    sb.proc = None
    links = sb.host("ip", "-o", "-d", "link").out
    assert "minidock" not in links and "veth" not in links
    assert "notours" in links
    rules = sb.host("iptables-save").out
    assert "MINIDOCK" not in rules and '"not ours"' in rules
    names = os.listdir("/run/netns")
    assert not [n for n in names if n.startswith("md-")] and foreign in names
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    assert not os.path.exists(os.path.join(sb.root, "state", "containers")) or \
        not os.listdir(os.path.join(sb.root, "state", "containers"))

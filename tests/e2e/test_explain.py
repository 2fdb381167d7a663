"""`--explain` is the truth: its commands, replayed by a shell in a fresh
empty namespace, rebuild the same bridge, namespaces, veths, addresses,
routes and rules, and packets flow through them."""

from __future__ import annotations

import re
import secrets
import subprocess
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import running
from tests.sandbox import Sandbox, _links, sh


def _ports(text: str) -> str:
    """Per link: up or not, hairpin (bridge ports), IPv6 address generation, the MAC of a bridge or a
    container's ethN (a host end's MAC is the kernel's random choice)."""
    out = []
    for line in text.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        flags = re.search(r"<([^>]*)>", line)
        hairpin = re.search(r" hairpin (on|off)", line)
        addrgen = re.search(r" addrgenmode (\S+)", line)
        ours = name.startswith("eth") or " bridge forward_delay " in line  # bridges: a MAC of their own
        ether = re.search(r"link/ether (\S+)", line) if ours else None
        out.append(f"{name} up={flags is not None and 'UP' in flags.group(1).split(',')} "
                   f"hairpin={hairpin and hairpin.group(1)} mac={ether and ether.group(1)} "
                   f"addrgenmode={addrgen and addrgen.group(1)}")
    return "\n".join(sorted(out))


def state(run: object) -> dict[str, str]:
    """What `ip` and `iptables-save` show in one namespace (run: argv -> Result)."""
    rules = "\n".join(re.sub(r"\[\d+:\d+\]", "", ln) for ln in run("iptables-save").out.splitlines()  # type: ignore[operator]
                      if not ln.startswith("#"))
    links = run("ip", "-o", "-d", "link").out  # type: ignore[operator]
    return {
        "links": _links(links),
        "ports": _ports(links),
        "addresses": "\n".join(sorted(re.sub(r"^\d+: ", "", ln) for ln in run("ip", "-4", "-o", "addr").out.splitlines())),  # type: ignore[operator]
        # without "linkdown": carrier is the kernel's to report, on its own time (linkwatch)
        "routes": run("ip", "route").out.replace(" linkdown", ""),  # type: ignore[operator]
        "rules": rules,
    }


def in_ns(ns: str) -> object:
    return lambda *argv: sh("ip", "netns", "exec", ns, *argv)


def published_answer(replay: str, ns: str, port: int, word: str) -> str:
    """What 127.0.0.1:`port` in the replayed namespace answers while container namespace `ns`
    serves `word` on port 80: the replayed DNAT at work (tried for up to ~30 rounds)."""
    listener = subprocess.Popen(["ip", "netns", "exec", ns, "busybox", "nc", "-l", "-p", "80", "-e", "echo", word],
                                stdout=subprocess.DEVNULL)
    try:
        out = ""
        for _ in range(30):
            out = sh("nsenter", f"--net=/run/netns/{replay}", "busybox", "nc", "-w", "2", "127.0.0.1", str(port),
                     check=False).out
            if word in out:
                break
            sh("sleep", "0.1")
        return out.strip()
    finally:
        listener.kill()
        listener.wait()


@pytest.fixture
def explaining() -> Iterator[Sandbox]:
    with running(Sandbox(global_flags=["--explain"])) as sb:
        yield sb


def test_replaying_explain_output_rebuilds_the_network(explaining: Sandbox) -> None:
    md = explaining
    script = md.daemon_stdout()
    assert re.search(r"ip link add minidock0 address [0-9a-f:]{17} type bridge", script)
    assert "iptables -t nat -N MINIDOCK" in script
    for args in (["network", "create", "lab"],
                 ["run", "-d", "--name", "a", "--network", "lab", "busybox", "sleep", "300"],
                 ["run", "-d", "--name", "b", "--network", "lab", "-p", "8080:80", "busybox", "sleep", "300"]):
        r = md.cli("--explain", *args)
        assert r.err.startswith("# -- "), r
        script += r.err
    # every step is named and says why; the commands are the ones a student would type
    for expected in ("# -- bridge: the switch that network lab's containers plug into",
                     "ip netns add md-a", "type veth peer name eth0 netns md-a", "ip -n md-b route add default via",
                     "iptables -t nat -A MINIDOCK -p tcp -m tcp --dport 8080"):
        assert expected in script, expected
    b_ip = md.inspect("b", "{{(index .NetworkSettings.Networks \"lab\").IPAddress}}")
    want = {"host": state(md.host), "a": state(lambda *argv: md.host("ip", "netns", "exec", "md-a", *argv)),
            "b": state(lambda *argv: md.host("ip", "netns", "exec", "md-b", *argv))}
    md.cli("rm", "-f", "a", "b")
    md.cli("network", "rm", "lab")
    md.destroy()

    replay = "mdreplay-" + secrets.token_hex(3)
    sh("ip", "netns", "add", replay)
    try:
        sh("ip", "-n", replay, "link", "set", "lo", "up")
        r = sh("nsenter", f"--net=/run/netns/{replay}", "sh", "-ec", script, check=False, timeout=60)
        assert r.code == 0, f"replay failed: {r}\n--- script ---\n{script}"
        got = {"host": state(lambda *argv: sh("nsenter", f"--net=/run/netns/{replay}", *argv)),
               "a": state(in_ns("md-a")), "b": state(in_ns("md-b"))}
        for where in want:
            for what in want[where]:
                assert got[where][what] == want[where][what], f"{where} {what} differs after the replay"
        # and packets flow: a to b across the bridge, and the host's published port to b
        assert sh("ip", "netns", "exec", "md-a", "ping", "-c", "1", "-W", "2", b_ip).code == 0
        assert published_answer(replay, "md-b", 8080, "replayed-dnat") == "replayed-dnat"
    finally:
        for ns in ("md-a", "md-b", replay):
            sh("ip", "netns", "del", ns, check=False)


def test_one_commands_explanation_replays_alone_in_an_empty_namespace(explaining: Sandbox) -> None:
    """Without the start-up's lines: `network create` and two `run`s, each explanation on its own,
    replayed into a namespace that has never seen minidock, make a network packets cross."""
    md = explaining
    scripts = []
    for args in (["network", "create", "solo"],
                 ["run", "-d", "--name", "s1", "--network", "solo", "busybox", "sleep", "300"],
                 ["run", "-d", "--name", "s2", "--network", "solo", "-p", "8081:80", "busybox", "sleep", "300"]):
        r = md.cli("--explain", *args)
        assert r.err.startswith("# -- "), r
        scripts.append(r.err)
    # each begins its firewall part with the chains it needs, idempotent
    assert "iptables -t filter -N MINIDOCK-FORWARD 2>/dev/null || true" in scripts[0]
    s2_ip = md.inspect("s2", "{{(index .NetworkSettings.Networks \"solo\").IPAddress}}")
    md.cli("rm", "-f", "s1", "s2")
    md.cli("network", "rm", "solo")
    md.destroy()

    replay = "mdsolo-" + secrets.token_hex(3)
    sh("ip", "netns", "add", replay)
    try:
        sh("ip", "-n", replay, "link", "set", "lo", "up")
        for script in scripts:  # each alone: a failing line stops it (sh -e)
            r = sh("nsenter", f"--net=/run/netns/{replay}", "sh", "-ec", script, check=False, timeout=60)
            assert r.code == 0, f"replay failed: {r}\n--- script ---\n{script}"
        rules = sh("nsenter", f"--net=/run/netns/{replay}", "iptables-save").out
        assert '-A MINIDOCK-ISOLATION-STAGE-2 -o br-' in rules and '"network solo"' in rules, rules
        # a real packet between the two replayed namespaces, across the replayed bridge
        assert sh("ip", "netns", "exec", "md-s1", "ping", "-c", "1", "-W", "2", s2_ip).code == 0
        # and the replayed DNAT: the host's published port reaches s2
        assert published_answer(replay, "md-s2", 8081, "solo-dnat") == "solo-dnat"
    finally:
        for ns in ("md-s1", "md-s2", replay):
            sh("ip", "netns", "del", ns, check=False)

"""The DNS stub under load: its UDP thread, the answers it remembers, and the
general case it hands to the event loop, checked query by query with many
queries in flight (tests/dns_client.py, run inside a container's namespace)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from typing import Any

from tests.e2e.conftest import REPO
from tests.sandbox import Sandbox

FLOOD = """
import socket, time
import dns.message
wire = dns.message.make_query("other", "A").to_wire()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setblocking(False)
s.connect(("127.0.0.11", 53))
print("flooding", flush=True)
end = time.monotonic() + 4
while time.monotonic() < end:
    for _ in range(50):
        try:
            s.send(wire)
        except OSError:
            pass  # refused once the stub is gone; a full buffer
    try:
        while True:
            s.recv(512)
    except OSError:
        pass
"""


def q(name: str, rdtype: str = "A", **options: bool) -> dict[str, Any]:
    return {"name": name, "type": rdtype, **options}


def ask(sb: Sandbox, container: str, *rounds: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Each round's queries sent at once from inside `container`; the replies, in order."""
    p = subprocess.run(["nsenter", f"--net=/run/netns/md-{container}", sys.executable, "-m", "tests.dns_client",
                        "127.0.0.11", json.dumps(rounds)], capture_output=True, text=True, cwd=REPO, timeout=90)
    assert p.returncode == 0, p.stderr + p.stdout
    return json.loads(p.stdout)


def ip_on(sb: Sandbox, name: str, net: str) -> str:
    return sb.inspect(name, "{{(index .NetworkSettings.Networks \"" + net + "\").IPAddress}}")


def test_a_remembered_answer_follows_the_address_after_a_restart(md: Sandbox, net_cleanup: None,
                                                                  upstream: str) -> None:
    md.cli("network", "create", "--subnet", "10.77.0.0/24", "moving")
    md.cli("run", "-d", "--name", "asker", "--network", "moving", "busybox", "sleep", "300")
    md.cli("run", "-d", "--name", "mover", "--network", "moving", "busybox", "sleep", "300")
    old = ip_on(md, "mover", "moving")
    # the first answer is made, the others come from memory; the case of the question
    # and an EDNS cookie are their own queries, answered alike
    rounds = ask(md, "asker", [q("mover")] * 30, [q("MoVeR"), q("mover", cookie=True), q("mover")])
    assert [a["answers"] for r in rounds for a in r] == [[old]] * 33
    assert all(a["aa"] for r in rounds for a in r)
    md.cli("stop", "-t", "0", "mover")
    gone = ask(md, "asker", [q("mover")] * 3)[0]
    assert [a["rcode"] for a in gone] == ["NXDOMAIN"] * 3  # not ours any more: upstream's word
    md.cli("run", "-d", "--name", "squatter", "--network", "moving", "busybox", "sleep", "300")
    assert ip_on(md, "squatter", "moving") == old  # the freed address is taken
    md.cli("start", "mover")
    new = ip_on(md, "mover", "moving")
    assert new != old
    after = ask(md, "asker", [q("mover")] * 10, [q("squatter")])
    assert [a["answers"] for a in after[0]] == [[new]] * 10
    assert after[1][0]["answers"] == [old]


def test_round_robin_and_the_general_case_in_one_burst(md: Sandbox, net_cleanup: None, upstream: str) -> None:
    md.cli("network", "create", "burst")
    md.cli("run", "-d", "--name", "w1", "--network", "burst", "--network-alias", "web", "busybox", "sleep", "300")
    md.cli("run", "-d", "--name", "w2", "--network", "burst", "--network-alias", "web", "busybox", "sleep", "300")
    md.cli("run", "-d", "--name", "asker", "--network", "burst", "busybox", "sleep", "300")
    ip1, ip2 = ip_on(md, "w1", "burst"), ip_on(md, "w2", "burst")
    ptr1 = ".".join(reversed(ip1.split("."))) + ".in-addr.arpa"
    # answered by the UDP thread (A of our names, with or without a cookie) and by the event
    # loop (AAAA, PTR, forwarded names) in the same batches: each reply must find its query
    expected = [
        (q("w1"), "NOERROR", [ip1]),
        (q("web"), "NOERROR", sorted([ip1, ip2])),
        (q("w1", "AAAA"), "NOERROR", []),
        (q("example.test"), "NOERROR", ["198.51.100.77"]),
        (q("nosuch.test"), "NXDOMAIN", []),
        (q(ptr1, "PTR"), "NOERROR", ["w1."]),
        (q("w2", cookie=True), "NOERROR", [ip2]),
    ]
    mixed = [spec for spec, _, _ in expected] * 10
    rounds = ask(md, "asker", mixed, mixed, mixed, [q("web")] * 6,
                 [q("example.test", tcp=True), q("w2", tcp=True), q("web", tcp=True)])
    for got in rounds[:3]:
        for k, answer in enumerate(got):
            spec, rcode, answers = expected[k % len(expected)]
            assert (answer["rcode"], sorted(answer["answers"])) == (rcode, answers), spec
    # the round robin goes on: one query after another, the first address alternates
    firsts = [a["answers"][0] for a in rounds[3]]
    assert {firsts[0], firsts[1]} == {ip1, ip2} and firsts == firsts[:2] * 3, firsts
    tcp = [a["answers"] for a in rounds[4]]
    assert tcp[0] == ["198.51.100.77"] and tcp[1] == [ip2] and sorted(tcp[2]) == sorted([ip1, ip2])


def test_a_stub_stopped_in_the_middle_of_a_flood(md: Sandbox, net_cleanup: None) -> None:
    md.cli("network", "create", "flood")
    md.cli("run", "-d", "--name", "target", "--network", "flood", "busybox", "sleep", "300")
    md.cli("run", "-d", "--name", "other", "--network", "flood", "busybox", "sleep", "300")
    log_start = len(md.daemon_log(full=True))
    flood = subprocess.Popen(["nsenter", "--net=/run/netns/md-target", sys.executable, "-c", FLOOD],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert flood.stdout is not None and flood.stdout.readline().strip() == "flooding"
        time.sleep(0.5)
        # the stub's socket is closed while the UDP thread is busy answering it
        md.cli("stop", "-t", "0", "target")
        md.cli("start", "target")
    finally:
        assert flood.wait(timeout=30) == 0
    other_ip, target_ip = ip_on(md, "other", "flood"), ip_on(md, "target", "flood")
    assert [a["answers"] for a in ask(md, "target", [q("other")] * 20)[0]] == [[other_ip]] * 20
    assert [a["answers"] for a in ask(md, "other", [q("target")] * 20)[0]] == [[target_ip]] * 20
    assert "Traceback" not in md.daemon_log(full=True)[log_start:]


def test_the_udp_thread_ends_with_the_daemon_and_answers_after_a_restart(fresh: Sandbox) -> None:
    fresh.cli("network", "create", "keep")
    fresh.cli("run", "-d", "--name", "a", "--network", "keep", "busybox", "sleep", "300")
    fresh.cli("run", "-d", "--name", "b", "--network", "keep", "busybox", "sleep", "300")
    b_ip = ip_on(fresh, "b", "keep")
    assert [a["answers"] for a in ask(fresh, "a", [q("b")] * 10)[0]] == [[b_ip]] * 10
    assert fresh.proc is not None
    fresh.proc.send_signal(signal.SIGTERM)
    assert fresh.proc.wait(timeout=10) == 0  # the thread was told to stop and joined
    fresh.proc = None
    assert "daemon stopped" in fresh.daemon_log()
    fresh.start()  # the containers kept running; their stubs are served again
    assert [a["answers"] for a in ask(fresh, "a", [q("b")] * 10)[0]] == [[b_ip]] * 10

"""Overlay networks across hosts, in a lab cluster of namespaces (tests/cluster.py):
an underlay switch, a three-member etcd, three hosts with a daemon each.

Every check is a real packet or a real DNS answer: pings and TCP between
containers on different hosts, VXLAN frames seen on the underlay, the MTU by
don't-fragment pings, names through the stub; and the store's keys and the
kernel's FDB when hosts, daemons and etcd members die.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest

from minidock.client import Client
from tests.cluster import Cluster
from tests.sandbox import Sandbox, sh, wait_for

TTL = 3  # seconds a silent host counts as alive (discovery.ttl), short for the tests


@pytest.fixture(scope="module")
def cl() -> Iterator[Cluster]:
    c = Cluster(daemon_flags=["--cluster-store-opt", f"discovery.ttl={TTL}"],
                daemon_env={"MINIDOCK_FAULT_HOOK": "1"})
    c.start()
    try:
        yield c
    finally:
        c.destroy()
    assert not c.overlay_namespaces()
    assert not [n for n in sh("ip", "netns", "list").out.split() if n.startswith(c.id)]


@pytest.fixture(autouse=True)
def no_residue(cl: Cluster) -> Iterator[None]:
    """Every test leaves its cluster as it found it: hosts alive, no container, network,
    overlay namespace nor etcd key of its own left."""
    yield
    for m in cl.members:
        if m.proc is None:
            cl.start_member(m)
    cl.wait_healthy()
    for sb in cl.hosts:
        if sb.proc is None or sb.proc.poll() is not None:
            sb.start()
    wait_for(lambda: all(n["Alive"] for n in nodes(cl.hosts[0])), 10, "every host alive again")
    cl.clean()
    left = cl.residue()
    assert not left, f"left behind after the test: {left}"


def nodes(sb: Sandbox) -> list[dict[str, object]]:
    return Client(f"unix://{sb.socket}").call("GET", "/minidock/nodes")


def overlay(cl: Cluster, name: str, *args: str) -> dict[str, object]:
    cl.hosts[0].cli("network", "create", "-d", "overlay", *args, name)
    for sb in cl.hosts:
        wait_for(lambda sb=sb: sb.cli("network", "ls", "-q", "--filter", f"name={name}").out.strip(), 5,
                 f"{name} on {sb.name}")
    return json.loads(cl.hosts[0].cli("network", "inspect", name).out)[0]


def run(sb: Sandbox, name: str, net: str, *args: str, cmd: tuple[str, ...] = ("sleep", "600")) -> str:
    sb.cli("run", "-d", "--name", name, "--network", net, *args, "busybox", *cmd)
    return sb.inspect(name, "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}").split()[0]


def fdb(cl: Cluster, sb: Sandbox, net: dict[str, object]) -> str:
    vni = net["Options"]["com.docker.network.driver.overlay.vxlanid_list"]  # type: ignore[index]
    ns = f"ov-{vni}-{cl.node_name(cl.host_of(sb))}"
    return sb.in_ns(ns, "bridge", "fdb", "show", "dev", f"vxlan{vni}").out


def pair(cl: Cluster, name: str, first: str, second: str, on: int) -> tuple[dict[str, object], str]:
    """Overlay `name`, `first` on host 1 and `second` on host `on`, once host 1's FDB has
    `second`: the network and `second`'s MAC."""
    net = overlay(cl, name)
    run(cl.hosts[0], first, name)
    run(cl.hosts[on - 1], second, name)
    mac = cl.hosts[on - 1].inspect(second, "{{range .NetworkSettings.Networks}}{{.MacAddress}}{{end}}")
    wait_for(lambda: mac in fdb(cl, cl.hosts[0], net), 2, f"{second} in host 1's FDB")
    return net, mac


def resolves(sb: Sandbox, container: str, name: str) -> bool:
    return sb.cli("exec", container, "nslookup", name, "127.0.0.11", check=False).code == 0


# -- one network, every host -------------------------------------------------------------
def test_overlay_is_global_with_its_vni_and_peers(cl: Cluster) -> None:
    net = overlay(cl, "globe")
    assert net["Scope"] == "global" and net["Driver"] == "overlay"
    assert net["Options"]["com.docker.network.driver.overlay.vxlanid_list"] == "256"  # type: ignore[index]
    assert net["IPAM"]["Config"][0]["Subnet"] == "10.0.0.0/24"  # type: ignore[index]
    for sb in cl.hosts:  # listed on every host, SCOPE global
        line = sb.cli("network", "ls", "--filter", "name=globe").out.splitlines()[1]
        assert line.split()[1:] == ["globe", "overlay", "global"]
    run(cl.hosts[1], "peer2", "globe")
    peers = json.loads(cl.hosts[0].cli("network", "inspect", "globe").out)[0]["Peers"]
    wait_for(lambda: {p["Name"] for p in json.loads(cl.hosts[0].cli("network", "inspect", "globe").out)[0]["Peers"]}
             == {cl.node_name(1), cl.node_name(2)}, 3, f"peers of globe: {peers}")
    assert cl.etcdctl("get", "--print-value-only", "/minidock/vni/256").strip() == net["Id"]
    # one name cluster-wide: the second host is refused
    r = cl.hosts[2].cli("network", "create", "-d", "overlay", "globe", check=False)
    assert r.code != 0 and "network with name globe already exists" in r.err


def test_ping_and_tcp_by_name_across_hosts(cl: Cluster) -> None:
    overlay(cl, "multi")
    h1, h2, h3 = cl.hosts
    run(h1, "web1", "multi")
    ip2 = run(h2, "web2", "multi", cmd=("nc", "-ll", "-p", "8080", "-e", "echo", "hello from web2"))
    run(h3, "web3", "multi")
    r = h1.cli("exec", "web1", "ping", "-c", "2", "-W", "2", "web2")
    assert f"PING web2 ({ip2})" in r.out and " 0% packet loss" in r.out
    assert h3.cli("exec", "web3", "ping", "-c", "1", "-W", "2", "web1").code == 0
    out = h3.cli("exec", "web3", "sh", "-c", "nc -w 2 web2 8080 </dev/null").out
    assert out.strip() == "hello from web2"


def test_vxlan_on_the_underlay_carries_the_vni_and_the_mtu_is_1450(cl: Cluster) -> None:
    net = overlay(cl, "wire")
    h1, h2, _ = cl.hosts
    run(h1, "wa", "wire")
    ip_b = run(h2, "wb", "wire")
    vni = net["Options"]["com.docker.network.driver.overlay.vxlanid_list"]  # type: ignore[index]
    dump = subprocess.Popen(["nsenter", f"--net=/run/netns/{cl.lan}", "tcpdump", "-l", "-nn", "-i", "lan",
                             "-c", "2", "udp", "port", "4789"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    try:
        time.sleep(0.5)
        h1.cli("exec", "wa", "ping", "-c", "3", "-W", "2", "wb")
        out, _ = dump.communicate(timeout=10)
    finally:
        if dump.poll() is None:
            dump.kill()
            dump.wait()
    assert re.search(rf"192\.0\.2\.1\.\d+ > 192\.0\.2\.2\.4789: VXLAN, flags \[I\] \(0x08\), vni {vni}", out), out
    # 1422 bytes of ICMP payload + 8 + 20 = 1450, the overlay's MTU: passes with DF; one more does not
    ok = h1.in_ns("md-wa", "ping", "-M", "do", "-s", "1422", "-c", "1", "-W", "2", ip_b, check=False)
    too_big = h1.in_ns("md-wa", "ping", "-M", "do", "-s", "1423", "-c", "1", "-W", "2", ip_b, check=False)
    assert ok.code == 0, ok
    assert too_big.code != 0 and ("message too long" in too_big.err + too_big.out or "mtu" in too_big.out.lower())


def test_thirty_starts_at_once_on_three_hosts_get_thirty_addresses(cl: Cluster) -> None:
    overlay(cl, "crowd", "--subnet", "10.9.0.0/24")

    def start(i: int) -> str:
        sb = cl.hosts[i % 3]
        return run(sb, f"crowd{i}", "crowd")

    with concurrent.futures.ThreadPoolExecutor(30) as pool:
        ips = list(pool.map(start, range(30)))
    assert len(set(ips)) == 30, sorted(ips)
    keys = [k for k in cl.keys() if k.startswith("/minidock/endpoints/")]
    assert len(keys) == 30
    # and they talk: the last one on host 3 reaches the first on host 1
    assert cl.hosts[2].cli("exec", "crowd29", "ping", "-c", "1", "-W", "2", "crowd0").code == 0


def test_rm_on_one_host_is_gone_from_the_others(cl: Cluster) -> None:
    net, mac = pair(cl, "leave", "stay", "go", on=2)
    h1, h2, _ = cl.hosts
    assert resolves(h1, "stay", "go")
    h2.cli("rm", "-f", "go")
    wait_for(lambda: mac not in fdb(cl, h1, net) and not resolves(h1, "stay", "go"), 2,
             "go's name and FDB entry gone from host 1")


def test_published_port_on_an_overlay(cl: Cluster) -> None:
    overlay(cl, "pub")
    h2 = cl.hosts[1]
    run(h2, "srv", "pub", "-p", "8088:80", cmd=("nc", "-ll", "-p", "80", "-e", "echo", "published"))
    # from another namespace on the underlay, to host 2's own address
    out = sh("ip", "netns", "exec", cl.hosts[0].name, "nc", "-w", "2", "192.0.2.2", "8088", check=False).out
    assert out.strip() == "published"


def test_no_cluster_store_refuses_overlay() -> None:
    sb = Sandbox()
    sb.start()
    try:
        r = sb.cli("network", "create", "-d", "overlay", "lonely", check=False)
        assert r.code != 0 and "--cluster-store" in r.err and len(r.err.strip().splitlines()) == 1
        assert "lonely" not in sb.cli("network", "ls").out
    finally:
        sb.destroy()


# -- hosts and daemons come and go -------------------------------------------------------
def test_daemon_restart_within_the_ttl_changes_nothing(cl: Cluster) -> None:
    net, mac = pair(cl, "steady", "s1", "s2", on=2)
    h1, h2, _ = cl.hosts
    keys = cl.keys()
    h2.stop()
    h2.start()
    assert cl.keys() == keys
    assert mac in fdb(cl, h1, net)
    assert h1.cli("exec", "s1", "ping", "-c", "1", "-W", "2", "s2").code == 0


def test_a_host_dead_past_its_ttl_is_dropped_then_comes_back(cl: Cluster) -> None:
    net, mac = pair(cl, "mortal", "m1", "m3", on=3)
    h1, _, h3 = cl.hosts
    h3.stop(signal.SIGKILL)
    wait_for(lambda: mac not in fdb(cl, h1, net) and not resolves(h1, "m1", "m3"), TTL + 5,
             "host 3's endpoint dropped by host 1")
    assert not next(n for n in nodes(h1) if n["Name"] == cl.node_name(3))["Alive"]
    h3.start()  # its container still runs: republished
    wait_for(lambda: mac in fdb(cl, h1, net) and resolves(h1, "m1", "m3"), 5, "m3 back on host 1")
    assert h1.cli("exec", "m1", "ping", "-c", "1", "-W", "2", "m3").code == 0


def test_a_lease_lost_under_a_live_daemon_is_taken_again_and_a_remove_leaves_no_key(cl: Cluster) -> None:
    """etcd forgets host 2's lease while its daemon runs (as after a stall longer than the
    TTL): the daemon takes a new one and puts its endpoints back on it; a remove right
    after withdraws the key for good (a republish must not bring it back)."""
    net, mac = pair(cl, "relet", "r1", "r2", on=2)
    h1, h2, _ = cl.hosts
    lease_file = os.path.join(h2.root, "state", "cluster-lease")

    def lease() -> int:
        with open(lease_file) as f:
            return int(f.read())

    old = lease()
    ip2 = h2.inspect("r2", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}")
    key = f"/minidock/endpoints/{net['Id']}/{ip2}"
    cl.etcdctl("lease", "revoke", f"{old:x}")  # its keys go with it, r2's endpoint among them
    wait_for(lambda: lease() != old and key in cl.keys(), TTL + 5, "host 2 on a new lease, r2's key back")
    wait_for(lambda: mac in fdb(cl, h1, net), 3, "r2 back in host 1's FDB")
    assert h1.cli("exec", "r1", "ping", "-c", "1", "-W", "2", "r2").code == 0
    h2.cli("rm", "-f", "r2")
    assert key not in cl.keys()
    time.sleep(TTL / 3 + 0.5)  # a keepalive round: nothing puts it back
    assert key not in cl.keys()
    # the ping taught host 1's bridge r2's MAC (a "master br0" entry that ages out): the
    # VXLAN device's own entry, which says which host, is what goes
    wait_for(lambda: f"{mac} dst" not in fdb(cl, h1, net) and not resolves(h1, "r1", "r2"), 3,
             "r2 gone from host 1's VXLAN FDB and its DNS")


def test_a_daemon_started_while_etcd_is_down_keeps_its_endpoints(cl: Cluster) -> None:
    """Host 2's daemon restarts while no etcd member answers: its container runs on, and
    once etcd is back its endpoint is still in the store (not taken for a crash's
    leftover) and reached by name from host 1."""
    net, mac = pair(cl, "dark", "d1", "d2", on=2)
    h1, h2, _ = cl.hosts
    ip2 = h2.inspect("d2", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}")
    key = f"/minidock/endpoints/{net['Id']}/{ip2}"
    for m in cl.members:
        cl.stop_member(m)
    h2.stop()
    h2.start()  # its join fails: no etcd
    for m in cl.members:
        cl.start_member(m)
    cl.wait_healthy()
    wait_for(lambda: next(n for n in nodes(h1) if n["Name"] == cl.node_name(2))["Alive"] and
             nodes(h2) and h2.cli("network", "ls", "-q", "--filter", "name=dark").out.strip(), TTL + 5,
             "host 2 back in the cluster")
    time.sleep(2 * TTL / 3 + 0.5)  # two keepalive rounds: a republish that dropped it would have run
    assert key in cl.keys()
    wait_for(lambda: h1.cli("exec", "d1", "ping", "-c", "1", "-W", "1", "d2", check=False).code == 0, 5,
             "d2 reached by name from host 1")


def test_sigkill_mid_start_leaves_no_duplicate_and_no_stale_entry(cl: Cluster) -> None:
    net = overlay(cl, "crash")
    h1, h2, _ = cl.hosts
    run(h1, "c1", "crash")
    h2.cli("create", "--name", "cut", "--network", "crash", "busybox", "sleep", "600")
    # steps of the start: namespace, loopback, cluster endpoint (the claim), veth pair: die after the veth
    Client(f"unix://{h2.socket}").call("POST", "/minidock/fault", None, {"op": "start", "after": 4})
    h2.cli("start", "cut", check=False)
    h2.proc.wait(timeout=10)  # type: ignore[union-attr]
    h2.proc = None
    h2.start()
    ep_keys = [k for k in cl.keys() if k.startswith(f"/minidock/endpoints/{net['Id']}/")]
    assert len(ep_keys) == 1, ep_keys  # c1's only: the cut start's claim is gone
    wait_for(lambda: fdb(cl, h1, net).count(" dst ") == 0, 2, "no FDB entry for the cut start on host 1")
    ip = run(h2, "whole", "crash")
    ips = [h1.inspect("c1", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"), ip]
    assert len(set(ips)) == 2
    assert h2.cli("exec", "whole", "ping", "-c", "1", "-W", "2", "c1").code == 0
    h2.cli("rm", "-f", "cut")


# -- etcd ---------------------------------------------------------------------------------
def test_etcd_leader_killed_new_containers_still_placed(cl: Cluster) -> None:
    overlay(cl, "quorum")
    h1, h2, _ = cl.hosts
    run(h1, "q1", "quorum")
    cl.stop_member(cl.leader())
    t0 = time.monotonic()
    deadline = t0 + 5
    while True:  # the first tries may meet the election; within 5 s one must be placed
        r = h2.cli("run", "-d", "--name", "q2", "--network", "quorum", "busybox", "sleep", "600", check=False)
        if r.code == 0 or time.monotonic() > deadline:
            break
        h2.cli("rm", "-f", "q2", check=False)
        time.sleep(0.2)
    assert r.code == 0, r
    assert h2.cli("exec", "q2", "ping", "-c", "1", "-W", "2", "q1").code == 0
    assert time.monotonic() - t0 < 8


def test_etcd_down_refuses_clearly_and_traffic_flows(cl: Cluster) -> None:
    overlay(cl, "outage")
    h1, h2, _ = cl.hosts
    run(h1, "o1", "outage")
    run(h2, "o2", "outage")
    for m in cl.members:
        cl.stop_member(m)
    for argv in (("network", "create", "-d", "overlay", "later"),
                 ("run", "-d", "--name", "o3", "--network", "outage", "busybox", "sleep", "600")):
        t0 = time.monotonic()
        r = h1.cli(*argv, check=False)
        took = time.monotonic() - t0
        assert r.code != 0 and "cluster store unavailable" in r.err, r
        assert took < 3, f"{argv[0]} took {took:.1f} s to fail"
        assert len(r.err.strip().splitlines()) == 1
    assert h1.cli("exec", "o1", "ping", "-c", "2", "-W", "2", "o2").code == 0  # the kernel's entries stay
    # bridge networks are untouched
    h1.cli("network", "create", "plain")
    h1.cli("run", "-d", "--name", "p1", "--network", "plain", "busybox", "sleep", "600")
    h1.cli("run", "-d", "--name", "p2", "--network", "plain", "busybox", "sleep", "600")
    assert h1.cli("exec", "p1", "ping", "-c", "1", "-W", "2", "p2").code == 0
    h1.cli("rm", "-f", "o3", check=False)
    for m in cl.members:
        cl.start_member(m)
    cl.wait_healthy()
    # back: a start on the overlay works again, and reaches the other host
    def placed() -> bool:
        if h1.cli("run", "-d", "--name", "o4", "--network", "outage", "busybox", "sleep", "600",
                  check=False).code == 0:
            return True
        h1.cli("rm", "-f", "o4", check=False)  # a refused start leaves a created container
        return False

    wait_for(placed, 10, "a start on the overlay once etcd is back")
    # h2 learns of o4 by its watch, which resumes within WATCH_SILENCE of etcd's return
    wait_for(lambda: h2.cli("exec", "o2", "ping", "-c", "1", "-W", "1", "o4", check=False).code == 0,
             10, "o4 reachable by name from the other host once etcd is back")


# -- the rest of a network's interface, across hosts ---------------------------------------
def test_connect_disconnect_ip_and_aliases_across_hosts(cl: Cluster) -> None:
    overlay(cl, "joint", "--subnet", "10.20.0.0/24", "--ip-range", "10.20.0.128/25", "--gateway", "10.20.0.1",
            "--attachable")
    h1, h2, _ = cl.hosts
    run(h1, "j1", "joint", "--ip", "10.20.0.9", "--network-alias", "front")
    h2.cli("network", "create", "local2")
    ip2 = run(h2, "j2", "local2")
    assert ip2.startswith("172.")
    h2.cli("network", "connect", "--alias", "back", "joint", "j2")
    ip_j2 = h2.inspect("j2", '{{(index .NetworkSettings.Networks "joint").IPAddress}}')
    assert ip_j2.startswith("10.20.0.") and int(ip_j2.rsplit(".", 1)[1]) >= 128  # from the --ip-range
    r = h2.cli("exec", "j2", "ping", "-c", "1", "-W", "2", "front")  # an alias of a container on host 1
    assert "(10.20.0.9)" in r.out
    assert h1.cli("exec", "j1", "ping", "-c", "1", "-W", "2", "back").code == 0
    # --ip is claimed cluster-wide: the same address on another host is refused
    r = cl.hosts[2].cli("run", "-d", "--name", "dup", "--network", "joint", "--ip", "10.20.0.9", "busybox",
                        "sleep", "600", check=False)
    assert r.code != 0 and "Address already in use" in r.err, r
    h2.cli("network", "disconnect", "joint", "j2")
    wait_for(lambda: not resolves(h1, "j1", "back"), 2, "back gone from host 1 after the disconnect")
    assert h1.cli("exec", "j1", "ping", "-c", "1", "-W", "1", ip_j2, check=False).code != 0
    cl.hosts[2].cli("rm", "-f", "dup", check=False)


def test_internal_overlay_has_no_way_out_and_mtu_option(cl: Cluster) -> None:
    net = overlay(cl, "inner", "--internal", "-o", "com.docker.network.driver.mtu=1400")
    h1, h2, _ = cl.hosts
    run(h1, "i1", "inner")
    ip = run(h2, "i2", "inner")
    assert h1.cli("exec", "i1", "ping", "-c", "1", "-W", "2", "i2").code == 0
    # no second interface on minidock_gwbridge, no default route: only the overlay's own subnet
    routes = h1.in_ns("md-i1", "ip", "route").out
    assert "default" not in routes and routes.startswith(net["IPAM"]["Config"][0]["Subnet"]), routes  # type: ignore[index]
    assert "eth1" not in h1.in_ns("md-i1", "ip", "link").out
    mtu = h1.in_ns("md-i1", "cat", "/sys/class/net/eth0/mtu").out.strip()
    assert mtu == "1400"
    ok = h1.in_ns("md-i1", "ping", "-M", "do", "-s", "1372", "-c", "1", "-W", "2", ip, check=False)
    too_big = h1.in_ns("md-i1", "ping", "-M", "do", "-s", "1373", "-c", "1", "-W", "2", ip, check=False)
    assert ok.code == 0 and too_big.code != 0



# -- system check, repair, reset on a cluster host -------------------------------------------
def test_check_and_repair_see_the_overlay(cl: Cluster) -> None:
    net, mac = pair(cl, "mend", "m1", "m2", on=2)
    h1, h2, _ = cl.hosts
    assert h1.cli("system", "check").code == 0
    vni = net["Options"]["com.docker.network.driver.overlay.vxlanid_list"]  # type: ignore[index]
    ns = f"ov-{vni}-{cl.node_name(1)}"
    # a student deletes the remote entry by hand: m2 is out of reach, and check says why
    h1.in_ns(ns, "bridge", "fdb", "del", mac, "dev", f"vxlan{vni}", "dst", "192.0.2.2", "self")
    h1.in_ns(ns, "ip", "neigh", "flush", "dev", f"vxlan{vni}")
    assert h1.cli("exec", "m1", "ping", "-c", "1", "-W", "1", "m2", check=False).code != 0
    r = h1.cli("system", "check", check=False)
    assert r.code == 1 and f"no FDB entry for {mac} at 192.0.2.2" in r.out, r
    assert "repaired:" in h1.cli("system", "repair").out
    assert h1.cli("system", "check").code == 0
    assert h1.cli("exec", "m1", "ping", "-c", "1", "-W", "2", "m2").code == 0


def test_reset_on_one_host_withdraws_it_from_the_others(cl: Cluster) -> None:
    net, mac = pair(cl, "bye", "b1", "b3", on=3)
    h1, _, h3 = cl.hosts
    out = h3.cli("system", "reset", "--force").out
    assert "overlay namespace ov-" in out
    h3.proc.wait(timeout=10)  # type: ignore[union-attr]
    h3.proc = None
    wait_for(lambda: mac not in fdb(cl, h1, net) and not resolves(h1, "b1", "b3"), 2, "b3 gone from host 1")
    assert not [n for n in cl.overlay_namespaces() if n.startswith("h3:")]
    assert not [k for k in cl.keys() if k.startswith("/minidock/endpoints/") and "bye" in cl.etcdctl(
        "get", "--print-value-only", k) and cl.node_name(3) in cl.etcdctl("get", "--print-value-only", k)]
    h3.start()  # and the network is the cluster's still: back on host 3
    wait_for(lambda: h3.cli("network", "ls", "-q", "--filter", "name=bye").out.strip(), 5, "bye on host 3 again")


def test_topology_shows_hosts_vteps_and_the_overlay(cl: Cluster) -> None:
    net = overlay(cl, "mapped")
    h1, h2, _ = cl.hosts
    ip1 = run(h1, "t1", "mapped")
    ip2 = run(h2, "t2", "mapped")
    mac2 = h2.inspect("t2", "{{range .NetworkSettings.Networks}}{{.MacAddress}}{{end}}")
    wait_for(lambda: mac2 in fdb(cl, h1, net), 2, "t2 in host 1's FDB")
    vni = net["Options"]["com.docker.network.driver.overlay.vxlanid_list"]  # type: ignore[index]
    out = h1.cli("topology").out
    assert f"{cl.node_name(1)} 192.0.2.1 (this host)" in out and f"{cl.node_name(2)} 192.0.2.2" in out, out
    assert f"ov-{vni}-{cl.node_name(1)} (netns)  overlay mapped" in out and f"VNI {vni}" in out, out
    assert f"eth0 {ip1}/24  t1" in out, out
    assert f"remote {ip2} t2 on {cl.node_name(2)}  fdb {mac2} → 192.0.2.2" in out, out
    # what it draws is what the kernel holds: that FDB entry is real
    assert f"{mac2} dst 192.0.2.2" in fdb(cl, h1, net)
    svg = sh("dot", "-Tsvg", input=h1.cli("topology", "--format", "dot").out).out
    assert "VXLAN → 192.0.2.2" in svg


def test_explain_shows_vxlan_and_the_store_writes(cl: Cluster) -> None:
    h1, h2, _ = cl.hosts
    out = h1.cli("--explain", "network", "create", "-d", "overlay", "told").err
    vni = json.loads(h1.cli("network", "inspect", "told").out)[0]["Options"][
        "com.docker.network.driver.overlay.vxlanid_list"]
    assert f'create("/minidock/vni/{vni}") = "0"' in out and "etcdctl txn" in out, out
    assert f"type vxlan id {vni} dstport 4789" in out and f"ip link set vxlan{vni} netns ov-{vni}-" in out, out
    for sb in cl.hosts:
        wait_for(lambda sb=sb: sb.cli("network", "ls", "-q", "--filter", "name=told").out.strip(), 5, "told")
    run(h1, "tell1", "told")
    out = h2.cli("--explain", "run", "-d", "--name", "tell2", "--network", "told", "busybox", "sleep", "600").err
    assert "etcdctl txn" in out and "put --lease=" in out and "/minidock/endpoints/" in out, out
    assert "master br0" in out, out


def test_etcd_silent_behind_a_drop_refuses_within_3_s(cl: Cluster) -> None:
    """Members that drop packets (no refusal to hurry us): every call is bounded all the same."""
    overlay(cl, "mute")
    h1 = cl.hosts[0]
    drop = ["OUTPUT", "-p", "tcp", "--dport", "2379", "-m", "iprange", "--dst-range", "192.0.2.11-192.0.2.13",
            "-j", "DROP"]
    h1.host("iptables", "-I", *drop)
    try:
        for argv in (("network", "create", "-d", "overlay", "mute2"),
                     ("run", "-d", "--name", "mute1", "--network", "mute", "busybox", "sleep", "600")):
            t0 = time.monotonic()
            r = h1.cli(*argv, check=False)
            took = time.monotonic() - t0
            assert r.code != 0 and "cluster store unavailable" in r.err and len(r.err.strip().splitlines()) == 1, r
            assert took < 3, f"{argv[0]} took {took:.1f} s to fail"
    finally:
        h1.host("iptables", "-D", *drop)
    h1.cli("rm", "-f", "mute1", check=False)

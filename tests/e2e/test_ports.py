"""Scenario D: publishing ports and reaching the host, with real packets.

The sandbox host gets an "outside" namespace on 198.51.100.0/24: a neighbour
on the LAN. Every check connects (TCP or UDP) and reads the answer that the
container's server sends back.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.sandbox import Sandbox, sh

HOST = "198.51.100.1"  # the sandbox host's address on the outside link

UDP_ECHO = ("import socket\n"
            "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            "s.bind(('', {port}))\n"
            "while True:\n"
            "    data, peer = s.recvfrom(512)\n"
            "    s.sendto(b'{reply}:' + data, peer)\n")


@pytest.fixture(scope="module")
def outside(md: Sandbox) -> str:
    return md.add_outside(HOST, "198.51.100.2")


def tcp(md: Sandbox, where: str, ip: str, port: int | str) -> str:
    """What a TCP connection from `where` (host, a namespace) reads; "" if refused."""
    argv = ["nc", "-n", "-w", "2", ip, str(port)]
    r = md.host(*argv, check=False) if where == "host" else md.in_ns(where, *argv, check=False)
    return r.out.strip()


def udp(md: Sandbox, where: str, ip: str, port: int | str) -> str:
    script = ("import socket, sys\n"
              "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
              "s.settimeout(1.0)\n"
              "for _ in range(3):\n"
              f"    s.sendto(b'ping', ('{ip}', {port}))\n"
              "    try:\n"
              "        print(s.recvfrom(512)[0].decode()); break\n"
              "    except OSError:\n"
              "        pass\n")
    argv = ["python3", "-c", script]
    r = md.host(*argv, check=False) if where == "host" else md.in_ns(where, *argv, check=False)
    return r.out.strip()


def web(md: Sandbox, name: str, *publish: str, reply: str = "", network: str = "bridge") -> str:
    args = [a for p in publish for a in ("-p", p)]
    md.cli("run", "-d", "--name", name, "--network", network, *args, "busybox",
           "nc", "-ll", "-p", "80", "-e", "echo", reply or name)
    return md.ip_of(name)


def test_published_port_answers_from_outside_and_from_the_hosts_loopback(
        md: Sandbox, outside: str) -> None:
    web(md, "web", "8080:80")
    assert tcp(md, outside, HOST, 8080) == "web"
    assert tcp(md, "host", "127.0.0.1", 8080) == "web"
    assert tcp(md, "host", HOST, 8080) == "web"
    # the kernel does it: no helper process listens on 8080, only the daemon's bound socket holds it
    listeners = md.host("ss", "-Htlnp", "sport = :8080").out
    assert listeners.strip() == "", listeners
    assert md.cli("port", "web").out == "80/tcp -> 0.0.0.0:8080\n"
    assert md.cli("port", "web", "80").out == "0.0.0.0:8080\n"
    assert md.cli("ps", "--format", "{{.Ports}}").out.strip() == "0.0.0.0:8080->80/tcp"
    assert md.inspect("web", "{{json .NetworkSettings.Ports}}") == '{"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"8080"}]}'
    r = md.cli("port", "web", "7777", check=False)
    assert r.code == 1 and r.err.strip() == "Error: No public port '7777' published for web"


def test_every_publish_form(md: Sandbox, outside: str) -> None:
    md.cli("run", "-d", "--name", "udpsrv", "-p", "5353:53/udp", "ubuntu",
           "python3", "-c", UDP_ECHO.format(port=53, reply="udpsrv"))
    web(md, "lo", "127.0.0.1:8081:80")
    web(md, "rnd", "80", "127.0.0.1::80")
    md.cli("run", "-d", "--name", "rng", "-p", "8000-8002:8000-8002", "busybox", "sh", "-c",
           "for p in 8000 8001 8002; do nc -ll -p $p -e echo rng-$p & done; wait")
    md.cli("run", "-d", "--name", "all", "-P", "--expose", "9000", "busybox", "nc", "-ll", "-p", "9000",
           "-e", "echo", "all")
    time.sleep(0.3)

    assert udp(md, outside, HOST, 5353) == "udpsrv:ping"
    assert udp(md, "host", "127.0.0.1", 5353) == "udpsrv:ping"
    assert tcp(md, "host", "127.0.0.1", 8081) == "lo"
    for port in (8000, 8001, 8002):
        assert tcp(md, outside, HOST, port) == f"rng-{port}"
    ports = md.cli("port", "rnd").out.splitlines()
    assert len(ports) == 2 and all(line.startswith("80/tcp -> ") for line in ports)
    wild = next(line.split(":")[-1] for line in ports if "0.0.0.0" in line)
    local = next(line.split(":")[-1] for line in ports if "127.0.0.1" in line)
    assert 32768 <= int(wild) <= 60999 and 32768 <= int(local) <= 60999
    assert tcp(md, outside, HOST, wild) == "rnd"
    assert tcp(md, "host", "127.0.0.1", local) == "rnd"
    all_port = md.cli("port", "all", "9000/tcp").out.strip().split(":")[-1]
    assert tcp(md, outside, HOST, all_port) == "all"
    assert md.inspect("all", "{{json .Config.ExposedPorts}}") == '{"9000/tcp":{}}'
    assert md.cli("ps", "--format", "{{.Ports}}", "-f", "name=rng").out.strip() == \
        "0.0.0.0:8000-8002->8000-8002/tcp"


def test_loopback_binding_is_not_reachable_from_another_host(md: Sandbox, outside: str) -> None:
    """moby issue 45610: a LAN neighbour routes 127.0.0.1 to the host and reaches a 127.0.0.1 port."""
    web(md, "private", "127.0.0.1:8090:80")
    web(md, "public", "8091:80")
    assert tcp(md, "host", "127.0.0.1", 8090) == "private"
    # make the neighbour send packets for 127.0.0.1 to the host, as the attacker in 45610 does
    sh("ip", "-n", outside, "route", "del", "127.0.0.0/8", "table", "local", check=False)
    sh("ip", "-n", outside, "route", "del", "127.0.0.1", "table", "local", check=False)
    sh("ip", "netns", "exec", outside, "sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1")
    sh("ip", "netns", "exec", outside, "sysctl", "-qw", "net.ipv4.conf.wan0.route_localnet=1")
    sh("ip", "-n", outside, "route", "add", "127.0.0.1/32", "via", HOST, "src", "198.51.100.2")
    # a counter proves the neighbour's packets for 127.0.0.1 do reach the host
    counter = ["PREROUTING", "-i", "uplink", "-d", "127.0.0.1/32", "-p", "tcp", "-m", "tcp", "--dport", "8090"]
    md.host("iptables", "-t", "raw", "-A", *counter)
    try:
        assert tcp(md, outside, "127.0.0.1", 8090) == ""
        assert tcp(md, outside, "127.0.0.1", 8091) == ""
        assert tcp(md, outside, HOST, 8091) == "public"  # the neighbour's path itself works
        seen = md.host("iptables", "-t", "raw", "-L", "PREROUTING", "-v", "-x", "-n").out
        packets = next(int(ln.split()[0]) for ln in seen.splitlines() if "dpt:8090" in ln)
        assert packets > 0, seen
    finally:
        md.host("iptables", "-t", "raw", "-D", *counter, check=False)
        sh("ip", "-n", outside, "route", "del", "127.0.0.1/32", check=False)
        sh("ip", "-n", outside, "route", "add", "local", "127.0.0.0/8", "dev", "lo", "table", "local",
           check=False)


def test_hairpin_a_container_reaches_its_own_and_a_neighbours_published_port(
        md: Sandbox) -> None:
    web(md, "hp", "8100:80")
    web(md, "other", "8101:80")
    gw = md.inspect("hp", "{{range .NetworkSettings.Networks}}{{.Gateway}}{{end}}")
    for target in (gw, HOST):
        assert md.cli("exec", "hp", "nc", "-w", "2", target, "8100").out.strip() == "hp"
        assert md.cli("exec", "hp", "nc", "-w", "2", target, "8101").out.strip() == "other"


def test_bridges_talk_through_a_published_port_and_never_directly(md: Sandbox) -> None:
    md.cli("network", "create", "bridge2")
    try:
        db = web(md, "db", "3306:80", reply="db")  # on the default bridge
        md.cli("run", "-d", "--name", "app", "--network", "bridge2", "--add-host",
               "host.docker.internal:host-gateway", "busybox", "sleep", "300")
        via_host = md.cli("exec", "app", "nc", "-w", "2", "host.docker.internal", "3306", check=False)
        assert via_host.out.strip() == "db"
        direct = md.cli("exec", "app", "nc", "-w", "2", db, "80", check=False)
        assert direct.out.strip() == ""
    finally:
        md.cli("rm", "-f", "db", "app", check=False)
        md.cli("network", "rm", "bridge2")


def test_host_gateway_reaches_a_service_on_the_host(md: Sandbox) -> None:
    srv = subprocess.Popen(["nsenter", f"--net=/run/netns/{md.name}", "busybox", "nc", "-ll", "-p", "7700",
                            "-e", "echo", "from-the-host"])
    try:
        time.sleep(0.2)
        r = md.cli("run", "--rm", "--add-host", "host.docker.internal:host-gateway", "--add-host",
                   "somehost:192.168.0.7", "busybox", "sh", "-c",
                   "grep -E 'host.docker.internal|somehost' /etc/hosts; nc -w 2 host.docker.internal 7700")
        assert "172.17.0.1\thost.docker.internal" in r.out
        assert "192.168.0.7\tsomehost" in r.out
        assert r.out.strip().endswith("from-the-host")
    finally:
        srv.kill()
        srv.wait()


def test_conflicts_are_refused_and_change_nothing(md: Sandbox) -> None:
    web(md, "first", "8200:80")
    before = md.snapshot()
    r = md.cli("run", "-d", "--name", "second", "-p", "8200:80", "busybox", "true", check=False)
    assert r.code == 125
    assert r.err.startswith("minidock: Error response from daemon: driver failed programming external "
                            "connectivity on endpoint second (")
    assert r.err.strip().endswith("Bind for 0.0.0.0:8200 failed: port is already allocated")
    assert len(r.err.strip().splitlines()) == 1
    # 127.0.0.1:8200 overlaps 0.0.0.0:8200 too
    r = md.cli("run", "-d", "-p", "127.0.0.1:8200:80", "busybox", "true", check=False)
    assert "Bind for 127.0.0.1:8200 failed: port is already allocated" in r.err
    # a process on the host holds 8300
    holder = subprocess.Popen(["nsenter", f"--net=/run/netns/{md.name}", "busybox", "nc", "-l", "-p", "8300"])
    try:
        time.sleep(0.2)
        r = md.cli("run", "-d", "--name", "third", "-p", "8300:80", "busybox", "true", check=False)
        assert r.code == 125 and "Bind for 0.0.0.0:8300 failed: port is already allocated" in r.err
        assert md.snapshot() == before
    finally:
        holder.kill()
        holder.wait()
    # and a host process cannot take a port a container publishes
    taken = md.host("busybox", "nc", "-l", "-p", "8200", check=False, timeout=5)
    assert taken.code != 0 and "in use" in taken.err


def test_bad_publish_specs_are_refused_with_dockers_wording(md: Sandbox) -> None:
    before = md.cli("ps", "-aq").out
    for spec, message in [("99999:80", "invalid hostPort: 99999"), ("abc", "invalid containerPort: abc"),
                          ("8080:80/sctpx", "invalid proto: sctpx"), ("1.2.3:80:80", "invalid IP address: 1.2.3"),
                          ("8000-8002:80-81", "invalid ranges specified for container and host Ports: "
                                              "80-81 and 8000-8002")]:
        r = md.cli("run", "-p", spec, "busybox", "true", check=False)
        assert (r.code, r.err) == (125, f"minidock: {message}\n"), spec
    assert md.cli("ps", "-aq").out == before


def test_stop_and_rm_remove_the_rules_at_once(md: Sandbox, outside: str) -> None:
    web(md, "brief", "8400:80")
    assert "--dport 8400" in md.host("iptables-save", "-t", "nat").out
    md.cli("stop", "-t", "0", "brief")
    assert "--dport 8400" not in md.host("iptables-save", "-t", "nat").out
    assert tcp(md, outside, HOST, 8400) == ""
    md.cli("start", "brief")
    assert tcp(md, outside, HOST, 8400) == "brief"
    md.cli("rm", "-f", "brief")
    rules = md.host("iptables-save").out
    assert "8400" not in rules and "container brief" not in rules
    # the port is free again
    web(md, "again", "8400:80")
    assert tcp(md, outside, HOST, 8400) == "again"


def test_published_ports_survive_a_daemon_restart_and_stale_rules_do_not(
        md: Sandbox, outside: str) -> None:
    web(md, "stays", "8500:80")
    web(md, "dies", "8501:80")
    dies_pid = int(md.inspect("dies", "{{.State.Pid}}"))
    md.stop(sig=9)
    sh("kill", "-9", str(dies_pid))  # moby 32048: the container goes while nobody watches
    time.sleep(0.3)
    md.start()
    assert tcp(md, outside, HOST, 8500) == "stays"
    rules = md.host("iptables-save").out
    assert "--dport 8501" not in rules and "container dies" not in rules
    assert md.inspect("dies", "{{.State.Status}}") == "exited"
    # the surviving container's port is held again: a second publish of 8500 is refused
    r = md.cli("run", "-d", "-p", "8500:80", "busybox", "true", check=False)
    assert "port is already allocated" in r.err

"""Scenario A: the default networks bridge, host and none, with real packets."""

from __future__ import annotations

import json
import re
import time

from tests.sandbox import Sandbox, wait_for


def test_network_ls_lists_exactly_the_three_predefined(md: Sandbox) -> None:
    out = md.cli("network", "ls").out.splitlines()
    assert re.match(r"^NETWORK ID\s{3,}NAME\s{3,}DRIVER\s{3,}SCOPE$", out[0])
    rows = [line.split() for line in out[1:]]
    assert [(r[1], r[2], r[3]) for r in rows] == [("bridge", "bridge", "local"), ("host", "host", "local"),
                                                    ("none", "null", "local")]
    assert all(re.fullmatch(r"[0-9a-f]{12}", r[0]) for r in rows)
    assert md.cli("network", "ls", "-q").out.split() == [r[0] for r in rows]
    assert md.cli("network", "ls", "--format", "{{.Name}}:{{.Driver}}").out.split() == [
        "bridge:bridge", "host:host", "none:null"]


def test_bridge_is_a_real_linux_bridge_with_docker_shaped_inspect(md: Sandbox) -> None:
    data = json.loads(md.cli("network", "inspect", "bridge").out)[0]
    for key in ("Name", "Id", "Created", "Scope", "Driver", "EnableIPv6", "IPAM", "Internal", "Attachable",
                "Containers", "Options", "Labels"):
        assert key in data
    assert data["IPAM"]["Config"] == [{"Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1"}]
    assert data["Options"]["com.docker.network.bridge.name"] == "minidock0"
    assert data["Options"]["com.docker.network.bridge.default_bridge"] == "true"
    assert md.cli("network", "inspect", "-f", "{{.IPAM.Config}}", "bridge").out.strip() == \
        "[{172.17.0.0/16  172.17.0.1 map[]}]"
    assert md.cli("network", "inspect", "-f", "{{json .IPAM.Config}}", "bridge").out.strip() == \
        '[{"Subnet":"172.17.0.0/16","Gateway":"172.17.0.1"}]'
    link = md.host("ip", "-d", "link", "show", "minidock0").out
    assert "bridge" in link and "minidock:network bridge" in link
    assert "inet 172.17.0.1/16" in md.host("ip", "addr", "show", "minidock0").out
    rules = md.host("iptables-save", "-t", "nat").out
    assert '-A MINIDOCK-POSTROUTING -s 172.17.0.0/16 ! -o minidock0 -m comment --comment "network bridge" -j MASQUERADE' in rules
    assert md.host("sysctl", "-n", "net.ipv4.ip_forward").out.strip() == "1"


def test_predefined_networks_cannot_be_removed_and_nothing_changes(md: Sandbox) -> None:
    before = md.snapshot()
    for name in ("bridge", "host", "none"):
        r = md.cli("network", "rm", name, check=False)
        assert r.code == 1
        assert r.err.strip() == f"Error response from daemon: {name} is a pre-defined network and cannot be removed"
    r = md.cli("network", "rm", "nosuchnet", check=False)
    assert r.code == 1 and "network nosuchnet not found" in r.err
    assert md.snapshot() == before


def test_two_containers_on_default_bridge_reach_each_other_by_ip_not_name(md: Sandbox) -> None:
    md.cli("run", "-dit", "--name", "alpine1", "alpine", "ash")
    md.cli("run", "-dit", "--name", "alpine2", "alpine", "ash")
    ip1, ip2 = md.ip_of("alpine1"), md.ip_of("alpine2")
    assert (ip1, ip2) == ("172.17.0.2", "172.17.0.3")
    addr = md.cli("exec", "alpine1", "ip", "addr", "show", "eth0").out
    assert re.search(r"\d+: eth0@if\d+:", addr)
    assert "inet 172.17.0.2/16" in addr and "link/ether 02:42:ac:11:00:02" in addr
    # the gateway's MAC is the bridge's own (set at creation, as Docker does), not its lowest port's
    gw_mac = re.search(r"link/ether (\S+)", md.host("ip", "link", "show", "minidock0").out).group(1)  # type: ignore[union-attr]
    ports = md.host("ip", "-o", "link", "show", "master", "minidock0").out
    assert gw_mac not in ports
    md.cli("exec", "alpine1", "ping", "-c", "1", "-W", "2", "172.17.0.1")
    assert gw_mac in md.cli("exec", "alpine1", "ip", "neigh", "show", "172.17.0.1").out
    # IPv4-only network: no IPv6 on either end of the veth (Docker 26+ disables it in the container)
    assert "inet6" not in addr
    veth = md.host("ip", "-o", "link", "show", "master", "minidock0").out.split(":")[1].strip().split("@")[0]
    assert "inet6" not in md.host("ip", "addr", "show", veth).out
    ping = md.cli("exec", "alpine1", "ping", "-c", "2", "-W", "2", ip2)
    assert "2 packets received" in ping.out
    # TCP by IP: a server in alpine2, a client in alpine1
    md.cli("exec", "-d", "alpine2", "sh", "-c", "echo hello-from-alpine2 | nc -l -p 7000")
    got = ""
    for _ in range(50):
        r = md.cli("exec", "alpine1", "nc", "-w", "2", ip2, "7000", check=False)
        got = r.out
        if "hello-from-alpine2" in got:
            break
        time.sleep(0.1)
    assert "hello-from-alpine2" in got
    # no name discovery on the default bridge
    r = md.cli("exec", "alpine1", "ping", "-c", "1", "-W", "1", "alpine2", check=False)
    assert r.code != 0 and "bad address 'alpine2'" in r.err
    # /etc/hosts: localhost lines and its own IP with its hostname (the short ID)
    cid = md.inspect("alpine1", "{{.Id}}")
    hosts = md.cli("exec", "alpine1", "cat", "/etc/hosts").out
    assert hosts.startswith("127.0.0.1\tlocalhost\n")
    assert hosts.rstrip().endswith(f"172.17.0.2\t{cid[:12]}")
    assert md.cli("exec", "alpine1", "hostname").out.strip() == cid[:12]
    # the host side: each container's veth is a port of minidock0
    ports = md.host("bridge", "link").out
    vethlines = [ln for ln in ports.splitlines() if "master minidock0" in ln]
    assert len(vethlines) == 2 and all(re.search(r": veth[0-9a-f]{7}@", ln) for ln in vethlines)
    containers = json.loads(md.cli("network", "inspect", "bridge").out)[0]["Containers"]
    assert {v["Name"]: v["IPv4Address"] for v in containers.values()} == {
        "alpine1": "172.17.0.2/16", "alpine2": "172.17.0.3/16"}
    md.cli("rm", "-f", "alpine1", "alpine2")
    # their namespaces went, and the kernel deletes the veths in them in the background (cleanup_net)
    wait_for(lambda: "master minidock0" not in md.host("bridge", "link").out, 5, "the bridge's ports gone")


def test_none_network_has_only_loopback_and_reaches_nothing(md: Sandbox) -> None:
    md.cli("run", "-d", "--name", "lonely", "--network", "none", "busybox", "sleep", "60")
    links = md.cli("exec", "lonely", "ip", "-o", "link").out.splitlines()
    assert len(links) == 1 and ": lo:" in links[0] and "UP" in links[0]
    assert "inet 127.0.0.1/8" in md.cli("exec", "lonely", "ip", "addr").out
    assert md.cli("exec", "lonely", "ping", "-c", "1", "-W", "1", "127.0.0.1").code == 0
    r = md.cli("exec", "lonely", "ping", "-c", "1", "-W", "1", "172.17.0.1", check=False)
    assert r.code != 0
    assert md.cli("exec", "lonely", "ip", "route").out.strip() == ""
    md.cli("rm", "-f", "lonely")


def test_host_network_shares_the_hosts_stack(md: Sandbox) -> None:
    md.cli("run", "-d", "--name", "hostnet", "--network", "host", "busybox", "nc", "-ll", "-p", "7300",
           "-e", "echo", "served-by-host-container")
    links = md.cli("exec", "hostnet", "ip", "-o", "link").out
    assert "minidock0" in links  # it sees the host's interfaces
    assert "inet 172.17.0.1/16" in md.cli("exec", "hostnet", "ip", "addr").out
    got = ""
    for _ in range(50):
        got = md.host("nc", "-w", "2", "127.0.0.1", "7300", check=False).out
        if "served-by-host-container" in got:
            break
        time.sleep(0.1)
    assert "served-by-host-container" in got
    r = md.cli("run", "--rm", "--network", "host", "busybox", "nc", "-l", "-p", "7300", check=False)
    assert r.code != 0 and "Address already in use" in (r.out + r.err)
    md.cli("rm", "-f", "hostnet")


def test_host_network_refuses_published_ports(md: Sandbox) -> None:
    before = md.cli("ps", "-aq").out
    r = md.cli("run", "-d", "-p", "8080:80", "--network", "host", "busybox", "true", check=False)
    assert r.code != 0
    assert '"host" network_mode is incompatible with port_bindings' in r.err
    assert md.cli("ps", "-aq").out == before


def test_nat_to_the_outside_world_masquerades(md: Sandbox) -> None:
    outside = md.add_outside()
    md.host("ip", "route", "add", "default", "via", "198.51.100.2")
    try:
        srv = __import__("subprocess").Popen(
            ["nsenter", f"--net=/run/netns/{outside}", "nc", "-n", "-v", "-l", "8000"],
            stdout=-1, stderr=-1, text=True)
        try:
            time.sleep(0.3)
            md.cli("run", "--rm", "--name", "natclient", "busybox", "sh", "-c",
                   "echo over-nat | nc -w 3 198.51.100.2 8000")
            out, err = srv.communicate(timeout=10)
        finally:
            if srv.poll() is None:
                srv.kill()
                srv.wait()
        assert "over-nat" in out
        # the outside saw the host's address, not the container's: MASQUERADE
        assert "198.51.100.1" in err and "172.17." not in err
    finally:
        md.host("ip", "route", "del", "default", check=False)


def test_default_bridge_skips_a_subnet_already_routed_on_the_host() -> None:
    sb = Sandbox()
    sb.create_host()
    try:
        sb.host("ip", "link", "add", "lan0", "type", "veth", "peer", "name", "lan0p")
        sb.host("ip", "addr", "add", "172.17.5.1/24", "dev", "lan0")
        sb.host("ip", "link", "set", "lan0", "up")
        sb.start()
        cfg = sb.cli("network", "inspect", "-f", "{{json .IPAM.Config}}", "bridge").out.strip()
        assert cfg == '[{"Subnet":"172.18.0.0/16","Gateway":"172.18.0.1"}]'
        sb.cli("run", "-d", "--name", "c1", "busybox", "sleep", "30")
        assert sb.ip_of("c1") == "172.18.0.2"
    finally:
        sb.destroy()

"""Scenarios B and C: user-defined bridge networks, isolation and the DNS stub."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from tests.sandbox import Sandbox, wait_for


def pings(md: Sandbox, src: str, target: str) -> bool:
    return md.cli("exec", src, "ping", "-c", "1", "-W", "1", target, check=False).code == 0


def ip_on(md: Sandbox, name: str, net: str) -> str:
    return md.inspect(name, "{{(index .NetworkSettings.Networks \"" + net + "\").IPAddress}}")


def resolve(md: Sandbox, src: str, name: str) -> list[str]:
    """Addresses `name` resolves to inside container `src` (busybox nslookup)."""
    out = md.cli("exec", src, "nslookup", name, check=False).out
    return re.findall(r"Address: (\d+\.\d+\.\d+\.\d+)", out.split("Name:", 1)[1]) if "Name:" in out else []


def test_alpine_net_walkthrough(md: Sandbox, net_cleanup: None) -> None:
    md.cli("network", "create", "--driver", "bridge", "alpine-net")
    assert "alpine-net" in md.cli("network", "ls").out
    assert md.cli("network", "inspect", "-f", "{{json .IPAM.Config}}", "alpine-net").out.strip() == \
        '[{"Subnet":"172.18.0.0/16","Gateway":"172.18.0.1"}]'
    md.cli("run", "-dit", "--name", "alpine1", "--network", "alpine-net", "alpine", "ash")
    md.cli("run", "-dit", "--name", "alpine2", "--network", "alpine-net", "alpine", "ash")
    md.cli("run", "-dit", "--name", "alpine3", "alpine", "ash")
    md.cli("run", "-dit", "--name", "alpine4", "--network", "alpine-net", "alpine", "ash")
    md.cli("network", "connect", "bridge", "alpine4")
    bridge_members = json.loads(md.cli("network", "inspect", "bridge").out)[0]["Containers"]
    assert sorted(v["Name"] for v in bridge_members.values()) == ["alpine3", "alpine4"]
    # from alpine1: names on alpine-net resolve and answer; alpine3 does neither
    for target in ("alpine2", "alpine4", "alpine1"):
        assert pings(md, "alpine1", target), target
    r = md.cli("exec", "alpine1", "ping", "-c", "1", "-W", "1", "alpine3", check=False)
    assert r.code != 0 and "bad address 'alpine3'" in r.err
    alpine3_ip = ip_on(md, "alpine3", "bridge")
    assert not pings(md, "alpine1", alpine3_ip)
    # alpine4 is on both: alpine1 by name, alpine3 by IP
    assert pings(md, "alpine4", "alpine1")
    assert pings(md, "alpine4", alpine3_ip)
    eth = md.cli("exec", "alpine4", "ip", "-o", "addr").out
    assert re.search(r"eth0\s+inet 172\.18\.0\.\d+/16", eth) and re.search(r"eth1\s+inet 172\.17\.0\.\d+/16", eth)
    assert md.cli("exec", "alpine1", "cat", "/etc/resolv.conf").out.startswith("nameserver 127.0.0.11\n")
    r = md.cli("network", "rm", "alpine-net", check=False)
    assert r.code == 1 and "has active endpoints" in r.err and "alpine1" in r.err
    md.cli("stop", "-t", "0", "alpine1", "alpine2", "alpine3", "alpine4")
    md.cli("rm", "alpine1", "alpine2", "alpine3", "alpine4")
    md.cli("network", "rm", "alpine-net")
    assert "alpine-net" not in md.cli("network", "ls").out


def test_isolation_matrix_between_bridges(md: Sandbox, net_cleanup: None) -> None:
    md.cli("network", "create", "neta")
    md.cli("network", "create", "netb")
    where = {"a1": "neta", "a2": "neta", "b1": "netb", "d1": "bridge"}
    for name, net in where.items():
        md.cli("run", "-d", "--name", name, "--network", net, "busybox", "sleep", "300")
    ips = {n: ip_on(md, n, net) for n, net in where.items()}
    assert len({ips["a1"].rsplit(".", 2)[0], ips["b1"].rsplit(".", 2)[0], ips["d1"].rsplit(".", 2)[0]}) == 3
    assert pings(md, "a1", "a2") and pings(md, "a2", ips["a1"])
    for src, dst in [("a1", "b1"), ("b1", "a1"), ("a1", "d1"), ("d1", "a1"), ("b1", "d1"), ("d1", "b1")]:
        assert not pings(md, src, ips[dst]), f"{src} reached {dst} by IP"
        assert resolve(md, src, dst) == [], f"{src} resolved {dst}"
    # a TCP connection across bridges fails too, not only ICMP
    md.cli("exec", "-d", "b1", "nc", "-ll", "-p", "9000", "-e", "echo", "up")
    wait_for(lambda: md.cli("exec", "b1", "nc", "-w", "1", "127.0.0.1", "9000", check=False).out.strip() == "up",
             5, "b1's nc listening on 9000")  # else the refusal below would prove nothing
    assert md.cli("exec", "a1", "nc", "-w", "1", ips["b1"], "9000", check=False, input="x").code != 0
    rules = md.host("iptables-save").out
    assert re.search(r'-A MINIDOCK-ISOLATION-STAGE-2 -o br-[0-9a-f]{12} -m comment --comment "network neta" -j DROP', rules)


def test_create_options_subnet_range_gateway_ip_label_name_mtu(md: Sandbox, net_cleanup: None) -> None:
    md.cli("network", "create", "--subnet", "172.24.0.0/16", "--ip-range", "172.24.5.0/24",
           "--gateway", "172.24.5.111", "--label", "course=net101",
           "-o", "com.docker.network.bridge.name=labbr0", "-o", "com.docker.network.driver.mtu=1400", "lab")
    info = json.loads(md.cli("network", "inspect", "lab").out)[0]
    assert info["IPAM"]["Config"] == [{"Subnet": "172.24.0.0/16", "IPRange": "172.24.5.0/24", "Gateway": "172.24.5.111"}]
    assert info["Labels"] == {"course": "net101"}
    assert "mtu 1400" in md.host("ip", "link", "show", "labbr0").out
    md.cli("run", "-d", "--name", "server", "--network", "lab", "busybox", "sleep", "300")
    md.cli("run", "-d", "--name", "client", "--network", "lab", "--ip", "172.24.5.55", "busybox", "sleep", "300")
    server_ip = ip_on(md, "server", "lab")
    assert server_ip.startswith("172.24.5.") and server_ip != "172.24.5.111"  # from the ip-range
    assert ip_on(md, "client", "lab") == "172.24.5.55"
    assert md.cli("exec", "client", "ip", "route").out.startswith("default via 172.24.5.111 dev eth0")
    assert "mtu 1400" in md.cli("exec", "client", "ip", "link", "show", "eth0").out
    assert pings(md, "client", "server")


def test_icc_false_and_internal(md: Sandbox, net_cleanup: None) -> None:
    md.cli("network", "create", "-o", "com.docker.network.bridge.enable_icc=false", "noicc")
    md.cli("run", "-d", "--name", "n1", "--network", "noicc", "busybox", "sleep", "300")
    md.cli("run", "-d", "--name", "n2", "--network", "noicc", "busybox", "sleep", "300")
    assert not pings(md, "n1", ip_on(md, "n2", "noicc"))
    assert pings(md, "n1", md.inspect("n1", "{{(index .NetworkSettings.Networks \"noicc\").Gateway}}"))
    md.cli("network", "create", "--internal", "sealed")
    md.cli("run", "-d", "--name", "i1", "--network", "sealed", "busybox", "sleep", "300")
    md.cli("run", "-d", "--name", "i2", "--network", "sealed", "busybox", "sleep", "300")
    assert pings(md, "i1", "i2")
    assert md.cli("exec", "i1", "ip", "route").out.count("default") == 0
    assert not pings(md, "i1", "172.17.0.1")
    assert "-s " + json.loads(md.cli("network", "inspect", "sealed").out)[0]["IPAM"]["Config"][0]["Subnet"] \
        not in md.host("iptables-save", "-t", "nat").out


def test_connect_and_disconnect_live_with_dns_following(md: Sandbox, net_cleanup: None) -> None:
    md.cli("network", "create", "front")
    md.cli("network", "create", "back")
    md.cli("run", "-d", "--name", "web", "--network", "front", "busybox", "sleep", "300")
    md.cli("run", "-d", "--name", "db", "--network", "back", "busybox", "sleep", "300")
    assert resolve(md, "web", "db") == []
    md.cli("network", "connect", "--alias", "database", "back", "web")
    assert "eth1" in md.cli("exec", "web", "ip", "-o", "link").out
    db_ip = ip_on(md, "db", "back")
    assert resolve(md, "web", "db") == [db_ip]
    assert resolve(md, "db", "database") == [ip_on(md, "web", "back")]
    assert pings(md, "web", "db")
    md.cli("network", "disconnect", "back", "web")
    assert "eth1" not in md.cli("exec", "web", "ip", "-o", "link").out
    assert resolve(md, "web", "db") == []
    assert resolve(md, "db", "database") == []


def test_aliases_round_robin_hostnames_and_ptr(md: Sandbox, net_cleanup: None) -> None:
    md.cli("network", "create", "svc")
    md.cli("run", "-d", "--name", "w1", "--network", "svc", "--network-alias", "web", "busybox", "sleep", "300")
    md.cli("run", "-d", "--name", "w2", "--net", "svc", "--net-alias", "web", "--hostname", "second", "busybox",
           "sleep", "300")
    md.cli("run", "-d", "--name", "asker", "--network", "svc", "busybox", "sleep", "300")
    both = sorted([ip_on(md, "w1", "svc"), ip_on(md, "w2", "svc")])
    assert sorted(resolve(md, "asker", "web")) == both
    firsts = {resolve(md, "asker", "web")[0] for _ in range(6)}
    assert firsts == set(both)  # the order rotates
    assert resolve(md, "asker", "second") == [ip_on(md, "w2", "svc")]
    ptr = md.cli("exec", "asker", "nslookup", ip_on(md, "w1", "svc")).out
    assert "w1" in ptr
    r = md.cli("run", "--rm", "--network-alias", "x", "busybox", "true", check=False)
    assert r.code == 125 and "network-scoped aliases are only supported for user-defined networks" in r.err


def test_dns_forwards_other_names_upstream_over_udp_and_tcp(md: Sandbox, net_cleanup: None, upstream: str) -> None:
    md.cli("network", "create", "fwd")
    md.cli("run", "-d", "--name", "tool", "--network", "fwd", "ubuntu", "sleep", "300")
    udp = md.cli("exec", "tool", "dig", "+short", "+time=3", "example.test").out.strip()
    tcp = md.cli("exec", "tool", "dig", "+short", "+tcp", "+time=3", "example.test").out.strip()
    assert udp == tcp == "198.51.100.77"
    assert md.cli("exec", "tool", "dig", "+short", "+tcp", "tool").out.strip() == ip_on(md, "tool", "fwd")
    assert md.cli("exec", "tool", "dig", "+short", "AAAA", "tool").out.strip() == ""
    nx = md.cli("exec", "tool", "dig", "+time=3", "nosuch.test").out
    assert "status: NXDOMAIN" in nx
    # --dns overrides the upstreams of one container; the stub still answers names
    md.cli("run", "-d", "--name", "lonely", "--network", "fwd", "--dns", "198.51.100.99", "ubuntu", "sleep", "300")
    r = md.cli("exec", "lonely", "dig", "+time=6", "+tries=1", "example.test", check=False).out
    assert "198.51.100.77" not in r and "SERVFAIL" in r
    assert md.cli("exec", "lonely", "dig", "+short", "tool").out.strip() == ip_on(md, "tool", "fwd")


def test_stub_coexists_with_a_resolver_on_the_hosts_port_53(md: Sandbox, net_cleanup: None) -> None:
    squatter = subprocess.Popen(["nsenter", f"--net=/run/netns/{md.name}", sys.executable, "-c",
                                 "import socket,time; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM);"
                                 "s.bind(('0.0.0.0', 53)); print('bound', flush=True); time.sleep(60)"],
                                stdout=subprocess.PIPE, text=True)
    try:
        assert squatter.stdout is not None and squatter.stdout.readline().strip() == "bound"
        md.cli("network", "create", "busy53")
        md.cli("run", "-d", "--name", "q1", "--network", "busy53", "busybox", "sleep", "300")
        md.cli("run", "-d", "--name", "q2", "--network", "busy53", "busybox", "sleep", "300")
        assert resolve(md, "q1", "q2") == [ip_on(md, "q2", "busy53")]
        # the stub is not reachable from the host: nothing of ours listens there
        assert "127.0.0.11:53" not in md.host("ss", "-lnu").out
    finally:
        squatter.kill()
        squatter.wait()


ERRORS = [
    (("network", "create", "bridge"), "operation is not permitted on predefined bridge network"),
    (("network", "create", "--subnet", "300.1.0.0/16", "badnet"), "invalid subnet"),
    (("network", "create", "--subnet", "172.17.0.0/16", "overlap"), "Pool overlaps with other one on this address space"),
    (("network", "create", "--subnet", "10.9.0.0/16", "--gateway", "10.10.0.1", "gwout"), "invalid gateway"),
    (("network", "create", "--subnet", "10.9.0.0/16", "--ip-range", "10.10.0.0/24", "rngout"), "invalid ip-range"),
    (("network", "create", "-d", "overlay2000", "drv"), 'plugin "overlay2000" not found'),
    (("network", "create", "-o", "com.docker.network.driver.mtu=abc", "mtu"), "invalid MTU"),
    (("network", "create", "-o", "com.docker.network.bridge.enable_icc=maybe", "icc"), "must be true or false"),
    (("network", "create", "bad/name"), "Invalid network name"),
    (("run", "-d", "--network", "fixed", "--ip", "10.99.0.5", "busybox", "true"), "no configured subnet"),
    (("run", "-d", "--network", "fixed", "--ip", "192.168.250.10", "busybox", "true"), "Address already in use"),
    (("run", "-d", "--ip", "172.17.0.50", "busybox", "true"), "user specified IP address is supported on user defined networks only"),
    (("network", "rm", "fixed"), "has active endpoints (holder)"),
    (("network", "connect", "host", "holder"), "container cannot be disconnected from host network or connected to host network"),
    (("network", "connect", "none", "holder"), "private (none) mode"),
    (("network", "connect", "nosuchnet", "holder"), "network nosuchnet not found"),
    (("network", "connect", "fixed", "holder"), "endpoint with name holder already exists in network fixed"),
]


def test_refused_requests_change_nothing(md: Sandbox, net_cleanup: None) -> None:
    md.cli("network", "create", "--subnet", "192.168.250.0/24", "fixed")
    md.cli("run", "-d", "--name", "holder", "--network", "fixed", "--ip", "192.168.250.10", "busybox", "sleep", "300")
    before = md.snapshot()
    for args, message in ERRORS:
        r = md.cli(*args, check=False)
        assert r.code != 0, args
        assert message in r.err, (args, r.err)
        assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err, r.err
        assert md.snapshot() == before, args


def test_names_follow_start_and_stop(md: Sandbox, net_cleanup: None) -> None:
    md.cli("network", "create", "live")
    md.cli("run", "-d", "--name", "watcher", "--network", "live", "busybox", "sleep", "300")
    md.cli("run", "-d", "--name", "flaky", "--network", "live", "busybox", "sleep", "300")
    assert resolve(md, "watcher", "flaky") == [ip_on(md, "flaky", "live")]
    md.cli("stop", "-t", "0", "flaky")
    assert resolve(md, "watcher", "flaky") == []
    md.cli("start", "flaky")
    assert resolve(md, "watcher", "flaky") == [ip_on(md, "flaky", "live")]


def test_legacy_link_on_the_default_bridge(md: Sandbox, net_cleanup: None) -> None:
    md.cli("run", "-d", "--name", "db", "busybox", "sleep", "300")
    md.cli("run", "-d", "--name", "app", "--link", "db:database", "busybox", "sleep", "300")
    db_ip = md.ip_of("db")
    hosts = md.cli("exec", "app", "cat", "/etc/hosts").out
    assert re.search(rf"^{re.escape(db_ip)}\tdatabase [0-9a-f]{{12}} db$", hosts, re.M)
    assert pings(md, "app", "database")
    assert not pings(md, "db", "app")  # links are one-way, and the default bridge has no DNS


def test_container_network_mode_shares_one_stack(md: Sandbox, net_cleanup: None) -> None:
    """`--network container:web`: a sidecar sees web's eth0, answers on its address, resolves its names."""
    md.cli("network", "create", "shared")
    md.cli("run", "-d", "--name", "web", "--network", "shared", "busybox", "sleep", "300")
    md.cli("run", "-d", "--name", "peer", "--network", "shared", "busybox", "sleep", "300")
    md.cli("run", "-d", "--name", "sidecar", "--network", "container:web", "busybox",
           "nc", "-ll", "-p", "7000", "-e", "echo", "from-sidecar")
    web_ip = ip_on(md, "web", "shared")
    web_id = md.inspect("web", "{{.Id}}")
    assert md.inspect("sidecar", "{{.HostConfig.NetworkMode}}") == f"container:{web_id}"
    assert md.inspect("sidecar", "{{json .NetworkSettings.Networks}}") == "{}"
    # one stack: the same eth0 and address, the same hostname and name server
    assert f"inet {web_ip}/" in md.cli("exec", "sidecar", "ip", "-4", "addr", "show", "eth0").out
    assert md.cli("exec", "sidecar", "hostname").out == md.cli("exec", "web", "hostname").out
    assert md.cli("exec", "sidecar", "cat", "/etc/resolv.conf").out.startswith("nameserver 127.0.0.11\n")
    assert resolve(md, "sidecar", "peer") == [ip_on(md, "peer", "shared")]
    # the sidecar's listener answers on web's address, from a neighbour and from web's own loopback
    assert md.cli("exec", "peer", "nc", "-w", "2", web_ip, "7000").out.strip() == "from-sidecar"
    assert md.cli("exec", "web", "nc", "-w", "2", "127.0.0.1", "7000").out.strip() == "from-sidecar"
    assert not re.search(r"md-sidecar\b", md.host("ip", "netns", "list").out)
    # what shapes the stack belongs to its owner: Docker's refusals, nothing created
    before = md.snapshot()
    for opts, message in [
        (["--hostname", "h"], "conflicting options: hostname and the network mode"),
        (["-p", "8080:80"], "conflicting options: port publishing and the container type network mode"),
        (["--dns", "192.0.2.1"], "conflicting options: dns and the network mode"),
        (["--add-host", "a:192.0.2.1"], "conflicting options: custom host-to-IP mapping and the network mode"),
        (["--expose", "80"], "conflicting options: port exposing and the container type network mode"),
        (["--network-alias", "a"], "network-scoped aliases are only supported for user-defined networks"),
    ]:
        r = md.cli("run", "--rm", "--network", "container:web", *opts, "busybox", "true", check=False)
        assert r.code == 125 and message in r.err and len(r.err.strip().splitlines()) == 1, (opts, r)
    r = md.cli("network", "connect", "shared", "sidecar", check=False)
    assert r.code == 1 and "container sharing network namespace with another container or host cannot be " \
        "connected to any other network" in r.err, r
    assert md.snapshot() == before
    # stopping the sidecar leaves web's namespace alone; a stopped owner cannot be joined
    md.cli("stop", "-t", "0", "sidecar")
    assert md.cli("exec", "web", "ip", "-4", "addr", "show", "eth0").code == 0
    assert pings(md, "peer", web_ip)
    md.cli("stop", "-t", "0", "web")
    r = md.cli("start", "sidecar", check=False)
    assert r.code == 1 and f"cannot join network of a non running container: {web_id}" in r.err, r
    md.cli("start", "web")
    md.cli("start", "sidecar")
    assert md.cli("exec", "peer", "nc", "-w", "2", ip_on(md, "web", "shared"), "7000").out.strip() == "from-sidecar"

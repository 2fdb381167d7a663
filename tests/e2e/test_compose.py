"""Scenario E: the compose files of the hands-on seed, run verbatim.

Each test writes a file into a folder named like a project, runs
`minidock compose` there, checks what the client printed (a real TCP
connection or a real name-resolution failure) and what the kernel and the
daemon hold, and ends with `down`, after which nothing of the project is left.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator

import pytest

from minidock.demo import SEED_COMPOSE
from tests.sandbox import MINIDOCK, Result, Sandbox

SEED = SEED_COMPOSE  # the walkthrough's file, as the demo shows it


class Project:
    def __init__(self, md: Sandbox, name: str, text: str) -> None:
        self.md, self.name = md, name
        self.dir = os.path.join(tempfile.mkdtemp(prefix="compose-"), name)
        os.makedirs(self.dir)
        with open(os.path.join(self.dir, "docker-compose.yml"), "w") as f:
            f.write(text)

    def __call__(self, *args: str, check: bool = True, timeout: float = 60) -> Result:
        p = subprocess.run([*MINIDOCK, "compose", *args], capture_output=True, text=True, cwd=self.dir,
                           env=self.md.env, timeout=timeout)
        r = Result(p.returncode, p.stdout, p.stderr)
        assert r.code == 0 or not check, f"compose {args}: {r}\n{self.md.daemon_log()}"
        return r

    def output_of(self, container: str) -> str:
        self.md.cli("wait", container, timeout=30)
        return logs(self.md, container)

    def down(self) -> None:
        self("down")
        assert self.name not in self.md.cli("network", "ls").out
        assert self.md.cli("ps", "-aq").out == ""


@pytest.fixture
def project(md: Sandbox) -> Iterator[list[Project]]:
    made: list[Project] = []
    yield made
    for p in made:
        p("down", check=False)


def new(md: Sandbox, made: list[Project], name: str, text: str) -> Project:
    p = Project(md, name, text)
    made.append(p)
    return p


def logs(md: Sandbox, container: str) -> str:
    """Both of the container's streams: `logs` writes what it wrote on stderr (nc -v) to stderr, as Docker's."""
    r = md.cli("logs", container)
    return r.out + r.err


def poll(read: Callable[[], str], expect: str, tries: int = 50) -> str:
    """`read()` until its text contains `expect` (a server starting), at most `tries` times."""
    text = ""
    for _ in range(tries):
        text = read()
        if expect in text:
            break
        time.sleep(0.1)
    return text


def ip_in(md: Sandbox, container: str) -> str:
    return md.inspect(container, "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}")


SUCCEEDED = re.compile(r"Connection to server_container \((172\.\d+\.\d+\.\d+)\) 11111 port \[tcp/\*\] succeeded!")


def test_e1_seed_file_default_network_labels_and_service_name(md: Sandbox, project: list[Project]) -> None:
    p = new(md, project, "seed", SEED)
    r = p("up", timeout=60)
    m = SUCCEEDED.search(r.out)
    assert m, r
    assert "client_container  | Connection to server_container" in r.out
    assert "client_container exited with code 0" in r.out
    assert r.err.count("root filesystem") == 1  # told once, not per container
    net = md.cli("network", "inspect", "seed_default", "-f",
                 '{{.Driver}} {{index .Labels "com.docker.compose.project"}} '
                 '{{index .Labels "com.docker.compose.network"}} {{range .IPAM.Config}}{{.Subnet}}{{end}}').out.split()
    assert net[:3] == ["bridge", "seed", "default"]
    assert m.group(1).rsplit(".", 2)[0] == net[3].rsplit(".", 2)[0]  # the server's address is on that subnet
    assert net[3] != "172.17.0.0/16"
    p.down()
    # the service name resolves as well as the container name
    p2 = new(md, project, "byservice", SEED.replace('"nc", "-vz", "server_container"', '"nc", "-vz", "server"'))
    assert "Connection to server (" in p2("up").out
    p2.down()


def test_e2_both_services_on_my_network_default_stays_empty(md: Sandbox, project: list[Project]) -> None:
    text = SEED.replace('entrypoint: ["nc", "-l"', 'networks: [my-network]\n    entrypoint: ["nc", "-l"') \
        .replace("depends_on: [server]", "depends_on: [server]\n    networks: [my-network]") + \
        "networks:\n  my-network:\n"
    p = new(md, project, "mynet", text)
    assert SUCCEEDED.search(p("up").out)
    assert md.cli("network", "inspect", "mynet_default", "-f", "{{len .Containers}}").out.strip() == "0"
    assert md.inspect("server_container", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}") == \
        "mynet_my-network"
    p.down()


def test_e3_server_on_another_network_does_not_resolve(md: Sandbox, project: list[Project]) -> None:
    text = SEED.replace('entrypoint: ["nc", "-l"', 'networks: [my-network]\n    entrypoint: ["nc", "-l"') + \
        "networks:\n  my-network:\n"
    p = new(md, project, "apart", text)
    p("up", "-d")
    out = p.output_of("client_container")
    assert "Temporary failure in name resolution" in out
    p.down()


def test_e4_server_on_two_networks_clients_on_one_each(md: Sandbox, project: list[Project]) -> None:
    text = """\
services:
  server:
    container_name: server_container
    entrypoint: ["nc", "-lk", "11111"]
    networks: [my-network-a, my-network-b]
  client-a:
    container_name: client_a
    depends_on: [server]
    entrypoint: ["sh", "-c", "for i in $$(seq 50); do nc -vz server_container 11111 && break; sleep 0.1; done;
                  sleep 300"]
    networks: [my-network-a]
  client-b:
    container_name: client_b
    depends_on: [server]
    entrypoint: ["sh", "-c", "for i in $$(seq 50); do nc -vz server_container 11111 && break; sleep 0.1; done;
                  sleep 300"]
    networks: [my-network-b]
networks:
  my-network-a:
  my-network-b:
"""
    p = new(md, project, "twonets", text)
    p("up", "-d")
    for client in ("client_a", "client_b"):
        assert SUCCEEDED.search(poll(lambda c=client: logs(md, c), "succeeded")), client
    subnets = {md.cli("network", "inspect", n, "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}}").out.strip()
               for n in ("twonets_my-network-a", "twonets_my-network-b")}
    assert len(subnets) == 2
    b_ip = ip_in(md, "client_b")
    assert md.cli("exec", "client_a", "ping", "-c", "1", "-W", "1", b_ip, check=False).code != 0
    assert md.cli("exec", "client_a", "getent", "hosts", "client_b", check=False).code != 0
    p.down()


def test_e5_ipam_ip_range_gateway_and_pinned_address(md: Sandbox, project: list[Project]) -> None:
    text = """\
version: '3'
services:
  server:
    container_name: server_container
    entrypoint: ["nc", "-lk", "11111"]
    networks: [my-network]
  client:
    container_name: client_container
    depends_on: [server]
    entrypoint: ["sh", "-c", "nc -vz server_container 11111; sleep 300"]
    networks:
      my-network:
        ipv4_address: 172.24.5.55
networks:
  my-network:
    ipam:
      driver: default
      config:
        - subnet: 172.24.0.0/16
          ip_range: 172.24.5.0/24
          gateway: 172.24.5.111
"""
    p = new(md, project, "ipam", text)
    p("up", "-d")
    server_ip = ip_in(md, "server_container")
    assert server_ip.startswith("172.24.5.") and server_ip != "172.24.5.111"
    assert ip_in(md, "client_container") == "172.24.5.55"
    assert "default via 172.24.5.111" in md.cli("exec", "client_container", "ip", "route").out
    assert md.cli("exec", "client_container", "ping", "-c", "1", "-W", "2", server_ip).code == 0
    p.down()


def test_compose_dual_stack_network_and_a_pinned_ipv6_address(md: Sandbox, project: list[Project]) -> None:
    text = """\
services:
  server:
    container_name: server6
    entrypoint: ["sleep", "300"]
    networks:
      v6net:
        ipv6_address: fd00:c6::66
  client:
    container_name: client6
    entrypoint: ["sleep", "300"]
    networks: [v6net]
networks:
  v6net:
    enable_ipv6: true
    ipam:
      config:
        - subnet: 172.26.0.0/16
        - subnet: fd00:c6::/64
"""
    p = new(md, project, "six", text)
    p("up", "-d")
    assert md.inspect("server6", "{{range .NetworkSettings.Networks}}{{.GlobalIPv6Address}}{{end}}") == "fd00:c6::66"
    r = md.cli("exec", "client6", "ping", "-6", "-c", "1", "-W", "2", "server")  # the service name, over IPv6
    assert "(fd00:c6::66)" in r.out
    p.down()


def test_e6_ports_reach_the_server_from_the_host(md: Sandbox, project: list[Project]) -> None:
    text = """\
services:
  server:
    container_name: server_container
    entrypoint: ["sh", "-c", "echo hello-from-compose | nc -l 11111"]
    ports: ["11111:11111"]
"""
    p = new(md, project, "ports", text)
    p("up", "-d")
    assert "0.0.0.0:11111->11111/tcp" in p("ps").out
    got = poll(lambda: md.host("nc", "-w", "2", "localhost", "11111", check=False).out, "hello-from-compose",
               tries=20)
    assert got.strip() == "hello-from-compose"
    p.down()


def test_e7_network_mode_host_and_its_refusal_with_ports(md: Sandbox, project: list[Project]) -> None:
    text = """\
services:
  web:
    container_name: hostweb
    network_mode: host
    entrypoint: ["ip", "-o", "link"]
"""
    p = new(md, project, "hostmode", text)
    out = p("up").out
    assert "minidock0" in out  # the host's own interfaces
    p.down()
    bad = new(md, project, "hostports", text.replace("network_mode: host", "network_mode: host\n    ports: ['80:80']"))
    before = md.snapshot()
    r = bad("up", check=False)
    assert r.code != 0
    assert '"host" network_mode is incompatible with port_bindings' in r.err
    assert md.snapshot() == before


def test_e8_extra_hosts_land_in_etc_hosts(md: Sandbox, project: list[Project]) -> None:
    text = """\
services:
  client:
    container_name: client_container
    extra_hosts: ["somehost:192.168.0.7"]
    entrypoint: ["getent", "hosts", "somehost"]
"""
    p = new(md, project, "extra", text)
    assert "192.168.0.7     somehost" in p("up").out
    p.down()


def test_e9_image_and_build_are_told_once(md: Sandbox, project: list[Project]) -> None:
    text = """\
services:
  a:
    image: nginx:latest
    entrypoint: ["true"]
  b:
    image: nginx:latest
    entrypoint: ["true"]
  c:
    build: .
    entrypoint: ["true"]
"""
    p = new(md, project, "images", text)
    r = p("up")
    assert r.err.count("nginx") == 1, r.err
    assert "build: is not done by minidock" in r.err
    assert r.out.count("exited with code 0") == 3
    p.down()


def test_a_bad_file_names_the_key_and_line_and_creates_nothing(md: Sandbox, project: list[Project]) -> None:
    p = new(md, project, "bad", SEED + "    colour: blue\n")
    before = md.snapshot()
    r = p("up", check=False)
    assert r.code == 1
    assert r.err.strip() == "services.client.colour is not supported (line 10)"
    assert md.snapshot() == before


def test_network_mode_service_shares_the_servers_stack(md: Sandbox, project: list[Project]) -> None:
    """`network_mode: service:server`: the sidecar reaches the server on 127.0.0.1 and answers on its address."""
    text = """\
services:
  client:
    container_name: client_container
    depends_on: [sidecar]
    entrypoint: ["sh", "-c", "for i in $$(seq 50); do nc -vz server_container 11111 && break; sleep 0.1; done;
                  for i in $$(seq 20); do nc -w 2 server 22222 && break; sleep 0.2; done; sleep 300"]
  sidecar:
    container_name: sidecar_container
    network_mode: service:server
    entrypoint: ["sh", "-c", "for i in $$(seq 50); do nc -vz 127.0.0.1 11111 && break; sleep 0.1; done;
                  exec busybox nc -ll -p 22222 -e echo from-sidecar"]
  server:
    container_name: server_container
    entrypoint: ["nc", "-lk", "11111"]
"""
    p = new(md, project, "sidecar", text)
    p("up", "-d")
    server_id = md.inspect("server_container", "{{.Id}}")
    assert md.inspect("sidecar_container", "{{.HostConfig.NetworkMode}}") == f"container:{server_id}"
    # the sidecar was started after the server (service: implies depends_on) and shares its loopback.
    # "started" is not "listening" (as with Docker: depends_on waits for the start, not the exec), so
    # each asks until the server's nc is up
    assert "Connection to 127.0.0.1 11111 port [tcp/*] succeeded!" in poll(
        lambda: logs(md, "sidecar_container"), "succeeded")
    out = poll(lambda: logs(md, "client_container"), "from-sidecar")
    assert SUCCEEDED.search(out) and "from-sidecar" in out, out
    assert md.cli("exec", "sidecar_container", "hostname").out == md.cli("exec", "server_container", "hostname").out
    assert not re.search(r"md-sidecar_container\b", md.host("ip", "netns", "list").out)
    p.down()
    # a service the file does not have, or an option the owner's stack decides, is refused before anything is made
    for bad, message in [
        (text.replace("service:server", "service:nosuch"),
         'services.sidecar.network_mode service "sidecar" depends on undefined service "nosuch"'),
        (text.replace("network_mode: service:server", "network_mode: service:server\n    ports: ['80:80']"),
         "services.sidecar.ports conflicting options: port publishing and the container type network mode"),
    ]:
        before = md.snapshot()
        r = new(md, project, "badsidecar", bad)("up", "-d", check=False)
        assert r.code == 1 and message in r.err and len(r.err.strip().splitlines()) == 1, r
        assert md.snapshot() == before


def test_external_network_is_used_and_left_by_down(md: Sandbox, project: list[Project]) -> None:
    text = """\
services:
  server:
    container_name: server_container
    entrypoint: ["nc", "-lk", "11111"]
    networks: [outer]
networks:
  outer:
    external: true
    name: lab-shared
"""
    p = new(md, project, "ext", text)
    before = md.snapshot()
    r = p("up", "-d", check=False)
    assert r.code == 1 and "network lab-shared declared as external, but could not be found" in r.err, r
    assert md.snapshot() == before
    md.cli("network", "create", "lab-shared")
    try:
        p("up", "-d")
        assert md.inspect("server_container", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}") == \
            "lab-shared"
        assert md.cli("network", "inspect", "ext_default", "-f", "{{len .Containers}}").out.strip() == "0"
        # a container outside the project, on the same network, reaches the service by name
        r = md.cli("run", "--rm", "--network", "lab-shared", "host", "nc", "-vz", "server_container", "11111")
        out = r.out + r.err
        assert SUCCEEDED.search(out), out
        p("down")
        assert md.cli("ps", "-aq").out == ""
        assert "lab-shared" in md.cli("network", "ls").out  # not the project's to remove
        assert "ext_default" not in md.cli("network", "ls").out
    finally:
        md.cli("network", "rm", "lab-shared", check=False)


def test_project_name_option_config_and_logs_follow(md: Sandbox, project: list[Project]) -> None:
    import yaml

    text = """\
services:
  ticker:
    entrypoint: ["sh", "-c", "for i in 1 2 3; do echo tick$$i; sleep 0.3; done"]
  quiet:
    entrypoint: ["sh", "-c", "echo only-once"]
"""
    p = new(md, project, "folder", text)
    cfg = yaml.safe_load(p("-p", "course1", "config").out)
    assert cfg["name"] == "course1"
    assert cfg["networks"]["default"]["name"] == "course1_default"
    assert cfg["services"]["ticker"]["networks"] == {"default": None}
    assert yaml.safe_load(p("config").out)["name"] == "folder"  # the folder's name by default
    p("-p", "course1", "up", "-d")
    assert "course1_default" in md.cli("network", "ls").out and "folder_default" not in md.cli("network", "ls").out
    assert {c.split()[0] for c in p("-p", "course1", "ps", "-a").out.splitlines()[1:]} == \
        {"course1-ticker-1", "course1-quiet-1"}
    # -f follows until the containers exit, each line prefixed with its container
    r = p("-p", "course1", "logs", "-f", "ticker", timeout=20)
    assert [ln for ln in r.out.splitlines()] == [f"course1-ticker-1  | tick{i}" for i in (1, 2, 3)], r
    assert re.search(r"^course1-quiet-1 +\| only-once$", p("-p", "course1", "logs").out, re.M)
    p("-p", "course1", "down")
    assert "course1" not in md.cli("network", "ls").out and md.cli("ps", "-aq").out == ""


def test_aliases_hostname_internal_labels_and_dns(md: Sandbox, project: list[Project]) -> None:
    text = """\
services:
  server:
    container_name: server_container
    hostname: srv
    entrypoint: ["nc", "-lk", "11111"]
    networks:
      back:
        aliases: [database, db.internal]
  client:
    container_name: client_container
    depends_on: [server]
    entrypoint: ["sh", "-c", "for n in database db.internal srv server; do for i in $$(seq 50); do
                  nc -vz $$n 11111 2>&1 && break; sleep 0.1; done; done; sleep 300"]
    networks: [back]
  legacy:
    container_name: legacy_container
    network_mode: bridge
    dns: [192.0.2.53]
    entrypoint: ["sleep", "300"]
networks:
  back:
    internal: true
    labels:
      course: net101
"""
    p = new(md, project, "names", text)
    p("up", "-d")
    out = poll(lambda: logs(md, "client_container"), "Connection to server ")
    server_ip = ip_in(md, "server_container")
    for name in ("database", "db.internal", "srv", "server"):
        assert f"Connection to {name} ({server_ip}) 11111 port [tcp/*] succeeded!" in out, (name, out)
    assert md.cli("exec", "server_container", "hostname").out.strip() == "srv"
    info = md.cli("network", "inspect", "names_back", "-f",
                  '{{.Internal}} {{index .Labels "course"}} {{index .Labels "com.docker.compose.network"}}').out
    assert info.split() == ["true", "net101", "back"]
    assert "default" not in md.cli("exec", "client_container", "ip", "route").out  # internal: no way out
    assert md.cli("exec", "legacy_container", "cat", "/etc/resolv.conf").out.startswith("nameserver 192.0.2.53\n")
    p.down()

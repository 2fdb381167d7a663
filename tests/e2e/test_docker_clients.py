"""Docker's own clients drive minidock: the `docker` CLI and docker-py,
pointed at a sandboxed daemon's socket with DOCKER_HOST."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from tests.e2e.clients import DOCKER, docker, needs_cli
from tests.e2e.test_terminal import Terminal
from tests.sandbox import Sandbox

HOST_IP = "198.51.100.1"



@pytest.fixture(scope="module")
def outside(md: Sandbox) -> str:
    return md.add_outside(HOST_IP, "198.51.100.2")


@needs_cli
def test_docker_version_negotiates_with_minidock(md: Sandbox) -> None:
    r = docker(md, "version", "--format", "{{.Server.APIVersion}} {{.Server.Platform.Name}}")
    assert r.out.split() == ["1.47", "minidock", "0.1.0"]
    assert r.err == ""  # no "Unsolicited response" from a HEAD answered with a body


@needs_cli
def test_alpine_net_walkthrough_typed_with_docker(md: Sandbox, net_cleanup: None) -> None:
    docker(md, "network", "create", "--driver", "bridge", "alpine-net")
    assert "alpine-net" in docker(md, "network", "ls").out
    for name, net in (("alpine1", "alpine-net"), ("alpine2", "alpine-net"), ("alpine3", "bridge"),
                      ("alpine4", "alpine-net")):
        docker(md, "run", "-dit", "--name", name, "--network", net, "alpine", "ash")
    docker(md, "network", "connect", "bridge", "alpine4")
    names = docker(md, "network", "inspect", "bridge", "-f", "{{range .Containers}}{{.Name}} {{end}}").out.split()
    assert sorted(names) == ["alpine3", "alpine4"]
    for target in ("alpine2", "alpine4", "alpine1"):
        assert docker(md, "exec", "alpine1", "ping", "-c", "1", "-W", "2", target).code == 0, target
    r = docker(md, "exec", "alpine1", "ping", "-c", "1", "-W", "1", "alpine3", check=False)
    assert r.code != 0 and "bad address 'alpine3'" in r.err
    alpine3 = docker(md, "inspect", "-f", "{{.NetworkSettings.Networks.bridge.IPAddress}}", "alpine3").out.strip()
    assert docker(md, "exec", "alpine1", "ping", "-c", "1", "-W", "1", alpine3, check=False).code != 0
    assert docker(md, "exec", "alpine4", "ping", "-c", "1", "-W", "2", "alpine1").code == 0
    assert docker(md, "exec", "alpine4", "ping", "-c", "1", "-W", "2", alpine3).code == 0
    assert sorted(docker(md, "ps", "--format", "{{.Names}}").out.split()) == ["alpine1", "alpine2", "alpine3", "alpine4"]
    docker(md, "stop", "-t", "0", "alpine1", "alpine2", "alpine3", "alpine4")
    docker(md, "rm", "alpine1", "alpine2", "alpine3", "alpine4")
    docker(md, "network", "rm", "alpine-net")
    assert "alpine-net" not in docker(md, "network", "ls").out


@needs_cli
def test_docker_run_it_and_exec_it_in_a_terminal(md: Sandbox, net_cleanup: None) -> None:
    env = {**os.environ, "DOCKER_HOST": f"unix://{md.socket}"}
    t = Terminal(md, "run", "-it", "--rm", "--name", "tty1", "busybox", "sh", program=[DOCKER or "docker"], env=env)
    t.expect("# ")
    t.send("tty; echo hello-$((6*7))\r")
    t.expect("hello-42")
    assert "/dev/pts/0" in t.seen.decode()
    t.send("exit 3\r")
    assert t.wait() == 3
    assert docker(md, "ps", "-aq").out == ""  # --rm: removed, as `docker run` waited for
    docker(md, "run", "-dit", "--name", "shell", "busybox", "sh")
    t = Terminal(md, "exec", "-it", "shell", "sh", program=[DOCKER or "docker"], env=env)
    t.expect("# ")
    t.send("hostname; exit 0\r")
    t.expect(docker(md, "inspect", "-f", "{{.Config.Hostname}}", "shell").out.strip())
    assert t.wait() == 0


@needs_cli
def test_docker_run_i_pipes_stdin_and_returns_the_exit_code(md: Sandbox, net_cleanup: None) -> None:
    assert docker(md, "run", "-i", "--rm", "busybox", "cat", input="through the pipe\n").out == "through the pipe\n"
    assert docker(md, "run", "--rm", "busybox", "sh", "-c", "exit 7", check=False).code == 7


@needs_cli
def test_docker_run_p_is_reached_from_outside(md: Sandbox, outside: str, net_cleanup: None) -> None:
    docker(md, "run", "-d", "--name", "web", "-p", "8080:80", "busybox", "nc", "-ll", "-p", "80", "-e", "echo",
           "hello-outside")
    assert docker(md, "port", "web").out.strip() == "80/tcp -> 0.0.0.0:8080"
    out = ""
    for _ in range(30):
        out = md.in_ns(outside, "nc", "-n", "-w", "2", HOST_IP, "8080", check=False).out
        if out:
            break
        time.sleep(0.1)  # the server's nc may not listen yet: the start does not wait for it
    assert out.strip() == "hello-outside"


@needs_cli
def test_refused_commands_print_dockers_messages(md: Sandbox, net_cleanup: None) -> None:
    docker(md, "run", "-d", "--name", "taken", "busybox", "sleep", "300")
    cases = [
        (["network", "rm", "bridge"], 1, "Error response from daemon: bridge is a pre-defined network and cannot be removed"),
        (["run", "--network", "host", "-p", "80:80", "busybox", "true"], 125,
         'Error response from daemon: "host" network_mode is incompatible with port_bindings'),
        (["run", "--name", "taken", "busybox", "true"], 125, 'Error response from daemon: Conflict. The container name "/taken" is already in use'),
        (["network", "create", "--subnet", "10.0.0.0/33", "bad"], 1, "Error response from daemon: invalid subnet 10.0.0.0/33"),
        (["exec", "nosuch", "true"], 1, "Error response from daemon: No such container: nosuch"),
        (["run", "--ip", "172.17.0.9", "busybox", "true"], 125,
         "Error response from daemon: user specified IP address is supported on user defined networks only"),
    ]
    for args, code, message in cases:
        r = docker(md, *args, check=False)
        assert r.code == code and message in r.err, (args, r)
    r = docker(md, "pull", "dockerpytest_does_not_exist", check=False, timeout=20)
    assert r.code == 1 and "pull access denied for dockerpytest_does_not_exist, repository does not exist" in r.err
    r = docker(md, "run", "--rm", "dockerpytest_does_not_exist", check=False, timeout=20)
    assert r.code == 125 and "Unable to find image 'dockerpytest_does_not_exist:latest' locally" in r.err, r


def test_docker_py_drives_networks_containers_exec_and_ports(md: Sandbox, net_cleanup: None) -> None:
    docker_py = pytest.importorskip("docker", reason="docker-py is not installed (pip install 'docker>=7')")
    client = docker_py.DockerClient(base_url=f"unix://{md.socket}", version="auto")
    assert client.ping() is True
    net = client.networks.create("pynet", driver="bridge")
    assert net.attrs["IPAM"]["Config"][0]["Gateway"].endswith(".0.1")
    server = client.containers.run("busybox", ["nc", "-ll", "-p", "80", "-e", "echo", "from-py"], detach=True,
                                   name="pyserver", network="pynet", ports={"80/tcp": 8088})
    client.containers.run("busybox", ["sleep", "300"], detach=True, name="pyclient", network="pynet")
    server.reload()
    assert server.status == "running"
    assert server.attrs["NetworkSettings"]["Ports"]["80/tcp"] == [{"HostIp": "0.0.0.0", "HostPort": "8088"}]
    code, output = client.containers.get("pyclient").exec_run(["nc", "-w", "2", "pyserver", "80"])
    assert (code, output.strip()) == (0, b"from-py")
    assert md.host("nc", "-w", "2", "127.0.0.1", "8088").out.strip() == "from-py"
    assert sorted(c.name for c in client.containers.list()) == ["pyclient", "pyserver"]
    assert client.containers.run("busybox", ["echo", "ran"], remove=True) == b"ran\n"
    with pytest.raises(docker_py.errors.NotFound, match="No such container: nosuch"):
        client.containers.get("nosuch")
    with pytest.raises(docker_py.errors.APIError, match="pre-defined network"):
        client.networks.get("bridge").remove()
    for c in client.containers.list(all=True):
        c.remove(force=True)
    net.remove()
    assert [n.name for n in client.networks.list()] == ["bridge", "host", "none"] or \
        sorted(n.name for n in client.networks.list()) == ["bridge", "host", "none"]
    client.close()


def test_docker_py_ipv6_networks_as_its_integration_tests(md: Sandbox, net_cleanup: None) -> None:
    """The calls of docker-py's api_network_test IPv6 cases (test_create_network_ipv6_enabled,
    test_create_with_ipv6_address, test_connect_with_ipv6_address; their suite cannot run here:
    its set-up pulls alpine:3.10), and a ping between the two addresses they pin."""
    docker_py = pytest.importorskip("docker", reason="docker-py is not installed (pip install 'docker>=7')")
    c = docker_py.APIClient(base_url=f"unix://{md.socket}", version="auto")
    ipam = docker_py.types.IPAMConfig(driver="default", pool_configs=[docker_py.types.IPAMPool(subnet="2001:389::/64")])
    net = c.create_network("pynet6", enable_ipv6=True, ipam=ipam)
    assert c.inspect_network(net["Id"])["EnableIPv6"] is True
    one = c.create_container("busybox", "top", host_config=c.create_host_config(network_mode="pynet6"),
                             networking_config=c.create_networking_config(
                                 {"pynet6": c.create_endpoint_config(ipv6_address="2001:389::f00d")}))
    c.start(one)
    settings = c.inspect_container(one)["NetworkSettings"]["Networks"]["pynet6"]
    assert settings["IPAMConfig"]["IPv6Address"] == "2001:389::f00d" == settings["GlobalIPv6Address"]
    two = c.create_container("busybox", "top")
    c.start(two)
    c.connect_container_to_network(two, "pynet6", ipv6_address="2001:389::f00e")
    assert c.inspect_container(two)["NetworkSettings"]["Networks"]["pynet6"]["IPAMConfig"]["IPv6Address"] \
        == "2001:389::f00e"
    ex = c.exec_create(two, ["ping", "-6", "-c", "1", "-W", "2", "2001:389::f00d"])
    assert b" 0% packet loss" in c.exec_start(ex) and c.exec_inspect(ex)["ExitCode"] == 0
    for ct in (one, two):
        c.remove_container(ct, force=True)
    c.remove_network(net["Id"])
    c.close()


@needs_cli
def test_logs_follow_top_images_and_prune_with_docker(md: Sandbox, net_cleanup: None) -> None:
    docker(md, "run", "-d", "--name", "ticker", "busybox", "sh", "-c",
           "for i in 1 2 3; do echo tick$i; sleep 0.2; done; sleep 300; true")  # sh stays PID 1: no exec
    r = subprocess.Popen([DOCKER or "docker", "logs", "-f", "ticker"], stdout=subprocess.PIPE, text=True,
                         env={**os.environ, "DOCKER_HOST": f"unix://{md.socket}"})
    try:
        assert r.stdout is not None
        assert [r.stdout.readline().strip() for _ in range(3)] == ["tick1", "tick2", "tick3"]
    finally:
        r.kill()
        r.wait()
    assert "sh -c for i in 1 2 3" in docker(md, "top", "ticker").out  # the container's PID 1
    repos = docker(md, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").out.splitlines()
    ids = dict(ln.split() for ln in repos)
    assert {"busybox:latest", "host:latest"} <= set(ids)
    # `docker run alpine` earlier "pulled" alpine: a tag of the built-in busybox, not an image of its own
    assert ids.get("alpine:latest", ids["busybox:latest"]) == ids["busybox:latest"]
    assert all(len(ln.split()[1]) == 12 for ln in repos)
    docker(md, "network", "create", "unused-a")
    docker(md, "network", "create", "used-b")
    docker(md, "network", "connect", "used-b", "ticker")
    out = docker(md, "network", "prune", "-f").out
    assert "unused-a" in out and "used-b" not in out
    assert sorted(docker(md, "network", "ls", "--format", "{{.Name}}").out.split()) == ["bridge", "host", "none", "used-b"]

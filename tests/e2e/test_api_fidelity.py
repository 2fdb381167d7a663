"""Containers give back what they were given, and exec, logs and attach behave
as Docker's (issue 20): docker-py and the docker CLI as clients, the proof
read from the real processes (their uid, groups, namespaces), a TCP answer,
the lines a container wrote at known times."""

from __future__ import annotations

import os
import re
import socket
import time
from typing import Any

import pytest

from tests.e2e.clients import docker, needs_cli
from tests.sandbox import Sandbox

docker_py = pytest.importorskip("docker", reason="docker-py is not installed (pip install 'docker>=7')")


@pytest.fixture
def client(md: Sandbox) -> Any:
    c = docker_py.DockerClient(base_url=f"unix://{md.socket}", version="auto")
    c.images.pull("alpine")  # the built-in root filesystem, tagged alpine (minidock has no registry)
    yield c
    c.close()


def _status_field(pid: int, name: str) -> str:
    with open(f"/proc/{pid}/status") as f:
        return next(line.split(":", 1)[1].strip() for line in f if line.startswith(name + ":"))


def test_exec_user_and_group_add_are_the_process_credentials(md: Sandbox, client: Any) -> None:
    c = client.containers.run("alpine", ["sleep", "300"], detach=True, name="creds", group_add=["1000", "audio"])
    # the container's own process: GroupAdd (by number and by name, from its /etc/group) in the kernel's record
    pid = c.attrs["State"]["Pid"] or client.api.inspect_container(c.id)["State"]["Pid"]
    groups = _status_field(pid, "Groups").split()
    assert "1000" in groups and "18" in groups, groups
    code, out = c.exec_run(["id", "-u"], user="nobody")
    assert (code, out) == (0, b"65534\n")
    code, out = c.exec_run(["id", "-u"], user="1234:5678")
    assert (code, out) == (0, b"1234\n")
    code, out = c.exec_run(["id", "-g"], user="1234:5678")
    assert (code, out) == (0, b"5678\n")
    code, out = c.exec_run(["whoami"], user="postgres")
    assert (code, out) == (0, b"postgres\n")
    code, out = c.exec_run(["id", "-G"])  # the container's GroupAdd reaches an exec too
    assert {"1000", "18"} <= set(out.decode().split()), out
    code, out = c.exec_run(["id", "-u"], user="nosuchuser")
    assert code != 0 and b"unable to find user nosuchuser" in out
    code, out = c.exec_run("pwd", workdir="/var/opt/new")
    assert (code, out) == (0, b"/var/opt/new\n")
    c.remove(force=True)


def test_log_driver_none_refuses_logs_while_the_container_serves(md: Sandbox, client: Any) -> None:
    c = client.containers.run("alpine", ["nc", "-ll", "-p", "80", "-e", "echo", "pong"], detach=True,
                              name="quiet", log_config={"type": "none"})
    c.reload()
    assert c.attrs["HostConfig"]["LogConfig"] == {"Type": "none", "Config": {}}
    with pytest.raises(docker_py.errors.APIError) as e:
        c.logs()
    assert e.value.response.status_code == 501
    assert e.value.explanation == "configured logging driver does not support reading"
    ip = c.attrs["NetworkSettings"]["IPAddress"]
    assert md.host("nc", "-w", "2", ip, "80").out.strip() == "pong"  # it runs, it answers
    with pytest.raises(docker_py.errors.APIError) as e:
        client.api.create_container("alpine", "true", host_config=client.api.create_host_config(
            log_config={"Type": "asdf", "Config": {}}))
    assert e.value.response.status_code == 400
    assert e.value.explanation == "logger: no log driver named 'asdf' is registered"
    c.remove(force=True)


def test_logs_until_since_streams_and_one_frame_per_line(md: Sandbox, client: Any) -> None:
    api = client.api
    cid = api.create_container("alpine", ["sh", "-c", "echo one; echo oops >&2; sleep 3; printf 'two\\nthree\\n'"])
    api.start(cid)
    started = time.time()  # start returns once the process runs: `one` is written within moments
    assert api.wait(cid)["StatusCode"] == 0
    cut = int(started + 1.5)  # between the first lines and the last, 3 s later
    assert api.logs(cid, stderr=False, until=cut) == b"one\n"
    assert api.logs(cid, stdout=False, until=cut) == b"oops\n"
    assert api.logs(cid, since=cut + 1) == b"two\nthree\n"
    assert api.logs(cid, until=1) == b""
    # `two` and `three` came in one write: Docker still sends one frame per line
    assert list(api.logs(cid, stream=True, since=cut + 1)) == [b"two\n", b"three\n"]
    stamped = api.logs(cid, timestamps=True, tail=1).decode()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z three\n", stamped), stamped
    assert api.attach(cid, stream=False, logs=True) == b"one\noops\ntwo\nthree\n"
    api.remove_container(cid)


def test_inspect_shows_what_create_was_given_and_host_namespaces_are_shared(md: Sandbox, client: Any) -> None:
    api = client.api
    hc = api.create_host_config(
        pid_mode="host", uts_mode="host", mem_limit="64m", cpu_shares=512, cpuset_cpus="0", cpu_period=100000,
        group_add=["1000"], cap_add=["NET_ADMIN"], cap_drop=["MKNOD"], security_opt=["no-new-privileges"],
        sysctls={"net.ipv4.ip_forward": "1"}, log_config={"Type": "json-file", "Config": {"max-size": "1m"}},
        restart_policy={"Name": "on-failure", "MaximumRetryCount": 3}, device_cgroup_rules=["c 7:128 rwm"],
        init=True, isolation="default", cgroupns="private", tmpfs={"/scratch": "size=1m"}, network_mode="none")
    cid = api.create_container("alpine", ["sleep", "300"], host_config=hc, stop_timeout=7,
                               environment={"SET": "1", "UNSET": None})["Id"]
    api.start(cid)
    info = api.inspect_container(cid)
    got = info["HostConfig"]
    assert (got["PidMode"], got["UTSMode"], got["CgroupnsMode"], got["Isolation"]) == ("host", "host", "private",
                                                                                        "default")
    assert (got["Memory"], got["MemorySwap"], got["CpuShares"], got["CpusetCpus"], got["CpuPeriod"]) == (
        64 << 20, 128 << 20, 512, "0", 100000)
    assert (got["GroupAdd"], got["CapAdd"], got["CapDrop"], got["SecurityOpt"]) == (
        ["1000"], ["NET_ADMIN"], ["MKNOD"], ["no-new-privileges"])
    assert got["Sysctls"] == {"net.ipv4.ip_forward": "1"} and got["DeviceCgroupRules"] == ["c 7:128 rwm"]
    assert got["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "1m"}}
    assert got["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert (got["Init"], got["Runtime"], got["Tmpfs"]) == (True, "runc", {"/scratch": "size=1m"})
    assert info["Config"]["StopTimeout"] == 7
    assert "UNSET" in info["Config"]["Env"] and "SET=1" in info["Config"]["Env"]
    # PidMode and UTSMode host are real: the container's process is in the host's PID and UTS namespaces
    pid = info["State"]["Pid"]
    assert os.readlink(f"/proc/{pid}/ns/pid") == os.readlink("/proc/self/ns/pid")
    assert os.readlink(f"/proc/{pid}/ns/uts") == os.readlink("/proc/self/ns/uts")
    out = api.exec_start(api.exec_create(cid, ["hostname"]))
    assert out.decode().strip() == socket.gethostname()
    out = api.exec_start(api.exec_create(cid, ["sh", "-c", "env | grep SET"]))
    assert out == b"SET=1\n"  # UNSET (no `=`) is kept in Config.Env and sets nothing
    api.remove_container(cid, force=True)


def test_kill_answers_once_the_exit_is_recorded(md: Sandbox, client: Any) -> None:
    for _ in range(3):  # the race it closes would show in some of a few tries
        c = client.containers.run("alpine", ["sleep", "300"], detach=True)
        pid = c.attrs["State"]["Pid"] or client.api.inspect_container(c.id)["State"]["Pid"]
        c.kill()
        state = client.api.inspect_container(c.id)["State"]
        assert (state["Status"], state["Running"], state["ExitCode"]) == ("exited", False, 137)
        assert not os.path.exists(f"/proc/{pid}") or _status_field(pid, "State")[0] in "ZX"
        c.remove()  # no force needed: it is not running


def test_exec_framing_follows_the_start_request_and_detach_keys(md: Sandbox, client: Any) -> None:
    from docker.utils.socket import next_frame_header, read_exactly

    api = client.api
    cid = api.create_container("alpine", "cat", stdin_open=True, tty=True)["Id"]
    api.start(cid)
    # an exec on a terminal, started without Tty: its output comes framed, as Docker's
    eid = api.exec_create(cid, ["printf", "framed"], tty=True)
    sock = api.exec_start(eid, socket=True)
    stream, size = next_frame_header(sock)
    assert (stream, read_exactly(sock, size)) == (1, b"framed")
    sock.close()
    pid = api.inspect_container(cid)["State"]["Pid"]
    # ctrl-x as the detach key: the attach ends (the socket closes), the container goes on
    raw = api.attach_socket(cid, {"stdin": 1, "stream": 1, "detachKeys": "ctrl-x"})._sock
    raw.settimeout(5)
    raw.sendall(b"\x18")
    assert raw.recv(4096) == b""
    raw.close()
    assert api.inspect_container(cid)["State"]["Running"] is True
    assert _status_field(pid, "State")[0] in "SR"
    api.remove_container(cid, force=True)


def test_restart_policy_runs_the_process_again(md: Sandbox, client: Any) -> None:
    c = client.containers.run("alpine", ["sh", "-c", "echo run; exit 3"], detach=True,
                              restart_policy={"Name": "on-failure", "MaximumRetryCount": 2})
    deadline = time.time() + 15
    while time.time() < deadline:
        c.reload()
        if c.attrs["RestartCount"] == 2 and c.status == "exited":
            break
        time.sleep(0.2)
    assert (c.attrs["RestartCount"], c.status, c.attrs["State"]["ExitCode"]) == (2, "exited", 3)
    assert c.logs() == b"run\n" * 3  # three real runs wrote three lines
    c.remove()


@needs_cli
def test_info_version_swarm_and_plugins_as_docker(md: Sandbox, client: Any) -> None:
    r = docker(md, "info", "--format", "{{.OSType}} {{.NCPU}} {{.MemTotal}} {{.Swarm.LocalNodeState}} "
                                       "{{.DefaultRuntime}} {{.Architecture}}")
    with open("/proc/meminfo") as f:
        mem = int(next(line.split()[1] for line in f if line.startswith("MemTotal:"))) * 1024
    assert r.out.split() == ["linux", str(os.cpu_count()), str(mem), "inactive", "runc", os.uname().machine]
    r = docker(md, "swarm", "leave", check=False)
    assert r.code != 0 and "This node is not part of a swarm" in r.err
    assert client.swarm.leave(force=True) is True  # docker-py takes the 503 as "no swarm"
    assert client.plugins.list() == []
    assert client.version()["KernelVersion"] == os.uname().release


@needs_cli
def test_ps_filters_and_links_environment(md: Sandbox, client: Any) -> None:
    server = client.containers.run("alpine", ["sleep", "300"], detach=True, name="linked", environment={"FOO": "1"})
    done = client.containers.run("alpine", ["sh", "-c", "exit 4"], detach=True, name="done4")
    done.wait()
    out = client.containers.run("alpine", ["env"], links={"linked": "db"}, remove=True, network_mode="bridge")
    env = out.decode().split()
    assert any(e.startswith("DB_NAME=/") and e.endswith("/db") for e in env) and "DB_ENV_FOO=1" in env, env
    assert docker(md, "ps", "-a", "--filter", "exited=4", "--format", "{{.Names}}").out.split() == ["done4"]
    assert docker(md, "ps", "--filter", "name=link", "--format", "{{.Names}}").out.split() == ["linked"]
    assert docker(md, "ps", "-a", "-n", "1", "--format", "{{.Names}}").out.split() == ["done4"]
    r = docker(md, "ps", "--filter", "bogus=1", check=False)
    assert r.code != 0 and "invalid filter 'bogus'" in r.err
    server.remove(force=True)
    done.remove()


@needs_cli
def test_init_runs_the_command_under_a_pid_1_that_forwards_signals(md: Sandbox) -> None:
    docker(md, "run", "-d", "--init", "--name", "inited", "--network", "none", "alpine", "sleep", "300")
    assert docker(md, "inspect", "-f", "{{.HostConfig.Init}}", "inited").out.strip() == "true"
    ps = docker(md, "exec", "inited", "ps", "-o", "pid,args").out
    assert re.search(r"^\s*1 /sbin/docker-init -- sleep 300\s*$", ps, re.M), ps
    t0 = time.monotonic()
    docker(md, "stop", "-t", "8", "inited")  # sleep as PID 1 would ignore the SIGTERM: the init forwards it
    assert time.monotonic() - t0 < 4
    assert docker(md, "inspect", "-f", "{{.State.ExitCode}}", "inited").out.strip() == "143"
    docker(md, "rm", "inited")


def test_config_mac_address_is_the_interface_address(md: Sandbox, client: Any) -> None:
    mac = "02:42:ac:11:00:0a"
    c = client.containers.run("alpine", ["sleep", "300"], detach=True, mac_address=mac)
    c.reload()
    assert c.attrs["NetworkSettings"]["MacAddress"] == mac
    code, out = c.exec_run(["cat", "/sys/class/net/eth0/address"])  # the kernel's, inside the container
    assert (code, out.decode().strip()) == (0, mac)
    with pytest.raises(docker_py.errors.APIError) as e:
        client.api.create_container("alpine", "true", mac_address="02:42:zz")
    assert e.value.response.status_code == 400 and "invalid MAC address" in e.value.explanation
    c.remove(force=True)


def test_attach_before_start_gets_an_unfinished_line_of_a_quick_process(md: Sandbox, client: Any) -> None:
    from docker.utils.socket import next_frame_header, read_exactly

    api = client.api
    for _ in range(3):  # the process may be gone before the attach reads: every try must see its line
        cid = api.create_container("alpine", ["printf", "no newline"])["Id"]
        sock = api.attach_socket(cid, {"stdout": 1, "stream": 1, "logs": 1})
        api.start(cid)
        stream, size = next_frame_header(sock)
        assert (stream, read_exactly(sock, size)) == (1, b"no newline")
        sock.close()
        assert api.wait(cid)["StatusCode"] == 0
        api.remove_container(cid)


def test_minidock_logs_since_until_timestamps(md: Sandbox) -> None:
    md.cli("run", "-d", "--name", "timed", "--network", "none", "alpine", "sh", "-c",
           "echo early; echo warn >&2; sleep 3; echo late")
    assert md.cli("wait", "timed").out.strip() == "0"
    r = md.cli("logs", "--since", "2s", "timed")  # `late` was written moments ago, the rest 3 s before
    assert (r.out, r.err) == ("late\n", "")
    r = md.cli("logs", "--until", "2s", "timed")
    assert (r.out, r.err) == ("early\n", "warn\n")  # stderr's line back on stderr
    stamped = md.cli("logs", "-t", "-n", "1", "timed").out
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z late\n", stamped), stamped
    md.cli("rm", "timed")

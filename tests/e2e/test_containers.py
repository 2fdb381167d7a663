"""Scenario F (and G): the container commands, proven on real processes,
namespaces and packets."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from tests.sandbox import Sandbox


def test_foreground_run_returns_the_exit_code_and_output_and_rm_removes(md: Sandbox) -> None:
    r = md.cli("run", "--rm", "busybox", "sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3", check=False)
    assert r.code == 3
    assert "to-stdout" in r.out and "to-stderr" in r.out + r.err
    assert md.cli("ps", "-aq").out.strip() == ""


def test_missing_command_exits_127_and_leaves_a_created_container(md: Sandbox) -> None:
    r = md.cli("run", "--name", "nocmd", "busybox", "nosuchcmd", check=False)
    assert r.code == 127
    assert 'exec: "nosuchcmd": executable file not found in $PATH' in r.err
    assert len(r.err.strip().splitlines()) == 1
    assert md.inspect("nocmd", "{{.State.Status}}") == "created"
    assert "md-nocmd" not in os.listdir("/run/netns")
    # its start was written to the store while the process was let go, and undone when it did
    # not get past its gate: the lowest address is free again, and the next container has it
    r = md.cli("run", "--rm", "busybox", "sh", "-c", "ip -4 -o addr show eth0 && ping -c 1 -W 2 172.17.0.1")
    assert " 172.17.0.2/16 " in r.out and "1 packets received" in r.out, r
    md.cli("rm", "nocmd")


def test_name_conflict_and_running_rm_use_dockers_wording(md: Sandbox) -> None:
    cid = md.cli("run", "-d", "--name", "dup", "busybox", "sleep", "300").out.strip()
    before = md.snapshot()
    r = md.cli("run", "-d", "--name", "dup", "busybox", "true", check=False)
    assert r.code == 125
    assert r.err.strip() == (
        f'minidock: Error response from daemon: Conflict. The container name "/dup" is already in use by '
        f'container "{cid}". You have to remove (or rename) that container to be able to reuse that name.')
    r = md.cli("rm", "dup", check=False)
    assert r.code == 1
    assert r.err.strip() == (f"Error response from daemon: You cannot remove a running container {cid}. "
                             "Stop the container before attempting removal or force remove")
    assert md.snapshot() == before
    md.cli("rm", "-f", "dup")
    assert md.cli("ps", "-aq").out == ""


def test_unknown_objects_are_reported_in_one_line(md: Sandbox) -> None:
    for args, msg in [
        (("stop", "nosuch"), "Error response from daemon: No such container: nosuch"),
        (("rm", "nosuch"), "Error response from daemon: No such container: nosuch"),
        (("exec", "nosuch", "true"), "Error response from daemon: No such container: nosuch"),
        (("run", "--network", "nosuchnet", "busybox", "true"),
         "minidock: Error response from daemon: network nosuchnet not found"),
    ]:
        r = md.cli(*args, check=False)
        assert r.code != 0 and r.err.strip() == msg, r
    r = md.cli("inspect", "nosuch", check=False)
    assert r.code == 1 and r.out.strip() == "[]" and r.err.strip() == "Error: No such object: nosuch"
    assert md.cli("ps", "-aq").out == ""


def test_the_container_process_lives_in_the_namespace_ip_netns_shows(md: Sandbox) -> None:
    md.cli("run", "-d", "--name", "ns1", "busybox", "sleep", "300")
    pid = int(md.inspect("ns1", "{{.State.Pid}}"))
    assert os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat("/run/netns/md-ns1").st_ino
    for kind in ("mnt", "uts", "ipc", "pid"):
        assert os.readlink(f"/proc/{pid}/ns/{kind}") != os.readlink(f"/proc/self/ns/{kind}"), kind
    # inside: PID 1, its own /proc, /tmp and /etc files; the host's files are not touched
    assert md.cli("exec", "ns1", "cat", "/proc/1/cmdline").out.startswith("sleep")
    md.cli("exec", "ns1", "sh", "-c", "echo written > /etc/minidock-probe && echo t > /tmp/probe")
    assert not os.path.exists("/etc/minidock-probe")
    assert md.cli("exec", "ns1", "cat", "/etc/minidock-probe").out.strip() == "written"
    mounts = md.cli("exec", "ns1", "cat", "/proc/mounts").out
    for target in (" / overlay", " /proc proc", " /dev tmpfs", " /tmp tmpfs", " /etc/hosts ", " /etc/resolv.conf "):
        assert target in mounts, target
    assert "/run/netns" not in mounts  # the host's mounts were dropped with the old root
    md.cli("rm", "-f", "ns1")
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"


def test_stop_start_restart_keep_the_network_settings(md: Sandbox) -> None:
    md.cli("run", "-d", "--name", "s1", "busybox", "sleep", "300")
    assert md.ip_of("s1") == "172.17.0.2"
    t0 = time.monotonic()
    md.cli("stop", "-t", "1", "s1")
    assert time.monotonic() - t0 < 8
    assert md.inspect("s1", "{{.State.Status}} {{.State.ExitCode}}") == "exited 137"
    assert re.search(r"Exited \(137\) (Less than a second|\d+ seconds?) ago",
                     md.cli("ps", "-a", "--format", "{{.Status}}").out)
    assert "md-s1" not in os.listdir("/run/netns")
    assert md.ip_of("s1") == ""
    md.cli("start", "s1")
    assert md.ip_of("s1") == "172.17.0.2"
    assert md.host("ping", "-c", "1", "-W", "2", "172.17.0.2").code == 0
    old_pid = md.inspect("s1", "{{.State.Pid}}")
    md.cli("restart", "-t", "0", "s1")
    assert md.inspect("s1", "{{.State.Status}}") == "running"
    assert md.inspect("s1", "{{.State.Pid}}") != old_pid
    assert md.host("ping", "-c", "1", "-W", "2", "172.17.0.2").code == 0
    md.cli("kill", "s1")
    md.cli("wait", "s1")
    r = md.cli("kill", "s1", check=False)
    assert r.code == 1 and "is not running" in r.err
    md.cli("rm", "s1")


def test_sigterm_is_honoured_within_the_grace_period(md: Sandbox) -> None:
    md.cli("run", "-d", "--name", "trap", "busybox", "sh", "-c",
           "trap 'echo got-term; exit 0' TERM; while true; do sleep 0.1; done")
    time.sleep(0.3)
    md.cli("stop", "trap")
    assert md.inspect("trap", "{{.State.ExitCode}}") == "0"
    assert "got-term" in md.cli("logs", "trap").out
    md.cli("rm", "trap")


def test_logs_follow_and_tail(md: Sandbox) -> None:
    md.cli("run", "-d", "--name", "talker", "busybox", "sh", "-c",
           "for i in 1 2 3; do echo line$i; sleep 0.2; done")
    out = md.cli("logs", "-f", "talker", timeout=20).out
    assert out.split() == ["line1", "line2", "line3"]
    assert md.cli("logs", "--tail", "1", "talker").out.split() == ["line3"]
    assert md.cli("wait", "talker").out.strip() == "0"
    md.cli("rm", "talker")


def test_exec_exit_codes_stdin_env_and_workdir(md: Sandbox) -> None:
    md.cli("run", "-d", "--name", "ex", "busybox", "sleep", "300")
    assert md.cli("exec", "ex", "sh", "-c", "exit 5", check=False).code == 5
    assert md.cli("exec", "-i", "ex", "cat", input="piped-in\n").out == "piped-in\n"
    assert md.cli("exec", "-e", "GREETING=hi", "-w", "/tmp", "ex", "sh", "-c", "echo $GREETING; pwd").out.split() == [
        "hi", "/tmp"]
    top = md.cli("top", "ex").out.splitlines()
    assert top[0].split()[:3] == ["UID", "PID", "PPID"]
    assert any(line.endswith("sleep 300") for line in top[1:])
    assert len(top) == 2  # only the container's own process
    md.cli("stop", "-t", "0", "ex")
    r = md.cli("exec", "ex", "true", check=False)
    assert r.code == 1 and "is not running" in r.err
    md.cli("rm", "ex")


def test_run_options_reach_the_containers_files(md: Sandbox) -> None:
    out = md.cli(
        "run", "--rm", "--hostname", "web1", "--add-host", "somehost:192.168.0.7",
        "--add-host", "host.docker.internal:host-gateway", "--dns", "198.51.100.99", "-e", "FOO=bar",
        "-w", "/srv", "busybox", "sh", "-c",
        "hostname; cat /etc/hosts; cat /etc/resolv.conf; echo FOO=$FOO; pwd").out
    lines = out.splitlines()
    assert lines[0] == "web1"
    assert "192.168.0.7\tsomehost" in lines
    assert "172.17.0.1\thost.docker.internal" in lines
    assert any(re.fullmatch(r"172\.17\.0\.\d+\tweb1", ln) for ln in lines)
    assert "nameserver 198.51.100.99" in lines
    assert "FOO=bar" in lines and lines[-1] == "/srv"
    # the default bridge's resolv.conf carries the daemon's upstreams
    assert "nameserver 198.51.100.53" in md.cli("run", "--rm", "busybox", "cat", "/etc/resolv.conf").out
    # --entrypoint replaces the command's head
    assert md.cli("run", "--rm", "--entrypoint", "echo", "busybox", "from", "entrypoint").out == "from entrypoint\n"


def test_create_then_start_and_ps_filters(md: Sandbox) -> None:
    cid = md.cli("create", "--name", "later", "busybox", "sleep", "300").out.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid)
    assert md.cli("ps", "-q").out == ""
    assert md.cli("ps", "-aq").out.strip() == cid[:12]
    md.cli("start", "later")
    md.cli("run", "-d", "--name", "other", "busybox", "sleep", "300")
    assert md.cli("ps", "--filter", "name=lat", "--format", "{{.Names}}").out.split() == ["later"]
    assert set(md.cli("ps", "--format", "{{.Names}}").out.split()) == {"later", "other"}
    md.cli("stop", "-t", "0", "other")
    assert md.cli("ps", "-a", "--filter", "status=exited", "--format", "{{.Names}}").out.split() == ["other"]
    header = md.cli("ps").out.splitlines()[0]
    assert re.match(r"CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES", header)
    summary = json.loads(md.cli("inspect", "later").out)[0]
    assert summary["NetworkSettings"]["Networks"]["bridge"]["IPAddress"] == summary["NetworkSettings"]["IPAddress"]
    assert summary["State"]["Running"] is True and summary["Name"] == "/later"
    md.cli("rm", "-f", "later", "other")


def test_host_image_is_the_hosts_root_with_a_private_writable_layer(md: Sandbox) -> None:
    r = md.cli("run", "--rm", "ubuntu", "sh", "-c", "grep ^ID= /etc/os-release; touch /usr/minidock-probe; echo ok")
    assert "ID=debian" in r.out and r.out.strip().endswith("ok")
    assert not os.path.exists("/usr/minidock-probe")
    r = md.cli("run", "--rm", "ubuntu", "nc", "-h", check=False)
    assert (r.out + r.err).startswith("OpenBSD netcat")  # the host's tools, as in ubuntu


def test_image_import_of_a_directory(md: Sandbox, tmp_path: object) -> None:
    root = os.path.join(str(tmp_path), "rootfs")
    os.makedirs(os.path.join(root, "bin"))
    subprocess.run(["cp", "/bin/busybox", os.path.join(root, "bin/busybox")], check=True)
    os.symlink("busybox", os.path.join(root, "bin/sh"))
    md.cli("image", "import", "tiny", root)
    assert "tiny" in md.cli("image", "ls").out
    assert md.cli("run", "--rm", "tiny", "/bin/sh", "-c", "echo imported-root; ls /bin").out.split() == [
        "imported-root", "busybox", "sh"]
    md.cli("image", "rm", "tiny")
    assert "tiny" not in md.cli("image", "ls").out


def test_concurrent_runs_get_distinct_addresses(md: Sandbox) -> None:
    names = [f"par{i}" for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda n: md.cli("run", "-d", "--name", n, "busybox", "sleep", "300"), names))
    assert all(r.code == 0 for r in results)
    ips = [md.ip_of(n) for n in names]
    assert len(set(ips)) == 8 and all(ip.startswith("172.17.0.") for ip in ips)
    last = ips[-1]
    assert "1 packets received" in md.cli("exec", names[0], "ping", "-c", "1", "-W", "2", last).out
    md.cli("rm", "-f", *names)


def test_run_i_pipes_stdin_to_the_container(md: Sandbox) -> None:
    r = md.cli("run", "-i", "--rm", "busybox", "sh", "-c", "read line; echo got:$line", input="from-stdin\n")
    assert r.out.strip() == "got:from-stdin"

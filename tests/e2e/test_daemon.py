"""The daemon's life: containers outlive it, start-up reconciles the store
with the kernel, and the socket is root's alone."""

from __future__ import annotations

import os
import signal
import stat
import subprocess

import pytest

from tests.sandbox import MINIDOCK, Sandbox


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_containers_keep_running_across_a_daemon_restart(fresh: Sandbox, how: int) -> None:
    fresh.cli("run", "-d", "--name", "web", "busybox", "nc", "-ll", "-p", "80", "-e", "echo", "still-here")
    fresh.cli("run", "-d", "--name", "client", "busybox", "sleep", "300")
    pid = int(fresh.inspect("web", "{{.State.Pid}}"))
    fresh.stop(how)
    assert pid_alive(pid)
    assert fresh.in_ns("md-client", "nc", "-w", "2", "172.17.0.2", "80").out.strip() == "still-here"
    fresh.start()
    assert fresh.inspect("web", "{{.State.Status}} {{.State.Pid}}") == f"running {pid}"
    assert fresh.cli("exec", "client", "nc", "-w", "2", "172.17.0.2", "80").out.strip() == "still-here"
    fresh.cli("stop", "-t", "0", "web")
    assert not pid_alive(pid)
    assert fresh.inspect("web", "{{.State.Status}} {{.State.ExitCode}}") == "exited 137"
    assert "md-web" not in os.listdir("/run/netns")


def test_startup_reconciles_the_kernel_with_the_store(fresh: Sandbox) -> None:
    fresh.cli("run", "-d", "--name", "doomed", "busybox", "sleep", "300")
    fresh.cli("run", "-d", "--name", "survivor", "busybox", "sleep", "300")
    doomed = int(fresh.inspect("doomed", "{{.State.Pid}}"))
    fresh.stop()
    # while the daemon is away: a container dies, someone deletes the bridge and
    # flushes our chains, and objects of ours appear that the store does not know
    os.kill(doomed, signal.SIGKILL)
    fresh.host("ip", "link", "del", "minidock0")
    fresh.host("iptables", "-F", "MINIDOCK-FORWARD")
    fresh.host("iptables", "-t", "nat", "-F", "MINIDOCK-POSTROUTING")
    subprocess.run(["ip", "netns", "add", "md-ghost"], check=True)
    fresh.host("ip", "link", "add", "vethdead000", "type", "veth", "peer", "name", "vethdead001")
    fresh.host("ip", "link", "set", "vethdead000", "alias", "minidock:container ghost")
    fresh.start()
    assert fresh.inspect("doomed", "{{.State.Status}}") == "exited"
    assert "md-doomed" not in os.listdir("/run/netns")
    assert "md-ghost" not in os.listdir("/run/netns")
    assert "vethdead000" not in fresh.host("ip", "-o", "link").out
    assert "inet 172.17.0.1/16" in fresh.host("ip", "addr", "show", "minidock0").out
    rules = fresh.host("iptables-save").out
    assert "-A MINIDOCK-FORWARD -i minidock0" in rules and "-s 172.17.0.0/16 ! -o minidock0" in rules
    # the bridge came back empty: the survivor's veth went with the old one, so it is re-plugged by restart
    fresh.cli("restart", "-t", "0", "survivor")
    fresh.cli("start", "doomed")
    ip = fresh.ip_of("survivor")
    assert fresh.cli("exec", "doomed", "ping", "-c", "1", "-W", "2", ip).code == 0
    fresh.cli("rm", "-f", "doomed", "survivor")


def test_the_socket_and_the_state_are_roots_alone(fresh: Sandbox) -> None:
    assert stat.S_IMODE(os.stat(fresh.socket).st_mode) == 0o600
    state = os.path.join(fresh.root, "state")
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(state, "minidock.db")).st_mode) == 0o600
    # even with the file mode opened up, the daemon checks the peer's credentials
    os.chmod(fresh.socket, 0o666)
    os.chmod(fresh.root, 0o755)
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *MINIDOCK, "ps"],
                       capture_output=True, text=True, env=fresh.env, timeout=30)
    assert r.returncode == 1
    assert r.stderr.strip() == "Error response from daemon: permission denied: minidock is for root only"


def test_restart_refuses_a_store_from_the_future(tmp_path: object) -> None:
    from minidock.store import SCHEMA_VERSION, Store

    path = os.path.join(str(tmp_path), "minidock.db")
    Store(path).db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(RuntimeError, match="newer"):
        Store(path)


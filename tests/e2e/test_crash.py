"""kill -9 of the daemon after every step of an operation, then a restart:
the store and the kernel agree, nothing leaks, no address is handed out
twice, and the containers that were running still run, answer and resolve.

The daemon's fault-injection hook (MINIDOCK_FAULT=OP:N) kills it after the
N-th step of OP; each test walks N up from 1 until the operation completes
without reaching the hook."""

from __future__ import annotations

import contextlib
import os
import random
import select
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable

import pytest

from minidock.client import Client
from tests.sandbox import Sandbox

MAX_STEPS = 40


def setup_network(sb: Sandbox) -> None:
    sb.cli("network", "create", "lab")
    sb.cli("run", "-d", "--name", "keeper", "--network", "lab", "busybox", "sleep", "600")


def setup_target(sb: Sandbox) -> None:
    setup_network(sb)
    sb.cli("run", "-d", "--name", "target", "--network", "lab", "-p", "8080:80", "busybox", "sleep", "600")


def setup_other_network(sb: Sandbox) -> None:
    setup_network(sb)
    sb.cli("network", "create", "other")


def setup_connected(sb: Sandbox) -> None:
    setup_other_network(sb)
    sb.cli("network", "connect", "other", "keeper")


# op name in the journal, what the test does before, the command the fault interrupts, and how
# many steps it has at least (bridge, addresses, sysctls, veth, routes, DNS, firewall, process …)
CASES: dict[str, tuple[str, Callable[[Sandbox], None], list[str], int]] = {
    "network create": ("network create", setup_network, ["network", "create", "fresh"], 6),
    "run": ("start", setup_network,
            ["run", "-d", "--name", "target", "--network", "lab", "busybox", "sleep", "600"], 7),
    "run -p": ("start", setup_network,
               ["run", "-d", "--name", "target", "--network", "lab", "-p", "8080:80", "busybox", "sleep", "600"], 9),
    "network connect": ("connect", setup_other_network, ["network", "connect", "other", "keeper"], 3),
    "rm": ("rm", setup_target, ["rm", "-f", "target"], 6),
    "network rm": ("network rm", setup_other_network, ["network", "rm", "other"], 2),
    "network disconnect": ("disconnect", setup_connected, ["network", "disconnect", "other", "keeper"], 3),
    "stop": ("stop", setup_target, ["stop", "-t", "0", "target"], 6),
}


def arm(sb: Sandbox, op: str, step: int) -> None:
    """Kill the daemon after `step` steps of its next `op` (the test hook of MINIDOCK_FAULT_HOOK=1)."""
    from minidock.client import Client

    Client(f"unix://{sb.socket}").call("POST", "/minidock/fault", None, {"op": op, "after": step})


def check_after_restart(sb: Sandbox, what: str) -> None:
    problems = sb.inconsistencies()
    assert not problems, f"{what}: {problems}\n{sb.daemon_log()}"
    assert sb.inspect("keeper", "{{.State.Status}}") == "running", what
    # the survivor still resolves and answers, and a newcomer gets a fresh address
    r = sb.cli("run", "--rm", "--network", "lab", "busybox", "ping", "-c", "1", "-W", "2", "keeper", check=False)
    assert r.code == 0, f"{what}: {r}\n{sb.daemon_log()}"
    if "target" in sb.cli("ps", "--format", "{{.Names}}").out.split():  # running: it answers by name too
        assert sb.cli("exec", "keeper", "ping", "-c", "1", "-W", "2", "target", check=False).code == 0, what


def crash_and_restart(case: str) -> int:
    op, setup, command, _ = CASES[case]
    for step in range(1, MAX_STEPS + 1):
        sb = Sandbox(daemon_env={"MINIDOCK_FAULT_HOOK": "1"})
        sb.start()
        try:
            setup(sb)
            arm(sb, op, step)
            if sb.cli(*command, check=False, timeout=30).code != 0:
                # killed at step N: its client saw the connection go, maybe before the daemon was
                # gone (an exit closes its files first, then ends), and arm() would find it dying
                with contextlib.suppress(subprocess.TimeoutExpired):
                    sb.proc.wait(timeout=10)
            if sb.proc is not None and sb.proc.poll() is None:  # finished before step N: all covered
                arm(sb, "", 0)
                check_after_restart(sb, f"{case} without a crash")
                return step - 1
            sb.proc = None
            sb.daemon_env = {}
            sb.start()
            check_after_restart(sb, f"{case} killed after step {step}")
        finally:
            sb.destroy()
        left = [ns for ns in os.listdir("/run/netns") if ns.startswith("md-")]
        assert not left, f"{case} step {step}: namespaces left {left}"
    raise AssertionError(f"{case}: more than {MAX_STEPS} steps?")


@pytest.mark.parametrize("case", list(CASES))
def test_kill_9_after_every_step_then_restart(case: str) -> None:
    steps = crash_and_restart(case)
    assert steps >= CASES[case][3], f"{case}: the daemon was killed after only {steps} steps"


def typed_into(sock: socket.socket, line: str, answer: bytes) -> bool:
    """Send `line` to an attached shell until `answer` comes back (ash may take the first
    line for the reply to its cursor query); at most 3 tries of 3 s."""
    seen = b""
    for _ in range(3):
        sock.sendall(line.encode())
        deadline = time.monotonic() + 3
        while answer not in seen and (left := deadline - time.monotonic()) > 0:
            if select.select([sock], [], [], left)[0]:
                chunk = sock.recv(65536)
                if not chunk:
                    return False
                seen += chunk
        if answer in seen:
            return True
    return False


def test_soak_concurrent_runs_with_kills_at_random_moments() -> None:
    """Rounds of concurrent runs, `-dit` shells among them, each round cut by kill -9 at a
    random moment; a shell started before the first round keeps its terminal throughout."""
    rounds = int(os.environ.get("SOAK_ROUNDS", "3"))
    rng = random.Random(int(os.environ.get("SOAK_SEED", "7")))
    sb = Sandbox()
    sb.start()
    try:
        setup_network(sb)
        sb.cli("run", "-dit", "--name", "shell", "--network", "lab", "alpine", "ash")
        shell_pid = sb.inspect("shell", "{{.State.Pid}}")
        for r in range(rounds):
            threads = [threading.Thread(target=sb.cli, args=(
                "run", *(["-dit"] if i % 2 else ["-d"]), "--name", f"s{r}x{i}", "--network", "lab", "busybox",
                *(["sh"] if i % 2 else ["sleep", "600"])), kwargs={"check": False, "timeout": 30}) for i in range(6)]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0, 0.4))
            assert sb.proc is not None
            sb.proc.send_signal(signal.SIGKILL)
            sb.proc.wait()
            for t in threads:
                t.join()
            sb.proc = None
            sb.start()
            check_after_restart(sb, f"soak round {r}")
            # the shell is the same process, on its terminal: what is typed into it runs
            assert sb.inspect("shell", "{{.State.Status}} {{.State.Pid}}") == f"running {shell_pid}", r
            sock = Client(f"unix://{sb.socket}").hijack("/containers/shell/attach",
                                                         {"stream": 1, "stdin": 1, "stdout": 1})
            try:
                assert typed_into(sock, f"echo round-{r}-$((6*7))\n", f"round-{r}-42".encode()), r
                sock.sendall(b"\x10\x11")
            finally:
                sock.close()
    finally:
        sb.destroy()

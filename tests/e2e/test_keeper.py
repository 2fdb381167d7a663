"""The keeper: containers, terminals included, outlive the daemon (SIGTERM and
SIGKILL) and the keeper itself; their exits and output while the daemon is
away are kept; `attach` and detach keys; restart policies; `kill` then
`inspect` at once."""

from __future__ import annotations

import os
import re
import secrets
import signal
import time

import pytest

from minidock.service import spares
from tests.e2e.conftest import running
from tests.e2e.test_terminal import Terminal
from tests.sandbox import Sandbox, wait_for

TICKS = "i=0; while [ $i -lt 400 ]; do echo tick $i; i=$((i+1)); sleep 0.05; done; sleep 600"


def state(sb: Sandbox, name: str) -> str:
    return sb.inspect(name, "{{.State.Status}} {{.State.ExitCode}} {{.State.Pid}}")


def ticks(sb: Sandbox, name: str) -> list[int]:
    return [int(n) for n in re.findall(r"^tick (\d+)$", sb.cli("logs", name).out, re.M)]


def keeper_pid(sb: Sandbox) -> int:
    with open(os.path.join(sb.root, "state", "keeper.pid")) as f:
        return int(f.read().split()[0])


def typed(t: Terminal, command: str, answer: str) -> None:
    """Type `command` into an attached shell until `answer` shows: ash asks the terminal where
    its cursor is after a prompt, and takes what is typed before the attach is up as the reply."""
    for _ in range(5):
        t.send(command + "\r")
        try:
            t.expect(answer, timeout=3)
            return
        except AssertionError:
            continue
    t.expect(answer, timeout=1)


def attach_and_detach(sb: Sandbox, name: str, marker: str) -> None:
    """`minidock attach` on a real terminal: a command typed reaches the shell, its output
    comes back, ctrl-p ctrl-q detaches (Docker's message, exit 1) and the shell runs on."""
    t = Terminal(sb, "attach", name)
    typed(t, f"echo {marker}-$((40+2))", f"{marker}-42")
    t.send("\x10\x11")
    t.expect("read escape sequence")
    assert t.wait() == 1
    assert state(sb, name).startswith("running")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_dit_containers_outlive_the_daemon(fresh: Sandbox, sig: signal.Signals) -> None:
    sb = fresh
    sb.cli("network", "create", "alpine-net")
    for name in ("alpine1", "alpine2"):
        sb.cli("run", "-dit", "--name", name, "--network", "alpine-net", "alpine", "ash")
    sb.cli("run", "-d", "--name", "talker", "busybox", "sh", "-c", TICKS)
    sb.cli("run", "-d", "--name", "quitter", "busybox", "sh", "-c", "sleep 1.5; echo bye; exit 7")
    pids = {n: state(sb, n).split()[2] for n in ("alpine1", "alpine2", "talker")}
    wait_for(lambda: len(ticks(sb, "talker")) >= 3, 10, "the talker talks")
    before = len(ticks(sb, "talker"))
    sb.stop(sig)
    time.sleep(3)  # the quitter exits and the talker talks while no daemon runs
    sb.start()
    # the same processes, still running; the one that exited has its own exit code
    for name, pid in pids.items():
        assert state(sb, name) == f"running 0 {pid}", name
    assert state(sb, "quitter").startswith("exited 7 "), state(sb, "quitter")
    assert "bye" in sb.cli("logs", "quitter").out
    # what the talker said while the daemon was away is in its log, every line, in order
    said = ticks(sb, "talker")
    assert len(said) >= before + 20, (before, said[-3:])
    assert said == list(range(len(said)))
    # names still resolve and answer; the terminals are still theirs
    assert sb.cli("exec", "alpine1", "ping", "-c", "1", "-W", "2", "alpine2").code == 0
    attach_and_detach(sb, "alpine1", "back")
    assert "back-42" in sb.cli("logs", "alpine1").out


def test_attach_detach_keys_and_stopped_container(fresh: Sandbox) -> None:
    sb = fresh
    sb.cli("run", "-dit", "--name", "shell", "alpine", "sh")
    t = Terminal(sb, "attach", "--detach-keys", "ctrl-x,x", "shell")
    typed(t, "echo one-$((1+1))", "one-2")
    t.send("\x10\x11")  # not the keys asked for: the shell gets them, the attach goes on
    t.send("echo three-$((1+2))\r")
    t.expect("three-3")
    t.send("\x18x")
    t.expect("read escape sequence")
    assert t.wait() == 1
    assert state(sb, "shell").startswith("running")
    # attach to a shell that then exits: the exit code comes back
    t = Terminal(sb, "attach", "shell")
    typed(t, "echo ready-$((2+2))", "ready-4")
    t.send("exit 5\r")
    assert t.wait() == 5
    r = sb.cli("attach", "shell", check=False)
    assert r.code == 1 and r.err.strip() == "minidock: You cannot attach to a stopped container, start it first"
    sb.cli("rm", "shell")


def test_kill_then_inspect_at_once_shows_the_exit(fresh: Sandbox) -> None:
    sb = fresh
    for i in range(5):
        sb.cli("run", "-d", "--name", f"k{i}", "busybox", "sleep", "600")
        pid = int(state(sb, f"k{i}").split()[2])
        sb.cli("kill", f"k{i}")
        assert state(sb, f"k{i}") == "exited 137 0"
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] in "ZX"
    sb.cli("run", "-d", "--name", "s", "busybox", "sleep", "600")
    sb.cli("stop", "-t", "1", "s")
    assert state(sb, "s") == "exited 137 0"  # sleep ignores SIGTERM as PID 1: the kill after 1 s


def test_restart_always_brings_the_process_back_across_daemon_restarts(fresh: Sandbox) -> None:
    sb = fresh
    sb.cli("network", "create", "rnet")
    sb.cli("run", "-d", "--restart", "always", "--name", "web", "--network", "rnet", "busybox", "sleep", "600")
    sb.cli("run", "-d", "--restart", "unless-stopped", "--name", "held", "busybox", "sleep", "600")
    sb.cli("run", "-d", "--restart", "on-failure:2", "--name", "flaky", "busybox", "sh", "-c", "exit 3")
    sb.cli("run", "-d", "--name", "probe", "--network", "rnet", "busybox", "sleep", "600")
    assert sb.inspect("web", "{{.HostConfig.RestartPolicy.Name}}") == "always"
    first = int(state(sb, "web").split()[2])
    os.kill(first, signal.SIGKILL)  # from outside, as a crash: not a stop
    wait_for(lambda: state(sb, "web").startswith("running") and int(state(sb, "web").split()[2]) != first,
             10, "web restarted")
    assert sb.cli("exec", "probe", "ping", "-c", "1", "-W", "2", "web").code == 0
    wait_for(lambda: sb.inspect("flaky", "{{.RestartCount}} {{.State.Status}}") == "2 exited", 10,
             "on-failure:2 gives up after two restarts")
    assert sb.inspect("flaky", "{{.State.ExitCode}}") == "3"
    sb.cli("stop", "-t", "0", "held")
    second = int(state(sb, "web").split()[2])
    # the daemon restarts: web runs on, the same process; its policy still holds afterwards
    sb.stop(signal.SIGKILL)
    sb.start()
    assert state(sb, "web") == f"running 0 {second}"
    assert state(sb, "held").startswith("exited")  # stopped by hand: unless-stopped leaves it
    os.kill(second, signal.SIGKILL)
    wait_for(lambda: state(sb, "web").startswith("running") and int(state(sb, "web").split()[2]) != second,
             10, "web restarted after the daemon restart")
    # web dies while no daemon runs: the next daemon start brings it back
    third = int(state(sb, "web").split()[2])
    sb.stop(signal.SIGTERM)
    os.kill(third, signal.SIGKILL)
    time.sleep(0.5)
    sb.start()
    wait_for(lambda: state(sb, "web").startswith("running"), 10, "web started by the daemon's start")
    assert sb.cli("exec", "probe", "ping", "-c", "1", "-W", "2", "web").code == 0


def test_keeper_killed_containers_run_on_and_the_daemon_recovers(fresh: Sandbox) -> None:
    sb = fresh
    sb.cli("run", "-dit", "--name", "term", "alpine", "sh")
    sb.cli("run", "-d", "--name", "talker", "busybox", "sh", "-c", TICKS)
    pids = {n: state(sb, n).split()[2] for n in ("term", "talker")}
    old = keeper_pid(sb)
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: os.path.exists(os.path.join(sb.root, "state", "keeper.pid")) and keeper_pid(sb) != old,
             10, "a new keeper")
    for name, pid in pids.items():
        assert state(sb, name) == f"running 0 {pid}", name
    # the new keeper writes the talker's log on from the pipes the daemon held
    n = len(ticks(sb, "talker"))
    wait_for(lambda: len(ticks(sb, "talker")) > n + 5, 10, "the talker's log grows again")
    # the terminal is still the shell's; new containers start
    attach_and_detach(sb, "term", "still")
    sb.cli("run", "-d", "--name", "newcomer", "busybox", "sleep", "600")
    assert state(sb, "newcomer").startswith("running")
    # the orphans' exits are still seen (the daemon reaps them now)
    sb.cli("kill", "term")
    assert state(sb, "term") == "exited 137 0"


def ready_processes(sb: Sandbox) -> set[int]:
    """The keeper's children that are no container: the processes it keeps ready for the next starts."""
    keeper = keeper_pid(sb)
    ids = sb.cli("ps", "-q").out.split()
    running = {int(p) for p in sb.cli("inspect", "-f", "{{.State.Pid}}", *ids).out.split()} if ids else set()
    kids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == keeper:
                        kids.add(int(entry))
            except OSError:
                continue
    return kids - running


def test_ready_processes_become_containers_and_dead_ones_are_replaced(fresh: Sandbox) -> None:
    sb = fresh
    wait_for(lambda: len(ready_processes(sb)) == 1, 10, "a process made ready")
    ready = ready_processes(sb)
    for pid in ready:
        # each is PID 1 of a PID namespace of its own, in a network namespace of its own
        with open(f"/proc/{pid}/status") as f:
            nspid = next(line.split()[1:] for line in f if line.startswith("NSpid:"))
        assert nspid == [str(pid), "1"], nspid
        assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink(f"/proc/{sb.proc.pid}/ns/net")
    sb.cli("run", "-d", "--name", "a", "busybox", "sleep", "600")
    pid_a = int(state(sb, "a").split()[2])
    assert pid_a in ready, (pid_a, ready)  # the container is a ready process, its namespace named md-a
    assert sb.host("ip", "netns", "identify", str(pid_a)).out.strip() == "md-a"
    # made ready at a low CPU priority (work done ahead), it runs the container at the daemon's
    assert os.getpriority(os.PRIO_PROCESS, pid_a) == os.getpriority(os.PRIO_PROCESS, sb.proc.pid)
    # ready processes killed from outside: starts go on, the keeper makes new ones
    for pid in ready_processes(sb):
        os.kill(pid, signal.SIGKILL)
    sb.cli("run", "-d", "--name", "b", "busybox", "sleep", "600")
    ip_a = sb.inspect("a", "{{.NetworkSettings.IPAddress}}")
    assert "1 packets received" in sb.cli("exec", "b", "ping", "-c", "1", "-W", "2", ip_a).out
    wait_for(lambda: len(ready_processes(sb)) == 1, 10, "a process made ready again")
    # container directories are made ahead: hidden spares wait in the containers directory, as
    # many as are kept once the daemon is quiet
    wait_for(lambda: len(spares_of(sb)) == spares.HIGH, 10, f"{spares.HIGH} spares made")


def test_a_start_undone_after_its_process_was_handed_the_container_can_be_tried_again(fresh: Sandbox) -> None:
    """The network part fails after the process took the container (here: its namespace's name
    is taken): the keeper forgets that start, and the next one runs, and answers a ping."""
    sb = fresh
    name = "undone" + secrets.token_hex(3)
    sb.cli("create", "--name", name, "busybox", "sleep", "600")
    taken = os.path.join(sb.netns_dir, "md-" + name)
    open(taken, "w").close()
    try:
        r = sb.cli("start", name, check=False)
        assert r.code != 0 and "File exists" in r.err, r
        assert state(sb, name).startswith("created")
    finally:
        os.unlink(taken)
    sb.cli("start", name)
    assert state(sb, name).startswith("running")
    sb.cli("run", "-d", "--name", "pinger", "busybox", "sleep", "600")
    ip = sb.inspect(name, "{{.NetworkSettings.IPAddress}}")
    assert "1 packets received" in sb.cli("exec", "pinger", "ping", "-c", "1", "-W", "2", ip).out


def test_a_start_whose_plan_fails_lets_go_of_the_process_it_handed_the_container(fresh: Sandbox) -> None:
    """The process made ready takes the container before its start is planned; a plan that then
    fails (the network has no address left) lets that process go: the container stays created,
    the keeper makes another ready, and the next start runs and answers a ping."""
    sb = fresh
    sb.cli("network", "create", "--subnet", "10.55.0.0/30", "plannet")  # one address besides the gateway
    sb.cli("create", "--name", "late", "--network", "plannet", "busybox", "sleep", "600")
    sb.cli("run", "-d", "--name", "holder", "--network", "plannet", "busybox", "sleep", "600")
    wait_for(lambda: len(ready_processes(sb)) == 1, 10, "a process made ready")
    handed = ready_processes(sb)
    r = sb.cli("start", "late", check=False)
    assert r.code != 0 and "no available IPv4 addresses on network plannet" in r.err, r
    assert state(sb, "late") == "created 0 0"
    wait_for(lambda: len(ready_processes(sb)) == 1 and not ready_processes(sb) & handed, 10,
             "the process handed the container gone, another made ready")
    assert not any(os.path.exists(f"/proc/{pid}") for pid in handed)
    sb.cli("rm", "-f", "holder")
    sb.cli("start", "late")
    assert "1 packets received" in sb.cli("exec", "late", "ping", "-c", "1", "-W", "2", "10.55.0.1").out
    sb.cli("rm", "-f", "late")
    sb.cli("network", "rm", "plannet")


def spares_of(sb: Sandbox) -> list[str]:
    """The spares made (not one being made: .spare-tmp-<layer>)."""
    return [e for e in os.listdir(os.path.join(sb.root, "state", "containers"))
            if e.startswith(spares.PREFIX) and not e.startswith(spares.MAKING)]


def spares_said(sb: Sandbox) -> list[str]:
    """What the daemon (--debug) said each time its spares were all made."""
    return re.findall(r"spares: (\d+ waiting, \d+ of them mounted over .*)", sb.daemon_log(full=True))


def spares_mounted_over(sb: Sandbox, name: str, since: int) -> None:
    """Wait until the daemon has, since its `since`-th word on them, all its spares made, their
    overlays mounted over the image of container `name` (the last one created)."""
    lower = sb.inspect(name, "{{.GraphDriver.Data.LowerDir}}")
    want = f"{spares.HIGH} waiting, {spares.HIGH} of them mounted over {lower}"
    wait_for(lambda: spares_said(sb)[since:] and spares_said(sb)[-1] == want, 10, want)


def layer_of(sb: Sandbox, name: str) -> str:
    return os.path.basename(os.path.dirname(sb.inspect(name, "{{.GraphDriver.Data.UpperDir}}")))[:12]


def test_a_containers_root_is_mounted_ahead_in_a_layer_of_its_own() -> None:
    """A container's writable layer lies apart from its directory (layers/<id>, as Docker's
    overlay2/<id>), made ahead, its overlay mounted ahead over the image the last container
    used: the start attaches it. The container runs on its image and writes into its layer;
    one of another image mounts its own, and once the daemon is quiet the spares are mounted
    again over that image, so the next one of it has its root mounted ahead; `cp` into a
    created container lets the overlay made ahead go first, and the file is there once it runs;
    a daemon started again mounts its spares over the newest container's image."""
    with running(Sandbox(daemon_flags=["--debug"])) as sb:
        layers = os.path.join(sb.root, "state", "layers")
        said = len(spares_said(sb))
        sb.cli("run", "-d", "--name", "first", "busybox", "sleep", "600")
        spares_mounted_over(sb, "first", said)
        sb.cli("run", "-d", "--name", "second", "busybox", "sleep", "600")
        assert "second: its root filesystem was mounted ahead" in sb.daemon_log(full=True)
        upper = sb.inspect("second", "{{.GraphDriver.Data.UpperDir}}")
        assert os.path.dirname(os.path.dirname(upper)) == layers and upper.endswith("/upper"), upper
        root = next(line.split() for line in sb.cli("exec", "second", "cat", "/proc/mounts").out.splitlines()
                    if line.split()[1] == "/")
        assert root[0] == "overlay" and f"upperdir={upper}" in root[3], root
        sb.cli("exec", "second", "sh", "-c", "echo made-here > /made-here")
        with open(os.path.join(upper, "made-here")) as f:
            assert f.read() == "made-here\n"
        assert "A /made-here" in sb.cli("diff", "second").out
        ip = sb.inspect("first", "{{.NetworkSettings.IPAddress}}")
        assert "1 packets received" in sb.cli("exec", "second", "ping", "-c", "1", "-W", "2", ip).out
        # another image: the overlay made ahead over busybox does not fit, the process mounts its own
        said = len(spares_said(sb))
        sb.cli("run", "-d", "--name", "other", "debian", "sleep", "600")
        assert "ID=debian" in sb.cli("exec", "other", "cat", "/etc/os-release").out
        log = sb.daemon_log(full=True)
        assert "other: its root filesystem was mounted ahead" not in log
        assert f"layer {layer_of(sb, 'other')}: its overlay mounted ahead lies over another image" in log
        # ... and once quiet, the daemon mounts its spares again over debian: the next one fits
        spares_mounted_over(sb, "other", said)
        sb.cli("run", "-d", "--name", "fifth", "debian", "sleep", "600")
        assert "fifth: its root filesystem was mounted ahead" in sb.daemon_log(full=True)
        assert "ID=debian" in sb.cli("exec", "fifth", "cat", "/etc/os-release").out
        assert ", 1 received" in sb.cli("exec", "fifth", "ping", "-c", "1", "-W", "2", ip).out  # iputils' words
        # cp into a created container mounts its layer: the overlay made ahead goes first
        said = len(spares_said(sb))
        sb.cli("run", "-d", "--name", "fourth", "busybox", "sleep", "600")
        spares_mounted_over(sb, "fourth", said)
        sb.cli("create", "--name", "third", "busybox", "sleep", "600")
        src = os.path.join(sb.root, "copied.txt")
        with open(src, "w") as f:
            f.write("copied in\n")
        sb.cli("cp", src, "third:/copied.txt")
        sb.cli("start", "third")
        log = sb.daemon_log(full=True)
        assert "third: its root filesystem was mounted ahead" not in log
        assert f"layer {layer_of(sb, 'third')}: its overlay mounted ahead let go" in log
        assert sb.cli("exec", "third", "cat", "/copied.txt").out == "copied in\n"
        assert "1 packets received" in sb.cli("exec", "third", "ping", "-c", "1", "-W", "2", ip).out
        # the overlays mounted ahead die with a daemon: the next one mounts the spares it finds
        # again over the newest container's image (third's: busybox), before any create
        said = len(spares_said(sb))
        sb.stop()
        sb.start()
        spares_mounted_over(sb, "third", said)
        sb.cli("run", "-d", "--name", "sixth", "busybox", "sleep", "600")
        assert "sixth: its root filesystem was mounted ahead" in sb.daemon_log(full=True)
        assert "1 packets received" in sb.cli("exec", "sixth", "ping", "-c", "1", "-W", "2", ip).out
        # removed, a container's layer goes with it: only the spares' are left
        sb.cli("rm", "-f", "first", "second", "other", "fourth", "third", "fifth", "sixth")
        wait_for(lambda: len(spares_of(sb)) == spares.HIGH, 10, "the spares made")
        assert sorted(os.listdir(layers)) == sorted(s.removeprefix(spares.PREFIX) for s in spares_of(sb))

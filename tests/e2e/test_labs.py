"""`make labs`: each lab of vagrant/labs, its steps then its check, on a fresh
sandboxed daemon. The check must fail before the steps (it checks something)
and pass after them; nothing of the lab may be left afterwards.

A lab with a file `nodes` (a number, e.g. 3) is one for `NODES=3 vagrant up`: it
runs on a lab cluster of that many hosts (tests/cluster.py) instead, its steps and
check on host 1. What the lab's `on` and `etcd_member` (vagrant/labs/lib.sh) do
over ssh and systemctl on the lab machines, two commands written here do instead:

    MINIDOCK_LAB_ON NODE CMD...     nodeN is host N: CMD in its namespace, with its
                                    socket (MINIDOCK_HOST) and registry (MINIDOCK_NETNS_DIR)
    MINIDOCK_LAB_ETCD stop NODE     nodeN's member is etcd member N: SIGTERM to its PID;
                                    the test starts it again after the check
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cluster import Cluster
from tests.sandbox import Sandbox, sh

LABS = Path(__file__).resolve().parents[2] / "vagrant" / "labs"
Run = Callable[..., subprocess.CompletedProcess[str]]


def lab_names() -> list[str]:
    return sorted(p.name for p in LABS.iterdir() if (p / "check").exists())


def nodes_of(lab: str) -> int:
    f = LABS / lab / "nodes"
    return int(f.read_text().strip()) if f.exists() else 1


def test_there_is_a_lab_per_walkthrough() -> None:
    names = lab_names()
    assert len(names) >= 7, names
    for lab in names:
        text = (LABS / lab / "README.md").read_text()
        assert "## Steps" in text and "## Questions" in text, lab
        if nodes_of(lab) > 1:
            assert f"NODES={nodes_of(lab)} vagrant up" in text, lab


@pytest.mark.parametrize("lab", lab_names())
def test_lab(lab: str) -> None:
    before = set(os.listdir("/run/netns"))
    if nodes_of(lab) > 1:
        on_cluster(lab, nodes_of(lab))
    else:
        on_sandbox(lab)
    assert set(os.listdir("/run/netns")) == before


def steps_and_check(lab: str, run: Run) -> None:
    early = run("bash", "check", timeout=120)
    assert early.returncode != 0, f"{lab}: the check passes before the steps:\n{early.stdout}"
    steps = run("bash", "-ex", "steps.sh")
    assert steps.returncode == 0, f"{lab}: steps failed:\n{steps.stdout}\n{steps.stderr}"
    done = run("bash", "check", timeout=120)
    assert done.returncode == 0 and "FAIL" not in done.stdout, f"{lab}:\n{done.stdout}\n{done.stderr}"
    assert "all checks passed" in done.stdout


def runner(lab: str, ns: str, env: dict[str, str]) -> Run:
    """Run a lab's script in namespace `ns` (the lab machine), from the lab's directory."""
    env = {**env, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}

    def run(*argv: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["nsenter", f"--net=/run/netns/{ns}", *argv], cwd=LABS / lab, env=env,
                              capture_output=True, text=True, timeout=timeout)
    return run


def on_sandbox(lab: str) -> None:
    before = set(os.listdir("/run/netns"))
    sb = Sandbox()
    sb.start()
    try:
        steps_and_check(lab, runner(lab, sb.name, sb.env))
    finally:
        sb.destroy()
        for ns in set(os.listdir("/run/netns")) - before:  # what a lab made by hand (lab 06)
            sh("ip", "netns", "del", ns, check=False)


def on_cluster(lab: str, n: int) -> None:
    cl = Cluster(hosts_n=n)
    cl.start()
    try:
        env = {**cl.hosts[0].env, "MINIDOCK_NETNS_DIR": cl.hosts[0].netns_dir,
               "MINIDOCK_LAB_ON": hook(cl, "lab-on", on_script(cl)),
               "MINIDOCK_LAB_ETCD": hook(cl, "lab-etcd", etcd_script(cl)),
               "ETCDCTL_ENDPOINTS": ",".join(m.client_url for m in cl.members)}
        steps_and_check(lab, runner(lab, cl.hosts[0].name, env))
        for m in cl.members:  # the member the lab stopped
            if m.proc is not None and m.proc.poll() is not None:
                cl.stop_member(m)
                cl.start_member(m)
        cl.wait_healthy()
        cl.clean()
        left = cl.residue()
        assert not left, f"{lab}: left behind: {left}"
    finally:
        cl.destroy()
    assert not [ns for ns in os.listdir("/run/netns") if ns.startswith(cl.id)]


def hook(cl: Cluster, name: str, text: str) -> str:
    path = os.path.join(cl.dir, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o755)
    return path


def on_script(cl: Cluster) -> str:
    """`on nodeN CMD...`: CMD in host N's namespace, talking to its daemon."""
    cases = "".join(
        f"  node{i}) ns={shlex.quote(sb.name)} host={shlex.quote(sb.env['MINIDOCK_HOST'])} "
        f"dir={shlex.quote(sb.netns_dir)} ;;\n" for i, sb in enumerate(cl.hosts, 1))
    return ("#!/bin/bash\n# on NODE COMMAND...: the lab harness's lab machines are the cluster's hosts\n"
            f'case "$1" in\n{cases}  *) echo "on: no lab machine $1" >&2; exit 2 ;;\nesac\nshift\n'
            'exec nsenter --net="/run/netns/$ns" env MINIDOCK_HOST="$host" MINIDOCK_NETNS_DIR="$dir" "$@"\n')


def etcd_script(cl: Cluster) -> str:
    """`etcd_member stop nodeN`: SIGTERM to etcd member N (by its PID), then wait until it has exited
    (a zombie until the test reaps it). Starting it again is the test's, after the check."""
    cases = "".join(f"  node{i}) pid={m.proc.pid} ;;\n" for i, m in enumerate(cl.members, 1) if m.proc)
    return ("#!/bin/bash\n# etcd_member stop NODE: the lab harness's members are the cluster's etcd members\n"
            '[ "$1" = stop ] || { echo "etcd_member: the harness only stops members" >&2; exit 2; }\n'
            f'case "$2" in\n{cases}  *) echo "etcd_member: no member on $2" >&2; exit 2 ;;\nesac\n'
            'kill -TERM "$pid"\n'
            'while [ -e "/proc/$pid" ] && [ "$(cut -d" " -f3 "/proc/$pid/stat")" != Z ]; do sleep 0.1; done\n')

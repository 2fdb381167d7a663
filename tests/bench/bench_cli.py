"""The CLI's start-up cost: `minidock ps`, `network ls` and `inspect NAME`
against the Docker CLI running the same command on the same minidock
socket, side by side (the two alternate, run after run), N runs each; the
target is a p50 at most twice docker's.

The minidock side is the installed `minidock` script next to this Python,
run without PYTHONDONTWRITEBYTECODE (the venv's bytecode is compiled by
`make install`). Without /usr/local/bin/docker only minidock's figures are
reported.

Run alone with `python -m tests.bench.bench_cli` (it re-executes itself in a
private mount namespace, as bench_core does), or from bench_core.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from minidock.client import Client
from tests.sandbox import Sandbox

N = int(os.environ.get("BENCH_CLI_N", "40"))
DOCKER = "/usr/local/bin/docker"
COMMANDS = {"ps": ["ps"], "network_ls": ["network", "ls"], "inspect": ["inspect", "cli0"]}


def timed(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return (time.perf_counter() - t0) * 1000


def populate(sb: Sandbox) -> None:
    """A few networks and containers, one with published ports: a table of some width."""
    api = Client(f"unix://{sb.socket}")
    for n in range(3):
        api.call("POST", "/networks/create", None, {"Name": f"clinet{n}", "Driver": "bridge"})
    for i in range(4):
        body = {"Image": "busybox", "Cmd": ["sleep", "3600"],
                "HostConfig": {"NetworkMode": f"clinet{i % 3}"}}
        if i == 0:
            body["ExposedPorts"] = {"80/tcp": {}, "81/tcp": {}}
            body["HostConfig"]["PortBindings"] = {"80/tcp": [{"HostIp": "", "HostPort": "18080"}],
                                                  "81/tcp": [{"HostIp": "", "HostPort": "18081"}]}
        cid = api.call("POST", "/containers/create", {"name": f"cli{i}"}, body)["Id"]
        api.call("POST", f"/containers/{cid}/start")


def bench_cli(sb: Sandbox, workdir: str = "") -> dict[str, float]:
    populate(sb)
    host = f"unix://{sb.socket}"
    minidock = os.path.join(os.path.dirname(sys.executable), "minidock")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "MINIDOCK_HOST")}
    config = tempfile.mkdtemp(prefix="minidock-bench-docker-")
    docker_env = {**env, "DOCKER_CONFIG": config}  # no ~/.docker contexts or plugins in the way
    have_docker = os.access(DOCKER, os.X_OK)
    out: dict[str, float] = {}
    try:
        for name, args in COMMANDS.items():
            mine, theirs = [], []
            timed([minidock, "-H", host, *args], env)  # warm the page cache for both
            if have_docker:
                timed([DOCKER, "-H", host, *args], docker_env)
            for _ in range(N):
                mine.append(timed([minidock, "-H", host, *args], env))
                if have_docker:
                    theirs.append(timed([DOCKER, "-H", host, *args], docker_env))
            out[f"cli_{name}_p50_ms"] = statistics.median(mine)
            if theirs:
                out[f"docker_cli_{name}_p50_ms"] = statistics.median(theirs)
    finally:
        shutil.rmtree(config, ignore_errors=True)
    return out


if __name__ == "__main__":
    from tests.bench.bench_core import in_private_mounts

    in_private_mounts("tests.bench.bench_cli")
    box = Sandbox()
    box.start()
    try:
        figures = bench_cli(box)
    finally:
        box.destroy()
    for key, value in figures.items():
        print(f"{key:32} {value:8.2f}")
    for name in COMMANDS:
        if f"docker_cli_{name}_p50_ms" in figures:
            ratio = figures[f"cli_{name}_p50_ms"] / figures[f"docker_cli_{name}_p50_ms"]
            print(f"{name:12} ratio {ratio:5.2f}  target <= 2.0 {'met' if ratio <= 2.0 else 'MISSED'}")

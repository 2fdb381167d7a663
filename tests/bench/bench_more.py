"""The rest of issue 9's figures, each next to its alternative in the same run:

- iperf3 between two containers on a user network, against two namespaces
  on a bridge made by hand;
- `run -d` through the API (create + start) against Docker's engine API on a
  dockerd of our own (Debian's docker.io, when installed; it runs in a
  namespace made here, with its own data root), else against the `ip`
  script plus a process spawn;
- one port published and removed while 5000 are published, against the same
  with none, with `--port-maps` (nftables maps) and with the default
  iptables rules.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import time

from minidock.client import Client
from tests.bench.procfs import tree_rss_mb
from tests.sandbox import Sandbox, sh

REPS = int(os.environ.get("BENCH_REPS", "15"))
MANY_PORTS = int(os.environ.get("BENCH_PORTS", "5000"))


def _iperf(argv_prefix: list[str], ip: str, seconds: int = 4) -> float:
    out = sh(*argv_prefix, "iperf3", "-c", ip, "-t", str(seconds), "-J", timeout=seconds + 30).out
    return json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e9


def bench_iperf(sb: Sandbox, workdir: str) -> dict[str, float]:
    sb.cli("network", "create", "iperfnet")
    sb.cli("run", "-d", "--name", "isrv", "--network", "iperfnet", "ubuntu", "iperf3", "-s")
    sb.cli("run", "-d", "--name", "icli", "--network", "iperfnet", "ubuntu", "sleep", "300")
    srv = sb.ip_of("isrv") or sb.inspect("isrv", '{{(index .NetworkSettings.Networks "iperfnet").IPAddress}}')
    raw = ["rawa", "rawb"]
    try:
        sb.host("ip", "link", "add", "rawbr0", "type", "bridge")
        sb.host("ip", "link", "set", "rawbr0", "up")
        for i, ns in enumerate(raw):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", sb.name, "link", "add", f"vraw{i}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            sb.host("ip", "link", "set", f"vraw{i}", "master", "rawbr0", "up")
            sh("ip", "-n", ns, "addr", "add", f"10.98.0.{i + 2}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
        server = subprocess.Popen(["nsenter", "--net=/run/netns/rawa", "iperf3", "-s"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        try:
            mine = statistics.median(_iperf(["nsenter", "--net=/run/netns/md-icli"], srv) for _ in range(3))
            bare = statistics.median(_iperf(["nsenter", "--net=/run/netns/rawb"], "10.98.0.2") for _ in range(3))
        finally:
            server.kill()
            server.wait()
    finally:
        for ns in raw:
            sh("ip", "netns", "del", ns, check=False)
        sb.host("ip", "link", "del", "rawbr0", check=False)
        sb.cli("rm", "-f", "isrv", "icli")
        sb.cli("network", "rm", "iperfnet")
    return {"c2c_gbps": mine, "raw_bridge_gbps": bare}


def _api_runs(api: Client, image: str, reps: int, name: str, ports: dict | None = None) -> tuple[list[float], list[float]]:
    """(create+start ms, rm -f ms) of `reps` containers through an engine API."""
    runs, rms = [], []
    for i in range(reps):
        body: dict = {"Image": image, "Cmd": ["sleep", "300"], "HostConfig": {}}
        if ports:
            body["ExposedPorts"] = {k: {} for k in ports}
            body["HostConfig"]["PortBindings"] = ports
        t0 = time.perf_counter()
        cid = api.call("POST", "/containers/create", {"name": f"{name}{i}"}, body)["Id"]
        api.call("POST", f"/containers/{cid}/start")
        t1 = time.perf_counter()
        api.call("DELETE", f"/containers/{cid}", {"force": "1"})
        t2 = time.perf_counter()
        runs.append((t1 - t0) * 1000)
        rms.append((t2 - t1) * 1000)
    return runs, rms


def _dockerd(workdir: str) -> tuple[subprocess.Popen[bytes], str, str] | None:
    """A dockerd of our own in a namespace of its own, with a busybox image; None without docker.io."""
    if not (shutil.which("dockerd") and shutil.which("docker")):
        return None
    ns, root = "bench-docker", os.path.join(workdir, "docker")
    sock = os.path.join(root, "docker.sock")
    os.makedirs(root)
    sh("ip", "netns", "add", ns)
    sh("ip", "-n", ns, "link", "set", "lo", "up")
    log = open(os.path.join(root, "dockerd.log"), "wb")
    proc = subprocess.Popen(["nsenter", f"--net=/run/netns/{ns}", "dockerd", "-H", f"unix://{sock}",
                             "--data-root", os.path.join(root, "data"), "--exec-root", os.path.join(root, "exec"),
                             "--pidfile", os.path.join(root, "docker.pid")], stdout=log, stderr=log)
    docker = ["docker", "-H", f"unix://{sock}"]
    deadline = time.monotonic() + 60
    while subprocess.run([*docker, "version"], capture_output=True).returncode != 0:
        if time.monotonic() > deadline or proc.poll() is not None:
            _stop_dockerd(proc, ns, root)
            return None
        time.sleep(0.3)
    rootfs = os.path.join(root, "rootfs")
    os.makedirs(os.path.join(rootfs, "bin"))
    shutil.copy("/bin/busybox", os.path.join(rootfs, "bin", "busybox"))
    for applet in ("sh", "sleep"):
        os.symlink("busybox", os.path.join(rootfs, "bin", applet))
    tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
    subprocess.run([*docker, "import", "-", "busybox:latest"], stdin=tar.stdout, check=True, capture_output=True)
    tar.wait()
    return proc, ns, root


def _stop_dockerd(proc: subprocess.Popen[bytes], ns: str, root: str) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    with open("/proc/mounts") as f:
        mounts = sorted((ln.split()[1] for ln in f if ln.split()[1].startswith(root)), reverse=True)
    for m in mounts:
        subprocess.run(["umount", "-l", m], check=False)
    sh("ip", "netns", "del", ns, check=False)


def bench_docker(sb: Sandbox, workdir: str) -> dict[str, float]:
    mine, mine_rm = _api_runs(Client(f"unix://{sb.socket}"), "busybox", REPS, "mdrun")
    out = {"api_run_p50_ms": statistics.median(mine), "api_rm_p50_ms": statistics.median(mine_rm)}
    started = _dockerd(workdir)
    if started is None:
        out["docker_run_p50_ms"] = float("nan")
        return out
    proc, ns, root = started
    try:
        theirs, theirs_rm = _api_runs(Client(f"unix://{os.path.join(root, 'docker.sock')}", api_version="1.41"), "busybox", REPS, "dk")
        out.update(docker_run_p50_ms=statistics.median(theirs), docker_rm_p50_ms=statistics.median(theirs_rm))
        out["dockerd_rss_mb"] = tree_rss_mb(proc.pid)
    finally:
        _stop_dockerd(proc, ns, root)
    return out


def _one_port_costs(sb: Sandbox, tag: str) -> tuple[float, float]:
    runs, rms = _api_runs(Client(f"unix://{sb.socket}"), "busybox", REPS, f"p{tag}", {"80/tcp": [{"HostPort": "8080"}]})
    return statistics.median(runs), statistics.median(rms)


def bench_many_ports(sb: Sandbox, workdir: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for mode, box in (("maps", Sandbox(daemon_flags=["--port-maps"])), ("iptables", sb)):
        if box is not sb:
            box.start()
        try:
            out[f"{mode}_publish_none_ms"], out[f"{mode}_unpublish_none_ms"] = _one_port_costs(box, "a")
            lo, hi = 20000, 20000 + MANY_PORTS - 1
            box.cli("run", "-d", "--name", "many", "-p", f"{lo}-{hi}:{lo}-{hi}", "busybox", "sleep", "600",
                    timeout=300)
            out[f"{mode}_publish_many_ms"], out[f"{mode}_unpublish_many_ms"] = _one_port_costs(box, "b")
            box.cli("rm", "-f", "many", timeout=300)
        finally:
            if box is not sb:
                box.destroy()
    out["ports_published"] = MANY_PORTS
    return out

"""`make bench`: minidock's figures next to the alternative, measured in the
same run on this machine (only the ratios count; machines are noisy).

- run: create + start of a container through the API, and the network part
  alone, against a plain `ip` script doing the same wiring.
- teardown: removing a running container, against the script's teardown.
- DNS: dnsperf from inside a container against the stub, against dnsmasq
  serving the same names: the most each answers (200 queries outstanding),
  and the 99th percentile of latency at a steady 10,000 queries/s.
- ports: iperf3 from an "outside" namespace through a published port (kernel
  DNAT), against the same flow straight to the container's address, and
  against socat forwarding the port in userland (what docker-proxy does);
  plus the memory such a proxy costs per port.
- cli: `minidock ps`, `network ls` and `inspect` against the docker CLI
  on the same socket (bench_cli.py).
- overlay: in a two-host lab cluster on etcd (bench_overlay.py), create +
  start on an overlay against the same on a bridge network of the same host,
  with the etcd round trips per overlay start (target: at most 3) and per
  removal; and iperf3 across the two hosts over VXLAN against the same
  between two containers on a bridge network on one host.

Everything runs in sandbox namespaces inside a private mount namespace;
traffic stays on loopback and between namespaces made here.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

from minidock.client import Client
from tests.bench import bench_cli, bench_more, bench_overlay, bench_scale
from tests.bench.ipscript import ip_script_attach
from tests.bench.procfs import rss_kb
from tests.sandbox import Sandbox, sh

N = int(os.environ.get("BENCH_N", "30"))
BLOCK = 10  # bench_run's turns
FLAG = "MINIDOCK_BENCH_SANDBOX"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def settle(seconds: float = 1.0) -> None:
    """Let the kernel finish what the last measurement left it (deleted namespaces are torn
    down by a kernel worker for a while after `ip netns del`) before the next one starts."""
    time.sleep(seconds)


def bench_run(sb: Sandbox, workdir: str) -> dict[str, float]:
    api = Client(f"unix://{sb.socket}")
    sb.host("ip", "link", "add", "benchbr0", "type", "bridge")
    sb.host("ip", "addr", "add", "10.99.255.254/16", "dev", "benchbr0")
    sb.host("ip", "link", "set", "benchbr0", "up")
    # side by side, in turns of BLOCK each: this machine's speed drifts by half within minutes,
    # and all of one then all of the other would measure the drift. Each turn starts on a machine
    # left to finish what the other's turn left it: after the script's, the kernel frees its
    # namespaces (a worker does it after `ip netns del`, holding the locks a start needs); after
    # ours, the daemon makes the spares the burst took (spares.py: it waits for a quiet moment)
    script, runs, rms, ids = [], [], [], []
    for i in range(N):
        if i % BLOCK == 0:
            settle()
            script += [ip_script_attach(sb.name, k) for k in range(i, min(i + BLOCK, N))]
            settle()
        t0 = time.perf_counter()
        cid = api.call("POST", "/containers/create", {"name": f"b{i}"},
                       {"Image": "busybox", "Cmd": ["sleep", "300"], "HostConfig": {}})["Id"]
        api.call("POST", f"/containers/{cid}/start")
        runs.append((time.perf_counter() - t0) * 1000)
        ids.append(cid)
    settle()
    for cid in ids:
        t0 = time.perf_counter()
        api.call("DELETE", f"/containers/{cid}", {"force": True})
        rms.append((time.perf_counter() - t0) * 1000)
    attach = [float(x) for x in re.findall(r"network attach ([\d.]+) ms", sb.daemon_log(full=True))]
    return {
        "ip_script_attach_p50_ms": statistics.median(s[0] for s in script),
        "ip_script_attach_p95_ms": pct([s[0] for s in script], 95),
        "ip_script_teardown_p50_ms": statistics.median(s[1] for s in script),
        "minidock_attach_p50_ms": statistics.median(attach) if attach else float("nan"),
        "minidock_attach_p95_ms": pct(attach, 95) if attach else float("nan"),
        "minidock_run_p50_ms": statistics.median(runs),
        "minidock_run_p95_ms": pct(runs, 95),
        "minidock_rm_p50_ms": statistics.median(rms),
    }


def dnsperf(netns_path: str, server: str, qfile: str, seconds: int = 5) -> tuple[float, float]:
    out = sh("nsenter", f"--net={netns_path}", "dnsperf", "-s", server, "-d", qfile, "-l", str(seconds),
             "-c", "4", "-q", "200", timeout=seconds + 30).out
    qps = float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1))
    lat = float(re.search(r"Average Latency \(s\):\s+([\d.]+)", out).group(1)) * 1000
    return qps, lat


def dnsperf_p99(netns_path: str, server: str, qfile: str, rate: int = 10000, seconds: int = 5) -> float:
    """p99 latency (ms) at a fixed rate, from the latency of each query (-v)."""
    out = sh("nsenter", f"--net={netns_path}", "dnsperf", "-s", server, "-d", qfile, "-l", str(seconds),
             "-c", "4", "-Q", str(rate), "-v", timeout=seconds + 30).out
    return pct([float(x) * 1000 for x in re.findall(r"^> \S+ \S+ \S+ ([\d.]+)$", out, re.M)], 99)


def bench_dns(sb: Sandbox, workdir: str) -> dict[str, float]:
    sb.cli("network", "create", "benchnet")
    names = [f"srv{i}" for i in range(10)]
    for n in names:
        sb.cli("run", "-d", "--name", n, "--network", "benchnet", "busybox", "sleep", "300")
    sb.cli("run", "-d", "--name", "dnsclient", "--network", "benchnet", "busybox", "sleep", "300")
    qfile = os.path.join(workdir, "queries")
    with open(qfile, "w") as f:
        f.write("".join(f"{n} A\n" for n in names))
    stub_qps, stub_lat = dnsperf("/run/netns/md-dnsclient", "127.0.0.11", qfile)
    stub_p99 = dnsperf_p99("/run/netns/md-dnsclient", "127.0.0.11", qfile)
    hosts = os.path.join(workdir, "hosts")
    template = '{{(index .NetworkSettings.Networks "benchnet").IPAddress}}'
    with open(hosts, "w") as f:
        f.write("".join(f"{sb.inspect(n, template)} {n}\n" for n in names))
    ns = "bench-dnsmasq"
    sh("ip", "netns", "add", ns)
    sh("ip", "-n", ns, "link", "set", "lo", "up")
    proc = subprocess.Popen(["nsenter", f"--net=/run/netns/{ns}", "dnsmasq", "--keep-in-foreground",
                             "--no-resolv", "--no-hosts", f"--addn-hosts={hosts}", "--listen-address=127.0.0.1",
                             "--bind-interfaces", "--user=root", "--pid-file=", "--cache-size=1000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        mq_qps, mq_lat = dnsperf(f"/run/netns/{ns}", "127.0.0.1", qfile)
        mq_p99 = dnsperf_p99(f"/run/netns/{ns}", "127.0.0.1", qfile)
    finally:
        proc.kill()
        proc.wait()
        sh("ip", "netns", "del", ns)
    ids = sb.cli("ps", "-aq").out.split()
    sb.cli("rm", "-f", *ids)
    sb.cli("network", "rm", "benchnet")
    return {"stub_qps": stub_qps, "stub_avg_latency_ms": stub_lat,
            "dnsmasq_qps": mq_qps, "dnsmasq_avg_latency_ms": mq_lat,
            "stub_p99_ms_at_10k_qps": stub_p99, "dnsmasq_p99_ms_at_10k_qps": mq_p99}


def iperf(ns: str, ip: str, port: int, seconds: int = 4) -> float:
    out = sh("nsenter", f"--net=/run/netns/{ns}", "iperf3", "-c", ip, "-p", str(port), "-t", str(seconds),
             "-J", timeout=seconds + 30).out
    return json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e9


def bench_ports(sb: Sandbox, workdir: str) -> dict[str, float]:
    outside = sb.add_outside()
    sb.cli("run", "-d", "--name", "iperf", "-p", "5201:5201", "ubuntu", "iperf3", "-s", "-p", "5201")
    cip = sb.ip_of("iperf")
    sh("ip", "-n", outside, "route", "add", "172.16.0.0/12", "via", "198.51.100.1")
    proxy = subprocess.Popen(["nsenter", f"--net=/run/netns/{sb.name}", "socat",
                              "TCP-LISTEN:6201,fork,reuseaddr", f"TCP:{cip}:5201"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        direct = statistics.median(iperf(outside, cip, 5201) for _ in range(3))
        published = statistics.median(iperf(outside, "198.51.100.1", 5201) for _ in range(3))
        proxied = statistics.median(iperf(outside, "198.51.100.1", 6201) for _ in range(3))
        proxy_rss = rss_kb(proxy.pid)
    finally:
        proxy.kill()
        proxy.wait()
        sb.cli("rm", "-f", "iperf")
    return {"direct_gbps": direct, "published_gbps": published, "userland_proxy_gbps": proxied,
            "userland_proxy_rss_kb_per_port": proxy_rss}


SECTIONS = {"run": bench_run, "dns": bench_dns, "ports": bench_ports, "iperf": bench_more.bench_iperf,
            "docker": bench_more.bench_docker, "manyports": bench_more.bench_many_ports,
            "scale": bench_scale.bench_scale, "cli": bench_cli.bench_cli, "overlay": bench_overlay.bench_overlay}


def in_private_mounts(module: str) -> None:
    """Re-execute `python -m module` in a private mount namespace with its own /run/netns."""
    if os.environ.get(FLAG) != "1":
        os.environ[FLAG] = "1"
        script = f'mkdir -p /run/netns && mount -t tmpfs -o mode=755 tmpfs /run/netns && exec "$0" -m {module}'
        os.execvp("unshare", ["unshare", "-m", "--propagation", "private", "sh", "-c", script, sys.executable])


def main() -> None:
    in_private_mounts("tests.bench.bench_core")
    os.environ["MINIDOCK_TIMINGS"] = "1"
    only = set(filter(None, os.environ.get("BENCH_ONLY", "").split(",")))
    # the daemon's root where a real one keeps it (/var/lib), not in /tmp, whose directories the
    # test suite churns: on this kind of machine's ext4 (no journal) a directory made where
    # thousands were just deleted costs several times more (recently deleted inodes are skipped)
    sb = Sandbox(base="/var/lib")
    sb.start()
    workdir = tempfile.mkdtemp(prefix="minidock-bench-")
    results: dict[str, float] = {}
    try:
        for name, section in SECTIONS.items():
            if not only or name in only:
                results.update(section(sb, workdir))
    finally:
        sb.destroy()
    if only:
        print(json.dumps(results, indent=2))
        return
    rows = table(results)
    print_table(rows)
    os.makedirs("bench", exist_ok=True)
    with open("bench/results.json", "w") as f:
        json.dump({"figures": results, "table": rows}, f, indent=2)


def print_table(rows: list[dict[str, object]]) -> None:
    print(f"\n{'what':44} {'minidock':>11} {'alternative':>12} {'ratio':>6}  target")
    for r in rows:
        verdict = "" if r["target"] is None else ("met" if r["met"] else "MISSED")
        print(f"{r['what']:44} {r['minidock']:9.2f}{r['unit']:>2} {r['alternative']:10.2f}{r['unit']:>2} "
              f"{r['ratio']:6.2f}  {r['target'] or ''} {verdict}")


def row(what: str, mine: float, alt: float, unit: str, target: str | None = None) -> dict[str, object]:
    """One row: (what, minidock, alternative, unit, target) with the ratio and a verdict."""
    ratio = mine / alt if alt else float("nan")
    met = None
    if target is not None:
        op, bound = target.split(" ")
        met = ratio <= float(bound) if op == "<=" else ratio >= float(bound)
    return {"what": what, "minidock": mine, "alternative": alt, "unit": unit, "ratio": ratio,
            "target": target, "met": met}


def table(r: dict[str, float]) -> list[dict[str, object]]:
    """Issue 9's rows, then the overlay's (bench_overlay.table)."""
    nan = float("nan")
    g = r.get
    docker = g("docker_run_p50_ms", nan)
    rows = [
        row("attach one container p50 (vs ip script)", r["minidock_attach_p50_ms"], r["ip_script_attach_p50_ms"],
            "ms", "<= 0.2"),
        row("attach one container p95 (vs ip script)", r["minidock_attach_p95_ms"], r["ip_script_attach_p95_ms"],
            "ms"),
        row("attach at the 1000th container (vs the 10th)", g("scale_attach_last_ms", nan),
            g("scale_attach_10th_ms", nan), "ms", "<= 1.2"),
        row("ip script, same bridges: attach at the 1000th (vs the 15th)", g("scale_ip_script_last_ms", nan),
            g("scale_ip_script_10th_ms", nan), "ms"),
        row("run -d via API (vs docker engine API)" if docker == docker else "run -d via API (vs ip script)",
            g("api_run_p50_ms", nan), docker if docker == docker else r["ip_script_attach_p50_ms"], "ms", "<= 0.2"),
        row("create+start via API p50 (vs the 10 ms bar)", r["minidock_run_p50_ms"], 10.0, "ms", "<= 1.0"),
        row("create+start via API p50 (vs ip script attach alone)", r["minidock_run_p50_ms"],
            r["ip_script_attach_p50_ms"], "ms", "<= 0.5"),
        row("teardown rm -f p50 (vs ip script)", r["minidock_rm_p50_ms"], r["ip_script_teardown_p50_ms"], "ms",
            "<= 1.0"),
        row("DNS queries/s (vs dnsmasq)", r["stub_qps"], r["dnsmasq_qps"], "/s", ">= 1.0"),
        row("DNS average latency under load (vs dnsmasq)", r["stub_avg_latency_ms"], r["dnsmasq_avg_latency_ms"],
            "ms"),
        row("TCP container to container (vs raw bridge)", g("c2c_gbps", nan), g("raw_bridge_gbps", nan), "G",
            ">= 0.95"),
        row("TCP via published port (vs direct)", r["published_gbps"], r["direct_gbps"], "G", ">= 0.9"),
        row("TCP via published port (vs socat proxy)", r["published_gbps"], r["userland_proxy_gbps"], "G"),
        row("publish 1 port, 5000 published, --port-maps", g("maps_publish_many_ms", nan),
            g("maps_publish_none_ms", nan), "ms", "<= 1.5"),
        row("remove 1 port, 5000 published, --port-maps", g("maps_unpublish_many_ms", nan),
            g("maps_unpublish_none_ms", nan), "ms", "<= 1.5"),
        row("publish 1 port, 5000 published, iptables", g("iptables_publish_many_ms", nan),
            g("iptables_publish_none_ms", nan), "ms"),
        row("remove 1 port, 5000 published, iptables", g("iptables_unpublish_many_ms", nan),
            g("iptables_unpublish_none_ms", nan), "ms"),
        row("memory, 1000 containers: daemon+helpers (vs 80 MB)",
            g("scale_daemon_rss_mb", nan) + g("scale_helper_rss_mb", 0.0), 80.0, "MB", "<= 1.0"),
        row("memory, 1000 containers: daemon+helpers, PSS (vs 80 MB)",
            g("scale_daemon_pss_mb", nan) + g("scale_helper_pss_mb", 0.0), 80.0, "MB", "<= 1.0"),
        row("memory, 1000 containers: the keeper, PSS (vs 10 MB)", g("scale_keeper_pss_mb", nan), 10.0, "MB",
            "<= 1.0"),
        row("memory, 1000 containers: the keeper, RSS (vs 10 MB)", g("scale_keeper_rss_mb", nan), 10.0, "MB"),
    ]
    rows.append(row("DNS p99 at 10,000 q/s (vs the 1 ms bar)", r["stub_p99_ms_at_10k_qps"], 1.0, "ms", "<= 1.0"))
    rows.append(row("DNS p99 at 10,000 q/s (vs dnsmasq)", r["stub_p99_ms_at_10k_qps"],
                    r["dnsmasq_p99_ms_at_10k_qps"], "ms"))
    for name, label in (("ps", "minidock ps"), ("network_ls", "minidock network ls"),
                        ("inspect", "minidock inspect NAME")):
        rows.append(row(f"{label} p50 (vs docker CLI, same socket)", g(f"cli_{name}_p50_ms", nan),
                        g(f"docker_cli_{name}_p50_ms", nan), "ms",
                        "<= 2.0" if f"docker_cli_{name}_p50_ms" in r else None))  # no docker: no verdict
    if "dockerd_rss_mb" in r:
        rows.append(row("memory: dockerd+containerd+shims, 15 containers", r["dockerd_rss_mb"], nan, "MB"))
    rows += bench_overlay.table(r)
    return rows

if __name__ == "__main__":
    main()

"""Overlay networks in a lab cluster (tests/cluster.py: an underlay switch, a
three-member etcd, two hosts), each figure next to a bridge network's in the
same run:

- create + start through the API on an overlay, against the same on a
  user-defined bridge on the same clustered host (N of each, all running,
  then all removed, as bench_core.bench_run); and the etcd round trips each
  overlay start and removal costs (the daemon's StoreRoundTrips in
  GET /info, before and after each), against the bar of 3 per start;
- iperf3 between two containers on an overlay, on hosts 1 and 2 (VXLAN over
  the underlay), against two containers on a bridge network on host 1.

Everything lives in the cluster's namespaces (the underlay is 192.0.2.0/24
inside them); the cluster is removed at the end.

Run alone with `python -m tests.bench.bench_overlay` (it re-executes itself
in a private mount namespace, as bench_core does), or from bench_core.
"""

from __future__ import annotations

import json
import os
import statistics
import time

from minidock.client import Client
from tests.cluster import Cluster
from tests.sandbox import Sandbox, sh

N = int(os.environ.get("BENCH_N", "30"))
MAX_ROUND_TRIPS = 3.0  # per start on an overlay: the target


def _round_trips(api: Client) -> int:
    return int(api.call("GET", "/info")["StoreRoundTrips"])


def _wait_for_network(sb: Sandbox, name: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not sb.cli("network", "ls", "-q", "--filter", f"name={name}").out.strip():
        if time.monotonic() > deadline:
            raise AssertionError(f"network {name} did not reach {sb.name}")
        time.sleep(0.1)


def _starts(api: Client, net: str, prefix: str, reps: int) -> tuple[list[float], list[float], list[int], list[int]]:
    """`reps` containers on `net`: create + start ms each (all left running), then rm -f ms
    each; and the etcd round trips of each start and each removal."""
    runs, rms, rt_start, rt_rm, ids = [], [], [], [], []
    for i in range(reps):
        before = _round_trips(api)
        t0 = time.perf_counter()
        cid = api.call("POST", "/containers/create", {"name": f"{prefix}{i}"},
                       {"Image": "busybox", "Cmd": ["sleep", "300"], "HostConfig": {"NetworkMode": net}})["Id"]
        api.call("POST", f"/containers/{cid}/start")
        runs.append((time.perf_counter() - t0) * 1000)
        rt_start.append(_round_trips(api) - before)
        ids.append(cid)
    for cid in ids:
        before = _round_trips(api)
        t0 = time.perf_counter()
        api.call("DELETE", f"/containers/{cid}", {"force": True})
        rms.append((time.perf_counter() - t0) * 1000)
        rt_rm.append(_round_trips(api) - before)
    return runs, rms, rt_start, rt_rm


def _ip(sb: Sandbox, name: str, net: str) -> str:
    return sb.inspect(name, f'{{{{(index .NetworkSettings.Networks "{net}").IPAddress}}}}')


def _iperf(sb: Sandbox, client: str, ip: str, seconds: int = 4) -> float:
    """iperf3 from container `client`'s namespace on `sb` (in sb's own namespace directory)."""
    out = sb.in_ns(f"md-{client}", "iperf3", "-c", ip, "-t", str(seconds), "-J", timeout=seconds + 30).out
    return json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e9


def _wait_listening(sb: Sandbox, client: str, ip: str, timeout: float = 10) -> None:
    """Until the iperf3 server answers on 5201 (a remote peer's FDB entry comes by the watch)."""
    deadline = time.monotonic() + timeout
    while sb.in_ns(f"md-{client}", "nc", "-z", "-w", "1", ip, "5201", check=False).code != 0:
        if time.monotonic() > deadline:
            raise AssertionError(f"no iperf3 server at {ip}:5201 from {client} on {sb.name}")
        time.sleep(0.2)


def _underlay_bytes(cl: Cluster, port: str) -> int:
    """Bytes the underlay switch has sent out of `port` (towards the host plugged into it)."""
    return int(sh("ip", "netns", "exec", cl.lan, "cat", f"/sys/class/net/{port}/statistics/tx_bytes").out)


def bench_overlay(sb: Sandbox | None = None, workdir: str = "") -> dict[str, float]:
    """Both rows on one Cluster(hosts_n=2) of their own (`sb`, bench_core's sandbox, is unused)."""
    cl = Cluster(hosts_n=2)
    cl.start()
    try:
        h1, h2 = cl.hosts
        api = Client(f"unix://{h1.socket}")
        h1.cli("network", "create", "-d", "overlay", "benchov")
        _wait_for_network(h2, "benchov")
        h1.cli("network", "create", "benchbr")
        ov_runs, ov_rms, ov_rt, ov_rt_rm = _starts(api, "benchov", "ov", N)
        br_runs, br_rms, br_rt, _ = _starts(api, "benchbr", "br", N)

        h2.cli("run", "-d", "--name", "osrv", "--network", "benchov", "ubuntu", "iperf3", "-s")
        h1.cli("run", "-d", "--name", "ocli", "--network", "benchov", "ubuntu", "sleep", "300")
        h1.cli("run", "-d", "--name", "bsrv", "--network", "benchbr", "ubuntu", "iperf3", "-s")
        h1.cli("run", "-d", "--name", "bcli", "--network", "benchbr", "ubuntu", "sleep", "300")
        osrv, bsrv = _ip(h2, "osrv", "benchov"), _ip(h1, "bsrv", "benchbr")
        _wait_listening(h1, "ocli", osrv)
        _wait_listening(h1, "bcli", bsrv)
        sent = _underlay_bytes(cl, "p-h2")
        vxlan = statistics.median(_iperf(h1, "ocli", osrv) for _ in range(3))
        underlay_gb = (_underlay_bytes(cl, "p-h2") - sent) / 1e9
        bridge = statistics.median(_iperf(h1, "bcli", bsrv) for _ in range(3))
    finally:
        cl.destroy()
    return {
        "overlay_run_p50_ms": statistics.median(ov_runs),
        "overlay_rm_p50_ms": statistics.median(ov_rms),
        "cluster_bridge_run_p50_ms": statistics.median(br_runs),
        "cluster_bridge_rm_p50_ms": statistics.median(br_rms),
        "overlay_start_round_trips": sum(ov_rt) / N,
        "overlay_start_round_trips_max": max(ov_rt),
        "overlay_rm_round_trips": sum(ov_rt_rm) / N,
        "cluster_bridge_start_round_trips": sum(br_rt) / N,
        "overlay_vxlan_gbps": vxlan,
        "cluster_bridge_gbps": bridge,
        "overlay_underlay_gb_to_host2": underlay_gb,  # proof the VXLAN runs crossed the underlay
    }


def table(r: dict[str, float]) -> list[dict[str, object]]:
    """The overlay rows of bench_core's table."""
    from tests.bench.bench_core import row

    nan = float("nan")
    g = r.get
    return [
        row("overlay run -d p50 (vs bridge, same host)", g("overlay_run_p50_ms", nan),
            g("cluster_bridge_run_p50_ms", nan), "ms"),
        row("etcd round trips per overlay start (vs 3)", g("overlay_start_round_trips", nan), MAX_ROUND_TRIPS,
            "", "<= 1.0"),
        row("etcd round trips per overlay rm (vs start)", g("overlay_rm_round_trips", nan),
            g("overlay_start_round_trips", nan), ""),
        row("overlay rm -f p50 (vs bridge, same host)", g("overlay_rm_p50_ms", nan),
            g("cluster_bridge_rm_p50_ms", nan), "ms"),
        row("TCP across hosts, VXLAN (vs bridge, 1 host)", g("overlay_vxlan_gbps", nan),
            g("cluster_bridge_gbps", nan), "G"),
    ]


if __name__ == "__main__":
    from tests.bench.bench_core import in_private_mounts, print_table

    in_private_mounts("tests.bench.bench_overlay")
    os.environ["MINIDOCK_TIMINGS"] = "1"
    figures = bench_overlay()
    print(json.dumps(figures, indent=2))
    print_table(table(figures))

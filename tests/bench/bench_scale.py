"""Cost at scale: attach the 10th and the 1000th container on one host
(several networks, as one bridge takes at most 1024 ports), and the memory
of the daemon and of the keeper (the one helper process: it launches and
keeps the containers) with 1000 containers running.

Run alone with `python -m tests.bench.bench_scale` (it re-executes itself in
a private mount namespace, as bench_core does), or from bench_core.
"""

from __future__ import annotations

import os
import re
import statistics
import time

from minidock.client import Client
from tests.bench.ipscript import ip_script_attach
from tests.bench.procfs import children, pss_kb, rss_kb
from tests.sandbox import Sandbox

SCALE_N = int(os.environ.get("BENCH_SCALE_N", "1000"))
PER_NETWORK = 250
WINDOW = 10  # containers on each side of the 10th and the SCALE_N-th


def bench_scale(sb: Sandbox, workdir: str = "") -> dict[str, float]:
    api = Client(f"unix://{sb.socket}")
    nets = (SCALE_N + PER_NETWORK - 1) // PER_NETWORK
    bridges = ["br-" + api.call("POST", "/networks/create", None, {"Name": f"scale{n}", "Driver": "bridge"})["Id"][:12]
               for n in range(nets)]

    def ip_script(bridge: str) -> float:
        """The kernel's own growth, for comparison: the ip script's attach (then teardown)
        on a bridge the daemon is filling, WINDOW times, after the 15th and the last
        container; its median."""
        return statistics.median(ip_script_attach(sb.name, 9000 + k, bridge)[0] for k in range(WINDOW))

    before = len(re.findall(r"network attach", sb.daemon_log(full=True)))
    pids = set()
    t_all = time.perf_counter()
    for i in range(SCALE_N):
        cid = api.call("POST", "/containers/create", {"name": f"s{i}"},
                       {"Image": "busybox", "Cmd": ["sleep", "3600"],
                        "HostConfig": {"NetworkMode": f"scale{i // PER_NETWORK}"}})["Id"]
        api.call("POST", f"/containers/{cid}/start")
        if i == 10 + WINDOW // 2 - 1:  # after the early window: its teardowns must not disturb it
            t0 = time.perf_counter()
            script_early = ip_script(bridges[0])
            t_all += time.perf_counter() - t0
    fill_s = time.perf_counter() - t_all
    script_late = ip_script(bridges[-1])
    for c in api.call("GET", "/containers/json"):
        pids.add(api.call("GET", f"/containers/{c['Id']}/json")["State"]["Pid"])
    attach = [float(x) for x in re.findall(r"network attach ([\d.]+) ms", sb.daemon_log(full=True))][before:]
    assert sb.proc is not None
    daemon_rss = rss_kb(sb.proc.pid)
    with open(os.path.join(sb.root, "state", "keeper.pid")) as f:
        keeper = int(f.read().split()[0])
    # helpers: the keeper and the process it keeps ready for the next start (its children
    # that are no container), and anything else the daemon keeps (shims: none expected)
    kids = children()
    ready = [p for p in kids.get(keeper, []) if p not in pids]
    extra = sorted({keeper, *ready, *(p for p in kids.get(sb.proc.pid, []) if p not in pids)})
    helper_rss = sum(rss_kb(p) for p in extra)
    keeper_rss, daemon_pss = rss_kb(keeper), pss_kb(sb.proc.pid)
    keeper_pss = sum(pss_kb(p) for p in (keeper, *ready))
    keeper_fds = len(os.listdir(f"/proc/{keeper}/fd"))
    early = attach[10 - WINDOW // 2:10 + WINDOW // 2]
    late = attach[-WINDOW:]
    t0 = time.perf_counter()
    ids = [c["Id"] for c in api.call("GET", "/containers/json", {"all": "1"})]
    for cid in ids:
        api.call("DELETE", f"/containers/{cid}", {"force": True})
    drain_s = time.perf_counter() - t0
    for n in range(nets):
        api.call("DELETE", f"/networks/scale{n}")
    return {
        "scale_containers": SCALE_N,
        "scale_networks": nets,
        "scale_attach_10th_ms": statistics.median(early),
        "scale_attach_last_ms": statistics.median(late),
        "scale_ip_script_10th_ms": script_early,
        "scale_ip_script_last_ms": script_late,
        "scale_fill_s": fill_s,
        "scale_remove_all_s": drain_s,
        "scale_daemon_rss_mb": daemon_rss / 1024,
        "scale_helper_rss_mb": helper_rss / 1024,
        "scale_helpers": len(extra),
        "scale_keeper_rss_mb": keeper_rss / 1024,
        "scale_keeper_pss_mb": keeper_pss / 1024,
        "scale_daemon_pss_mb": daemon_pss / 1024,
        "scale_keeper_fds": keeper_fds,
        "scale_keeper_ready": len(ready),
        "scale_helper_pss_mb": sum(pss_kb(p) for p in extra) / 1024,
    }


if __name__ == "__main__":
    from tests.bench.bench_core import in_private_mounts

    in_private_mounts("tests.bench.bench_scale")
    os.environ["MINIDOCK_TIMINGS"] = "1"
    box = Sandbox()
    box.start()
    try:
        print(bench_scale(box))
    finally:
        box.destroy()

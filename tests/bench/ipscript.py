"""The alternative minidock's attach is measured against: a container's wiring done
by a shell's worth of `ip` commands (a fork and exec each), then torn down."""

from __future__ import annotations

import subprocess
import time


def ip_script_attach(host: str, i: int, bridge: str = "benchbr0") -> tuple[float, float]:
    """The same wiring as minidock's, by `ip` commands: (attach ms, teardown ms)."""
    ns, veth = f"ipscript{i}", f"vips{i:04d}"
    cmds = [
        ["ip", "netns", "add", ns],
        ["ip", "-n", ns, "link", "set", "lo", "up"],
        ["ip", "-n", host, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns],
        ["ip", "-n", host, "link", "set", veth, "master", bridge],
        ["ip", "-n", host, "link", "set", veth, "up"],
        ["ip", "-n", ns, "link", "set", "eth0", "address", f"02:42:0a:63:{i // 256:02x}:{i % 256 + 2:02x}"],
        ["ip", "-n", ns, "addr", "add", f"10.99.{i // 250}.{i % 250 + 2}/16", "dev", "eth0"],
        ["ip", "-n", ns, "link", "set", "eth0", "up"],
        ["ip", "-n", ns, "route", "add", "default", "via", "10.99.255.254"],
    ]
    t0 = time.perf_counter()
    for c in cmds:
        subprocess.run(c, check=True)
    t1 = time.perf_counter()
    subprocess.run(["ip", "-n", host, "link", "del", veth], check=True)
    subprocess.run(["ip", "netns", "del", ns], check=True)
    t2 = time.perf_counter()
    return (t1 - t0) * 1000, (t2 - t1) * 1000

"""Read-only looks into a network namespace, for `minidock ui`: every link's
packet and byte counters (netlink's IFLA_STATS64, what `ip -s link` prints),
and a namespace's addresses and routes as `ip` prints them.

Nothing here changes the kernel. A namespace is reached as everywhere else:
a netlink socket opened inside it by the namespace thread (netns.open_socket),
or `nsenter --net=PATH ip …` for the text a student would type for himself.
"""

from __future__ import annotations

import asyncio
import socket

from pyroute2 import AsyncIPRoute

from . import netns

COUNTERS = ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "rx_dropped", "tx_dropped")


async def counters(netns_name: str | None = None) -> dict[str, dict[str, int]]:
    """{link name: its counters} of the daemon's namespace (None) or of namespace `netns_name`."""
    sock: socket.socket | None = await netns.open_socket(netns_name) if netns_name else None
    ipr = AsyncIPRoute(use_socket=sock, groups=0) if sock is not None else AsyncIPRoute(groups=0)
    out: dict[str, dict[str, int]] = {}
    try:
        await ipr.setup_endpoint()
        async for msg in await ipr.get_links():
            stats = msg.get("stats64") or msg.get("stats")
            name = msg.get("ifname")
            if stats is None or not name:
                continue
            out[name] = {k: int(stats.get(k) or 0) for k in COUNTERS}
    finally:
        ipr.close()
        if sock is not None:
            sock.close()
    return out


async def ip_show(netns_name: str, *args: str) -> str:
    """`ip ARGS` run inside namespace `netns_name` (say `-o addr`, `route`): its output, or ""
    when the namespace is gone."""
    proc = await asyncio.create_subprocess_exec(
        "nsenter", f"--net={netns.path(netns_name)}", "ip", *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    out, _ = await proc.communicate()
    return out.decode(errors="replace") if proc.returncode == 0 else ""

"""Read-only looks into a network namespace: every link's packet and byte
counters (netlink's IFLA_STATS64, what `ip -s link` prints), and its addresses
and routes as `ip` prints them, for `docker stats` and `minidock ui`.

Nothing here changes the kernel. A namespace is reached as everywhere else:
a netlink socket opened inside it by the namespace thread (netns.open_socket),
or `nsenter --net=PATH ip …` for the text a student would type himself.
"""

from __future__ import annotations

import asyncio

from . import netns
from .netlink import Netlink


async def link_stats(netns_name: str) -> dict[str, dict[str, int]]:
    """Netlink.link_stats of namespace `netns_name`: {link: {rx_bytes, rx_packets, …}}, lo left out."""
    nl = await Netlink.open(await netns.open_socket(netns_name), netns_name)
    try:
        return await nl.link_stats()
    finally:
        nl.close()


async def ip_show(netns_name: str, *args: str) -> str:
    """`ip ARGS` run inside namespace `netns_name` (say `-o addr`, `route`): its output, or ""
    when the namespace is gone."""
    proc = await asyncio.create_subprocess_exec(
        "nsenter", f"--net={netns.path(netns_name)}", "ip", *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    out, _ = await proc.communicate()
    return out.decode(errors="replace") if proc.returncode == 0 else ""

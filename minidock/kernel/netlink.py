"""Links, addresses and routes over netlink: the only pyroute2 user.

One `Netlink` object wraps an AsyncIPRoute bound to one namespace: the
daemon's "host" namespace for the life of the daemon, or a container's
namespace for the few messages that configure it. Every helper is
idempotent: EEXIST on create and ENODEV/ENOENT/EADDRNOTAVAIL on delete count
as success.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from netaddr import IPNetwork
from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError

GONE = {errno.ENODEV, errno.ENOENT, errno.EADDRNOTAVAIL, errno.ESRCH}


@dataclass
class Link:
    index: int
    name: str
    kind: str | None
    alias: str | None
    master: int | None


class Netlink:
    def __init__(self, ipr: AsyncIPRoute) -> None:
        self.ipr = ipr

    @classmethod
    async def open(cls, sock: socket.socket | None = None) -> Netlink:
        """Bound to the caller's namespace, or to the namespace `sock` was opened in."""
        ipr = AsyncIPRoute(groups=0) if sock is None else AsyncIPRoute(use_socket=sock, groups=0)
        await ipr.setup_endpoint()
        nl = cls(ipr)
        nl._sock = sock
        return nl

    def close(self) -> None:
        self.ipr.close()
        sock = getattr(self, "_sock", None)
        if sock is not None:
            sock.close()

    async def __aenter__(self) -> Netlink:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    # -- queries -------------------------------------------------------------
    async def links(self) -> list[Link]:
        out = []
        async for msg in await self.ipr.get_links():
            out.append(
                Link(
                    index=msg["index"],
                    name=msg.get("ifname"),
                    kind=msg.get(("linkinfo", "kind")),
                    alias=msg.get("ifalias"),
                    master=msg.get("master"),
                )
            )
        return out

    async def index(self, name: str) -> int | None:
        found = await self.ipr.link_lookup(ifname=name)
        return found[0] if found else None

    def is_link(self, index: int, name: str) -> bool:
        """Whether link `index` of the daemon's own namespace is still called `name`: an
        ioctl, where a netlink lookup of a bridge makes the kernel describe every port."""
        if getattr(self, "_sock", None) is not None:
            return False  # bound to another namespace: the ioctl would ask the wrong one
        try:
            return socket.if_indextoname(index) == name
        except OSError:
            return False

    async def addresses(self, index: int) -> set[str]:
        """The IPv4 addresses of one link, as "address/prefixlen"."""
        out = set()
        async for msg in await self.ipr.addr("dump", family=socket.AF_INET, index=index):
            if msg.get("index") == index:
                out.add(f"{msg.get('address')}/{msg['prefixlen']}")
        return out

    async def default_gateway(self) -> str | None:
        """The gateway of the main table's default route, if there is one."""
        async for msg in await self.ipr.route("dump", family=socket.AF_INET, table=254):
            if not msg.get("dst") and msg["dst_len"] == 0 and msg.get("gateway"):
                return str(msg.get("gateway"))
        return None

    async def routes(self) -> list[IPNetwork]:
        """IPv4 destinations in the main table (what a new subnet must not overlap)."""
        out = []
        async for msg in await self.ipr.route("dump", family=socket.AF_INET, table=254):
            dst = msg.get("dst")
            if dst:
                out.append(IPNetwork(f"{dst}/{msg['dst_len']}"))
        return out

    # -- links ---------------------------------------------------------------
    async def ensure_bridge(self, name: str, mtu: int, alias: str) -> int:
        try:
            await self.ipr.link("add", ifname=name, kind="bridge", mtu=mtu)
        except NetlinkError as e:
            if e.code != errno.EEXIST:
                raise
        idx = await self.index(name)
        assert idx is not None
        await self.ipr.link("set", index=idx, ifalias=alias)
        return idx

    async def attach_port(self, index: int, master: int) -> None:
        """Put an existing veth back on its bridge, up, with hairpin (as add_veth leaves it)."""
        await self.ipr.link("set", index=index, master=master, state="up")
        await self.ipr.brport("set", index=index, mode=1)

    async def set_up(self, index: int) -> None:
        await self.ipr.link("set", index=index, state="up")

    async def delete_link(self, name: str) -> None:
        try:
            await self.ipr.link("del", ifname=name)
        except NetlinkError as e:
            if e.code not in GONE:
                raise

    async def add_veth(
        self, host_name: str, peer_name: str, netns_fd: int, mtu: int, master: int, alias: str
    ) -> int:
        """A veth pair whose peer is born inside the namespace `netns_fd`."""
        try:
            # master and up in the creating message (the kernel ignores an alias there): each
            # separate change of a host-side veth costs the kernel another notification
            await self.ipr.link(
                "add",
                ifname=host_name,
                kind="veth",
                mtu=mtu,
                master=master,
                state="up",
                peer={"ifname": peer_name, "net_ns_fd": netns_fd, "mtu": mtu},
            )
            created = True
        except NetlinkError as e:
            if e.code != errno.EEXIST:
                raise
            created = False
        idx = await self.index(host_name)
        assert idx is not None
        if created:
            await self.ipr.link("set", index=idx, ifalias=alias)
        else:  # made by an earlier, interrupted attempt: finish it
            await self.ipr.link("set", index=idx, master=master, ifalias=alias, state="up")
        # hairpin: with br_netfilter, a DNATed frame for a container on the same
        # bridge is bridged, and must be allowed back out of the port it came in by
        await self.ipr.brport("set", index=idx, mode=1)
        return idx

    # -- addresses and routes -----------------------------------------------
    async def ensure_addr(self, index: int, address: str, prefixlen: int) -> None:
        try:
            await self.ipr.addr("add", index=index, address=address, prefixlen=prefixlen)
        except NetlinkError as e:
            if e.code != errno.EEXIST:
                raise

    async def configure_interface(
        self, name: str, mac: str, address: str, prefixlen: int
    ) -> int:
        idx = await self.index(name)
        if idx is None:
            raise NetlinkError(errno.ENODEV, f"no interface {name}")
        await self.ipr.link("set", index=idx, address=mac)
        await self.ensure_addr(idx, address, prefixlen)
        await self.set_up(idx)
        return idx

    async def ensure_default_route(self, gateway: str) -> None:
        try:
            # proto boot (3), as `ip route add` and Docker make it; pyroute2 would say "static"
            await self.ipr.route("add", dst="0.0.0.0/0", gateway=gateway, proto=3)
        except NetlinkError as e:
            if e.code != errno.EEXIST:
                raise

    async def loopback_up(self) -> None:
        await self.set_up(1)

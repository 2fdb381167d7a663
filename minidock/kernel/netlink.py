"""Links, addresses and routes over netlink: the only pyroute2 user.

One `Netlink` object is bound to one namespace: the daemon's "host"
namespace for the life of the daemon, or a container's namespace for the few
messages that configure it. Changes go out as hand-packed rtnetlink messages
(kernel/rtnl.py: a start's hot path, where pyroute2's per-message Python
cost was three times the kernel's work); dumps and lookups use pyroute2's
AsyncIPRoute, opened on first use. Every helper is idempotent: EEXIST on
create and ENODEV/ENOENT/EADDRNOTAVAIL on delete count as success.
"""

from __future__ import annotations

import errno
import os
import socket
from dataclasses import dataclass

from netaddr import IPNetwork
from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError

from . import netns, rtnl, sysctl
from .rtnl import Rtnl

NUD_PERMANENT = 0x80
NTF_SELF = 0x02
GONE = frozenset({errno.ENODEV, errno.ENOENT, errno.EADDRNOTAVAIL, errno.ESRCH})
EXISTS = frozenset({errno.EEXIST})
IPVLAN_MODES = {"l2": 0, "l3": 1, "l3s": 2}
_KINDS: dict[str, bool] = {}  # link types this kernel has, as probed (the answer cannot change)


@dataclass
class Link:
    index: int
    name: str
    kind: str | None
    alias: str | None
    master: int | None


class Netlink:
    def __init__(self, raw: Rtnl, netns_name: str | None = None) -> None:
        self.raw = raw
        self.netns_name = netns_name  # None: the daemon's own namespace
        self._ipr: AsyncIPRoute | None = None
        self._ipr_sock: socket.socket | None = None

    @classmethod
    async def open(cls, sock: socket.socket | None = None, netns_name: str | None = None) -> Netlink:
        """Bound to the caller's namespace, or to namespace `netns_name`, which `sock` was opened in."""
        return cls(Rtnl(sock), netns_name)

    async def _query(self) -> AsyncIPRoute:
        """pyroute2 for dumps, on a socket of its own (its reader must not see our acks)."""
        if self._ipr is None:
            if self.netns_name is None:
                ipr = AsyncIPRoute(groups=0)
            else:
                self._ipr_sock = await netns.open_socket(self.netns_name)
                ipr = AsyncIPRoute(use_socket=self._ipr_sock, groups=0)
            await ipr.setup_endpoint()
            self._ipr = ipr
        return self._ipr

    def close(self) -> None:
        if self._ipr is not None:
            self._ipr.close()
            self._ipr = None
        if self._ipr_sock is not None:
            self._ipr_sock.close()
            self._ipr_sock = None
        self.raw.close()

    async def __aenter__(self) -> Netlink:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def _do(self, *messages: rtnl.Message, ok: frozenset[int] = frozenset()) -> None:
        """Send `messages` as one batch; the first errno outside `ok` raises."""
        for code in self.raw.send(*messages):
            if code and code not in ok:
                raise NetlinkError(code, os.strerror(code))

    # -- queries -------------------------------------------------------------
    async def links(self) -> list[Link]:
        out = []
        async for msg in await (await self._query()).get_links():
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
        return self.raw.index(name)

    def is_link(self, index: int, name: str) -> bool:
        """Whether link `index` of the daemon's own namespace is still called `name`: an
        ioctl, where a netlink lookup of a bridge makes the kernel describe every port."""
        if self.netns_name is not None:
            return False  # bound to another namespace: the ioctl would ask the wrong one
        try:
            return socket.if_indextoname(index) == name
        except OSError:
            return False

    async def addresses(self, index: int) -> set[str]:
        """The IPv4 addresses of one link, as "address/prefixlen"."""
        out = set()
        async for msg in await (await self._query()).addr("dump", family=socket.AF_INET, index=index):
            if msg.get("index") == index:
                out.add(f"{msg.get('address')}/{msg['prefixlen']}")
        return out

    async def default_gateway(self) -> str | None:
        """The gateway of the main table's default route, if there is one."""
        async for msg in await (await self._query()).route("dump", family=socket.AF_INET, table=254):
            if not msg.get("dst") and msg["dst_len"] == 0 and msg.get("gateway"):
                return str(msg.get("gateway"))
        return None

    async def routes(self) -> list[IPNetwork]:
        """IPv4 destinations in the main table (what a new subnet must not overlap)."""
        out = []
        async for msg in await (await self._query()).route("dump", family=socket.AF_INET, table=254):
            dst = msg.get("dst")
            if dst:
                out.append(IPNetwork(f"{dst}/{msg['dst_len']}"))
        return out

    async def link_stats(self) -> dict[str, dict[str, int]]:
        """Each link's counters but lo's (IFLA_STATS64), by name, in Docker's stats keys."""
        out = {}
        async for msg in await (await self._query()).get_links():
            counters = msg.get("stats64")
            name = msg.get("ifname")
            if counters is not None and name != "lo":
                out[name] = {f"{d}_{k}": int(counters.get(f"{d}_{k}") or 0)
                             for d in ("rx", "tx") for k in ("bytes", "packets", "errors", "dropped")}
        return out

    async def peer_netnsids(self) -> set[int]:
        """The ids this namespace gives the namespaces at the far end of its veths."""
        out = set()
        async for msg in await (await self._query()).get_links():
            nsid = msg.get("link_netnsid")
            if nsid is not None:
                out.add(int(nsid))
        return out

    async def netnsid(self, path: str) -> int | None:
        """The id this namespace gives the namespace bound at `path` (None: none assigned)."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None  # gone meanwhile
        try:
            res = await (await self._query()).get_netnsid(fd=fd)
        except NetlinkError:
            return None
        finally:
            os.close(fd)
        nsid = res.get("nsid") if isinstance(res, dict) else None
        return None if nsid is None or nsid in (-1, 0xFFFFFFFF) else int(nsid)

    # -- links ---------------------------------------------------------------
    async def ensure_bridge(self, name: str, mtu: int, alias: str, mac: str) -> int:
        """A bridge with a MAC of its own (one that exists already keeps its own)."""
        self._do(rtnl.bridge(name, mtu, mac), ok=EXISTS)
        idx = await self.index(name)
        assert idx is not None
        self._do(rtnl.link_set(index=idx, alias=alias))
        return idx

    async def no_snooping(self, index: int) -> None:
        """`ip link set BRIDGE type bridge mcast_snooping 0`: flood multicast to every port."""
        await (await self._query()).link("set", index=index, kind="bridge", br_mcast_snooping=0)

    async def attach_port(self, index: int, master: int) -> None:
        """Put an existing veth back on its bridge, up, with hairpin (as add_veth leaves it)."""
        self._do(rtnl.link_set(index=index, master=master, up=True), rtnl.link_set(index=index, hairpin=True))

    async def set_up(self, index: int) -> None:
        self._do(rtnl.link_set(index=index, up=True))

    async def delete_link(self, name: str) -> None:
        self._do(rtnl.delete(name), ok=GONE)

    async def add_veth(self, host_name: str, peer_name: str, netns_fd: int, mtu: int, master: int, alias: str,
                       peer_mac: str | None = None) -> None:
        """A veth pair whose peer is born inside the namespace `netns_fd`; the host end a
        bridge port with our alias, hairpin on, and no IPv6, then up."""
        try:
            self._do(rtnl.veth(host_name, peer_name, netns_fd, mtu, master, peer_mac, up=False))
        except NetlinkError as e:
            if e.code != errno.EEXIST:
                raise
            if self.raw.index(host_name) is None:  # the name taken is the peer's, in the namespace
                raise NetlinkError(errno.EEXIST, f"{peer_name} exists already in the container's namespace") from None
            # made by an earlier, interrupted attempt (maybe not yet a port): finish it
            self._do(rtnl.link_set(host_name, master=master))
        # Before it is up: a bridge port needs no IPv6, and an IPv6-enabled host end costs every
        # later start. Each adds a multicast route to the host's IPv6 table, and each change of
        # a port (its alias, hairpin, carrier) walks that whole table under the RTNL lock:
        # 0.8 ms more per start at 1000 containers (perf: rt6_sync_down_dev, fib6_clean_all).
        self._no_ipv6(host_name)
        # hairpin: with br_netfilter, a DNATed frame for a container on the same
        # bridge is bridged, and must be allowed back out of the port it came in by
        self._do(rtnl.link_set(host_name, alias=alias, hairpin=True, up=True))

    def _no_ipv6(self, name: str) -> None:
        try:
            sysctl.write(f"net/ipv6/conf/{name}/disable_ipv6", "1")
        except FileNotFoundError:
            pass  # a kernel without IPv6

    # -- links on a parent (the macvlan and ipvlan drivers) -------------------
    async def supports(self, kind: str) -> bool:
        """Whether this kernel has link type `kind` (the module built in or loaded): asks it
        to make one; "Unknown device type" (EOPNOTSUPP) is a no, anything else a yes."""
        cached = _KINDS.get(kind)
        if cached is not None:
            return cached
        ipr = await self._query()
        probe = "mdprobe0"
        try:
            await ipr.link("add", ifname=probe, kind=kind)
        except NetlinkError as e:
            _KINDS[kind] = e.code != errno.EOPNOTSUPP  # EINVAL and the like: the type exists, wants more
        else:
            _KINDS[kind] = True
            await self.delete_link(probe)
        return _KINDS[kind]

    async def add_child(self, name: str, kind: str, parent: int, mode: str, netns_fd: int, mtu: int,
                        mac: str | None = None) -> None:
        """`ip link add NAME link PARENT [address MAC] mtu MTU type macvlan|ipvlan mode MODE`, born
        inside the namespace `netns_fd` (the parent stays here). Idempotent: one of that name
        already inside counts as made."""
        spec: dict[str, object] = {"ifname": name, "kind": kind, "link": parent, "net_ns_fd": netns_fd, "mtu": mtu}
        if kind == "macvlan":
            spec["macvlan_mode"] = mode
            if mac:
                spec["address"] = mac
        else:
            spec["ipvlan_mode"] = IPVLAN_MODES[mode]
        await self._add(**spec)

    async def _add(self, **spec: object) -> None:
        """`ip link add …` through pyroute2; one already there counts as made."""
        try:
            await (await self._query()).link("add", **spec)
        except NetlinkError as e:
            if e.code not in EXISTS:
                raise

    async def _add_up(self, name: str, **spec: object) -> int:
        await self._add(ifname=name, **spec)
        idx = await self._must(name)
        await self.set_up(idx)
        return idx

    async def ensure_vlan(self, name: str, parent: int, vid: int, alias: str) -> int:
        """`ip link add link PARENT name NAME type vlan id VID; ip link set NAME up`."""
        return await self._add_up(name, kind="vlan", link=parent, vlan_id=vid, ifalias=alias)

    async def ensure_dummy(self, name: str, alias: str) -> int:
        """`ip link add NAME type dummy; ip link set NAME up`."""
        return await self._add_up(name, kind="dummy", ifalias=alias)

    # -- VXLAN and its tables (the overlay driver) ---------------------------
    async def ensure_vxlan(self, name: str, vni: int, local: str, port: int, mtu: int, alias: str,
                           into: int) -> None:
        """A VXLAN device made here, in this Netlink's namespace, so that its UDP socket
        lives here (on the underlay), then moved into the namespace `into` (an fd)."""
        await self._add(ifname=name, kind="vxlan", vxlan_id=vni, vxlan_port=port, vxlan_local=local,
                        vxlan_learning=0, vxlan_proxy=1, mtu=mtu, ifalias=alias)
        idx = await self.index(name)
        if idx is not None:  # absent here: an earlier attempt moved it already
            await (await self._query()).link("set", index=idx, net_ns_fd=into)

    async def ensure_port(self, name: str, master: int) -> int:
        """Link `name` (of this namespace) a port of bridge `master`, up."""
        idx = self.raw.index(name)
        if idx is None:
            raise NetlinkError(errno.ENODEV, f"no interface {name}")
        self._do(rtnl.link_set(index=idx, master=master, up=True))
        return idx

    async def fdb_replace(self, dev: str, mac: str, dst: str) -> None:
        """`bridge fdb replace MAC dev DEV dst DST self permanent`: frames for MAC go,
        encapsulated, to the host at DST (replace: a learned entry must not block it)."""
        ipr = await self._query()
        await ipr.fdb("replace", ifindex=await self._must(dev), lladdr=mac, dst=dst,
                      state=NUD_PERMANENT, flags=NTF_SELF)

    async def fdb_delete(self, dev: str, mac: str, dst: str) -> None:
        idx = await self.index(dev)
        if idx is None:
            return
        try:
            await (await self._query()).fdb("del", ifindex=idx, lladdr=mac, dst=dst, flags=NTF_SELF)
        except NetlinkError as e:
            if e.code not in GONE:
                raise

    async def neigh_replace(self, dev: str, ip: str, mac: str) -> None:
        """`ip neigh replace IP lladdr MAC dev DEV nud permanent`: no ARP across the underlay."""
        await (await self._query()).neigh("replace", dst=ip, lladdr=mac, ifindex=await self._must(dev),
                                          state=NUD_PERMANENT)

    async def neigh_delete(self, dev: str, ip: str) -> None:
        idx = await self.index(dev)
        if idx is None:
            return
        try:
            await (await self._query()).neigh("del", dst=ip, ifindex=idx)
        except NetlinkError as e:
            if e.code not in GONE:
                raise

    async def fdb_entries(self, dev: str) -> list[tuple[str, str]]:
        """(MAC, dst) of the device's permanent entries with a destination."""
        idx = await self.index(dev)
        if idx is None:
            return []
        out = []
        async for msg in await (await self._query()).fdb("dump", ifindex=idx):
            if msg.get("ifindex") == idx and msg.get("dst"):
                out.append((str(msg.get("lladdr")), str(msg.get("dst"))))
        return out

    async def _must(self, name: str) -> int:
        idx = await self.index(name)
        if idx is None:
            raise NetlinkError(errno.ENODEV, f"no interface {name}")
        return idx

    # -- addresses and routes -----------------------------------------------
    async def ensure_addr(self, index: int, address: str, prefixlen: int) -> None:
        self._do(rtnl.addr_add(index, address, prefixlen), ok=EXISTS)

    async def configure_interface(self, name: str, mac: str | None, address: str, prefixlen: int) -> int:
        """MAC (unless it was given at birth), no IPv6 address, the IPv4 address, up: one batch."""
        idx = self.raw.index(name)
        if idx is None:
            raise NetlinkError(errno.ENODEV, f"no interface {name}")
        batch = [rtnl.link_set(index=idx, mac=mac, no_ipv6=True), rtnl.addr_add(idx, address, prefixlen),
                 rtnl.link_set(index=idx, up=True)]
        self._do(*batch, ok=EXISTS)
        return idx

    async def ensure_addr6(self, index: int, address: str, prefixlen: int) -> None:
        """An IPv6 address without duplicate address detection (the link keeps no link-local
        address: addrgenmode none, as configure_interface leaves it)."""
        self._do(rtnl.addr6_add(index, address, prefixlen), ok=EXISTS)

    async def ensure_default_route6(self, gateway: str) -> None:
        self._do(rtnl.default_route6(gateway), ok=EXISTS)

    async def ensure_default_route(self, gateway: str) -> None:
        # proto boot (3), as `ip route add` and Docker make it
        self._do(rtnl.default_route(gateway), ok=EXISTS)

    async def ensure_device_route(self, name: str) -> None:
        self._do(rtnl.device_default_route(await self._must(name)), ok=EXISTS)

    async def loopback_up(self) -> None:
        await self.set_up(1)

"""`network connect` and `network disconnect`: one more endpoint in a running
container's sandbox (or only in its record, when it is stopped), or one less.
"""

from __future__ import annotations

from typing import Any

from ..errors import Conflict, Forbidden
from ..model import Attachment, Container, Endpoint
from ..steps import Transaction, deferred, faults
from .common import journaled, new_id
from .core import Core
from .create import check_user_defined
from .epconfig import endpoint_extras
from .lifecycle import Lifecycle
from .planner import assign_addresses
from .sandbox import SandboxHandle, join

HOST_NETWORK = "container cannot be disconnected from host network or connected to host network"


class Connector:
    def __init__(self, core: Core, life: Lifecycle) -> None:
        self.core, self.life = core, life

    async def connect(self, netref: str, cref: str, ip: str = "", aliases: list[str] | None = None,
                      ip6: str = "", endpoint: dict[str, Any] | None = None) -> None:
        """Connect container `cref` to network `netref`; `endpoint` is the rest of the request's
        EndpointConfig (Links, MacAddress, IPAMConfig.LinkLocalIPs, DriverOpts)."""
        core = self.core
        net, c = core.network(netref), core.container(cref)
        extras = endpoint_extras(net, endpoint or {})
        aliases = list(aliases or [])
        mode = core.network(next(iter(c.networks))) if c.networks else None
        if c.joined:
            raise Forbidden("container sharing network namespace with another container or host cannot be "
                            "connected to any other network")
        if net.driver == "host" or (mode is not None and mode.driver == "host"):
            raise Forbidden(HOST_NETWORK)
        if net.driver == "null" or (mode is not None and mode.driver == "null"):
            raise Forbidden("container cannot be connected to multiple networks with one of the networks "
                            "in private (none) mode")
        if net.name in c.networks:
            raise Forbidden(f"endpoint with name {c.name} already exists in network {net.name}")
        check_user_defined(net.name, ip or ip6, aliases)
        if ip:
            core.addresses.check_pinned(net, ip)
        if ip6:
            core.addresses.check_pinned(net, ip6, 6)
        async with core.locks.hold(c.id, net.id), journaled(core.store, "connect", id=c.id, network=net.id):
            c = core.container(c.id)
            if net.name in c.networks:  # a racing connect got here first
                raise Forbidden(f"endpoint with name {c.name} already exists in network {net.name}")
            attachment = Attachment(net.id, aliases, ip, ip6, **extras)
            ep = None
            if c.running and c.netns:
                used = {e.ifname for e in core.store.endpoints(container_id=c.id)}
                ep = Endpoint(container_id=c.id, network_id=net.id, id=new_id(),
                              ifname=next(f"eth{i}" for i in range(len(used) + 1) if f"eth{i}" not in used),
                              veth="veth" + new_id()[:7], aliases=aliases)
                sb = SandboxHandle(c.name, c.netns)
                try:
                    if core.driver(net).leases_addresses:
                        assign_addresses(core, c, net, ep, ip, ip6, attachment.mac)
                        ep.gateway = net.gateway
                    async with Transaction() as tx:
                        c.networks[net.name] = attachment  # join reads it (link-local addresses)
                        await join(core, net, c, ep, sb, tx)
                        if net.user_defined:
                            await tx.step("dns", core.dns.serve(c.id, c.netns), undo=deferred(core.dns.stop, c.id))
                        self._record(c, net.name, attachment, ep)
                finally:
                    core.addresses.release(c.id)
                    sb.close()
                core.events.network(net, "connect", container=c.id)
            else:
                self._record(c, net.name, attachment, None)
        core.refresh_dns(c.id)

    def _record(self, c: Container, name: str, attachment: Attachment, ep: Endpoint | None) -> None:
        store = self.core.store
        with store.transaction():
            if ep is not None:
                for ip in (ep.ip, ep.ip6):
                    if ip and not store.lease(ep.network_id, ip, c.id):
                        raise Conflict(f"Address already in use: {ip} on network {name}")
                store.put_endpoint(ep)
            c.networks[name] = attachment
            store.containers.put(c)

    async def disconnect(self, netref: str, cref: str, force: bool = False) -> None:
        core = self.core
        net, c = core.network(netref), core.container(cref)
        if net.name not in c.networks:
            raise Forbidden(f"container {c.id} is not connected to network {net.name}")
        if net.driver == "host":
            raise Forbidden(HOST_NETWORK)
        async with core.locks.hold(c.id, net.id), journaled(core.store, "disconnect", id=c.id, network=net.id):
            c = core.container(c.id)
            if net.name not in c.networks:  # a racing disconnect got here first
                raise Forbidden(f"container {c.id} is not connected to network {net.name}")
            if any(p.bridge == net.bridge for p in c.ports):
                await self.life.withdraw(c)
            for ep in core.store.endpoints(container_id=c.id, network_id=net.id):
                if core.cluster is not None and net.driver == "overlay" and ep.ip:
                    await core.cluster.withdraw(net.id, ep.ip, stays=True)
                await core.driver(net).leave(net, ep, netns_name=c.netns)
                faults.step_done("leave")
                core.store.release(net.id, c.id)
                faults.step_done("release")
                core.store.delete_endpoint(c.id, net.id)
                faults.step_done("endpoint")
            del c.networks[net.name]
            core.store.containers.put(c)
            nets = core.nets_by_id()
            if not any((n := nets.get(a.network_id)) is not None and n.user_defined for a in c.networks.values()):
                core.dns.stop(c.id)
            if c.running:
                core.events.network(net, "disconnect", container=c.id)
        core.refresh_dns(c.id)

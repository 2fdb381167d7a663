"""A start, planned: one read of the store (`store.reading()`) gives a typed
plan of everything the start will make: the namespace, per network an
endpoint (interface name, veth, address, MAC, gateway), the host ports, the
/etc files, whether the DNS stub serves it. The plan is built synchronously:
the addresses and ports it chooses are pending until the start commits or
gives up, so two concurrent starts never choose the same ones.

Applying the plan is the lifecycle's (sandbox, drivers, firewall, process);
it writes the store once, at the end.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from .. import dnsstub, ipam
from ..errors import Conflict
from ..model import GATEWAY_BRIDGE, Container, Endpoint, Network
from . import files
from .common import new_id
from .core import Core
from .dnsrecords import uses_dns
from .publish import Choice, bindings_of
from .sandbox import namespace_of

log = logging.getLogger("minidock.planner")


@dataclass
class StartPlan:
    c: Container  # a copy: the record as the commit writes it
    mode: str  # "own" (a namespace of its own), "host", or "joined" (another container's)
    ns_name: str = ""
    owner: Container | None = None  # the container whose namespace a joined one enters
    nets: dict[str, Network] = field(default_factory=dict)  # by id, of the endpoints
    endpoints: list[Endpoint] = field(default_factory=list)
    dns: bool = False
    ports: list[Choice] = field(default_factory=list)
    hosts: str = ""
    resolv: str = ""
    hostname: str = ""

    @property
    def primary(self) -> Endpoint | None:
        return self.endpoints[0] if self.endpoints else None

    @property
    def way_out(self) -> Endpoint | None:
        """The endpoint with the default route: where published ports are forwarded."""
        return next((ep for ep in self.endpoints if ep.gateway_endpoint), self.primary)


def plan_start(core: Core, cid: str, own: Callable[[Container], None] | None = None) -> StartPlan | None:
    """Read the store once and plan the start of container `cid`; None if it runs already.
    `own(c)` is told first, before the endpoints are planned, if it gets a namespace of its own."""
    try:
        with core.store.reading():
            return _plan(core, cid, own)
    except BaseException:
        release(core, cid)
        raise


def release(core: Core, cid: str) -> None:
    """Let go of what a plan chose and did not commit."""
    core.addresses.release(cid)
    core.holds.pending.pop(cid, None)


def _plan(core: Core, cid: str, own: Callable[[Container], None] | None) -> StartPlan | None:
    c = core.container(cid)
    if c.running:
        return None
    mode_net = core.network(next(iter(c.networks))) if c.networks else core.network("none")
    if c.joined:
        owner = core.container(c.joined)
        if not owner.running or not owner.netns:
            raise Conflict(f"cannot join network of a non running container: {owner.id}")
        c.netns = owner.netns
        c.config["Hostname"] = owner.config["Hostname"]
        c.config["Domainname"] = owner.config["Domainname"]
        return StartPlan(c, "joined", owner=owner)
    if not core.driver(mode_net).own_namespace:
        plan = StartPlan(c, "host", nets={mode_net.id: mode_net})  # no endpoint: its network, for the events
        _files(core, plan)
        return plan
    if own is not None:
        own(c)
    plan = StartPlan(c, "own", ns_name=namespace_of(c))
    c.netns = plan.ns_name
    for index, attachment in enumerate(c.networks.values()):
        net = core.network(attachment.network_id)
        way_out = index == 0 and not net.internal
        if way_out and core.driver(net).needs_gateway_bridge:
            gw = core.store.networks.find(GATEWAY_BRIDGE)
            if gw is None:
                raise NeedsGatewayBridge()
            # an overlay has no way out of its own: a second interface, on the gateway bridge, is it
            plan.endpoints.append(_endpoint(core, c, gw, len(c.networks), "", [], True))  # IPv4 only
            plan.nets[gw.id] = gw
            way_out = False
        plan.endpoints.append(_endpoint(core, c, net, index, attachment.ipv4, attachment.aliases, way_out,
                                        attachment.ipv6, attachment.mac))
        plan.nets[net.id] = net
    plan.endpoints.sort(key=lambda ep: int(ep.ifname[3:]))
    plan.dns = uses_dns(c, plan.nets)
    primary = plan.nets.get(plan.endpoints[0].network_id) if plan.endpoints else None
    bindings = bindings_of(c)
    if bindings and primary is not None and core.driver(primary).publishes_ports and not primary.internal:
        plan.ports = core.holds.choose(bindings, c.name, core.firewall.published(exclude=c.id), owner=c.id,
                                       ipv6=primary.ipam6 is not None)
    elif bindings and primary is not None and not core.driver(primary).publishes_ports:
        log.warning("%s driver does not support port mappings", primary.driver)  # Docker's words, and it goes on
    _files(core, plan)
    return plan


class NeedsGatewayBridge(Exception):
    """The plan needs the gateway bridge network, which does not exist yet: make it, plan again."""


def _endpoint(core: Core, c: Container, net: Network, index: int, wanted: str, aliases: list[str],
              way_out: bool, wanted6: str = "", mac: str = "") -> Endpoint:
    ep = Endpoint(container_id=c.id, network_id=net.id, id=new_id(), ifname=f"eth{index}",
                  veth="veth" + new_id()[:7], aliases=list(aliases), gateway_endpoint=way_out)
    if core.driver(net).leases_addresses:
        assign_addresses(core, c, net, ep, wanted, wanted6, mac)
        ep.gateway = net.gateway if not core.driver(net).needs_gateway_bridge else ""
    return ep


def assign_addresses(core: Core, c: Container, net: Network, ep: Endpoint, wanted: str, wanted6: str,
                     mac: str = "") -> None:
    """The endpoint's IPv4 address and MAC (`mac`, the one asked for, or Docker's 02:42 and the
    address), and its IPv6 address on a network with IPv6: chosen, pending until the start or
    connect settles (its gateway is the caller's to decide)."""
    ip = core.addresses.choose(net, c.id, wanted)
    ep.ip, ep.prefixlen, ep.mac = str(ip), net.ipam[0].prefixlen, mac or ipam.mac_for(ip)
    six = net.ipam6
    if six is not None:
        ep.ip6 = str(core.addresses.choose(net, c.id, wanted6, 6))
        ep.prefixlen6, ep.gateway6 = six.prefixlen, six.gateway


def _files(core: Core, plan: StartPlan) -> None:
    """/etc/hosts, resolv.conf and hostname, as the container will see them."""
    c = plan.c
    plan.hosts = hosts_text(core, c, plan.endpoints, plan.mode == "host")
    if plan.dns:
        plan.resolv = f"nameserver {dnsstub.STUB_ADDRESS}\noptions ndots:0\n"
    else:
        plan.resolv = files.resolv_conf(c.host_config.dns or core.upstreams)
    plan.hostname = c.hostname + "\n"


def hosts_text(core: Core, c: Container, endpoints: list[Endpoint], host_mode: bool) -> str:
    """The container's /etc/hosts: --add-host and --link lines, then its own address (the
    first endpoint's, in interface order), or the host's file with the extras on the host network."""
    gw = next((ep.gateway for ep in endpoints if ep.gateway), None)
    extra = [files.parse_extra_host(s, gw or "127.0.0.1") for s in c.host_config.extra_hosts]
    for link in c.host_config.links:
        target, _, alias = link.partition(":")
        other = core.store.containers.find(target.lstrip("/"))
        if other:
            ip = next((ep.ip for ep in core.store.endpoints(container_id=other.id) if ep.ip), None)
            if ip:
                extra.append((" ".join(dict.fromkeys([alias or other.name, other.hostname, other.name])), ip))
    if host_mode:
        with open("/etc/hosts") as f:
            return f.read() + "".join(f"{ip}\t{n}\n" for n, ip in extra)
    own = [(ep.ip, c.hostname) for ep in endpoints if ep.ip][:1]
    return files.hosts(own, extra)

"""Networks: the three predefined ones, user-defined bridges, and their
Docker-shaped JSON.

A network record (model.Network) holds what Docker's inspect shows plus the
bridge name. Creating one validates everything, picks a subnet, makes the
kernel objects through the driver, then writes the record; failures undo
the kernel work in reverse.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from typing import Any

from netaddr import IPNetwork

from .. import ipam
from ..drivers.macvlan import check_options
from ..errors import Conflict, Forbidden, InvalidParameter, MinidockError
from ..model import (
    CHILD_LINK_DRIVERS,
    GATEWAY_BRIDGE,
    OPT_ICC,
    OPT_MASQ,
    OPT_MTU,
    OPT_NAME,
    OPT_VNI,
    Endpoint,
    IPAMConfig,
    Network,
)
from ..steps import Transaction, deferred, faults
from .common import check_name, journaled, new_id, rfc3339
from .core import Core

PREDEFINED = ("bridge", "host", "none")
GATEWAY_BRIDGE_DEVICE = "minidock_gwbr"  # "minidock_gwbridge" is longer than a link name may be
NO_STORE = ("overlay networks need a cluster store: start the daemon with "
            "--cluster-store etcd://HOST:2379 --cluster-advertise ADDRESS")
log = logging.getLogger("minidock.networks")
DEFAULT_BRIDGE = "minidock0"
KNOWN_OPTIONS = {OPT_NAME, OPT_MTU, OPT_ICC, OPT_MASQ, "com.docker.network.bridge.host_binding_ipv4",
                 "com.docker.network.bridge.default_bridge"}


def network_json(net: Network, endpoints: list[Endpoint], names: dict[str, str], scope: str = "local",
                 ) -> dict[str, Any]:
    """Docker's /networks/{id} shape."""
    containers = {}
    for ep in endpoints:
        if not ep.ip and net.driver == "bridge":
            continue
        containers[ep.container_id] = {
            "Name": names.get(ep.container_id, ""),
            "EndpointID": ep.id,
            "MacAddress": ep.mac,
            "IPv4Address": ep.cidr,
            "IPv6Address": ep.cidr6,
        }
    config = []
    for c in net.ipam:
        entry = {"Subnet": c.subnet}
        if c.ip_range:
            entry["IPRange"] = c.ip_range
        entry["Gateway"] = c.gateway
        if c.aux:
            entry["AuxiliaryAddresses"] = dict(c.aux)
        config.append(entry)
    return {
        "Name": net.name,
        "Id": net.id,
        "Created": rfc3339(net.created),
        "Scope": scope,
        "Driver": net.driver,
        "EnableIPv6": net.enable_ipv6,
        "IPAM": {"Driver": "default", "Options": net.ipam_options or None, "Config": config},
        "Internal": net.internal,
        "Attachable": net.attachable,
        "Ingress": False,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": containers,
        "Options": dict(net.options),
        "Labels": dict(net.labels),
    }


def validate_create(req: dict[str, Any], existing: list[Network], clustered: bool = False) -> Network:
    """Check a /networks/create body against Docker's rules; return a record
    without a subnet when none was asked for (the caller picks one). An overlay
    needs the daemon to be in a cluster (`clustered`)."""
    name = req.get("Name") or ""
    if not name:
        raise InvalidParameter("network name is required")
    check_name(name, "network")
    if any(n.name == name for n in existing):
        raise Conflict(f"network with name {name} already exists")
    driver = req.get("Driver") or "bridge"
    if driver in ("host", "null"):
        raise Forbidden(f"only one instance of \"{driver}\" network is allowed")
    if driver == "overlay" and not clustered:
        raise Forbidden(NO_STORE)
    if driver not in ("bridge", "overlay", *CHILD_LINK_DRIVERS):
        raise NotImplementedDriver(driver)
    options = {k: str(v) for k, v in (req.get("Options") or {}).items()}
    for key, value in options.items():
        if key.startswith("com.docker.network.") and key not in KNOWN_OPTIONS:
            raise InvalidParameter(f"unknown option {key}")
        if key == OPT_MTU and (not value.isdigit() or not 68 <= int(value) <= 65535):
            raise InvalidParameter(f"invalid MTU value {value!r}: it must be a number from 68 to 65535")
        if key in (OPT_ICC, OPT_MASQ) and value.lower() not in ("true", "false", "1", "0"):
            raise InvalidParameter(f"invalid value {value!r} for option {key}: it must be true or false")
    bridge = options.get(OPT_NAME, "")
    if bridge and (len(bridge) > 15 or not all(c.isalnum() or c in "-_." for c in bridge)):
        raise InvalidParameter(f"invalid bridge name {bridge!r}: at most 15 letters, digits, '-', '_' or '.'")
    if bridge and any(n.bridge == bridge for n in existing):
        raise Conflict(f"bridge name {bridge} is already used by another network")
    ipam_req = req.get("IPAM") or {}
    if (ipam_req.get("Driver") or "default") != "default":
        raise InvalidParameter(f"IPAM driver \"{ipam_req['Driver']}\" is not supported: use default")
    by_family: dict[int, dict[str, Any]] = {}
    for c in ipam_req.get("Config") or []:
        family = ipam.version_of(c.get("Subnet") or c.get("Gateway") or c.get("IPRange") or "")
        if family in by_family:
            raise InvalidParameter(f"only one IPv{family} subnet per network is supported")
        by_family[family] = c
    configs = [config_of(by_family[v], v, existing) for v in (4, 6) if v in by_family]
    enable_ipv6 = bool(req.get("EnableIPv6"))
    if enable_ipv6 and driver not in ("bridge",):
        raise InvalidParameter(f"IPv6 is not supported on {driver} networks here: only on bridge networks")
    labels = {str(k): str(v) for k, v in (req.get("Labels") or {}).items()}
    if driver == "overlay" and (bridge or OPT_VNI in options):
        raise InvalidParameter(f"option {OPT_NAME if bridge else OPT_VNI} is not for overlay networks")
    if driver in CHILD_LINK_DRIVERS:
        if bridge:
            raise InvalidParameter(f"option {OPT_NAME} is not for {driver} networks")
        check_options(driver, options, existing)
    return Network(id=new_id(), name=name, driver=driver, created=time.time(), internal=bool(req.get("Internal")),
                   attachable=bool(req.get("Attachable")), ipam=[IPAMConfig(**c) for c in configs if c],
                   options=options, labels=labels, bridge=bridge, enable_ipv6=enable_ipv6)


def config_of(c: dict[str, Any], version: int, existing: list[Network]) -> dict[str, Any]:
    """One IPAM config of a create request, checked: subnet (no overlap with another network's
    of its family), ip-range and gateway inside it, auxiliary addresses."""
    if not c.get("Subnet"):
        if c.get("IPRange") or c.get("Gateway") or c.get("AuxiliaryAddresses"):
            raise InvalidParameter("ip-range, gateway and aux-address need a subnet (--subnet)")
        return {}
    subnet = ipam.parse_subnet(c["Subnet"], version)
    for other in existing:
        for oc in other.ipam:
            if ipam.version_of(oc.subnet) == version and ipam.overlaps(subnet, IPNetwork(oc.subnet)):
                raise Forbidden("Pool overlaps with other one on this address space")
    config: dict[str, Any] = {"subnet": str(subnet)}
    if c.get("IPRange"):
        rng = ipam.parse_subnet(c["IPRange"], version)
        if rng.first < subnet.first or rng.last > subnet.last:
            raise InvalidParameter(f"invalid ip-range {c['IPRange']}: it must be inside subnet {subnet}")
        config["ip_range"] = str(rng)
    if c.get("Gateway"):
        gw = ipam.parse_address(c["Gateway"], "gateway", version)
        if gw not in subnet or int(gw) in (subnet.first, subnet.last if version == 4 else -1):
            raise InvalidParameter(f"invalid gateway {gw}: it must be a host address in subnet {subnet}")
        config["gateway"] = str(gw)
    else:
        config["gateway"] = str(ipam.default_gateway(subnet))
    aux = {}
    for aux_name, value in (c.get("AuxiliaryAddresses") or {}).items():
        addr = ipam.parse_address(str(value), "auxiliary address", version)
        if addr not in subnet:
            raise InvalidParameter(f"invalid auxiliary address {aux_name}={value}: it must be in subnet {subnet}")
        aux[str(aux_name)] = str(addr)
    config["aux"] = aux
    return config


class NotImplementedDriver(InvalidParameter):
    def __init__(self, driver: str) -> None:
        super().__init__(f"plugin \"{driver}\" not found")


def finish_subnet(net: Network, in_use: list[IPNetwork], routes: list[IPNetwork],
                  pick: Callable[[list[IPNetwork], list[IPNetwork]], IPNetwork] = ipam.pick_subnet,
                  seed: str = "") -> None:
    """Give `net` a subnet from the default pools (`pick`'s) if it has none (and an IPv6 one
    from the ULA pool of `seed` if it has IPv6 and none), and a bridge name."""
    if net.enable_ipv6 and net.ipam6 is None:
        six = ipam.pick_subnet6(in_use, seed)
        net.ipam.append(IPAMConfig(str(six), str(ipam.default_gateway(six))))
    if not net.ipam or ":" in net.ipam[0].subnet:  # IPv4 first, always
        subnet = pick(in_use, routes)
        net.ipam.insert(0, IPAMConfig(str(subnet), str(ipam.default_gateway(subnet))))
    elif net.driver in ("bridge", "overlay"):  # a macvlan's subnet is its LAN's: routed on the host, rightly
        subnet = IPNetwork(net.subnet)
        for r in routes:
            if r.prefixlen > 0 and ipam.overlaps(subnet, r):
                raise Forbidden("Pool overlaps with other one on this address space")
    if not net.bridge and net.driver == "bridge":
        net.bridge = "br-" + net.id[:12]


def ula_seed() -> str:
    """What makes this host's IPv6 default pool its own (RFC 4193 wants it random per site)."""
    try:
        with open("/etc/machine-id") as f:
            return f.read().strip() or socket.gethostname()
    except OSError:
        return socket.gethostname()


def default_bridge_record() -> Network:
    return Network(id=new_id(), name="bridge", driver="bridge", created=time.time(), options={
        "com.docker.network.bridge.default_bridge": "true", OPT_ICC: "true", OPT_MASQ: "true",
        "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0", OPT_NAME: DEFAULT_BRIDGE, OPT_MTU: "1500",
    }, bridge=DEFAULT_BRIDGE, predefined=True)


def simple_record(name: str, driver: str) -> Network:
    return Network(id=new_id(), name=name, driver=driver, created=time.time(), predefined=True)


class Networks:
    """Network CRUD: validate, make the kernel objects through the driver, then record."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.default_ipv6: str | None = None  # daemon --ipv6: the default bridge's IPv6 subnet ("" a ULA)

    def subnets_in_use(self) -> list[IPNetwork]:
        return [IPNetwork(c.subnet) for n in self.core.store.networks.view() for c in n.ipam]

    def view(self, net: Network) -> dict[str, Any]:
        store, cluster = self.core.store, self.core.cluster
        names = {c.id: c.name for c in store.containers.view()}
        out = network_json(net, store.endpoints(network_id=net.id), names, self.core.driver(net).scope)
        if net.driver == "overlay" and cluster is not None:
            out["Peers"] = cluster.network_peers(net)
        return out

    def list(self) -> list[dict[str, Any]]:
        return [self.view(n) for n in self.core.store.networks.all()]

    async def ensure_predefined(self) -> None:
        """The default bridge (its subnet picked now), host and none: made on the first start.
        The daemon's --ipv6 [--fixed-cidr-v6] turns the default bridge's IPv6 on (or changes
        it) while no container is on it; without --ipv6 it is IPv4 only again."""
        store = self.core.store
        names = {n.name for n in store.networks.all()}
        rec = store.networks.find("bridge")
        if rec is None:
            rec = default_bridge_record()
            finish_subnet(rec, self.subnets_in_use(), await self.core.host.routes())
        want = self.default_ipv6
        six = rec.ipam6
        if (want is None) != (six is None) or (want and six is not None and six.subnet != want):
            if store.endpoints(network_id=rec.id):
                log.warning("the default bridge keeps its IPv6 setting: containers are on it")
            else:
                rec.ipam = [c for c in rec.ipam if ":" not in c.subnet]
                rec.enable_ipv6 = want is not None
                if want:
                    subnet = ipam.parse_subnet(want, 6)
                    rec.ipam.append(IPAMConfig(str(subnet), str(ipam.default_gateway(subnet))))
                elif want is not None:
                    finish_subnet(rec, self.subnets_in_use(), [], seed=ula_seed())
        store.networks.put(rec)
        for name, driver in (("host", "host"), ("none", "null")):
            if name not in names:
                store.networks.put(simple_record(name, driver))

    async def create(self, req: dict[str, Any]) -> dict[str, Any]:
        core, cluster = self.core, self.core.cluster
        net = validate_create(req, core.store.networks.all(), cluster is not None)
        async with core.locks.hold("networks"):
            validate_create({**req}, core.store.networks.all(), cluster is not None)  # again, under the lock
            in_use = self.subnets_in_use()
            if cluster is not None and net.driver == "overlay":
                in_use += [IPNetwork(n.subnet) for n in cluster.networks.values()]
                finish_subnet(net, in_use, await core.host.routes(), cluster.pick_subnet)
            else:
                finish_subnet(net, in_use, await core.host.routes(), seed=ula_seed())
            async with journaled(core.store, "network create", network=net.id, bridge=net.bridge), \
                    Transaction(context="failed to create network") as tx:
                if cluster is not None and net.driver == "overlay":
                    await cluster.create_network(net)  # its VNI, cluster-wide
                    tx.on_undo("cluster store", deferred(cluster.delete_network, net))
                await core.driver(net).create_network(net, tx)
                core.store.networks.put(net)
                tx.on_undo("store", deferred(core.store.networks.delete, net.id))
                core.firewall.set_network(net.id, core.driver(net).firewall(net))
                tx.on_undo("firewall", deferred(core.firewall.drop_network, net.id))
                await core.firewall.apply(f"let {net.name} out through NAT and keep it apart from other bridges")
        core.events.network(net, "create")
        return {"Id": net.id, "Warning": ""}

    async def ensure_gateway_bridge(self) -> Network:
        """minidock_gwbridge, as Docker's docker_gwbridge: a local bridge network, no
        traffic between its ports, NAT out; made when the first overlay container starts."""
        net = self.core.store.networks.find(GATEWAY_BRIDGE)
        if net is None:
            try:
                await self.create({"Name": GATEWAY_BRIDGE, "Options": {
                    OPT_NAME: GATEWAY_BRIDGE_DEVICE, OPT_ICC: "false", OPT_MASQ: "true"}})
            except Conflict:
                pass  # a concurrent start made it
            net = self.core.network(GATEWAY_BRIDGE)
        return net

    async def remove(self, ref: str) -> None:
        core = self.core
        net = core.network(ref)
        if net.predefined:
            raise Forbidden(f"{net.name} is a pre-defined network and cannot be removed")
        async with core.locks.hold("networks", net.id):
            eps = core.store.endpoints(network_id=net.id)
            users = [c for c in core.store.containers.view() if net.name in c.networks and c.running]
            if eps or users:
                names = ", ".join(sorted({c.name for c in users}))
                raise Forbidden(
                    f"error while removing network: network {net.name} id {net.id} has active endpoints"
                    + (f" ({names})" if names else ""))
            async with journaled(core.store, "network rm", network=net.id):
                if core.cluster is not None and net.driver == "overlay":
                    await core.cluster.delete_network(net)  # refused while any host has endpoints on it
                shared = any(n.id != net.id and net.bridge and n.bridge == net.bridge
                             for n in core.store.networks.all())  # a VLAN sub-interface: the last one removes it
                if not shared:
                    await core.driver(net).delete_network(net)
                faults.step_done("bridge")
                with core.store.transaction():
                    core.store.release_network(net.id)
                    core.store.networks.delete(net.id)
                core.firewall.drop_network(net.id)
                await core.firewall.apply(f"the rules of {net.name} go")
        core.events.network(net, "destroy")

    async def prune(self) -> list[str]:
        removed = []
        for net in self.core.store.networks.all():
            if net.predefined or any(net.name in c.networks for c in self.core.store.containers.view()):
                continue
            try:
                await self.remove(net.id)
                removed.append(net.name)
            except MinidockError:
                continue
        return removed

"""Networks: the three predefined ones, user-defined bridges, and their
Docker-shaped JSON.

A network record (the store's document) holds what Docker's inspect shows
plus the bridge name. Creating one validates everything, picks a subnet,
makes the kernel objects through the driver, then writes the record;
failures undo the kernel work in reverse.
"""

from __future__ import annotations

import time
from typing import Any

from netaddr import IPAddress, IPNetwork

from .. import ipam
from ..drivers.bridge import OPT_ICC, OPT_MASQ, OPT_MTU, OPT_NAME
from ..errors import Conflict, Forbidden, InvalidParameter
from ..steps import Transaction
from .common import check_name, new_id, rfc3339

PREDEFINED = ("bridge", "host", "none")
DEFAULT_BRIDGE = "minidock0"
KNOWN_OPTIONS = {OPT_NAME, OPT_MTU, OPT_ICC, OPT_MASQ, "com.docker.network.bridge.host_binding_ipv4",
                 "com.docker.network.bridge.default_bridge"}


def network_json(net: dict[str, Any], endpoints: list[dict[str, Any]], names: dict[str, str]) -> dict[str, Any]:
    """Docker's /networks/{id} shape."""
    containers = {}
    for ep in endpoints:
        if not ep.get("ip") and net["driver"] == "bridge":
            continue
        containers[ep["container_id"]] = {
            "Name": names.get(ep["container_id"], ""),
            "EndpointID": ep["id"],
            "MacAddress": ep.get("mac", ""),
            "IPv4Address": f"{ep['ip']}/{ep['prefixlen']}" if ep.get("ip") else "",
            "IPv6Address": "",
        }
    config = []
    for c in net["ipam"]["config"]:
        entry = {"Subnet": c["subnet"]}
        if c.get("ip_range"):
            entry["IPRange"] = c["ip_range"]
        entry["Gateway"] = c["gateway"]
        config.append(entry)
    return {
        "Name": net["name"],
        "Id": net["id"],
        "Created": rfc3339(net["created"]),
        "Scope": "local",
        "Driver": net["driver"],
        "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": net["ipam"].get("options") or None, "Config": config},
        "Internal": bool(net.get("internal")),
        "Attachable": bool(net.get("attachable")),
        "Ingress": False,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": containers,
        "Options": dict(net.get("options", {})),
        "Labels": dict(net.get("labels", {})),
    }


def validate_create(req: dict[str, Any], existing: list[dict[str, Any]]) -> dict[str, Any]:
    """Check a /networks/create body against Docker's rules; return a record
    without a subnet when none was asked for (the caller picks one)."""
    name = req.get("Name") or ""
    if not name:
        raise InvalidParameter("network name is required")
    check_name(name, "network")
    if any(n["name"] == name for n in existing):
        raise Conflict(f"network with name {name} already exists")
    driver = req.get("Driver") or "bridge"
    if driver in ("host", "null"):
        raise Forbidden(f"only one instance of \"{driver}\" network is allowed")
    if driver != "bridge":
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
    if bridge and any(n.get("bridge") == bridge for n in existing):
        raise Conflict(f"bridge name {bridge} is already used by another network")
    ipam_req = req.get("IPAM") or {}
    if (ipam_req.get("Driver") or "default") != "default":
        raise InvalidParameter(f"IPAM driver \"{ipam_req['Driver']}\" is not supported: use default")
    configs = ipam_req.get("Config") or []
    if len(configs) > 1:
        raise InvalidParameter("only one IPv4 subnet per network is supported")
    config: dict[str, Any] = {}
    if configs:
        c = configs[0]
        if c.get("Subnet"):
            subnet = ipam.parse_subnet(c["Subnet"])
            for other in existing:
                for oc in other["ipam"]["config"]:
                    if ipam.overlaps(subnet, IPNetwork(oc["subnet"])):
                        raise Forbidden("Pool overlaps with other one on this address space")
            config["subnet"] = str(subnet)
            if c.get("IPRange"):
                rng = ipam.parse_subnet(c["IPRange"])
                if rng.first < subnet.first or rng.last > subnet.last:
                    raise InvalidParameter(f"invalid ip-range {c['IPRange']}: it must be inside subnet {subnet}")
                config["ip_range"] = str(rng)
            if c.get("Gateway"):
                gw = ipam.parse_address(c["Gateway"], "gateway")
                if gw not in subnet or int(gw) in (subnet.first, subnet.last):
                    raise InvalidParameter(
                        f"invalid gateway {gw}: it must be a host address in subnet {subnet}")
                config["gateway"] = str(gw)
            else:
                config["gateway"] = str(ipam.default_gateway(subnet))
        elif c.get("IPRange") or c.get("Gateway"):
            raise InvalidParameter("ip-range and gateway need a subnet (--subnet)")
    labels = {str(k): str(v) for k, v in (req.get("Labels") or {}).items()}
    return {
        "id": new_id(),
        "name": name,
        "driver": "bridge",
        "created": time.time(),
        "internal": bool(req.get("Internal")),
        "attachable": bool(req.get("Attachable")),
        "ipam": {"driver": "default", "options": None, "config": [config] if config else []},
        "options": options,
        "labels": labels,
        "bridge": bridge,
        "predefined": False,
    }


class NotImplementedDriver(InvalidParameter):
    def __init__(self, driver: str) -> None:
        super().__init__(f"plugin \"{driver}\" not found")


def finish_subnet(net: dict[str, Any], in_use: list[IPNetwork], routes: list[IPNetwork]) -> None:
    """Give `net` a subnet from the default pools if it has none, and a bridge name."""
    if not net["ipam"]["config"]:
        subnet = ipam.pick_subnet(in_use, routes)
        net["ipam"]["config"] = [{"subnet": str(subnet), "gateway": str(ipam.default_gateway(subnet))}]
    else:
        subnet = IPNetwork(net["ipam"]["config"][0]["subnet"])
        for r in routes:
            if r.prefixlen > 0 and ipam.overlaps(subnet, r):
                raise Forbidden("Pool overlaps with other one on this address space")
    if not net["bridge"]:
        net["bridge"] = "br-" + net["id"][:12]


def default_bridge_record() -> dict[str, Any]:
    return {
        "id": new_id(),
        "name": "bridge",
        "driver": "bridge",
        "created": time.time(),
        "internal": False,
        "attachable": False,
        "ipam": {"driver": "default", "options": None, "config": []},
        "options": {
            "com.docker.network.bridge.default_bridge": "true",
            OPT_ICC: "true",
            OPT_MASQ: "true",
            "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
            OPT_NAME: DEFAULT_BRIDGE,
            OPT_MTU: "1500",
        },
        "labels": {},
        "bridge": DEFAULT_BRIDGE,
        "predefined": True,
    }


def simple_record(name: str, driver: str) -> dict[str, Any]:
    return {
        "id": new_id(), "name": name, "driver": driver, "created": time.time(), "internal": False,
        "attachable": False, "ipam": {"driver": "default", "options": None, "config": []},
        "options": {}, "labels": {}, "bridge": "", "predefined": True,
    }


def gateway_of(net: dict[str, Any]) -> IPAddress | None:
    cfg = net["ipam"]["config"]
    return IPAddress(cfg[0]["gateway"]) if cfg else None


async def run_create(driver: Any, net: dict[str, Any], tx: Transaction) -> None:
    await driver.create_network(net, tx)

"""The parts of Docker's EndpointSettings (a create's NetworkingConfig, a connect's
EndpointConfig) beyond addresses and aliases: Links, MacAddress,
IPAMConfig.LinkLocalIPs and DriverOpts, checked with Docker's words before
anything is recorded (sandbox.join puts the link-local addresses on the
interface; the planner and connect give it the MAC).

    EndpointConfig {Links: ["db:database"], MacAddress: "02:42:ac:11:00:99",
                    IPAMConfig: {LinkLocalIPs: ["169.254.8.8"]}, DriverOpts: {...}}
      → Attachment(links=[...], mac="02:42:ac:11:00:99", link_local=[...], driver_opts={...})
      → eth1 with that MAC, 169.254.8.8/16 added to it, "database" resolving to db (for it alone)
"""

from __future__ import annotations

import re
from typing import Any

from netaddr import AddrFormatError, IPAddress

from ..errors import InvalidParameter
from ..model import Network

# Go's net.ParseMAC, for the 48-bit forms an Ethernet interface can take
_MAC_FORMS = (re.compile(r"^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$"),
              re.compile(r"^[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}$"))


def parse_mac(value: str) -> str:
    """A MAC address as Docker's daemon takes it (net.ParseMAC), lower case with colons; a
    multicast or all-zero one is refused here, where the kernel would refuse it later."""
    if not any(form.match(value) for form in _MAC_FORMS):
        raise InvalidParameter(f"invalid MAC address {value}")
    digits = re.sub(r"[^0-9a-fA-F]", "", value).lower()
    if int(digits[:2], 16) & 1 or not int(digits, 16):
        raise InvalidParameter(f"invalid MAC address {value}: an interface needs a unicast address "
                               "(the first byte even, not all zeros)")
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


def parse_link(value: str) -> tuple[str, str]:
    """moby's opts.ParseLink: "name:alias", "name" (its own alias) or "/name:/c/alias"."""
    if not value:
        raise InvalidParameter("empty string specified for links")
    parts = value.split(":")
    if len(parts) > 2:
        raise InvalidParameter(f"bad format for links: {value}")
    if len(parts) == 1:
        return value, value
    name, alias = parts
    if name.startswith("/"):
        return name[1:], alias.rsplit("/", 1)[-1]
    return name, alias


def _address(value: str) -> IPAddress:
    try:
        addr = IPAddress(value.strip("[]"), flags=0) if value and "/" not in value else None
    except (AddrFormatError, ValueError, TypeError):
        addr = None
    if addr is None or int(addr) == 0 or (addr.version == 4 and value.count(".") != 3):
        raise InvalidParameter(f"invalid endpoint settings:\ninvalid link-local IP address: {value}")
    return addr


def endpoint_extras(net: Network, cfg: dict[str, Any]) -> dict[str, Any]:
    """The checked Links, MacAddress, LinkLocalIPs and DriverOpts of one EndpointSettings, as
    keyword arguments of model.Attachment."""
    links = [str(x) for x in cfg.get("Links") or []]
    for link in links:
        parse_link(link)
    mac = str(cfg.get("MacAddress") or "")
    if mac:
        mac = parse_mac(mac)
        if net.driver == "ipvlan":
            raise InvalidParameter("ipvlan interfaces do not support custom mac address assignment")
    link_local = [str(x) for x in (cfg.get("IPAMConfig") or {}).get("LinkLocalIPs") or []]
    link_local = [str(_address(x)) for x in link_local]
    opts = cfg.get("DriverOpts") or {}
    if not isinstance(opts, dict):
        raise InvalidParameter("json: cannot unmarshal into Go struct field EndpointSettings.DriverOpts "
                               "of type map[string]string")
    return {"links": links, "mac": mac, "link_local": link_local,
            "driver_opts": {str(k): str(v) for k, v in opts.items()}}


def migrate_container_mac(body: dict[str, Any]) -> str:
    """moby's handleMACAddressBC (API 1.44 and later): the deprecated container-wide
    Config.MacAddress moves to the endpoint of the network mode's network (bridge or a
    user-defined one), in place in `body`; the warning Docker gives, or "" if there was none."""
    mac = body.get("MacAddress")
    if not mac:
        return ""
    if not isinstance(mac, str):
        raise InvalidParameter("json: cannot unmarshal into Go struct field Config.MacAddress of type string")
    mode = str((body.get("HostConfig") or {}).get("NetworkMode") or "default")
    name = "bridge" if mode == "default" else mode
    if name not in ("host", "none") and not name.startswith("container:"):
        nc = body.get("NetworkingConfig") or {}
        eps = nc.get("EndpointsConfig") or {}
        key = name if name in eps else mode if mode in eps else None
        if eps and key is None:
            raise InvalidParameter("unable to migrate container-wide MAC address to a specific network: "
                                   "HostConfig.NetworkMode must match the identity of a network in "
                                   "NetworkSettings.Networks")
        key = key or name
        ep = eps.get(key) or {}
        if not ep.get("MacAddress"):
            ep["MacAddress"] = mac
        elif ep["MacAddress"] != mac:
            raise InvalidParameter("the container-wide MAC address must match the endpoint-specific MAC address "
                                   "for the main network, or be left empty")
        body["NetworkingConfig"] = {**nc, "EndpointsConfig": {**eps, key: ep}}
    body["MacAddress"] = ""
    return "The container-wide MacAddress field is now deprecated. It should be specified in EndpointsConfig instead."

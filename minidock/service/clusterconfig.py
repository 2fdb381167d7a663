"""The daemon's cluster flags, checked before anything starts (no I/O): Docker's
classic `--cluster-store`, `--cluster-advertise` and `--cluster-store-opt`."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from ..etcd import parse_endpoints

DEFAULT_TTL = 20


@dataclass
class ClusterConfig:
    url: str
    advertise: str
    node: str
    ttl: int = DEFAULT_TTL

    @classmethod
    def parse(cls, url: str, advertise: str, opts: tuple[str, ...] | list[str], node: str) -> ClusterConfig | None:
        if not url:
            if advertise:
                raise ValueError("--cluster-advertise needs --cluster-store")
            return None
        parse_endpoints(url)  # a ValueError names the flag's expected shape
        if not advertise:
            raise ValueError("--cluster-store needs --cluster-advertise ADDRESS (this host's underlay address)")
        address = advertise.rsplit(":", 1)[0] if advertise.count(":") == 1 else advertise
        try:
            ipaddress.IPv4Address(address)
        except ValueError:
            raise ValueError(f"invalid --cluster-advertise {advertise!r}: an IPv4 address of this host") from None
        ttl = DEFAULT_TTL
        for opt in opts:
            key, _, value = opt.partition("=")
            if key != "discovery.ttl" or not value.isdigit() or int(value) < 2:
                raise ValueError(f"invalid --cluster-store-opt {opt!r}: only discovery.ttl=SECONDS (2 or more)")
            ttl = int(value)
        name = node or socket.gethostname()
        if not name or "/" in name or len(name) > 40:
            raise ValueError(f"invalid --node-name {name!r}")
        return cls(url, address, name, ttl)

"""Published ports as data: parsing `-p` specs, validating the API's
PortBindings, choosing host ports and spotting conflicts. Pure functions;
holding a port on the host is `kernel/portbind.py`, the NAT rules are
`kernel/iptables.py`.

The shapes are Docker's: `ExposedPorts` is `{"80/tcp": {}}`, `PortBindings`
is `{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}` where HostPort may be
empty (any free port) or a range `8000-8005` (the first free one). A
container that runs holds a list of `Published` bindings, which is what the
firewall and `minidock port` work from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from .errors import InvalidParameter

PROTOCOLS = ("tcp", "udp", "sctp")
EPHEMERAL = (32768, 60999)
WILDCARDS = ("0.0.0.0", "::")  # Linux's default ip_local_port_range, where Docker picks


@dataclass(frozen=True)
class Published:
    """One host port forwarded to one container port."""

    proto: str
    host_ip: str
    host_port: int
    container_port: int
    container_ip: str
    bridge: str
    subnet: str
    container: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict[str, object]) -> Published:
        return Published(**d)  # type: ignore[arg-type]

    def overlaps(self, proto: str, host_ip: str, port: int) -> bool:
        if (":" in self.host_ip) != (":" in host_ip):
            return False  # IPv4 and IPv6 ports are apart (our IPv6 sockets are v6-only)
        wild = bool({"0.0.0.0", "::"} & {self.host_ip, host_ip})
        return self.proto == proto and self.host_port == port and (wild or self.host_ip == host_ip)

    @property
    def six(self) -> bool:
        return ":" in self.host_ip


def _port_range(text: str, what: str) -> tuple[int, int]:
    lo, sep, hi = text.partition("-")
    try:
        a = int(lo)
        b = int(hi) if sep else a
    except ValueError:
        raise InvalidParameter(f"invalid {what}: {text}") from None
    if not (0 < a <= 65535 and 0 < b <= 65535) or (what == "containerPort" and a == 0):
        raise InvalidParameter(f"invalid {what}: {text}")
    if b < a:
        raise InvalidParameter(f"invalid range specified for {what}: {text}")
    return a, b


def _host_ip(text: str) -> str:
    # imported here, not at the top: the CLI imports this module and rarely needs netaddr
    from netaddr import AddrFormatError, IPAddress

    ip = text.strip("[]")
    try:
        addr = IPAddress(ip)
    except (AddrFormatError, ValueError):
        raise InvalidParameter(f"invalid IP address: {text}") from None
    if addr.version == 4 and ip.count(".") != 3:
        raise InvalidParameter(f"invalid IP address: {text}")
    return str(addr)


def parse_spec(spec: str) -> list[tuple[str, dict[str, str]]]:
    """A `-p` value as (port key, binding) pairs, as Docker's nat.ParsePortSpec."""
    rest, _, proto = spec.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in PROTOCOLS:
        raise InvalidParameter(f"invalid proto: {proto}")
    parts = rest.rsplit(":", 2) if not rest.startswith("[") else _split_v6(rest)
    ip, host, container = "", "", ""
    if len(parts) == 1:
        container = parts[0]
    elif len(parts) == 2:
        host, container = parts
    else:
        ip, host, container = parts
    if not container:
        raise InvalidParameter(f"no port specified: {spec}<empty>")
    if ip:
        ip = _host_ip(ip)
    c_lo, c_hi = _port_range(container, "containerPort")
    if host:
        h_lo, h_hi = _port_range(host, "hostPort")
        if c_hi != c_lo and (h_hi - h_lo) != (c_hi - c_lo):
            raise InvalidParameter(
                f"invalid ranges specified for container and host Ports: {container} and {host}")
    out = []
    for i, cport in enumerate(range(c_lo, c_hi + 1)):
        if not host:
            hp = ""
        elif c_hi != c_lo:
            hp = str(h_lo + i)
        elif h_hi != h_lo:
            hp = f"{h_lo}-{h_hi}"
        else:
            hp = str(h_lo)
        out.append((f"{cport}/{proto}", {"HostIp": ip, "HostPort": hp}))
    return out


def _split_v6(rest: str) -> list[str]:
    end = rest.find("]")
    if end < 0 or rest[end + 1:end + 2] != ":":
        raise InvalidParameter(f"invalid IP address: {rest}")
    return [rest[: end + 1], *rest[end + 2:].split(":", 1)]


def from_specs(publish: Iterable[str], expose: Iterable[str] = ()) -> tuple[dict[str, Any], dict[str, Any]]:
    """`-p` and `--expose` values (or compose's ports: and expose:) as ExposedPorts and PortBindings."""
    exposed: dict[str, Any] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for spec in publish:
        for key, b in parse_spec(spec):
            exposed[key] = {}
            bindings.setdefault(key, []).append(b)
    for spec in expose:
        if ":" in spec:
            raise InvalidParameter(f"invalid port format for --expose: {spec}")
        for key, _ in parse_spec(spec):
            exposed[key] = {}
    return exposed, bindings


def held(c: dict[str, Any]) -> list[Published]:
    """The host ports a container record holds (none unless it runs)."""
    return [Published.from_dict(p) for p in c.get("ports") or []]


def parse_key(key: str) -> tuple[int, str]:
    """"80/tcp" (or "80") as (80, "tcp")."""
    port, _, proto = key.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in PROTOCOLS:
        raise InvalidParameter(f"invalid proto: {proto}")
    lo, hi = _port_range(port, "containerPort")
    if lo != hi:
        raise InvalidParameter(f"invalid containerPort: {port}")
    return lo, proto


def normalise(bindings: dict[str, list[dict[str, str]] | None] | None,
              exposed: Iterable[str] = (), publish_all: bool = False) -> dict[str, list[dict[str, str]]]:
    """Validated PortBindings in canonical form, with -P's exposed ports added."""
    out: dict[str, list[dict[str, str]]] = {}
    for key, lst in (bindings or {}).items():
        port, proto = parse_key(key)
        canon = []
        for b in lst or [{}]:
            b = b or {}
            ip = _host_ip(b["HostIp"]) if b.get("HostIp") else ""
            hp = str(b.get("HostPort") or "")
            if hp:
                _port_range(hp, "hostPort")
            canon.append({"HostIp": ip, "HostPort": hp})
        out[f"{port}/{proto}"] = canon
    if publish_all:
        for key in exposed:
            port, proto = parse_key(key)
            out.setdefault(f"{port}/{proto}", [{"HostIp": "", "HostPort": ""}])
    return out


def wanted(bindings: dict[str, list[dict[str, str]]]) -> list[tuple[str, str, int, int, int]]:
    """(proto, host ip, first host port, last host port, container port) per binding;
    a host port of 0..0 means any free port."""
    out = []
    for key, lst in bindings.items():
        port, proto = parse_key(key)
        for b in lst:
            ip = b.get("HostIp") or "0.0.0.0"
            lo, hi = _port_range(b["HostPort"], "hostPort") if b.get("HostPort") else (0, 0)
            out.append((proto, ip, lo, hi, port))
    return out


def choose(want: list[tuple[str, str, int, int, int]], taken: Iterable[Published],
           free: Callable[[str, str, int], bool], ephemeral: tuple[int, int] = EPHEMERAL,
           ) -> list[tuple[str, str, int, int]]:
    """A host port per binding: (proto, host ip, host port, container port).

    `taken` are the ports other containers publish; `free(proto, ip, port)`
    says whether the host itself lets us have a port. An explicit port that
    is not free raises PortAllocated; a range or an empty host port takes the
    first one that is.
    """
    # sets, not a scan: with thousands of ports published a check stays O(1)
    exact = {(p.proto, p.host_ip, p.host_port) for p in taken}
    any_ip = {(proto, port, ":" in ip) for proto, ip, port in exact}  # per family: v4 and v6 are apart
    out: list[tuple[str, str, int, int]] = []

    def available(proto: str, ip: str, port: int) -> bool:
        six = ":" in ip
        if ip in WILDCARDS:
            clash = (proto, port, six) in any_ip
        else:
            clash = (proto, ip, port) in exact or (proto, "::" if six else "0.0.0.0", port) in exact
        return not clash and free(proto, ip, port)

    for proto, ip, lo, hi, cport in want:
        if lo and lo == hi:
            if not available(proto, ip, lo):
                raise PortAllocated(ip, lo)
            port = lo
        else:
            first, last = (lo, hi) if lo else ephemeral
            port = next((p for p in range(first, last + 1) if available(proto, ip, p)), 0)
            if not port:
                raise PortAllocated(ip, first, last)
        exact.add((proto, ip, port))
        any_ip.add((proto, port, ":" in ip))
        out.append((proto, ip, port, cport))
    return out


class PortAllocated(Exception):
    """A host port another container or a host process already holds."""

    def __init__(self, ip: str, port: int, last: int = 0) -> None:
        where = f"{ip}:{port}" + (f"-{last}" if last and last != port else "")
        super().__init__(f"Bind for {where} failed: port is already allocated")


def settings(published: Iterable[Published], exposed: Iterable[str]) -> dict[str, list[dict[str, str]] | None]:
    """inspect's NetworkSettings.Ports: every exposed port, with its bindings or null."""
    out: dict[str, list[dict[str, str]] | None] = {key: None for key in exposed}
    for p in published:
        lst = out.get(f"{p.container_port}/{p.proto}") or []
        lst.append({"HostIp": p.host_ip, "HostPort": str(p.host_port)})
        out[f"{p.container_port}/{p.proto}"] = lst
    return out

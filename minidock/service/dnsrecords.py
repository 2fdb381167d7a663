"""Which names a container answers to, and on which networks: the records the
DNS stub serves, derived from records alone (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..dnsstub import Record
from ..model import Container, Endpoint, Network
from .epconfig import parse_link


def uses_dns(c: Container, nets: Mapping[str, Network]) -> bool:
    """Like Docker: a container on a user-defined network resolves through 127.0.0.11."""
    return any((n := nets.get(a.network_id)) is not None and n.user_defined for a in c.networks.values())


def records_of(c: Container, endpoints: Iterable[Endpoint], nets: Mapping[str, Network],
               live: bool) -> list[Record]:
    """The container's name, aliases, hostname and short id on each user network it is on;
    none unless it is `live` (running, or joined and starting)."""
    if not live:
        return []
    records = []
    for ep in endpoints:
        net = nets.get(ep.network_id)
        if net is None or not net.user_defined or not ep.ip:
            continue
        records.append(Record(c.id, ep.network_id, ep.ip, names_of(c, ep)))
        if ep.ip6:  # the same names, for AAAA (and its PTR)
            records.append(Record(c.id, ep.network_id, ep.ip6, names_of(c, ep)))
    return records


def names_of(c: Container, ep: Endpoint) -> list[str]:
    """What the container answers to on the endpoint's network: name, aliases, hostname, short id."""
    return list(dict.fromkeys([c.name, *ep.aliases, c.hostname, c.id[:12]]))


def link_aliases(c: Container, nets: Mapping[str, Network]) -> dict[str, dict[str, str]]:
    """network id -> alias -> container name: what the container's per-network links
    (EndpointSettings Links) add to the names it resolves, on user-defined networks."""
    out: dict[str, dict[str, str]] = {}
    for a in c.networks.values():
        net = nets.get(a.network_id)
        if net is not None and net.user_defined and a.links:
            out[net.id] = {alias: name for name, alias in map(parse_link, a.links)}
    return out

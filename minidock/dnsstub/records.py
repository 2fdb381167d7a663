"""Who answers to which name: the records of every network, as each container sees them.

Owns Record (one container's names and address on one network) and Records
(the index the stub answers from, rebuilt whole at start-up and changed one
container at a time after that). Records is shared by the event loop, which
changes it, and the UDP thread (udp.py), which reads it: it has a lock, and a
`version` that goes up on every change, so remembered answers can be dropped.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass
class Record:
    container_id: str
    network_id: str
    ip: str
    names: list[str]


class Records:
    """Who answers to which name, per network. Rebuilt whole at start-up; after that
    each start, stop, connect and disconnect replaces the records of one container,
    so the cost of a change does not grow with the number of containers."""

    def __init__(self) -> None:
        self.by_network: dict[str, dict[str, list[str]]] = {}
        self.networks_of: dict[str, list[str]] = {}
        self.ptr: dict[str, dict[str, str]] = {}
        self._turn: dict[str, int] = {}
        self._of: dict[str, list[Record]] = {}
        # container -> network -> alias -> name: a container's per-network links (EndpointSettings
        # Links), names that resolve for that container alone
        self.links: dict[str, dict[str, dict[str, str]]] = {}
        # bumped after every change: answers remembered at an older version are stale
        self.version = 0
        # the UDP thread looks names up while the event loop changes them
        self._lock = threading.Lock()

    def rebuild(self, records: list[Record]) -> None:
        with self._lock:
            self.by_network, self.networks_of, self.ptr, self._of = {}, {}, {}, {}
            for r in records:
                self._add(r)
            self.version += 1

    def update(self, container_id: str, records: list[Record]) -> None:
        """Replace the records of one container (with none: it has gone)."""
        with self._lock:
            for r in self._of.pop(container_id, []):
                self._remove(r)
            self.networks_of.pop(container_id, None)
            for r in records:
                self._add(r)
            self.version += 1

    def set_links(self, container_id: str, links: dict[str, dict[str, str]]) -> None:
        """The aliases container `container_id`'s links add, per network (alias -> name)."""
        with self._lock:
            clean = {net: {a.lower().rstrip("."): n.lower().rstrip(".") for a, n in by.items()}
                     for net, by in links.items() if by}
            if clean:
                self.links[container_id] = clean
            elif self.links.pop(container_id, None) is None:
                return
            self.version += 1

    def _add(self, r: Record) -> None:
        names = self.by_network.setdefault(r.network_id, {})
        for n in r.names:
            ips = names.setdefault(n.lower().rstrip("."), [])
            if r.ip not in ips:
                ips.append(r.ip)
        self.networks_of.setdefault(r.container_id, []).append(r.network_id)
        if r.names:
            self.ptr.setdefault(r.network_id, {})[r.ip] = r.names[0]
        self._of.setdefault(r.container_id, []).append(r)

    def _remove(self, r: Record) -> None:
        names = self.by_network.get(r.network_id, {})
        for n in r.names:
            key = n.lower().rstrip(".")
            ips = names.get(key)
            if ips is not None and r.ip in ips:
                ips.remove(r.ip)
                if not ips:
                    del names[key]
        ptr = self.ptr.get(r.network_id, {})
        if r.names and ptr.get(r.ip) == r.names[0]:
            del ptr[r.ip]

    def lookup(self, container_id: str, name: str, rotate: bool = False, family: int = 4) -> list[str] | None:
        """Addresses of `family` of `name` as container `container_id` sees it; None if the name
        is unknown, [] if it has addresses of the other family only (an empty answer, not NXDOMAIN).

        With `rotate`, successive answers start at the next address (round robin
        over the containers sharing an alias, as Docker does)."""
        key = name.lower().rstrip(".")
        found: list[str] = []
        known = False
        six = family == 6
        with self._lock:
            links = self.links.get(container_id, {})
            # as libnetwork's resolver: a link's alias first, then the name itself on the networks
            # where it is no alias
            for by_alias in (True, False):
                for net in self.networks_of.get(container_id, []):
                    alias = links.get(net, {}).get(key)
                    if by_alias != (alias is not None):
                        continue
                    for ip in self.by_network.get(net, {}).get(alias or key, []):
                        known = True
                        if (":" in ip) == six and ip not in found:
                            found.append(ip)
                if known:
                    break
            if not found:
                return [] if known else None
            if rotate and len(found) > 1:
                k = self._turn[key] = (self._turn.get(key, -1) + 1) % len(found)
                found = found[k:] + found[:k]
        return found

    def reverse(self, container_id: str, ip: str) -> str | None:
        with self._lock:
            for net in self.networks_of.get(container_id, []):
                name = self.ptr.get(net, {}).get(ip)
                if name:
                    return name
        return None

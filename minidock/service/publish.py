"""Published host ports: choosing them, and holding them with bound sockets
(kernel/portbind.py) so no host program can take a port a container has.

A start chooses its ports while it plans (synchronously: two concurrent starts
cannot choose one port, the first one's choice is pending until it holds or
lets go), holds them while it applies, and the firewall forwards them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from .. import ports
from ..errors import Conflict
from ..kernel import portbind
from ..model import Container, PortBinding
from .common import new_id

log = logging.getLogger("minidock.publish")

Choice = tuple[str, str, int, int]  # proto, host ip, host port, container port


def not_published(who: str, e: ports.PortAllocated) -> Conflict:
    # Docker's words; a taken port is the client's conflict (409), not a daemon failure (500)
    return Conflict(f"driver failed programming external connectivity on endpoint {who} ({new_id()}): {e}")


def bindings_of(c: Container) -> dict[str, list[dict[str, str]]]:
    """The port bindings a start publishes: -p's, and -P's exposed ports."""
    bindings = c.host_config.port_bindings
    if c.host_config.publish_all_ports:
        bindings = ports.normalise(bindings, c.config.get("ExposedPorts") or {}, True)
    return bindings


LOOPBACK_RELAY = ("::", "::1")  # TCP ports the host's own ::1 reaches only through a relay


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            writer.close()


def _relay_to(ip: str, port: int) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(ip, port), 5)
        except (OSError, TimeoutError):
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
    return relay


class PortHolds:
    """Host ports held by bound sockets. One exception to "no proxy": IPv6's loopback. A packet
    from ::1 may not leave the host (there is no route_localnet for IPv6), so DNAT cannot take
    [::1]:PORT to a container; a TCP port published on [::] or [::1] listens, and the daemon
    relays what the host's own ::1 sends it (docker-proxy's job, for that one case)."""

    def __init__(self) -> None:
        self.relays: dict[str, list[asyncio.Server]] = {}
        self.holds: dict[str, list[socket.socket]] = {}  # container id -> sockets keeping its ports
        self.pending: dict[str, list[PortBinding]] = {}  # chosen by a plan, not yet published

    def choose(self, bindings: dict[str, list[dict[str, str]]], who: str, published: list[PortBinding],
               owner: str = "", ipv6: bool = False) -> list[Choice]:
        """Host ports for `bindings`, none of them `published` by others or pending; with an
        `owner`, they are pending for it until `hold` or `release`. With `ipv6` (the container's
        network has it), each port on every IPv4 address is published on [::] too, as Docker does."""
        taken = [*published, *(p for cid, held in self.pending.items() if cid != owner for p in held)]
        try:
            chosen = ports.choose(ports.wanted(bindings), taken, portbind.is_free)
        except ports.PortAllocated as e:
            raise not_published(who, e) from None
        if ipv6:
            taken += [PortBinding(proto, ip, hp, cp, "", "", "", who) for proto, ip, hp, cp in chosen]
            for proto, ip, hp, cp in list(chosen):
                if ip != "0.0.0.0":
                    continue
                try:
                    chosen += ports.choose([(proto, "::", hp, hp, cp)], taken, portbind.is_free)
                except ports.PortAllocated:  # another holds [::]:hp: IPv4 only, as Docker's proxy would fall back
                    log.warning("%s: [::]:%d/%s is taken; published on IPv4 only", who, hp, proto)
        if owner:
            self.pending[owner] = [PortBinding(proto, ip, hp, cp, "", "", "", who) for proto, ip, hp, cp in chosen]
        return chosen

    def hold(self, owner: str, who: str, chosen: list[Choice]) -> None:
        holds = self.holds.setdefault(owner, [])
        for proto, ip, hp, _ in chosen:
            try:
                holds.append(portbind.reserve(proto, ip, hp))
            except portbind.PortInUse:  # a host program took it between the choice and now
                raise not_published(who, ports.PortAllocated(ip, hp)) from None

    def release(self, owner: str) -> None:
        self.pending.pop(owner, None)
        for server in self.relays.pop(owner, []):
            server.close()
        for sock in self.holds.pop(owner, []):
            sock.close()

    async def relay_loopback(self, owner: str, published: list[PortBinding]) -> None:
        """Relay [::1]:PORT to the container, for the TCP ports on [::] or [::1]."""
        for p in published:
            if p.proto != "tcp" or p.host_ip not in LOOPBACK_RELAY:
                continue
            sock = next((s for s in self.holds.get(owner, []) if s.family == socket.AF_INET6
                         and s.type == socket.SOCK_STREAM and s.getsockname()[1] == p.host_port), None)
            if sock is None:
                continue
            sock.listen(64)
            sock.setblocking(False)
            server = await asyncio.start_server(_relay_to(p.container_ip, p.container_port), sock=sock)
            self.relays.setdefault(owner, []).append(server)

    def settle(self, owner: str) -> None:
        """The start is recorded: its ports are published, no longer pending."""
        self.pending.pop(owner, None)

    def rehold(self, c: Container) -> None:
        """Bind again the host ports of a container that outlived a daemon restart."""
        for p in c.ports:
            try:
                self.holds.setdefault(c.id, []).append(portbind.reserve(p.proto, p.host_ip, p.host_port))
            except OSError as e:
                log.warning("%s: host port %s/%s was taken while the daemon was away: %s",
                            c.name, p.host_port, p.proto, e)

    def close_all(self) -> None:
        for owner in list(self.holds):
            self.release(owner)

    def __contains__(self, owner: Any) -> bool:
        return owner in self.holds

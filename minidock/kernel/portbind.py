"""Holding published host ports with bound sockets, as Docker 28 does.

The forwarding itself is NAT (no userland proxy): a packet for a published
port is DNATed in PREROUTING/OUTPUT before any local socket sees it. The
socket bound here only keeps the port ours: a host process that asks for it
gets EADDRINUSE, and a port a host process holds is refused to a container.
A TCP socket is bound but never listens, so it accepts no connection.
"""

from __future__ import annotations

import errno
import socket

_TYPES = {"tcp": socket.SOCK_STREAM, "udp": socket.SOCK_DGRAM, "sctp": socket.SOCK_SEQPACKET}


class PortInUse(OSError):
    pass


def reserve(proto: str, ip: str, port: int) -> socket.socket:
    """A socket bound to ip:port, or PortInUse if something holds it."""
    kind = _TYPES[proto]
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    sock = socket.socket(family, kind, socket.IPPROTO_SCTP if proto == "sctp" else 0)
    try:
        sock.set_inheritable(False)
        if family == socket.AF_INET6:  # [::]:8080 and 0.0.0.0:8080 are held apart, as Docker holds them
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((ip, port))
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise PortInUse(e.errno, f"{ip}:{port}/{proto} is in use") from None
        if e.errno == errno.EADDRNOTAVAIL and family == socket.AF_INET6:
            raise PortInUse(e.errno, f"[{ip}]:{port}/{proto}: no such address here") from None
        raise
    return sock


def is_free(proto: str, ip: str, port: int) -> bool:
    try:
        reserve(proto, ip, port).close()
    except PortInUse:
        return False
    return True

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
    sock = socket.socket(socket.AF_INET, kind, socket.IPPROTO_SCTP if proto == "sctp" else 0)
    try:
        sock.set_inheritable(False)
        sock.bind((ip, port))
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise PortInUse(e.errno, f"{ip}:{port}/{proto} is in use") from None
        raise
    return sock


def is_free(proto: str, ip: str, port: int) -> bool:
    try:
        reserve(proto, ip, port).close()
    except PortInUse:
        return False
    return True

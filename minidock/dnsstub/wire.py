"""The wire format of the common case, by hand: a one-question IN A query and its answer.

Owns parse_plain_a (is this the simple case, and for which name?) and
plain_a_answer (the authoritative reply with our addresses), which let the
UDP thread (udp.py) answer without dnspython. Everything else is parsed by
dnspython in server.py.
"""

from __future__ import annotations

import socket
import struct

TTL = 600
QTYPE_A, QCLASS_IN = 1, 1


def parse_plain_a(query: bytes) -> tuple[int, str, int] | None:
    """(id, name, end of question) for a one-question, IN A query; else None."""
    if len(query) < 17:
        return None
    qid, flags, qd, an, ns, ar = struct.unpack_from("!HHHHHH", query)
    if flags & 0xF800 or qd != 1 or an or ns or ar > 1:
        return None  # not a standard query, or not the simple case
    labels, pos = [], 12
    while True:
        if pos >= len(query):
            return None
        n = query[pos]
        if n == 0:
            pos += 1
            break
        if n & 0xC0:
            return None
        labels.append(query[pos + 1:pos + 1 + n].decode("ascii", "replace"))
        pos += 1 + n
    if pos + 4 > len(query):
        return None
    qtype, qclass = struct.unpack_from("!HH", query, pos)
    if qtype != QTYPE_A or qclass != QCLASS_IN:
        return None
    return qid, ".".join(labels), pos + 4


def plain_a_answer(query: bytes, qid: int, qend: int, ips: list[str], rd: bool) -> bytes:
    flags = 0x8400 | (0x0100 if rd else 0) | 0x0080  # QR, AA, RD copied, RA
    head = struct.pack("!HHHHHH", qid, flags, 1, len(ips), 0, 0)
    answers = b"".join(struct.pack("!HHHIH", 0xC00C, QTYPE_A, QCLASS_IN, TTL, 4) + socket.inet_aton(ip)
                       for ip in ips)
    return head + query[12:qend] + answers

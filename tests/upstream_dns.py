"""A tiny upstream resolver for tests, run inside an 'outside' namespace.

Answers A queries for *.test names from a fixed table over UDP and TCP on
port 53 of ADDRESS; everything else gets NXDOMAIN. Exits by itself after
LIFETIME seconds so it can never outlive a test run.

    python -m tests.upstream_dns ADDRESS LIFETIME NAME=IP...
"""

from __future__ import annotations

import socket
import struct
import sys
import threading
import time

import dns.message
import dns.rcode
import dns.rrset


def answer(wire: bytes, table: dict[str, str]) -> bytes:
    q = dns.message.from_wire(wire)
    r = dns.message.make_response(q)
    name = q.question[0].name.to_text(omit_final_dot=True).lower()
    if name in table and q.question[0].rdtype == 1:
        r.answer.append(dns.rrset.from_text(q.question[0].name, 60, "IN", "A", table[name]))
    else:
        r.set_rcode(dns.rcode.NXDOMAIN)
    return r.to_wire()


def main() -> None:
    address, lifetime = sys.argv[1], float(sys.argv[2])
    table = dict(arg.split("=", 1) for arg in sys.argv[3:])
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    udp = socket.socket(family, socket.SOCK_DGRAM)
    udp.bind((address, 53))
    tcp = socket.socket(family, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind((address, 53))
    tcp.listen(8)

    def serve_tcp() -> None:
        while True:
            conn, _ = tcp.accept()
            with conn:
                size = struct.unpack("!H", conn.recv(2))[0]
                data = b""
                while len(data) < size:
                    data += conn.recv(size - len(data))
                reply = answer(data, table)
                conn.sendall(struct.pack("!H", len(reply)) + reply)

    threading.Thread(target=serve_tcp, daemon=True).start()
    print("ready", flush=True)
    deadline = time.monotonic() + lifetime
    udp.settimeout(0.5)
    while time.monotonic() < deadline:
        try:
            data, peer = udp.recvfrom(4096)
        except TimeoutError:
            continue
        udp.sendto(answer(data, table), peer)


if __name__ == "__main__":
    main()

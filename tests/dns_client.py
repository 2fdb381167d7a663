"""A DNS client for tests, run inside a container's namespace: many queries in flight.

Each round's UDP queries are sent back to back, without waiting, so the stub
receives them in batches; then the replies are matched to the queries by ID
(and question). TCP queries go one connection each. Prints, as JSON, one list
per round: for each query its rcode, the addresses or names answered, and
whether the answer was authoritative.

    python -m tests.dns_client SERVER ROUNDS_JSON
    ROUNDS_JSON: [[{"name": "web", "type": "A", "tcp": false, "cookie": false}, ...], ...]
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from typing import Any

import dns.edns
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype


def make(spec: dict[str, Any], qid: int) -> dns.message.Message:
    q = dns.message.make_query(spec["name"], spec.get("type", "A"))
    if spec.get("cookie"):  # like dig: an EDNS cookie option, different in every query
        q.use_edns(0, options=[dns.edns.GenericOption(dns.edns.COOKIE, os.urandom(8))])
    q.id = qid
    return q


def summary(r: dns.message.Message) -> dict[str, Any]:
    return {"rcode": dns.rcode.to_text(r.rcode()), "aa": bool(r.flags & dns.flags.AA),
            "answers": [rd.to_text() for rrset in r.answer for rd in rrset]}


def one_round(server: str, specs: list[dict[str, Any]], first_id: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any] | None] = [None] * len(specs)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.connect((server, 53))
    sent: dict[int, tuple[int, dns.message.Message]] = {}
    for i, spec in enumerate(specs):
        q = make(spec, first_id + i)
        if spec.get("tcp"):
            out[i] = summary(dns.query.tcp(q, server, timeout=5))
        else:
            sent[q.id] = (i, q)
            udp.send(q.to_wire())
    deadline = time.monotonic() + 10
    while sent and time.monotonic() < deadline:
        udp.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            r = dns.message.from_wire(udp.recv(65535))
        except TimeoutError:
            break
        i, q = sent.pop(r.id, (None, None))
        if i is None or q is None or r.question != q.question:
            raise SystemExit(f"reply {r.id} answers no query in flight: {r}")
        out[i] = summary(r)
    if sent:
        raise SystemExit(f"no reply to {len(sent)} queries: {[q.question for _, q in sent.values()]}")
    return [o for o in out if o is not None]


def main() -> None:
    server, rounds = sys.argv[1], json.loads(sys.argv[2])
    results, next_id = [], 1
    for specs in rounds:
        results.append(one_round(server, specs, next_id))
        next_id += len(specs)
    print(json.dumps(results))


if __name__ == "__main__":
    main()

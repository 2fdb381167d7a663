"""The trace's pure parts: its table, the ruleset listing read by handle (with iptables-save's
text for iptables-nft's rules), a trace message decoded, and the path's rewrites and verdict."""

from __future__ import annotations

import socket
import struct

from minidock.kernel import nftrace
from minidock.service import trace

LISTING = """table ip filter { # handle 1
\tchain MINIDOCK-ISOLATION-STAGE-2 { # handle 7
\t\toifname "br-aaa"  counter packets 0 bytes 0 drop # handle 45
\t\toifname "br-bbb"  counter packets 3 bytes 252 drop # handle 51
\t}
\tchain FORWARD { # handle 18
\t\ttype filter hook forward priority filter; policy accept;
\t\tcounter packets 1 bytes 84 jump MINIDOCK-USER # handle 20
\t}
}
table inet minidock_trace { # handle 3
\tchain pre { # handle 1
\t\ttype filter hook prerouting priority -350; policy accept;
\t\tip daddr 172.19.0.2 icmp type echo-request icmp id 7 meta nftrace set 1 # handle 3
\t}
}
"""
SAVE = """*filter
:FORWARD ACCEPT [0:0]
-A FORWARD -j MINIDOCK-USER
-A MINIDOCK-ISOLATION-STAGE-2 -o br-aaa -m comment --comment "network n1" -j DROP
-A MINIDOCK-ISOLATION-STAGE-2 -o br-bbb -m comment --comment "network n2" -j DROP
COMMIT
"""


def test_the_trace_table_marks_only_the_probe_and_goes_whole() -> None:
    text = nftrace.table_text(nftrace.Probe("tcp", "172.19.0.3", 80, sport=40000))
    assert "ip daddr 172.19.0.3 tcp sport 40000 tcp dport 80 tcp flags & (syn | ack) == syn meta nftrace set 1" in text
    assert text.startswith(nftrace.remove_text())  # replaces a stale one in the same transaction
    assert "hook prerouting priority -350" in text and "hook output priority -350" in text
    assert "delete table inet minidock_trace" in nftrace.remove_text()


def test_rules_are_named_by_handle_with_iptables_comments() -> None:
    chains = nftrace.parse_ruleset(LISTING)
    assert chains[("ip", "filter", "FORWARD")].hook == "forward"
    assert chains[("inet", "minidock_trace", "pre")].rules[3].endswith("meta nftrace set 1")
    assert chains[("ip", "filter", "MINIDOCK-ISOLATION-STAGE-2")].rules[51] == 'oifname "br-bbb"  drop'
    nftrace.attach_iptables_text(chains, SAVE)
    assert chains[("ip", "filter", "MINIDOCK-ISOLATION-STAGE-2")].rules[51] == \
        '-A MINIDOCK-ISOLATION-STAGE-2 -o br-bbb -m comment --comment "network n2" -j DROP'


def _attr(kind: int, data: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(data), kind) + data
    return raw + b"\0" * (-len(raw) % 4)


def test_a_trace_message_decodes() -> None:
    ip = bytes([0x45, 0, 0, 84, 0, 0, 0, 0, 63, 1, 0, 0]) + socket.inet_aton("172.18.0.2") + socket.inet_aton("172.19.0.2")
    icmp = struct.pack("!BBHHH", 8, 0, 0, 7, 1)
    verdict = _attr(1, struct.pack("!i", 0))
    msg = bytes([2, 0, 0, 0]) + b"".join([
        _attr(nftrace.A_TABLE, b"filter\0"), _attr(nftrace.A_CHAIN, b"MINIDOCK-ISOLATION-STAGE-2\0"),
        _attr(nftrace.A_HANDLE, struct.pack("!Q", 51)), _attr(nftrace.A_TYPE, struct.pack("!I", 3)),
        _attr(nftrace.A_VERDICT | 0x8000, verdict), _attr(nftrace.A_IIF, struct.pack("!I", 3)),
        _attr(nftrace.A_NETWORK, ip), _attr(nftrace.A_TRANSPORT, icmp)])
    ev = nftrace.decode(msg)
    assert ev is not None
    assert (ev.family, ev.table, ev.chain, ev.kind, ev.handle, ev.verdict, ev.iif) == \
        ("ip", "filter", "MINIDOCK-ISOLATION-STAGE-2", "rule", 51, "drop", 3)
    assert ev.packet == {"saddr": "172.18.0.2", "daddr": "172.19.0.2", "proto": "icmp", "ttl": 63,
                         "icmp_type": 8, "icmp_id": 7}


def _step(table: str, chain: str, rule: str = "", headers: dict[str, object] | None = None,
          verdict: str = "accept", kind: str = "rule") -> dict[str, object]:
    h = headers or {}
    return {"Family": "ip", "Table": table, "Chain": chain, "Hook": "output", "Kind": kind, "Ours": False,
            "Rule": rule, "Comment": trace._comment(rule), "Verdict": verdict, "Target": "", "In": "", "Out": "",
            "Packet": trace._packet(h) if h else "", "Headers": h}


def test_a_dnat_is_put_after_the_rule_that_made_it() -> None:
    before = {"saddr": "127.0.0.1", "daddr": "127.0.0.1", "proto": "tcp", "sport": 5000, "dport": 8080}
    after = {**before, "daddr": "172.19.0.3", "dport": 80}
    rule = '-A MINIDOCK -p tcp -m tcp --dport 8080 -m comment --comment "container web" -j DNAT --to-destination 172.19.0.3:80'
    path = [_step("nat", "OUTPUT", "-A OUTPUT -j MINIDOCK", before, "jump"), _step("nat", "MINIDOCK", rule),
            _step("nat", "POSTROUTING", "-A POSTROUTING -j MINIDOCK-POSTROUTING", after, "jump")]
    (r,) = trace.rewrites(path)
    assert (r["Kind"], r["After"], r["From"], r["To"]) == \
        ("DNAT", 1, "127.0.0.1:5000 → 127.0.0.1:8080 tcp", "127.0.0.1:5000 → 172.19.0.3:80 tcp")
    drop = _step("filter", "MINIDOCK-ISOLATION-STAGE-2",
                 '-A MINIDOCK-ISOLATION-STAGE-2 -o br-bbb -m comment --comment "network n2" -j DROP', verdict="drop")
    assert trace.verdict([drop], "").startswith("dropped in ip filter MINIDOCK-ISOLATION-STAGE-2 by the rule of network n2")
    assert trace.verdict([], "Network is unreachable").startswith("no route")


def test_the_skeleton_makes_every_chain_and_jump_idempotently() -> None:
    from minidock.kernel import iptables

    lines = iptables.skeleton()
    for chain in iptables.FILTER_CHAINS:
        assert f"iptables -t filter -N {chain} 2>/dev/null || true" in lines
    assert ("iptables -t filter -C FORWARD -j MINIDOCK-FORWARD 2>/dev/null || "
            "iptables -t filter -I FORWARD 2 -j MINIDOCK-FORWARD") in lines
    assert ("iptables -t filter -C MINIDOCK-USER -j RETURN 2>/dev/null || "
            "iptables -t filter -A MINIDOCK-USER -j RETURN") in lines
    assert all(ln.startswith("ip6tables ") for ln in iptables.skeleton(6))


def test_the_text_puts_each_rewrite_once_after_its_rule() -> None:
    from minidock.cli.trace import render

    before = {"saddr": "127.0.0.1", "daddr": "127.0.0.1", "proto": "tcp", "sport": 5000, "dport": 8080}
    after = {**before, "daddr": "172.19.0.3", "dport": 80}
    rule = '-A MINIDOCK -p tcp -m tcp --dport 8080 -m comment --comment "container web" -j DNAT --to-destination 172.19.0.3:80'
    path = [_step("nat", "OUTPUT", "-A OUTPUT -j MINIDOCK", before, "jump"), _step("nat", "MINIDOCK", rule),
            _step("nat", "POSTROUTING", "-A POSTROUTING -j MINIDOCK-POSTROUTING", after, "jump"),
            _step("nat", "MINIDOCK-POSTROUTING", "-A MINIDOCK-POSTROUTING -j RETURN")]
    end = {"Kind": "host", "Name": "host", "Namespace": "", "Address": "127.0.0.1", "Port": 0}
    text = render({"Proto": "tcp", "Source": end, "Destination": {**end, "Port": 8080},
                   "Probe": {"Outcome": "answered"}, "Path": path, "Interfaces": [],
                   "Rewrites": trace.rewrites(path), "Verdict": "sent out"})
    lines = text.splitlines()
    dnat = [i for i, ln in enumerate(lines) if "⇒ DNAT" in ln]
    assert len(dnat) == 1 and '--comment "container web" -j DNAT' in lines[dnat[0] - 1], text
    assert "verdict: sent out" in text

"""kernel/iptables.py, nftables.py and conntrack.py against a real kernel, in a throwaway namespace.

Everything runs on a thread inside the test's namespace, so iptables-restore,
libnftables and the conntrack socket all act there; the result is read back
with iptables-save, `nft -j` and conntrack(8) in the same namespace.
"""

from __future__ import annotations

import json
import socket

import pytest

from minidock.kernel import conntrack, iptables, nftables
from minidock.ports import Published

from .nshelpers import in_ns, inside, iptables_rules, sh

NETS = [iptables.BridgeRules("n1", "mdk-br1", "10.88.1.0/24"),
        iptables.BridgeRules("n2", "mdk-br2", "10.88.2.0/24", icc=False, internal=True)]
WEB = Published("tcp", "0.0.0.0", 8080, 80, "10.88.1.2", "mdk-br1", "10.88.1.0/24", "web")
DNS = Published("udp", "127.0.0.1", 5353, 53, "10.88.1.3", "mdk-br1", "10.88.1.0/24", "dns")


def chain(rules: str, table: str, name: str) -> list[str]:
    section = rules[rules.index(f"*{table}\n"):]
    section = section[:section.index("COMMIT")]
    return [ln for ln in section.splitlines() if ln.startswith(f"-A {name} ")]


def test_apply_then_again_changes_nothing(ns: str) -> None:
    rs = iptables.ruleset(NETS, [WEB, DNS])
    first = inside(ns, lambda: iptables.apply(rs))
    after_first = iptables_rules(ns)
    second = inside(ns, lambda: iptables.apply(rs))

    assert second == []  # nothing to explain: nothing changed
    assert iptables_rules(ns) == after_first
    assert "iptables -t filter -N MINIDOCK-FORWARD" in first
    assert "iptables -t nat -I PREROUTING 1 ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j MINIDOCK" in first
    # the kernel holds exactly our rules, in order, and the jumps at the top of the built-ins
    for table, lines in (("filter", rs.filter), ("nat", rs.nat)):
        chains = iptables.FILTER_CHAINS if table == "filter" else iptables.NAT_CHAINS
        have = [ln for c in chains for ln in chain(after_first, table, c)]
        assert sorted(have) == sorted(lines)
        for c in chains:
            want = [ln for ln in lines if ln.startswith(f"-A {c} ")]
            assert chain(after_first, table, c) == want
    assert chain(after_first, "filter", "FORWARD") == ["-A FORWARD -j MINIDOCK-USER",
                                                       "-A FORWARD -j MINIDOCK-FORWARD"]
    assert chain(after_first, "nat", "POSTROUTING") == ["-A POSTROUTING -j MINIDOCK-POSTROUTING"]
    assert any("--to-destination 10.88.1.2:80" in ln for ln in chain(after_first, "nat", "MINIDOCK"))


def test_apply_is_all_or_nothing(ns: str) -> None:
    good = iptables.ruleset(NETS[:1], [WEB])
    inside(ns, lambda: iptables.apply(good))
    before = iptables_rules(ns)
    bad = iptables.ruleset(NETS, [WEB, DNS])
    bad.filter.insert(len(bad.filter) // 2, "-A MINIDOCK-FORWARD -j MDK-NO-SUCH-CHAIN")

    with pytest.raises(RuntimeError, match="iptables-restore failed"):
        inside(ns, lambda: iptables.apply(bad))
    # neither the valid rules before the bad one nor the new network's went in
    assert iptables_rules(ns) == before
    assert "mdk-br2" not in before


def test_apply_repairs_drift_and_keeps_foreign_rules(ns: str) -> None:
    rs = iptables.ruleset(NETS, [WEB])
    inside(ns, lambda: iptables.apply(rs))
    want = iptables_rules(ns)
    # someone edits our chain, and puts a rule of theirs above our jumps
    in_ns(ns, "iptables", "-A", "MINIDOCK-FORWARD", "-s", "192.0.2.1", "-j", "ACCEPT")
    in_ns(ns, "iptables", "-I", "FORWARD", "1", "-s", "192.0.2.9", "-j", "DROP")

    changes = inside(ns, lambda: iptables.apply(rs))

    assert "iptables -t filter -D MINIDOCK-FORWARD -s 192.0.2.1/32 -j ACCEPT" in changes
    rules = iptables_rules(ns)
    assert chain(rules, "filter", "MINIDOCK-FORWARD") == chain(want, "filter", "MINIDOCK-FORWARD")
    assert chain(rules, "filter", "FORWARD") == ["-A FORWARD -j MINIDOCK-USER", "-A FORWARD -j MINIDOCK-FORWARD",
                                                 "-A FORWARD -s 192.0.2.9/32 -j DROP"]


def test_remove_all_leaves_only_foreign_rules(ns: str) -> None:
    in_ns(ns, "iptables", "-A", "FORWARD", "-s", "192.0.2.9", "-j", "DROP")
    inside(ns, lambda: iptables.apply(iptables.ruleset(NETS, [WEB, DNS])))
    inside(ns, iptables.remove_all)
    inside(ns, iptables.remove_all)  # nothing of ours left: still fine

    rules = iptables_rules(ns)
    assert "MINIDOCK" not in rules
    assert chain(rules, "filter", "FORWARD") == ["-A FORWARD -s 192.0.2.9/32 -j DROP"]


def nft_elements(ns: str) -> dict[str, list]:
    """Map name → its elements, from `nft -j list table ip minidock`."""
    listing = json.loads(in_ns(ns, "nft", "-j", "list", "table", "ip", nftables.TABLE))
    return {e["map"]["name"]: e["map"].get("elem", []) for e in listing["nftables"] if "map" in e}


def nft_call(ns: str, *texts: str, query: list[Published] | None = None) -> list[str]:
    """Run nft texts through one kept Nft context inside NS; with `query`, its differences."""
    async def run() -> list[str]:
        nft = nftables.Nft()
        try:
            for text in texts:
                nft.run(text)
            return nftables.differences(nft, query) if query is not None else []
        finally:
            nft.close()

    return inside(ns, run)


def test_nft_table_and_map_elements(ns: str) -> None:
    nft_call(ns, nftables.table_text([WEB]))
    maps = nft_elements(ns)
    assert set(maps) == {"ports", "hostports"}
    assert maps["hostports"] == []
    assert maps["ports"] == [[{"concat": ["tcp", 8080]}, {"concat": ["10.88.1.2", 80]}]]
    chains = json.loads(in_ns(ns, "nft", "-j", "list", "chains", "ip"))["nftables"]
    hooks = {c["chain"]["name"]: (c["chain"]["hook"], c["chain"]["prio"]) for c in chains if "chain" in c}
    assert hooks == {"prerouting": ("prerouting", -101), "output": ("output", -101)}

    # add one, withdraw the other: one command each, no reload
    nft_call(ns, *nftables.add_commands([DNS]), *nftables.delete_commands([WEB]))
    maps = nft_elements(ns)
    assert maps["ports"] == []
    assert maps["hostports"] == [[{"concat": ["127.0.0.1", "udp", 5353]}, {"concat": ["10.88.1.3", 53]}]]
    assert nft_call(ns, query=[DNS]) == []
    assert nft_call(ns, query=[WEB]) == [f"{nftables.element(WEB)} is missing",
                                         f"{nftables.element(DNS)} is not ours"]

    # loading the whole table again replaces it (start-up, repair): the same state twice
    nft_call(ns, nftables.table_text([WEB, DNS]), nftables.table_text([WEB, DNS]))
    assert nft_call(ns, query=[WEB, DNS]) == []

    nft_call(ns, nftables.remove_text(), nftables.remove_text())  # gone, and gone again: fine
    assert "minidock" not in in_ns(ns, "nft", "list", "tables")
    assert nft_call(ns, query=[WEB]) == [f"table ip {nftables.TABLE} is missing"]


def test_nft_errors_raise(ns: str) -> None:
    with pytest.raises(RuntimeError, match="nft failed"):
        nft_call(ns, *nftables.add_commands([WEB]))  # no table yet
    assert "minidock" not in in_ns(ns, "nft", "list", "tables")


def test_conntrack_forget(ns: str) -> None:
    sh("ip", "-n", ns, "link", "set", "lo", "up")
    # conntrack tracks a namespace's packets once a rule there needs it
    in_ns(ns, "iptables", "-A", "OUTPUT", "-m", "conntrack", "--ctstate", "NEW", "-j", "ACCEPT")

    async def flows() -> tuple[int, int, int]:
        for port in (9001, 9002):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(b"x", ("127.0.0.1", port))
        other = await conntrack.forget("192.0.2.77")  # nobody's: nothing deleted
        return other, await conntrack.forget("127.0.0.1"), await conntrack.forget("127.0.0.1")

    other, forgotten, again = inside(ns, flows)
    assert (other, forgotten, again) == (0, 2, 0)
    assert "dport=900" not in in_ns(ns, "conntrack", "-L", check=False)

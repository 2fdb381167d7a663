"""Unit tests for minidock.kernel.iptables: the ruleset text and the jump repair.

The golden files under golden/ were generated once with UPDATE_GOLDEN=1 and then
read rule by rule against moby's iptablesdoc (v28.5.2, "new-daemon", "usernet-portmap",
"usernet-portmap-noicc", "usernet-internal"), with MINIDOCK-* in place of DOCKER-*.
Known, deliberate-looking differences from Docker: an explicit `MINIDOCK-USER -j RETURN`
(older Docker releases had one; 28.5 has none), MASQUERADE in our own POSTROUTING chain, no nat
`-i <bridge> -j RETURN` and no `! -i <bridge>` on DNAT (no userland proxy, so
hairpin is done in the kernel, as Docker's userland-proxy=false), the two icc=false FORWARD rules in the
other (equivalent) order, and internal networks keep the CT/BRIDGE/DROP rules and a plain
`-i <bridge> -j ACCEPT` where Docker has only `-i <bridge> -o <bridge> -j ACCEPT`; the
isolation DROPs run before that ACCEPT, so the effect is the same.
To regenerate after an intended change:

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/unit/test_iptables.py

and review the diff before committing it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from minidock.kernel.iptables import (
    FILTER_CHAINS,
    JUMPS,
    NAT_CHAINS,
    BridgeRules,
    Ruleset,
    explain,
    jump_lines,
    ruleset,
)
from minidock.ports import Published

GOLDEN = Path(__file__).parent / "golden"

DEFAULT = BridgeRules(network="bridge", bridge="minidock0", subnet="172.17.0.0/16")
USER = BridgeRules(network="appnet", bridge="br-0123456789ab", subnet="172.18.0.0/16")


def assert_golden(name: str, text: str) -> None:
    """Compare `text` with golden/<name>; with UPDATE_GOLDEN=1, (re)write the file instead."""
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        return
    assert path.exists(), f"missing golden file {path}: run with UPDATE_GOLDEN=1 and review it"
    assert text == path.read_text(), f"{name} differs from its golden file"


# --- golden rulesets ----------------------------------------------------------------------

CASES: dict[str, list[BridgeRules]] = {
    "default_bridge.rules": [DEFAULT],
    "default_and_user.rules": [DEFAULT, USER],
    "internal.rules": [DEFAULT, BridgeRules(network="backend", bridge="br-fedcba987654",
                                            subnet="192.0.2.0/24", internal=True)],
    "icc_false.rules": [DEFAULT, BridgeRules(network="quiet", bridge="br-00000000cafe",
                                             subnet="172.19.0.0/16", icc=False)],
    "no_masquerade.rules": [DEFAULT, BridgeRules(network="routed", bridge="br-0000beefbeef",
                                                 subnet="172.20.0.0/16", masquerade=False)],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_restore_text_matches_golden(name: str) -> None:
    assert_golden(name, ruleset(CASES[name]).restore_text())


DUAL = BridgeRules(network="six", bridge="br-000000000006", subnet="172.21.0.0/16", subnet6="fd00:6::/64")
SIX_CASES: dict[str, list[BridgeRules]] = {
    # the IPv4-only default bridge has no IPv6 rules; the dual-stack networks have the IPv4
    # layout again, with their IPv6 subnet, and no ::1 MASQUERADE (there is no route_localnet)
    "ipv6.rules6": [DEFAULT, DUAL, BridgeRules(network="inner6", bridge="br-00000000006b", subnet="172.22.0.0/16",
                                               subnet6="fd00:7::/64", internal=True)],
}


@pytest.mark.parametrize("name", sorted(SIX_CASES))
def test_ip6tables_restore_text_matches_golden(name: str) -> None:
    assert_golden(name, ruleset(SIX_CASES[name], family=6).restore_text())
    four = ruleset(SIX_CASES[name]).restore_text()
    assert "fd00:" not in four and "172.21.0.0/16" in four  # IPv4's rules stay IPv4's


def test_ipv6_jumps_skip_loopback_as_ipv6_writes_it() -> None:
    lines = jump_lines("", 6)
    assert "-I PREROUTING 1 ! -d ::1/128 -m addrtype --dst-type LOCAL -j MINIDOCK" in lines[1]


def test_restore_text_declares_every_chain_of_ours_in_both_tables() -> None:
    text = ruleset([]).restore_text()
    filter_part, nat_part = text.split("*nat\n")
    assert filter_part.startswith("*filter\n") and filter_part.endswith("COMMIT\n")
    assert [ln for ln in filter_part.splitlines() if ln.startswith(":")] == \
        [f":{c} - [0:0]" for c in FILTER_CHAINS]
    assert [ln for ln in nat_part.splitlines() if ln.startswith(":")] == \
        [f":{c} - [0:0]" for c in NAT_CHAINS]
    assert text.endswith("COMMIT\n")


def test_restore_text_puts_jump_lines_before_commit_of_their_table() -> None:
    text = ruleset([DEFAULT]).restore_text((["-I FORWARD 1 -j X"], ["-I POSTROUTING 1 -j Y"]))
    lines = text.splitlines()
    commits = [i for i, ln in enumerate(lines) if ln == "COMMIT"]
    assert lines.index("-I FORWARD 1 -j X") == commits[0] - 1
    assert lines.index("-I POSTROUTING 1 -j Y") == commits[1] - 1


def test_only_jumps_touch_builtin_chains() -> None:
    rs = ruleset([DEFAULT, USER])
    for line in rs.filter + rs.nat:
        chain = line.split()[1]
        assert chain.startswith("MINIDOCK"), line


def test_every_network_rule_carries_its_comment() -> None:
    rs = ruleset([DEFAULT, USER])
    for line in rs.filter + rs.nat:
        if "br-0123456789ab" in line:
            assert '-m comment --comment "network appnet"' in line
        elif "minidock0" in line:
            assert '-m comment --comment "network bridge"' in line


def test_internal_network_gets_no_masquerade_even_if_asked() -> None:
    internal = BridgeRules(network="i", bridge="br-i", subnet="10.5.0.0/24", internal=True,
                           masquerade=True)
    assert ruleset([internal]).nat == []


# --- jump_lines ---------------------------------------------------------------------------

FILTER_JUMPS = [s for t, c, s in JUMPS if (t, c) == ("filter", "FORWARD")]


def save_text(forward: list[str], prerouting: list[str], output: list[str],
              postrouting: list[str], filter_output: tuple[str, ...] = ()) -> str:
    """A minimal iptables-save dump with these rules in the built-in chains."""
    return "\n".join([
        "# Generated by iptables-save v1.8.10 (nf_tables)",
        "*filter",
        ":INPUT ACCEPT [0:0]",
        ":FORWARD ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        *[f"-A FORWARD {r}" for r in forward],
        *[f"-A OUTPUT {r}" for r in filter_output],
        "COMMIT",
        "*nat",
        ":PREROUTING ACCEPT [0:0]",
        ":INPUT ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":POSTROUTING ACCEPT [0:0]",
        *[f"-A PREROUTING {r}" for r in prerouting],
        *[f"-A OUTPUT {r}" for r in output],
        *[f"-A POSTROUTING {r}" for r in postrouting],
        "COMMIT",
        "",
    ])


OURS = {
    "forward": ["-j MINIDOCK-USER", "-j MINIDOCK-FORWARD"],
    "prerouting": ["! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j MINIDOCK"],
    "output": ["-m addrtype --dst-type LOCAL -j MINIDOCK"],
    "postrouting": ["-j MINIDOCK-POSTROUTING"],
}


def test_jump_lines_on_a_clean_host_inserts_every_jump_in_order() -> None:
    filt, nat = jump_lines(save_text([], [], [], []))
    # -I ... 1 in reverse order leaves MINIDOCK-USER first, then MINIDOCK-FORWARD
    assert filt == ["-I FORWARD 1 -j MINIDOCK-FORWARD", "-I FORWARD 1 -j MINIDOCK-USER"]
    assert nat == [
        "-I PREROUTING 1 ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j MINIDOCK",
        "-I OUTPUT 1 -m addrtype --dst-type LOCAL -j MINIDOCK",
        "-I POSTROUTING 1 -j MINIDOCK-POSTROUTING",
    ]


def test_jump_lines_with_no_iptables_save_output_at_all() -> None:
    filt, nat = jump_lines("")
    assert len(filt) == 2 and len(nat) == 3
    assert all(line.startswith("-I ") for line in filt + nat)


def test_jump_lines_leaves_jumps_that_are_already_first_and_in_order() -> None:
    text = save_text(OURS["forward"] + ["-j DOCKER-USER", "-j DOCKER-FORWARD"],
                     OURS["prerouting"] + ["-m addrtype --dst-type LOCAL -j DOCKER"],
                     OURS["output"],
                     OURS["postrouting"] + ["-s 172.17.0.0/16 ! -o docker0 -j MASQUERADE"])
    assert jump_lines(text) == ([], [])


def test_jump_lines_repairs_wrong_order_by_delete_then_insert() -> None:
    text = save_text(list(reversed(OURS["forward"])), OURS["prerouting"], OURS["output"],
                     OURS["postrouting"])
    filt, nat = jump_lines(text)
    assert filt == [
        "-D FORWARD -j MINIDOCK-FORWARD",
        "-D FORWARD -j MINIDOCK-USER",
        "-I FORWARD 1 -j MINIDOCK-FORWARD",
        "-I FORWARD 1 -j MINIDOCK-USER",
    ]
    assert nat == []  # the nat chains were fine and are left alone


def test_jump_lines_moves_a_jump_pushed_down_by_another_rule() -> None:
    # e.g. Docker (or a user) inserted its own rule at the top of POSTROUTING after us
    text = save_text(OURS["forward"], OURS["prerouting"], OURS["output"],
                     ["-s 172.17.0.0/16 ! -o docker0 -j MASQUERADE", *OURS["postrouting"]])
    filt, nat = jump_lines(text)
    assert filt == []
    assert nat == ["-D POSTROUTING -j MINIDOCK-POSTROUTING",
                   "-I POSTROUTING 1 -j MINIDOCK-POSTROUTING"]


def test_jump_lines_only_deletes_jumps_that_exist() -> None:
    text = save_text(["-j MINIDOCK-FORWARD"], OURS["prerouting"], OURS["output"],
                     OURS["postrouting"])
    filt, _ = jump_lines(text)
    assert filt == ["-D FORWARD -j MINIDOCK-FORWARD",
                    "-I FORWARD 1 -j MINIDOCK-FORWARD", "-I FORWARD 1 -j MINIDOCK-USER"]
    assert FILTER_JUMPS == OURS["forward"]


def test_jump_lines_does_not_confuse_tables() -> None:
    # a filter OUTPUT rule that looks like our nat OUTPUT jump must not count for nat
    text = save_text(OURS["forward"], OURS["prerouting"], [], OURS["postrouting"],
                     filter_output=tuple(OURS["output"]))
    assert text.count("-A OUTPUT -m addrtype") == 1
    filt, nat = jump_lines(text)
    assert filt == []
    assert nat == ["-I OUTPUT 1 -m addrtype --dst-type LOCAL -j MINIDOCK"]


def test_jump_lines_replaces_a_jump_an_older_minidock_wrote_with_other_matches() -> None:
    # before published ports, OUTPUT skipped 127/8 and PREROUTING did not
    text = save_text(OURS["forward"], ["-m addrtype --dst-type LOCAL -j MINIDOCK"],
                     ["! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j MINIDOCK"], OURS["postrouting"])
    filt, nat = jump_lines(text)
    assert filt == []
    assert nat == [
        "-D PREROUTING -m addrtype --dst-type LOCAL -j MINIDOCK",
        "-I PREROUTING 1 ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j MINIDOCK",
        "-D OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j MINIDOCK",
        "-I OUTPUT 1 -m addrtype --dst-type LOCAL -j MINIDOCK",
    ]


# --- published ports ----------------------------------------------------------------------

WEB = Published("tcp", "0.0.0.0", 8080, 80, "172.17.0.2", "minidock0", "172.17.0.0/16", "web")
LOCAL = Published("tcp", "127.0.0.1", 8081, 80, "172.17.0.2", "minidock0", "172.17.0.0/16", "web")
DNS = Published("udp", "0.0.0.0", 5353, 53, "172.18.0.5", "br-0123456789ab", "172.18.0.0/16", "db")


def test_published_ports_match_golden() -> None:
    assert_golden("published_ports.rules", ruleset([DEFAULT, USER], [DNS, LOCAL, WEB]).restore_text())


def test_a_port_accept_comes_before_its_bridge_drop() -> None:
    f = ruleset([DEFAULT, USER], [WEB, DNS]).filter
    accept = f.index('-A MINIDOCK -d 172.17.0.2/32 ! -i minidock0 -o minidock0 -p tcp -m tcp --dport 80 '
                     '-m comment --comment "container web" -j ACCEPT')
    drop = f.index('-A MINIDOCK ! -i minidock0 -o minidock0 -m comment --comment "network bridge" -j DROP')
    assert accept < drop


def test_loopback_binding_dnats_only_its_address() -> None:
    nat = ruleset([DEFAULT], [LOCAL]).nat
    assert ('-A MINIDOCK -d 127.0.0.1/32 -p tcp -m tcp --dport 8081 -m comment --comment "container web" '
            '-j DNAT --to-destination 172.17.0.2:80') in nat
    # PREROUTING never jumps for 127/8: a packet for 127.0.0.1 from another host is not DNATed
    assert ("nat", "PREROUTING", "! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j MINIDOCK") in JUMPS


def test_no_ports_no_dnat_exemption_from_isolation() -> None:
    assert not any("ctstate DNAT" in ln for ln in ruleset([DEFAULT, USER]).filter)
    assert any("ctstate DNAT" in ln for ln in ruleset([DEFAULT, USER], [WEB]).filter)


# --- explain: the batch as iptables commands -------------------------------------------------

def chains_of(text: str) -> dict[tuple[str, str], list[str]]:
    """Our chains in an iptables-restore/-save text: (table, chain) -> rule specs."""
    out: dict[tuple[str, str], list[str]] = {}
    table = ""
    for ln in text.splitlines():
        if ln.startswith("*"):
            table = ln[1:]
        elif ln.startswith(":") and "MINIDOCK" in ln:
            out[(table, ln[1:].split()[0])] = []
        elif ln.startswith("-A ") and (table, ln.split()[1]) in out:
            out[(table, ln.split()[1])].append(ln.split(" ", 2)[2])
    return out


def replay(state: dict[tuple[str, str], list[str]], commands: list[str]) -> dict[tuple[str, str], list[str]]:
    """What iptables would do with -N/-A/-I/-D on our chains."""
    state = {k: list(v) for k, v in state.items()}
    for cmd in commands:
        _, _, table, op, chain, *rest = cmd.split(" ", 5) + [""]
        spec = " ".join(r for r in rest if r)
        key = (table, chain)
        if op == "-N":
            assert key not in state
            state[key] = []
        elif op == "-A":
            state[key].append(spec)
        elif op == "-I":
            pos, _, spec = spec.partition(" ")
            assert 1 <= int(pos) <= len(state[key]) + 1
            state[key].insert(int(pos) - 1, spec)
        elif op == "-D":
            state[key].remove(spec)
    return state


PORT = Published("tcp", "0.0.0.0", 8080, 80, "172.18.0.2", USER.bridge, USER.subnet, "web")


@pytest.mark.parametrize("before,after", [
    (Ruleset(), ruleset([DEFAULT])),
    (ruleset([DEFAULT]), ruleset([DEFAULT, USER])),
    (ruleset([DEFAULT, USER]), ruleset([DEFAULT, USER], [PORT])),
    (ruleset([DEFAULT, USER], [PORT]), ruleset([DEFAULT, USER])),
    (ruleset([DEFAULT, USER], [PORT]), ruleset([USER, DEFAULT])),  # reordered: moves, not just adds
])
def test_explain_commands_take_the_old_chains_to_the_new(before: Ruleset, after: Ruleset) -> None:
    old_text = before.restore_text() if before.filter else ""
    commands = explain(old_text, after, ([], []))
    assert all(c.startswith("iptables -t ") for c in commands)
    assert replay(chains_of(old_text), commands) == chains_of(after.restore_text())


def test_explain_shows_only_what_changed() -> None:
    commands = explain(ruleset([DEFAULT, USER]).restore_text(), ruleset([DEFAULT, USER], [PORT]), ([], []))
    assert commands and all('"container web' in c or "published ports" in c for c in commands)
    assert explain(ruleset([DEFAULT]).restore_text(), ruleset([DEFAULT]), ([], [])) == []


def test_with_port_maps_no_rule_names_a_port() -> None:
    """--port-maps: the ports are nftables map elements; iptables keeps one ACCEPT and one
    hairpin per network, for whatever was DNATed to it."""
    from minidock.kernel import nftables
    from minidock.kernel.iptables import BridgeRules, ruleset
    from minidock.ports import Published

    net = BridgeRules(network="lab", bridge="br-lab", subnet="172.18.0.0/16")
    p = Published("tcp", "0.0.0.0", 8080, 80, "172.18.0.2", "br-lab", "172.18.0.0/16", "web")
    q = Published("udp", "127.0.0.1", 5353, 53, "172.18.0.2", "br-lab", "172.18.0.0/16", "web")
    rs = ruleset([net], [p, q], maps=True)
    text = "\n".join(rs.filter + rs.nat)
    assert "8080" not in text and "5353" not in text and "DNAT --to" not in text
    assert "-A MINIDOCK ! -i br-lab -o br-lab -m conntrack --ctstate DNAT" in text
    assert "-A MINIDOCK-POSTROUTING -s 172.18.0.0/16 -o br-lab -m conntrack --ctstate DNAT" in text
    assert nftables.add_commands([p, q]) == [
        "add element ip minidock ports { tcp . 8080 : 172.18.0.2 . 80 }",
        "add element ip minidock hostports { 127.0.0.1 . udp . 5353 : 172.18.0.2 . 53 }"]
    assert nftables.delete_commands([q]) == ["delete element ip minidock hostports { 127.0.0.1 . udp . 5353 }"]
    table = nftables.table_text([p, q])
    assert "elements = { tcp . 8080 : 172.18.0.2 . 80 }" in table
    assert "ip daddr 127.0.0.0/8 return" in table.split("chain output")[0]  # never from outside to 127/8

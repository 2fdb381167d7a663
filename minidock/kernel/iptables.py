"""Firewall rules as data, applied in one atomic iptables-restore batch.

The layout is Docker's (moby's iptablesdoc "new daemon" scenario) with our
names. The built-in chains hold only jumps into our chains, so everything we
add can be seen with `iptables-save | grep MINIDOCK` and removed by flushing
our chains:

    filter FORWARD ──▶ MINIDOCK-USER           (yours; we only RETURN)
                   └─▶ MINIDOCK-FORWARD ──▶ MINIDOCK-CT          established replies in
                                        ├─▶ MINIDOCK-ISOLATION-STAGE-1 ─▶ -STAGE-2 (bridge↔bridge DROP)
                                        ├─▶ MINIDOCK-BRIDGE ─▶ MINIDOCK  (published ports; else DROP)
                                        └─  -i <bridge> ACCEPT           (containers may go out)
    nat PREROUTING (to a local address, not 127/8) ─▶ MINIDOCK (DNAT of published ports)
    nat OUTPUT (to a local address)               ─▶ MINIDOCK
    nat POSTROUTING ─▶ MINIDOCK-POSTROUTING   (MASQUERADE out, hairpin, host loopback)

IPv6 (a network with --ipv6) gets the same layout from ip6tables, with the
network's IPv6 subnet: isolation, icc, internal, direct access dropped, NAT66
out. `family=6` selects it throughout.

Docker puts its MASQUERADE rules straight into POSTROUTING; we keep them in a
chain of our own so that the built-in chains only ever hold our jumps.

Published ports are forwarded in the kernel, as Docker does with
userland-proxy=false: DNAT in nat MINIDOCK, an ACCEPT before the bridge's
DROP in filter MINIDOCK. Three details make every path work:
- the host's own 127.0.0.1 reaches a port through the OUTPUT jump, with
  route_localnet on the bridge and a MASQUERADE of 127.0.0.0/8 onto it;
- PREROUTING never DNATs 127.0.0.0/8, so a packet for 127.0.0.1 that arrives
  from another host is dropped as a martian (moby issue 45610);
- a published port is the one way across bridges: DNATed connections return
  from the isolation chain early, and the port's ACCEPT lets them in. A
  connection from the container's own bridge (hairpin) is masqueraded so the
  reply comes back through the host.

`ruleset()` is pure: it turns the networks into iptables-restore text, and
unit tests compare it with golden files. `apply()` declares every chain of
ours, which makes `iptables-restore --noflush` flush and refill exactly those
chains in one transaction, so a change is all-or-nothing and repairs any
drift in our chains as a side effect.
"""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from ..ports import Published

FILTER_CHAINS = [
    "MINIDOCK",
    "MINIDOCK-USER",
    "MINIDOCK-FORWARD",
    "MINIDOCK-CT",
    "MINIDOCK-BRIDGE",
    "MINIDOCK-ISOLATION-STAGE-1",
    "MINIDOCK-ISOLATION-STAGE-2",
]
NAT_CHAINS = ["MINIDOCK", "MINIDOCK-POSTROUTING"]

# (table, built-in chain, rule spec): the only rules we put outside our chains.
JUMPS: list[tuple[str, str, str]] = [
    ("filter", "FORWARD", "-j MINIDOCK-USER"),
    ("filter", "FORWARD", "-j MINIDOCK-FORWARD"),
    ("nat", "PREROUTING", "! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j MINIDOCK"),
    ("nat", "OUTPUT", "-m addrtype --dst-type LOCAL -j MINIDOCK"),
    ("nat", "POSTROUTING", "-j MINIDOCK-POSTROUTING"),
]
# IPv6: ::1 is never DNATed (a packet from it may not leave the host): a published TCP port
# on [::1] or [::] is relayed by the daemon instead (service/publish.py)
JUMPS6 = [(t, c, "! -d ::1/128 " + s if c == "OUTPUT" else s.replace("127.0.0.0/8", "::1/128"))
          for t, c, s in JUMPS]
TOOL = {4: "iptables", 6: "ip6tables"}


def jumps(family: int) -> list[tuple[str, str, str]]:
    return JUMPS6 if family == 6 else JUMPS


@dataclass(frozen=True)
class BridgeRules:
    """What the firewall needs to know about one bridge network."""

    network: str
    bridge: str
    subnet: str
    icc: bool = True
    masquerade: bool = True
    internal: bool = False
    subnet6: str = ""  # with --ipv6


@dataclass
class Ruleset:
    filter: list[str] = field(default_factory=list)
    nat: list[str] = field(default_factory=list)

    def restore_text(self, jumps: tuple[list[str], list[str]] = ([], [])) -> str:
        """iptables-restore input; `jumps` are extra lines for filter and nat."""
        out = ["*filter"]
        out += [f":{c} - [0:0]" for c in FILTER_CHAINS]
        out += self.filter + jumps[0]
        out += ["COMMIT", "*nat"]
        out += [f":{c} - [0:0]" for c in NAT_CHAINS]
        out += self.nat + jumps[1]
        out += ["COMMIT", ""]
        return "\n".join(out)


def _comment(text: str) -> str:
    return f'-m comment --comment "{text}"'


def ruleset(networks: list[BridgeRules], published: Iterable[Published] = (), maps: bool = False,
            family: int = 4) -> Ruleset:
    """Every rule of ours for these networks and published ports, in order.

    With `maps` (daemon --port-maps) the ports themselves are nftables map elements
    (kernel/nftables.py): no rule per port here, but per network one ACCEPT and one
    hairpin MASQUERADE for whatever was DNATed to it. `family=6`: the ip6tables rules
    of the networks with IPv6, and the ports published on IPv6 addresses."""
    rs = Ruleset()
    f, n = rs.filter, rs.nat
    six = family == 6
    if six:
        networks = [replace(net, subnet=net.subnet6) for net in networks if net.subnet6]
    ports = [] if maps else sorted((p for p in published if (":" in p.host_ip) == six),
                                   key=lambda p: (p.host_port, p.proto, p.host_ip, p.container))
    host = "/128" if six else "/32"
    f.append("-A MINIDOCK-USER -j RETURN")
    f.append("-A MINIDOCK-FORWARD -j MINIDOCK-CT")
    f.append("-A MINIDOCK-FORWARD -j MINIDOCK-ISOLATION-STAGE-1")
    f.append("-A MINIDOCK-FORWARD -j MINIDOCK-BRIDGE")
    if ports or maps:
        f.append('-A MINIDOCK-ISOLATION-STAGE-1 -m conntrack --ctstate DNAT '
                 f'{_comment("published ports cross bridges")} -j RETURN')
    for p in ports:
        to = f"[{p.container_ip}]" if six else p.container_ip
        n.append(f"-A MINIDOCK{_match(p, p.host_port, dst=p.host_ip)} {_comment('container ' + p.container)}"
                 f" -j DNAT --to-destination {to}:{p.container_port}")
    for net in networks:
        br, tag = net.bridge, _comment(f"network {net.network}")
        f.append(f"-A MINIDOCK-CT -o {br} -m conntrack --ctstate RELATED,ESTABLISHED {tag} -j ACCEPT")
        f.append(f"-A MINIDOCK-BRIDGE -o {br} {tag} -j MINIDOCK")
        for p in ports:
            if p.bridge == br:
                f.append(f"-A MINIDOCK -d {p.container_ip}{host} ! -i {br} -o {br}"
                         f"{_match(p, p.container_port)} {_comment('container ' + p.container)} -j ACCEPT")
        if maps and not net.internal:
            f.append(f"-A MINIDOCK ! -i {br} -o {br} -m conntrack --ctstate DNAT {tag} -j ACCEPT")
        f.append(f"-A MINIDOCK ! -i {br} -o {br} {tag} -j DROP")
        if net.internal:
            f.append(f"-A MINIDOCK-ISOLATION-STAGE-1 ! -s {net.subnet} -o {br} {tag} -j DROP")
            f.append(f"-A MINIDOCK-ISOLATION-STAGE-1 ! -d {net.subnet} -i {br} {tag} -j DROP")
        else:
            f.append(f"-A MINIDOCK-ISOLATION-STAGE-1 -i {br} ! -o {br} {tag} -j MINIDOCK-ISOLATION-STAGE-2")
            f.append(f"-A MINIDOCK-ISOLATION-STAGE-2 -o {br} {tag} -j DROP")
        if net.icc:
            f.append(f"-A MINIDOCK-FORWARD -i {br} {tag} -j ACCEPT")
        else:
            f.append(f"-A MINIDOCK-FORWARD -i {br} ! -o {br} {tag} -j ACCEPT")
            f.append(f"-A MINIDOCK-FORWARD -i {br} -o {br} {tag} -j DROP")
        if net.masquerade and not net.internal:
            n.append(f"-A MINIDOCK-POSTROUTING -s {net.subnet} ! -o {br} {tag} -j MASQUERADE")
        if not net.internal and not six:  # IPv6 has no route_localnet: ::1 never leaves the host
            n.append(f"-A MINIDOCK-POSTROUTING -s 127.0.0.0/8 -o {br} {tag} -j MASQUERADE")
            if maps:
                n.append(f"-A MINIDOCK-POSTROUTING -s {net.subnet} -o {br} -m conntrack --ctstate DNAT "
                         f"{_comment('network ' + net.network + ' hairpin')} -j MASQUERADE")
        for p in ports:
            if p.bridge == br:
                n.append(f"-A MINIDOCK-POSTROUTING -s {net.subnet} -d {p.container_ip}{host} -o {br}"
                         f"{_match(p, p.container_port)} {_comment('container ' + p.container + ' hairpin')}"
                         " -j MASQUERADE")
    # two host ports for one container port need its ACCEPT and hairpin once
    rs.filter, rs.nat = list(dict.fromkeys(f)), list(dict.fromkeys(n))
    return rs


def _match(p: Published, port: int, dst: str = "") -> str:
    where = f" -d {dst}{'/128' if ':' in dst else '/32'}" if dst and dst not in ("0.0.0.0", "::") else ""
    return f"{where} -p {p.proto} -m {p.proto} --dport {port}"


def jump_lines(existing: str, family: int = 4) -> tuple[list[str], list[str]]:
    """Lines that put our jumps at the top of each built-in chain, per table.

    A chain whose jumps are all present, in order, is left alone; otherwise
    its jumps of ours are deleted and inserted again, in order, at the top.
    """
    out: dict[str, list[str]] = {"filter": [], "nat": []}
    groups: dict[tuple[str, str], list[str]] = {}
    for table, chain, spec in jumps(family):
        groups.setdefault((table, chain), []).append(spec)
    for (table, chain), specs in groups.items():
        rules = _chain_rules(existing, table, chain)
        ours = [r for r in rules if _is_our_jump(r)]
        if rules[: len(specs)] == specs and len(ours) == len(specs):
            continue
        # also drops jumps an older minidock wrote with other matches
        out[table] += [f"-D {chain} {rule}" for rule in dict.fromkeys(ours)]
        out[table] += [f"-I {chain} 1 {spec}" for spec in reversed(specs)]
    return out["filter"], out["nat"]


def _is_our_jump(rule: str) -> bool:
    return (" " + rule).rpartition(" -j ")[2] in {*FILTER_CHAINS, *NAT_CHAINS}


def _chain_rules(save: str, table: str, chain: str) -> list[str]:
    """The rule specs of `chain` in an iptables-save dump, without the `-A CHAIN`."""
    return [ln[len(f"-A {chain} "):] for ln in _table_section(save, table).splitlines()
            if ln.startswith(f"-A {chain} ")]


def _table_section(save: str, table: str) -> str:
    start = save.find(f"*{table}\n")
    if start < 0:
        return ""
    end = save.find("COMMIT", start)
    return save[start:end]


async def _run(*argv: str, stdin: str | None = None) -> str:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {err.decode().strip()}")
    return out.decode()


async def save(family: int = 4) -> str:
    return await _run(f"{TOOL[family]}-save")


async def apply(rs: Ruleset, family: int = 4) -> list[str]:
    """Refill our chains (and add any missing jump) in one atomic batch.

    Returns what changed as `iptables` (`ip6tables`) commands, for --explain.
    """
    before = await save(family)
    lines = jump_lines(before, family)
    await _run(f"{TOOL[family]}-restore", "-w", "--noflush", stdin=rs.restore_text(lines))
    return explain(before, rs, lines, TOOL[family])


def explain(before: str, rs: Ruleset, jumps: tuple[list[str], list[str]], tool: str = "iptables") -> list[str]:
    """The batch as the `iptables` commands that take `before` to the new state.

    We refill whole chains, but a student wants to see what changed: rules
    that went are deleted by their spec, rules that came are inserted at their
    place (`-A` when that is the end). Run in order after `before`, the
    commands give exactly our chains; new chains are made first, and the jumps
    into them come last.
    """
    made: list[str] = []
    changes: list[str] = []
    for table, chains, lines, jump in (("filter", FILTER_CHAINS, rs.filter, jumps[0]),
                                        ("nat", NAT_CHAINS, rs.nat, jumps[1])):
        section = _table_section(before, table)
        for chain in chains:
            if f":{chain} " not in section:
                made.append(f"{tool} -t {table} -N {chain}")
            old = _chain_rules(before, table, chain)
            new = [ln[len(f"-A {chain} "):] for ln in lines if ln.startswith(f"-A {chain} ")]
            same = difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_matching_blocks()
            old_kept = {b.a + k for b in same for k in range(b.size)}
            new_kept = {b.b + k for b in same for k in range(b.size)}
            changes += [f"{tool} -t {table} -D {chain} {r}" for i, r in enumerate(old) if i not in old_kept]
            kept = [new[j] for j in sorted(new_kept)]
            for pos, rule in enumerate(new):
                if pos in new_kept:
                    continue
                changes.append(f"{tool} -t {table} -A {chain} {rule}" if pos == len(kept)
                               else f"{tool} -t {table} -I {chain} {pos + 1} {rule}")
                kept.insert(pos, rule)
        changes += [f"{tool} -t {table} {line}" for line in jump]
    return made + changes


def skeleton(family: int = 4) -> list[str]:
    """What every explanation's rules stand on, as idempotent commands: our chains, their
    fixed first rules and the jumps into them. The daemon makes these at start-up; an
    explanation that starts with them replays on its own in an empty namespace, and
    changes nothing where they are already there (`-N` fails quietly, `-C` finds the rule).
    """
    tool = TOOL[family]
    base = ruleset([], family=family)
    out = [f"{tool} -t filter -N {c} 2>/dev/null || true" for c in FILTER_CHAINS]
    out += [f"{tool} -t nat -N {c} 2>/dev/null || true" for c in NAT_CHAINS]
    for table, lines in (("filter", base.filter), ("nat", base.nat)):
        for line in lines:
            spec = line[len("-A "):]
            out.append(f"{tool} -t {table} -C {spec} 2>/dev/null || {tool} -t {table} -A {spec}")
    position: dict[tuple[str, str], int] = {}
    for table, chain, spec in jumps(family):
        n = position[(table, chain)] = position.get((table, chain), 0) + 1
        out.append(f"{tool} -t {table} -C {chain} {spec} 2>/dev/null || {tool} -t {table} -I {chain} {n} {spec}")
    return out


def _our_jumps(save: str, table: str) -> list[str]:
    """Delete lines for every jump of ours in the built-in chains of `table`."""
    builtin = dict.fromkeys(c for t, c, _ in JUMPS if t == table)  # the same chains for IPv6
    out = [f"-D {chain} {rule}" for chain in builtin for rule in _chain_rules(save, table, chain)
           if _is_our_jump(rule)]
    return list(dict.fromkeys(out))


async def remove_all(family: int = 4) -> None:
    """Delete every jump and chain of ours (`minidock system reset`)."""
    current = await save(family)
    lines = ["*filter"]
    lines += _our_jumps(current, "filter")
    lines += [f"-F {c}" for c in FILTER_CHAINS if f":{c} " in _table_section(current, "filter")]
    lines += [f"-X {c}" for c in FILTER_CHAINS if f":{c} " in _table_section(current, "filter")]
    lines += ["COMMIT", "*nat"]
    lines += _our_jumps(current, "nat")
    lines += [f"-F {c}" for c in NAT_CHAINS if f":{c} " in _table_section(current, "nat")]
    lines += [f"-X {c}" for c in NAT_CHAINS if f":{c} " in _table_section(current, "nat")]
    lines += ["COMMIT", ""]
    await _run(f"{TOOL[family]}-restore", "-w", "--noflush", stdin="\n".join(lines))

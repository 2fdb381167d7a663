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
    nat PREROUTING/OUTPUT (to a local address) ─▶ MINIDOCK (DNAT of published ports)
    nat POSTROUTING ─▶ MINIDOCK-POSTROUTING   (MASQUERADE of each subnet going out)

Docker puts its MASQUERADE rules straight into POSTROUTING; we keep them in a
chain of our own so that the built-in chains only ever hold our jumps.

`ruleset()` is pure: it turns the networks into iptables-restore text, and
unit tests compare it with golden files. `apply()` declares every chain of
ours, which makes `iptables-restore --noflush` flush and refill exactly those
chains in one transaction, so a change is all-or-nothing and repairs any
drift in our chains as a side effect.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

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
    ("nat", "PREROUTING", "-m addrtype --dst-type LOCAL -j MINIDOCK"),
    ("nat", "OUTPUT", "! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j MINIDOCK"),
    ("nat", "POSTROUTING", "-j MINIDOCK-POSTROUTING"),
]


@dataclass(frozen=True)
class BridgeRules:
    """What the firewall needs to know about one bridge network."""

    network: str
    bridge: str
    subnet: str
    icc: bool = True
    masquerade: bool = True
    internal: bool = False


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


def ruleset(networks: list[BridgeRules]) -> Ruleset:
    """Every rule of ours for these networks, in order."""
    rs = Ruleset()
    f, n = rs.filter, rs.nat
    f.append("-A MINIDOCK-USER -j RETURN")
    f.append("-A MINIDOCK-FORWARD -j MINIDOCK-CT")
    f.append("-A MINIDOCK-FORWARD -j MINIDOCK-ISOLATION-STAGE-1")
    f.append("-A MINIDOCK-FORWARD -j MINIDOCK-BRIDGE")
    for net in networks:
        br, tag = net.bridge, _comment(f"network {net.network}")
        f.append(f"-A MINIDOCK-CT -o {br} -m conntrack --ctstate RELATED,ESTABLISHED {tag} -j ACCEPT")
        f.append(f"-A MINIDOCK-BRIDGE -o {br} {tag} -j MINIDOCK")
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
    return rs


def jump_lines(existing: str) -> tuple[list[str], list[str]]:
    """Lines that put our jumps at the top of each built-in chain, per table.

    A chain whose jumps are all present, in order, is left alone; otherwise
    its jumps of ours are deleted and inserted again, in order, at the top.
    """
    out: dict[str, list[str]] = {"filter": [], "nat": []}
    groups: dict[tuple[str, str], list[str]] = {}
    for table, chain, spec in JUMPS:
        groups.setdefault((table, chain), []).append(spec)
    for (table, chain), specs in groups.items():
        rules = [ln[len(f"-A {chain} "):] for ln in _table_section(existing, table).splitlines()
                 if ln.startswith(f"-A {chain} ")]
        if rules[: len(specs)] == specs:
            continue
        out[table] += [f"-D {chain} {spec}" for spec in specs if spec in rules]
        out[table] += [f"-I {chain} 1 {spec}" for spec in reversed(specs)]
    return out["filter"], out["nat"]


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


async def save() -> str:
    return await _run("iptables-save")


async def apply(rs: Ruleset, *, ensure_jumps: bool = True) -> str:
    """Refill our chains (and add any missing jump) in one atomic batch.

    Returns the text that was applied, for --explain.
    """
    jumps = jump_lines(await save()) if ensure_jumps else ([], [])
    text = rs.restore_text(jumps)
    await _run("iptables-restore", "-w", "--noflush", stdin=text)
    return text


async def remove_all() -> None:
    """Delete every jump and chain of ours (`minidock system reset`)."""
    current = await save()
    lines = ["*filter"]
    lines += [f"-D {c} {s}" for t, c, s in JUMPS if t == "filter" and f"-A {c} {s}" in current]
    lines += [f"-F {c}" for c in FILTER_CHAINS if f":{c} " in _table_section(current, "filter")]
    lines += [f"-X {c}" for c in FILTER_CHAINS if f":{c} " in _table_section(current, "filter")]
    lines += ["COMMIT", "*nat"]
    lines += [f"-D {c} {s}" for t, c, s in JUMPS if t == "nat" and f"-A {c} {s}" in current]
    lines += [f"-F {c}" for c in NAT_CHAINS if f":{c} " in _table_section(current, "nat")]
    lines += [f"-X {c}" for c in NAT_CHAINS if f":{c} " in _table_section(current, "nat")]
    lines += ["COMMIT", ""]
    await _run("iptables-restore", "-w", "--noflush", stdin="\n".join(lines))

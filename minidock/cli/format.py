"""What the CLI prints, as pure functions: Docker's human durations, the
`ps` PORTS column, the rows of `ps` and `network ls` and their default
tables. Only C modules are imported (not even `re` or `json`), so the click
commands and the fast path (fast.py) share these functions without paying
for imports; the service layer imports `human_duration` from here too.
"""

from __future__ import annotations

import time
from _json import encode_basestring

from .tabwriter import tabulate

TYPE_CHECKING = False  # typing itself costs the fast path ~20 ms; type checkers read this as True
if TYPE_CHECKING:
    from typing import Any


def human_duration(seconds: float) -> str:
    """Docker's go-units HumanDuration."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    m = s // 60
    if m == 1:
        return "About a minute"
    if m < 60:
        return f"{m} minutes"
    h = int(seconds / 3600 + 0.5)  # go-units rounds halves up
    if h == 1:
        return "About an hour"
    if h < 48:
        return f"{h} hours"
    if h < 24 * 7 * 2:
        return f"{h // 24} days"
    if h < 24 * 30 * 2:
        return f"{h // 24 // 7} weeks"
    if h < 24 * 365 * 2:
        return f"{h // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def ago(ts: float, now: float) -> str:
    return human_duration(now - ts) + " ago"


def truncate_command(cmd: str, no_trunc: bool) -> str:
    return cmd if no_trunc or len(cmd) <= 20 else cmd[:19] + "…"


def displayable(api_ports: list[dict[str, object]]) -> str:
    """`ps`'s PORTS column from /containers/json Ports, grouped into ranges as
    the Docker CLI does: `0.0.0.0:9000-9002->9000-9002/tcp, 0.0.0.0:8080->80/tcp`.

    Here, not in ports.py: the fast path must not import ports.py, whose
    dataclasses and netaddr cost more than the whole of `docker ps`."""
    def key(p: dict[str, object]) -> tuple[int, str, int, str]:
        return int(p["PrivatePort"]), str(p.get("IP") or ""), int(p.get("PublicPort") or 0), str(p["Type"])  # type: ignore[call-overload]

    groups: dict[str, list[int]] = {}
    result: list[str] = []
    mappings: list[str] = []
    for p in sorted(api_ports, key=key):
        private, ip, public, proto = key(p)
        ip = f"[{ip}]" if ":" in ip else ip
        group_key = proto
        if ip:
            if public != private:
                mappings.append(f"{ip}:{public}->{private}/{proto}")
                continue
            group_key = f"{ip}/{proto}"
        g = groups.get(group_key)
        if g is None:
            groups[group_key] = [private, private]
        elif private == g[1] + 1:
            g[1] = private
        else:
            result.append(_group(group_key, *g))
            groups[group_key] = [private, private]
    result += [_group(k, *g) for k, g in groups.items()]
    return ", ".join(result + mappings)


def _group(key: str, first: int, last: int) -> str:
    ip, _, proto = key.rpartition("/")
    text = str(first) if first == last else f"{first}-{last}"
    return f"{ip}:{text}->{text}/{proto}" if ip else f"{text}/{proto}"


# the default tables: (header, row field) per column, as Docker prints them
PS_COLUMNS = [("CONTAINER ID", "ID"), ("IMAGE", "Image"), ("COMMAND", "Command"),
              ("CREATED", "RunningFor"), ("STATUS", "Status"), ("PORTS", "Ports"), ("NAMES", "Names")]
NETWORK_COLUMNS = [("NETWORK ID", "ID"), ("NAME", "Name"), ("DRIVER", "Driver"), ("SCOPE", "Scope")]


def default_table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    lines = [[title for title, _ in columns]] + [[str(r[f]) for _, f in columns] for r in rows]
    return tabulate(lines)


def ps_row(s: dict[str, Any], no_trunc: bool, now: float) -> dict[str, Any]:
    """One /containers/json summary as the fields `ps --format` knows."""
    cmd = truncate_command(s["Command"], no_trunc)
    return {
        "ID": s["Id"] if no_trunc else s["Id"][:12],
        "Image": s["Image"],
        "Command": encode_basestring(cmd),  # what json.dumps(cmd, ensure_ascii=False) returns
        "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(s["Created"])),
        "RunningFor": ago(s["Created"], now),
        "Ports": displayable(s.get("Ports") or []),
        "Status": s["Status"],
        "State": s["State"],
        "Names": ",".join(n.lstrip("/") for n in s["Names"]),
        "Labels": ",".join(f"{k}={v}" for k, v in (s.get("Labels") or {}).items()),
        "Networks": ",".join(s["NetworkSettings"]["Networks"]),
        "Size": "",
        "Mounts": "",
    }


def network_row(n: dict[str, Any], no_trunc: bool) -> dict[str, Any]:
    """One /networks entry as the fields `network ls --format` knows."""
    return {"ID": n["Id"] if no_trunc else n["Id"][:12], "Name": n["Name"], "Driver": n["Driver"],
            "Scope": n["Scope"], "IPv6": str(n["EnableIPv6"]).lower(),
            "Internal": str(n["Internal"]).lower(),
            "Labels": ",".join(f"{k}={v}" for k, v in n["Labels"].items()),
            "CreatedAt": n["Created"]}

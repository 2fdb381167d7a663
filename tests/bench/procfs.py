"""What the benches read from /proc: a process's resident memory, and who is whose child."""

from __future__ import annotations

import os


def rss_kb(pid: int) -> int:
    """VmRSS of `pid` in kB (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return next((int(ln.split()[1]) for ln in f if ln.startswith("VmRSS:")), 0)
    except OSError:
        return 0


def pss_kb(pid: int) -> int:
    """Proportional set size of `pid` in kB: its private pages plus its share of those it
    shares (the interpreter's code with the daemon's): what the process costs (0 if gone)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            return next((int(ln.split()[1]) for ln in f if ln.startswith("Pss:")), 0)
    except OSError:
        return 0


def children() -> dict[int, list[int]]:
    """Every process's children, by parent PID."""
    out: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            out.setdefault(ppid, []).append(int(entry))
    return out


def tree_rss_mb(pid: int) -> float:
    """RSS of a process and all its descendants, in MB."""
    kids, total, todo = children(), 0, [pid]
    while todo:
        p = todo.pop()
        total += rss_kb(p)
        todo += kids.get(p, [])
    return total / 1024

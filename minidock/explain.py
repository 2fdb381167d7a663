"""What `--explain` carries: the header that asks for it and brings it back, a
request's Recording (named steps, each with its why and shell commands), and
its rendering as a script a student can read and replay.

Standard library only: the CLI imports it, and must stay free of the daemon's
transaction machinery (`steps`) and of pyroute2.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EXPLAIN_HEADER = "X-Minidock-Explain"  # asks for the recording (request), carries it back (response)


@dataclass
class Recording:
    """The explanation of one request: named steps, each with its why and commands."""

    groups: list[dict[str, Any]] = field(default_factory=list)

    def add(self, name: str, why: str, commands: list[str]) -> None:
        self.groups.append({"step": name, "why": why, "commands": list(commands)})


def render(groups: list[dict[str, Any]]) -> str:
    """A shell script a student can read and replay: `# step: why`, then its commands."""
    out = []
    for g in groups:
        out.append(f"# -- {g['step']}" + (f": {g['why']}" if g.get("why") else ""))
        out.extend(g["commands"])
    return "\n".join(out) + "\n" if out else ""

"""Named steps with undo: validate first, then change the kernel, and on a
failure part-way undo what was done, in reverse.

Each step carries the shell commands it is equivalent to (`explain`), so the
same objects that change the kernel are what `--explain` prints.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("minidock.steps")

Undo = Callable[[], Awaitable[Any]]


@dataclass
class Transaction:
    """Collects the undo of every step done; `async with` rolls back on error."""

    explain: Callable[[str, str, list[str]], None] | None = None
    _undo: list[tuple[str, Undo]] = field(default_factory=list)

    async def step(
        self,
        name: str,
        action: Awaitable[Any],
        undo: Undo | None = None,
        commands: list[str] | None = None,
        why: str = "",
    ) -> Any:
        if self.explain is not None and commands:
            self.explain(name, why, commands)
        result = await action
        if undo is not None:
            self._undo.append((name, undo))
        return result

    async def rollback(self) -> None:
        errors = await undo_all(reversed(self._undo))
        self._undo.clear()
        for err in errors:
            log.error("undo failed: %s", err)

    def commit(self) -> None:
        self._undo.clear()

    async def __aenter__(self) -> Transaction:
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc is not None:
            await self.rollback()
        else:
            self.commit()


async def undo_all(steps: Any) -> list[Exception]:
    """Run every undo even when some fail (teardown carries on); return the errors."""
    errors: list[Exception] = []
    for name, undo in steps:
        try:
            await undo()
        except Exception as e:  # noqa: BLE001 - collected and reported together
            errors.append(RuntimeError(f"{name}: {e}"))
    return errors

"""Named steps with undo: validate first, then change the kernel, and on a
failure part-way undo what was done, in reverse.

Each step carries the shell commands it is equivalent to, so the same objects
that change the kernel are what `--explain` prints. A request that asks for
an explanation opens a `Recording` for its task (a context variable, so
concurrent requests never mix); every step recorded while it runs lands there
in the order the kernel saw it.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import KernelError, MinidockError
from .explain import Recording

log = logging.getLogger("minidock.steps")
STEP_TIMINGS = os.environ.get("MINIDOCK_TIMINGS") == "steps"

Undo = Callable[[], Awaitable[Any]]


_recording: contextvars.ContextVar[Recording | None] = contextvars.ContextVar("minidock_explain", default=None)
_operation: contextvars.ContextVar[str] = contextvars.ContextVar("minidock_operation", default="")


class FaultInjector:
    """Kills the daemon (SIGKILL, as `kill -9`) right after the N-th step of the
    next operation OP: the crash tests use it to stop an operation at every
    point and check what the restart makes of it. Armed at start-up with
    MINIDOCK_FAULT=OP:N, or, when MINIDOCK_FAULT_HOOK=1, through
    POST /minidock/fault after the test has set the scene."""

    def __init__(self, spec: str) -> None:
        self.enabled = os.environ.get("MINIDOCK_FAULT_HOOK") == "1" or bool(spec)
        op, _, after = spec.partition(":")
        self.arm(op, after or 0)

    def arm(self, op: str, after: int | str) -> None:
        self.op, self.after, self.seen = op, int(after or 0), 0

    def step_done(self, name: str) -> None:
        if self.op and _operation.get() == self.op:
            self.seen += 1
            if self.seen == self.after:
                log.warning("fault injection: killing the daemon after step %d (%s) of %s",
                            self.seen, name, self.op)
                os.kill(os.getpid(), signal.SIGKILL)


faults = FaultInjector(os.environ.get("MINIDOCK_FAULT", ""))


def current_operation() -> str:
    return _operation.get()


def set_operation(op: str) -> contextvars.Token[str]:
    return _operation.set(op)


def reset_operation(token: contextvars.Token[str]) -> None:
    _operation.reset(token)


def use_recording(rec: Recording | None) -> None:
    """Record the steps of the current task (and of the tasks it starts) into `rec`, or nowhere."""
    _recording.set(rec)


def current_recording() -> Recording | None:
    return _recording.get()


def record(name: str, why: str, commands: list[str]) -> None:
    rec = _recording.get()
    if rec is not None and commands:
        rec.add(name, why, commands)


def deferred(fn: Callable[..., Any], *args: Any) -> Undo:
    """An undo (or teardown step) that calls `fn(*args)` (awaited, if it is a coroutine function)."""
    async def run() -> Any:
        result = fn(*args)
        return await result if inspect.isawaitable(result) else result
    return run


def explained(name: str, undo: Undo, commands: list[str], why: str = "") -> Undo:
    """An undo (or teardown step) that records its commands when it runs."""
    async def run() -> Any:
        record(name, why, commands)
        return await undo()
    return run


class UndoErrors(ExceptionGroup):  # noqa: N818 - a group, named for what it gathers
    """Every undo that failed during one rollback (netavark's error list): reported
    together, attached to the error that caused the rollback."""


@dataclass
class Transaction:
    """Collects the undo of every step done; `async with` rolls back on error.

    A kernel failure inside a step becomes a KernelError that names the step,
    Docker-style: "failed to set up container networking: veth pair: …". Errors
    of ours (MinidockError) and `passthrough` ones go through unchanged.
    """

    context: str = "failed to set up container networking"
    passthrough: tuple[type[BaseException], ...] = ()
    _undo: list[tuple[str, Undo]] = field(default_factory=list)

    def on_undo(self, name: str, undo: Undo) -> None:
        """Register the undo of something done outside `step` (a lease, a record)."""
        self._undo.append((name, undo))

    async def step(
        self,
        name: str,
        action: Awaitable[Any],
        undo: Undo | None = None,
        commands: list[str] | None = None,
        why: str = "",
    ) -> Any:
        record(name, why, commands or [])
        t0 = time.perf_counter()
        try:
            result = await action
        except (MinidockError, *self.passthrough):
            raise
        except Exception as e:
            raise KernelError(f"{self.context}: {name}: {e}") from e
        if STEP_TIMINGS:
            log.info("step %s %.3f ms", name, (time.perf_counter() - t0) * 1000)
        if undo is not None:
            self._undo.append((name, undo))
        faults.step_done(name)
        return result

    async def rollback(self) -> UndoErrors | None:
        """Undo every step, in reverse, all of them even when some fail."""
        errors = await undo_all(reversed(self._undo))
        self._undo.clear()
        for err in errors:
            log.error("undo failed: %s", err)
        return UndoErrors("undo failed", errors) if errors else None

    def commit(self) -> None:
        self._undo.clear()

    async def __aenter__(self) -> Transaction:
        return self

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is not None:
            failed = await self.rollback()
            if failed is not None:
                exc.add_note(f"and undoing it failed: {'; '.join(map(str, failed.exceptions))}")
                exc.__cause__ = exc.__cause__ or failed
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
        faults.step_done(name)
    return errors

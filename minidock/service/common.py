"""Small helpers shared by the services: ids, names, timestamps, locks, the journal."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import stat
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from ..errors import InvalidParameter
from ..steps import current_operation, reset_operation, set_operation

if TYPE_CHECKING:
    from ..store import Store

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
ZERO_TIME = "0001-01-01T00:00:00Z"

_ADJ = ["admiring", "bold", "brave", "clever", "eager", "festive", "gallant", "happy", "jolly",
        "keen", "lucid", "modest", "nifty", "quirky", "serene", "sharp", "tender", "vibrant", "wizardly", "zen"]
_NOUN = ["babbage", "curie", "darwin", "euler", "fermat", "galois", "hopper", "kepler", "lovelace",
         "meitner", "noether", "pascal", "ritchie", "shannon", "thompson", "turing", "wozniak"]


def new_id() -> str:
    return secrets.token_hex(32)


def random_name() -> str:
    return f"{secrets.choice(_ADJ)}_{secrets.choice(_NOUN)}"


def check_name(name: str, what: str = "container") -> None:
    if not NAME_RE.match(name) or len(name) > 128:
        raise InvalidParameter(
            f'Invalid {what} name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed'
        )


def rfc3339(ts: float | None) -> str:
    """Docker's timestamps: UTC with nanoseconds."""
    if not ts:
        return ZERO_TIME
    frac = f"{ts % 1:.9f}"[2:].rstrip("0")
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + (f".{frac}" if frac else "") + "Z"


def watch_fd(fd: int, deliver: Callable[[bytes | None], None]) -> None:
    """Call `deliver(chunk)` for what a non-blocking fd (a pty master) gives,
    and `deliver(None)` once at its end (EOF, or EIO when the slave closes)."""
    loop = asyncio.get_running_loop()

    def readable() -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(fd)
        deliver(data or None)

    loop.add_reader(fd, readable)


class KeyedLocks:
    """One asyncio lock per key: requests on one object are serialised,
    requests on different objects run concurrently."""

    def __init__(self) -> None:
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    @asynccontextmanager
    async def hold(self, *keys: str) -> AsyncIterator[None]:
        ordered = sorted(set(keys))  # a fixed order: no deadlock between two holders
        for k in ordered:
            await self._locks[k].acquire()
        try:
            yield
        finally:
            for k in reversed(ordered):
                self._locks[k].release()


@asynccontextmanager
async def journaled(store: Store, op: str, **data: Any) -> AsyncIterator[None]:
    """Journal an operation: its intent is stored before the kernel is touched and
    dropped when it is over (done or rolled back); a crash leaves it for reconcile."""
    entry = store.journal_begin(op, data)
    token = set_operation(op) if not current_operation() else None  # rm's stop is part of rm
    try:
        yield
    finally:
        if token is not None:
            reset_operation(token)
        store.journal_end(entry)


def dir_size(path: str) -> int:
    """The bytes of the files under `path` (each inode once), as Docker's directory.Size: a
    container's writable layer (SizeRw, what prune reclaims) and a volume's data alike."""
    total, seen = 0, set()
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if st.st_nlink > 1:
                if st.st_ino in seen:
                    continue
                seen.add(st.st_ino)
            if not stat.S_ISDIR(st.st_mode):
                total += st.st_size
    return total

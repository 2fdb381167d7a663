"""A container's log, in Docker's json-file format: one JSON object per line
of output, {"log": TEXT, "stream": "stdout"|"stderr", "time": RFC3339Nano}.

The launcher's log copier writes it for a container without a terminal (the
supervisor's relay for one with a terminal, all "stdout"); this module reads
it back as `logs` and `attach` answer: chosen streams, `since`/`until`, the last
`tail` lines, `timestamps`, one frame per line (stdcopy) without a terminal,
the raw bytes with one, and following it until the container exits.
"""

from __future__ import annotations

import asyncio
import calendar
import json
import struct
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import IO

from .. import timestamps
from ..errors import InvalidParameter

STREAMS = {"stdin": 0, "stdout": 1, "stderr": 2}
POLL = 0.05


def stamp(ns: int) -> str:
    """RFC 3339 with nanoseconds (Docker's RFC3339NanoFixed), UTC."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + f".{ns % 1_000_000_000:09d}Z"


def parse_stamp(text: str) -> int:
    """Nanoseconds since the epoch of a stamp() (any count of fraction digits)."""
    main, _, frac = text.rstrip("Z").partition(".")
    secs = calendar.timegm(time.strptime(main, "%Y-%m-%dT%H:%M:%S"))
    return secs * 1_000_000_000 + int((frac + "000000000")[:9] or 0)


def encode(data: bytes, stream: str, ns: int | None = None) -> bytes:
    """Log lines for `data`: one entry per line (the last may be unfinished)."""
    ns = time.time_ns() if ns is None else ns
    out = []
    for piece in data.splitlines(keepends=True):
        text = piece.decode("utf-8", "surrogateescape")
        out.append(json.dumps({"log": text, "stream": stream, "time": stamp(ns)}) + "\n")
    return "".join(out).encode("utf-8", "surrogatepass")


def frame(stream: int, data: bytes) -> bytes:
    """Docker's multiplexed stream header (stdcopy) for output without a terminal."""
    return struct.pack(">BxxxL", stream, len(data)) + data


@dataclass
class Entry:
    stream: str
    ns: int
    data: bytes


def parse(line: bytes) -> Entry | None:
    try:
        d = json.loads(line)
        return Entry(d.get("stream", "stdout"), parse_stamp(d["time"]),
                     d["log"].encode("utf-8", "surrogateescape"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def parse_time(value: str | None, name: str) -> int | None:
    """A `since`/`until` query value (Unix seconds, maybe with a fraction) in nanoseconds."""
    if value in (None, "", "0"):
        return None
    assert value is not None
    try:
        return timestamps.parse_unix(value)
    except timestamps.TimeError as e:
        raise InvalidParameter(f"invalid value for {name}: {e}") from None


@dataclass
class Selection:
    """What a `logs` or `attach` request asked for."""

    streams: frozenset[str] = frozenset(("stdout", "stderr"))
    since: int | None = None
    until: int | None = None
    timestamps: bool = False
    tail: int | None = None  # the last N lines only; None: all

    def keeps(self, e: Entry) -> bool:
        return (e.stream in self.streams and (self.since is None or e.ns >= self.since)
                and (self.until is None or e.ns <= self.until))

    def render(self, e: Entry, tty: bool) -> bytes:
        data = (stamp(e.ns) + " ").encode() + e.data if self.timestamps else e.data
        return data if tty else frame(STREAMS.get(e.stream, 1), data)


def _lines(f: IO[bytes]) -> Iterator[bytes]:
    """The complete lines from the file's position; an unfinished last line is left unread."""
    while True:
        pos = f.tell()
        line = f.readline()
        if not line:
            return
        if not line.endswith(b"\n"):
            f.seek(pos)
            return
        yield line


def history(f: IO[bytes], sel: Selection) -> list[Entry]:
    """The entries written so far that `sel` keeps (the file is left at its end)."""
    entries = [e for line in _lines(f) if (e := parse(line)) is not None]
    if sel.tail is not None:
        entries = entries[-sel.tail:] if sel.tail > 0 else []
    return [e for e in entries if sel.keeps(e)]


async def read(f: IO[bytes], sel: Selection, tty: bool, follow: bool,
               done: asyncio.Event | None) -> AsyncIterator[bytes]:
    """The log as `logs` sends it: what is there, then (following) what comes until the exit."""
    with f:
        for e in history(f, sel):
            yield sel.render(e, tty)
        if not follow:
            return
        async for chunk in follow_from(f, sel, tty, done):
            yield chunk


async def follow_from(f: IO[bytes], sel: Selection, tty: bool, done: asyncio.Event | None) -> AsyncIterator[bytes]:
    """New entries from the file's position until the container has exited (`done`)."""
    while True:
        finished = done is None or done.is_set()
        for line in _lines(f):
            e = parse(line)
            if e is None:
                continue
            if sel.until is not None and e.ns > sel.until:
                return
            if sel.keeps(e):
                yield sel.render(e, tty)
        if finished:
            return
        try:
            await asyncio.wait_for(done.wait(), POLL)  # type: ignore[union-attr]
        except TimeoutError:
            pass

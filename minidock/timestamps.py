"""Docker's time values, read and written: pure, shared by the daemon and the CLI.

    "1733479200"  "1733479200.123456789"        unix seconds[.nanoseconds]
    "2026-12-06T10:00:00Z"  "2026-12-06T10:00:00.5+01:00"  "2026-12-06"   RFC 3339 and its cuts
    "10m"  "1h30m"  "1.5s"                       a Go duration: that long before now

What `docker events --since/--until` and prune's `until` filter take
(moby's timestamp.Parse); everything comes back as nanoseconds since the epoch.
"""

from __future__ import annotations

import calendar
import datetime
import re
import time

_UNIX = re.compile(r"^(-?\d+)(?:\.(\d*))?$")
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9,
          "h": 3600 * 10**9}
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?)?"
                   r"(Z|z|[+-]\d{2}:\d{2})?$")


class TimeError(ValueError):
    """A value that is no timestamp, date or duration."""


def parse_unix(value: str) -> int:
    """`seconds[.nanoseconds]` (the API's own form: moby's ParseUnixTimestamp) as nanoseconds."""
    m = _UNIX.match(value.strip())
    if m is None:
        raise TimeError(f'invalid timestamp "{value}": invalid seconds "{value.split(".")[0]}": invalid syntax')
    frac = (m.group(2) or "")[:9].ljust(9, "0")
    return int(m.group(1)) * 10**9 + int(frac)


def parse_duration(value: str) -> int | None:
    """A Go duration (`10m`, `1h30m`, `-1.5s`) in nanoseconds; None if it is not one."""
    sign, body = (-1, value[1:]) if value[:1] == "-" else (1, value.lstrip("+"))
    if not body or body == "0":
        return 0 if body == "0" else None
    pos, total = 0, 0.0
    for m in _DURATION_PART.finditer(body):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return sign * int(total) if pos == len(body) else None


def _parse_date(value: str) -> int | None:
    m = _DATE.match(value)
    if m is None:
        return None
    y, mo, d, h, mi, s, frac, zone = m.groups()
    fields = (int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0))
    try:
        datetime.datetime(*fields)
    except ValueError as e:
        raise TimeError(f'parsing time "{value}": {e}') from None
    nanos = int((frac or "")[:9].ljust(9, "0"))
    if zone is None:  # Docker: the local time zone when none is given
        secs = int(time.mktime((*fields, 0, 0, -1)))
    else:
        secs = calendar.timegm((*fields, 0, 0, 0))
        if zone not in ("Z", "z"):
            offset = int(zone[1:3]) * 3600 + int(zone[4:6]) * 60
            secs -= offset if zone[0] == "+" else -offset
    return secs * 10**9 + nanos


def parse(value: str, now_ns: int | None = None) -> int:
    """A duration before `now_ns`, an RFC 3339 time (or a cut of one), or unix seconds:
    as nanoseconds since the epoch (moby's timestamp.Parse)."""
    value = value.strip()
    if not value:
        raise TimeError("failed to parse value as time or duration: value is empty")
    d = parse_duration(value)
    if d is not None and value != "0":
        return (time.time_ns() if now_ns is None else now_ns) - d
    date = _parse_date(value)
    if date is not None:
        return date
    if "-" in value[1:]:
        raise TimeError(f'parsing time "{value}": cannot parse as RFC 3339')
    try:
        return parse_unix(value)
    except TimeError as e:
        raise TimeError(f"failed to parse value as time or duration: {e}") from None


def unix_text(ns: int) -> str:
    """Nanoseconds as the API's `seconds.nanoseconds` (what Docker's CLI sends)."""
    return f"{ns // 10**9}.{ns % 10**9:09d}"


def rfc3339_nano_fixed(ns: int) -> str:
    """Docker's RFC3339NanoFixed in the local zone: 2026-12-06T10:00:00.123456789Z in UTC,
    …+01:00 elsewhere (as the docker CLI prints an event's time)."""
    tm = time.localtime(ns // 10**9)
    off = tm.tm_gmtoff or 0
    zone = "Z" if off == 0 else f"{'+' if off > 0 else '-'}{abs(off) // 3600:02d}:{abs(off) % 3600 // 60:02d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", tm) + f".{ns % 10**9:09d}" + zone

"""Per-namespace sysctls, written through /proc/sys of the daemon's namespace."""

from __future__ import annotations


def _path(key: str) -> str:
    # the slash form (as sysctl(8) takes it) keeps interface names with dots intact
    return "/proc/sys/" + (key if "/" in key else key.replace(".", "/"))


def read(key: str) -> str:
    with open(_path(key)) as f:
        return f.read().strip()


def ensure(key: str, value: str) -> bool:
    """Set `key` to `value`; True if it changed."""
    if read(key) == value:
        return False
    write(key, value)
    return True


def write(key: str, value: str) -> None:
    """Set `key` without reading it first (one open, where `ensure` costs two)."""
    with open(_path(key), "w") as f:
        f.write(value)

"""When the spares are made: LOW at once, whatever the load; the rest, up to HIGH, only once
no create came for QUIET (a burst takes spares without work beside its starts); and, once
quiet, the overlays of the spares waiting are mounted again over the last create's image.
Real directories in a temporary root; the overlay mount ahead is a stand-in fd (the e2e
keeper tests mount real ones)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from minidock.service import spares
from minidock.service.spares import HIGH, LOW, Spares

QUIET = 0.05


@pytest.fixture
def pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Spares:
    monkeypatch.setattr(spares, "QUIET", QUIET)
    mounts: list[tuple[str, str]] = []
    monkeypatch.setattr(spares.libc, "fsmount_overlay",
                        lambda lower, upper, work: mounts.append((lower, upper)) or os.open(os.devnull, os.O_RDONLY))
    for image in ("alpine", "busybox"):
        (tmp_path / "images" / image).mkdir(parents=True)
    s = Spares(str(tmp_path))
    s.open()
    s.mounts = mounts  # type: ignore[attr-defined]
    return s


async def settled(s: Spares, timeout: float = 5.0) -> None:
    """Until nothing is being made and no quiet moment is waited for."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while s.filling is not None or s.quiet is not None:
        assert loop.time() < deadline, "the spares never settled"
        await asyncio.sleep(0.005)


def image(s: Spares, name: str) -> str:
    return os.path.join(os.path.dirname(s.dir), "images", name)


def spare_dirs(s: Spares) -> list[str]:
    return sorted(e.removeprefix(spares.PREFIX) for e in os.listdir(s.dir) if e.startswith(spares.PREFIX))


def test_a_burst_takes_spares_and_the_rest_is_made_once_quiet(pool: Spares) -> None:
    s = pool

    async def run() -> None:
        s.top_up()  # the daemon's start
        await settled(s)
        assert len(s.ready) == HIGH and spare_dirs(s) == sorted(s.ready)
        # a burst: creates QUIET/5 apart; while LOW or more wait, none is made beside them
        made = set(s.ready)
        for i in range(HIGH - LOW):
            s.take(os.path.join(s.dir, f"c{i}"), image(s, "alpine"))
            assert s.filling is None, f"a spare made at create {i}, with {len(s.ready)} waiting"
            await asyncio.sleep(QUIET / 5)
        assert len(s.ready) == LOW
        # below LOW: made at once, even within the burst
        s.take(os.path.join(s.dir, "last"), image(s, "alpine"))
        assert s.filling is not None
        await settled(s)
        assert len(s.ready) == HIGH and not made & set(s.ready[LOW:])
        # taken ones are containers' directories now; the new ones are mounted over alpine
        assert all(os.path.isfile(os.path.join(s.dir, f"c{i}", "hosts")) for i in range(HIGH - LOW))
        assert all(s.mounted[layer].lower == image(s, "alpine") for layer in s.ready)

    asyncio.run(run())
    s.close()


def test_once_quiet_the_spares_are_mounted_again_over_the_last_image(pool: Spares) -> None:
    s = pool

    async def run() -> None:
        s.top_up()
        await settled(s)
        s.take(os.path.join(s.dir, "a"), image(s, "alpine"))
        await settled(s)
        assert {s.mounted[layer].lower for layer in s.ready} == {image(s, "alpine")}
        s.take(os.path.join(s.dir, "b"), image(s, "busybox"))
        await settled(s)
        assert len(s.ready) == HIGH
        assert {s.mounted[layer].lower for layer in s.ready} == {image(s, "busybox")}
        # one mount over busybox per spare: the stale ones were let go, none mounted twice
        over = [upper for lower, upper in s.mounts if lower == image(s, "busybox")]  # type: ignore[attr-defined]
        assert len(over) == len(set(over)) == HIGH

    asyncio.run(run())
    s.close()
    assert not s.mounted

"""When the spares are made: LOW at once, whatever the load; the rest, up to HIGH, only once
no create came for QUIET (a burst takes spares without work beside its starts); and, once
quiet, the overlays of the spares waiting are mounted again over the last create's image.
Real directories in a temporary root; the overlay mount ahead is a stand-in fd (the e2e
keeper tests mount real ones)."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from minidock.service import spares
from minidock.service.spares import HIGH, LOW, Spares

QUIET = 0.5  # long beside the burst's 10 ms steps: a stalled loop does not end a burst here


class Mounts:
    """libc.fsmount_overlay's stand-in: an fd of /dev/null per mount, refused over `refused`."""

    def __init__(self) -> None:
        self.made: list[tuple[str, str]] = []
        self.refused: set[str] = set()

    def __call__(self, lower: str, upper: str, work: str) -> int:
        if lower in self.refused:
            raise OSError(22, "Invalid argument")
        self.made.append((lower, upper))
        return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)


@pytest.fixture
def mounts(monkeypatch: pytest.MonkeyPatch) -> Mounts:
    monkeypatch.setattr(spares, "QUIET", QUIET)
    m = Mounts()
    monkeypatch.setattr(spares.libc, "fsmount_overlay", m)
    return m


@pytest.fixture
def pool(tmp_path: Path, mounts: Mounts) -> Iterator[Spares]:
    for image in ("alpine", "busybox"):
        (tmp_path / "images" / image).mkdir(parents=True)
    fds = len(os.listdir("/proc/self/fd"))
    s = Spares(str(tmp_path))
    s.open()
    yield s
    s.close()
    assert not s.mounted
    assert len(os.listdir("/proc/self/fd")) == fds, "an overlay mounted ahead was never let go"


async def settled(s: Spares, timeout: float = 10.0) -> None:
    """Until nothing is being made and no quiet moment is waited for."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while s.filling is not None or s.quiet is not None:
        assert loop.time() < deadline, "the spares never settled"
        await asyncio.sleep(0.005)


def image(s: Spares, name: str) -> str:
    return os.path.join(os.path.dirname(s.dir), "images", name)


def over(s: Spares) -> set[str]:
    """The image roots the waiting spares' overlays lie over ("" for one without)."""
    return {s.mounted[layer].lower if layer in s.mounted else "" for layer in s.ready}


def spare_dirs(s: Spares) -> list[str]:
    return sorted(e.removeprefix(spares.PREFIX) for e in os.listdir(s.dir) if e.startswith(spares.PREFIX))


def test_a_burst_takes_spares_and_the_rest_is_made_once_quiet(pool: Spares) -> None:
    s = pool

    async def run() -> None:
        s.top_up()  # the daemon's start
        await settled(s)
        assert len(s.ready) == HIGH and spare_dirs(s) == sorted(s.ready)
        # a burst: creates 10 ms apart; while LOW or more wait, none is made beside them
        made = set(s.ready)
        for i in range(HIGH - LOW):
            s.take(os.path.join(s.dir, f"c{i}"), image(s, "alpine"))
            assert s.filling is None, f"a spare made at create {i}, with {len(s.ready)} waiting"
            await asyncio.sleep(0.01)
        assert len(s.ready) == LOW
        # below LOW: made at once, even within the burst
        s.take(os.path.join(s.dir, "last"), image(s, "alpine"))
        assert s.filling is not None
        await settled(s)
        assert len(s.ready) == HIGH and len(set(s.ready) - made) == HIGH - LOW + 1  # as many as taken
        # taken ones are containers' directories now; all waiting lie over alpine
        assert all(os.path.isfile(os.path.join(s.dir, f"c{i}", "hosts")) for i in range(HIGH - LOW))
        assert over(s) == {image(s, "alpine")}

    asyncio.run(run())


def test_once_quiet_the_spares_are_mounted_again_over_the_last_image(pool: Spares, mounts: Mounts) -> None:
    s = pool

    async def run() -> None:
        s.top_up()
        await settled(s)
        s.take(os.path.join(s.dir, "a"), image(s, "alpine"))
        await settled(s)
        assert over(s) == {image(s, "alpine")}
        s.take(os.path.join(s.dir, "b"), image(s, "busybox"))
        await settled(s)
        assert len(s.ready) == HIGH and over(s) == {image(s, "busybox")}
        # one mount over busybox per spare: none mounted twice
        uppers = [upper for lower, upper in mounts.made if lower == image(s, "busybox")]
        assert len(uppers) == len(set(uppers)) == HIGH
        # busybox imported again: a root of its own at the same path; the overlays over the old
        # one are let go and mounted again
        os.mkdir(image(s, "busybox") + ".new")
        os.rename(image(s, "busybox") + ".new", image(s, "busybox"))  # over the old, empty one
        s.take(os.path.join(s.dir, "c"), image(s, "busybox"))
        await settled(s)
        assert {s.mounted[layer].identity for layer in s.ready} == {spares._identity(image(s, "busybox"))}
        assert len([1 for lower, _ in mounts.made if lower == image(s, "busybox")]) == 2 * HIGH

    asyncio.run(run())


def test_an_image_no_overlay_mounts_over_is_not_tried_at_every_quiet_moment(pool: Spares, mounts: Mounts) -> None:
    s = pool
    mounts.refused.add(image(s, "busybox"))

    async def run() -> None:
        s.top_up()
        await settled(s)
        s.take(os.path.join(s.dir, "a"), image(s, "busybox"))
        await settled(s)  # would never settle if each quiet moment tried again
        assert len(s.ready) == HIGH and over(s) == {""}
        # another image mounts: over it, all are mounted again
        s.take(os.path.join(s.dir, "b"), image(s, "alpine"))
        await settled(s)
        assert over(s) == {image(s, "alpine")}

    asyncio.run(run())


def test_closed_while_a_spare_is_made_nothing_is_made_after(pool: Spares) -> None:
    """A reset closes the spares and removes their directories next: the one being made is
    finished first, and nothing is made into the removed root after."""
    s = pool

    async def run() -> None:
        s.top_up()
        assert s.filling is not None
        s.close()
        shutil.rmtree(s.dir)
        shutil.rmtree(s.layers)
        await asyncio.sleep(QUIET * 2)
        assert not os.path.exists(s.dir) and not os.path.exists(s.layers)
        assert s.filling is None and s.quiet is None

    asyncio.run(run())


def test_the_daemon_starts_with_the_newest_containers_image(pool: Spares) -> None:
    """The overlays mounted ahead die with a daemon: the next one mounts the spares it finds
    again, over the image of the newest container, without waiting for a create."""
    s = pool

    async def run() -> None:
        s.expect(image(s, "alpine"))
        s.top_up()
        await settled(s)
        assert len(s.ready) == HIGH and over(s) == {image(s, "alpine")}

    asyncio.run(run())

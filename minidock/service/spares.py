"""Container directories and writable layers made ahead of time, so that neither a
create nor a start makes one on its way; and the layer's overlay mounted ahead.

A container's files live in two places, as Docker's do (its containers/<id>/ and
its overlay2/<layer id>/):

    <root>/containers/<id>/     its log, and the /etc/hosts, resolv.conf and hostname
                                bound into it
    <root>/layers/<layer>/      its writable layer: the overlay's upper/, work/ and merged/
                                (a random id of its own, as Docker's layers have: inspect's
                                GraphDriver names it)

Made on the spot that is eight files and directories, each a journalled write on
the host's disk: on a slow disk, milliseconds of a start. Here they are made in
the background, in a thread, as hidden spares

    <root>/containers/.spare-<layer>/   (.spare-tmp-<layer>/ while being made)
    <root>/layers/<layer>/              its layer, made first

and a create renames one into place: one metadata write.

How many, and when: a spare costs ~4 ms of CPU to make here (nine inodes on this ext4,
which skips every inode deleted in the last minutes, and the overlay's own checks of its
work directory). Made as soon as one is taken, that work ran beside the start that follows
the create (`run` is both), on a 2-CPU machine: 1 to 2.5 ms more per start in a burst. So
LOW (2) are kept at once, whatever the load, and up to HIGH (8) once no create came for
QUIET: a burst of up to six creates takes spares without making any, and the rest is made
after it. Without one (a longer burst) the directories are made on the spot, as before.

The spare's overlay is mounted ahead too: an overlay of its layer over the image the
last container was made from, mounted nowhere (`libc.fsmount_overlay`: a file
descriptor of the mount). A start of a container of that image hands the descriptor
to its process, which attaches it as its root (move_mount) in ~20 us instead of
mounting it (~1 ms of its start, the overlay checking its work directory). One that
does not fit (another image, or the image's root made again since) is let go, and the
process mounts the overlay itself; at the next quiet moment the spares still waiting are
mounted again over the image of the last create. Only the container's first start uses
it; anything else that mounts the layer (cp, export, a removal) lets it go first: one
overlay at a time on an upper directory.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..kernel import libc, process

log = logging.getLogger("minidock.spares")

LOW, HIGH = 2, 8  # spares kept at once, and once quiet
QUIET = 0.1  # s without a create: a burst is over
PREFIX, MAKING = ".spare-", ".spare-tmp-"
FILES = ("container.log", "hosts", "resolv.conf", "hostname")
LAYER_DIRS = ("upper", "work", "merged")


def make(path: str) -> None:
    """A container's directory with its empty files (log 0600, /etc files 0644)."""
    os.makedirs(path, 0o700)
    for name in FILES:
        os.close(os.open(os.path.join(path, name), os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC,
                         0o600 if name == "container.log" else 0o644))


def make_layer(path: str) -> None:
    """A writable layer: the overlay's upper/, work/ and merged/."""
    os.makedirs(path, 0o700)
    for sub in LAYER_DIRS:
        os.mkdir(os.path.join(path, sub))


@dataclass
class Premount:
    """An overlay mounted ahead, nowhere yet: its fd, and the image root it lies over (its
    path, and that directory's identity then: a root made again since is another)."""

    fd: int
    lower: str
    identity: tuple[int, int]


def _identity(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


class Spares:
    def __init__(self, root: str) -> None:
        self.dir = os.path.join(root, "containers")
        self.layers = os.path.join(root, "layers")
        self.ready: list[str] = []  # layer ids of the spares made
        self.filling: asyncio.Future[tuple[str, Premount | None]] | None = None
        self.lower = ""  # the image root of the last container made: the next one's, likely
        self.mounted: dict[str, Premount] = {}  # layer id -> its overlay, mounted ahead
        self.last_take = 0.0  # time.monotonic() of the last create
        self.quiet: asyncio.TimerHandle | None = None  # the wait for a quiet moment
        # an image root (its path and identity) no overlay could be mounted over: not tried
        # again at quiet moments, until a spare made since is mounted over it
        self.unmountable: tuple[str, tuple[int, int]] | None = None
        self.closed = False
        # one thread of its own, at a low CPU priority: a spare is made while a start runs,
        # and on a 2-CPU machine it took the CPU the start's client and process wanted
        self.worker = concurrent.futures.ThreadPoolExecutor(1, "spares", initializer=process.in_background)

    def layer_dir(self, layer: str) -> str:
        return os.path.join(self.layers, layer)

    def open(self) -> None:
        """Take the spares a previous run left; half-made ones go."""
        os.makedirs(self.dir, exist_ok=True)
        os.makedirs(self.layers, mode=0o700, exist_ok=True)
        for entry in sorted(os.listdir(self.dir)):
            if entry.startswith(MAKING):
                shutil.rmtree(os.path.join(self.dir, entry), ignore_errors=True)
                shutil.rmtree(self.layer_dir(entry[len(MAKING):]), ignore_errors=True)
            elif entry.startswith(PREFIX):
                if os.path.isdir(self.layer_dir(entry[len(PREFIX):])):
                    self.ready.append(entry[len(PREFIX):])
                else:  # one of a run before layers were apart: it goes
                    shutil.rmtree(os.path.join(self.dir, entry), ignore_errors=True)

    def take(self, path: str, lower: str) -> str:
        """Make `path` a container's directory, and give it a layer: a spare's, renamed into
        place, or both made now. Returns the layer's id. `lower`: the container's image root,
        which the next spares' overlays lie over."""
        self.lower, self.last_take = lower, time.monotonic()
        while self.ready:
            layer = self.ready.pop()
            try:
                os.rename(os.path.join(self.dir, PREFIX + layer), path)
                break
            except FileNotFoundError:
                self.unmount(layer)  # removed behind our back (a system reset): the next one
        else:
            layer = secrets.token_hex(32)
            make_layer(self.layer_dir(layer))
            make(path)
        self.top_up()
        return layer

    def root_ahead(self, layer: str, lower: str) -> int | None:
        """The fd of `layer`'s overlay over `lower`, mounted ahead (the caller's to close), or None."""
        ahead = self.mounted.pop(layer, None)
        if ahead is None:
            return None
        try:
            if ahead.lower == lower and ahead.identity == _identity(lower):
                return ahead.fd
        except OSError:
            pass  # the image's root is gone
        log.debug("layer %s: its overlay mounted ahead lies over another image: let go", layer[:12])
        os.close(ahead.fd)
        return None

    def unmount(self, layer: str) -> None:
        """Let `layer`'s overlay mounted ahead go (if it has one): the layer is mounted otherwise."""
        ahead = self.mounted.pop(layer, None)
        if ahead is not None:
            log.debug("layer %s: its overlay mounted ahead let go (the layer is mounted otherwise)", layer[:12])
            os.close(ahead.fd)

    def expect(self, lower: str) -> None:
        """At the daemon's start: the image root the newest container was made from, the
        next one's likely (the overlays mounted ahead died with the last daemon)."""
        self.lower = self.lower or lower

    def close(self) -> None:
        """Nothing made any more: the spare being made is finished first (a reset removes the
        directories next), and the overlays mounted ahead are let go."""
        self.closed = True
        if self.quiet is not None:
            self.quiet.cancel()
            self.quiet = None
        self.worker.shutdown(wait=True)
        for layer in list(self.mounted):
            self.unmount(layer)

    def top_up(self) -> None:
        """Make spares in a thread (one at a time): LOW at once, up to HIGH (and the overlays
        of those waiting over the last create's image) once no create came for QUIET."""
        if self.filling is not None or self.closed:
            return
        if len(self.ready) < LOW:
            self._fill(self._make_one, self.lower)
        elif (len(self.ready) < HIGH or self._stale()) and self.quiet is None:
            self.quiet = asyncio.get_running_loop().call_later(
                max(0.0, self.last_take + QUIET - time.monotonic()), self._when_quiet)

    def _stale(self) -> str | None:
        """A spare waiting whose overlay was not mounted over the last create's image (that
        path, and that directory: an image imported again has a root of its own)."""
        if not self.lower:
            return None
        try:
            now = (self.lower, _identity(self.lower))
        except OSError:
            return None  # the image is gone: nothing to mount over
        if now == self.unmountable:
            return None
        return next((layer for layer in self.ready if layer not in self.mounted
                     or (self.mounted[layer].lower, self.mounted[layer].identity) != now), None)

    def _when_quiet(self) -> None:
        self.quiet = None
        if self.closed:
            return
        left = self.last_take + QUIET - time.monotonic()
        if left > 0:  # a create came meanwhile: wait on
            self.quiet = asyncio.get_running_loop().call_later(left, self._when_quiet)
            return
        if self.filling is not None:
            return
        layer = self._stale()
        if layer is not None:
            # out of the waiting ones while its overlay is made again: a create takes another
            self.ready.remove(layer)
            self.unmount(layer)
            self._fill(self._mount_one, layer, self.lower)
        elif len(self.ready) < HIGH:
            self._fill(self._make_one, self.lower)

    def _fill(self, work: Callable[..., tuple[str, Premount | None]], *args: str) -> None:
        self.filling = asyncio.get_running_loop().run_in_executor(self.worker, work, *args)
        self.filling.add_done_callback(self._made)

    def _make_one(self, lower: str) -> tuple[str, Premount | None]:
        layer = secrets.token_hex(32)
        path = self.layer_dir(layer)
        making = os.path.join(self.dir, MAKING + layer)
        make_layer(path)
        make(making)
        os.rename(making, os.path.join(self.dir, PREFIX + layer))
        return self._mount_one(layer, lower)

    def _mount_one(self, layer: str, lower: str) -> tuple[str, Premount | None]:
        if not lower:
            return layer, None
        try:
            identity = _identity(lower)  # before the mount: a root made again meanwhile is another
        except OSError:
            return layer, None  # the image is gone
        path = self.layer_dir(layer)
        try:
            fd = libc.fsmount_overlay(lower, os.path.join(path, "upper"), os.path.join(path, "work"))
        except OSError as e:  # its start mounts it, as ever
            log.debug("overlay of %s not mounted ahead: %s", layer[:12], e)
            self.unmountable = (lower, identity)
            return layer, None
        self.unmountable = None
        return layer, Premount(fd, lower, identity)

    def _made(self, fut: asyncio.Future[tuple[str, Premount | None]]) -> None:
        self.filling = None
        try:
            layer, ahead = fut.result()
        except OSError as e:
            log.warning("no spare container directory made: %s", e)
            return
        if self.closed:
            if ahead is not None:
                os.close(ahead.fd)
            return
        self.ready.append(layer)
        if ahead is not None:
            self.mounted[layer] = ahead
        self.top_up()
        if self.filling is None and self.quiet is None:
            log.debug("spares: %d waiting, %d of them mounted over %s", len(self.ready),
                      sum(self.mounted[la].lower == self.lower for la in self.ready if la in self.mounted),
                      self.lower or "no image yet")

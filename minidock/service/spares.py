"""Container directories made ahead of time, so that neither a create nor a start
makes one on its way.

A container's directory (<root>/containers/<id>/) holds its overlay's upper/,
work/ and merged/, its log, and the /etc/hosts, resolv.conf and hostname that are
bound into it. Made on the spot that is eight files and directories, each a
journalled write on the host's disk: on a slow disk, milliseconds of a start.
Here they are made in the background, in a thread, as hidden spares

    <root>/containers/.spare-<hex>/     (.spare-tmp-<hex>/ while being made)

and a create renames one into place: one metadata write. A start then only
writes the /etc files' contents. Two spares are kept; without one (a burst of
creates) the directory is made on the spot, as before.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import secrets
import shutil

from ..kernel import process

log = logging.getLogger("minidock.spares")

KEEP = 2
PREFIX, MAKING = ".spare-", ".spare-tmp-"
FILES = ("container.log", "hosts", "resolv.conf", "hostname")


def make(path: str) -> None:
    """A container's directory with its subdirectories and empty files (log 0600, /etc files 0644)."""
    os.makedirs(path, 0o700)
    for sub in ("upper", "work", "merged"):
        os.mkdir(os.path.join(path, sub))
    for name in FILES:
        os.close(os.open(os.path.join(path, name), os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC,
                         0o600 if name == "container.log" else 0o644))


class Spares:
    def __init__(self, containers_dir: str) -> None:
        self.dir = containers_dir
        self.ready: list[str] = []
        self.filling: asyncio.Future[str] | None = None
        # one thread of its own, at a low CPU priority: a spare is made while a start runs,
        # and on a 2-CPU machine it took the CPU the start's client and process wanted
        self.worker = concurrent.futures.ThreadPoolExecutor(1, "spares", initializer=process.in_background)

    def open(self) -> None:
        """Take the spares a previous run left; half-made ones go."""
        os.makedirs(self.dir, exist_ok=True)
        for entry in sorted(os.listdir(self.dir)):
            if entry.startswith(MAKING):
                shutil.rmtree(os.path.join(self.dir, entry), ignore_errors=True)
            elif entry.startswith(PREFIX):
                self.ready.append(os.path.join(self.dir, entry))

    def take(self, path: str) -> None:
        """Make `path` a container's directory: a spare renamed, or one made now."""
        while self.ready:
            spare = self.ready.pop()
            try:
                os.rename(spare, path)
                break
            except FileNotFoundError:
                continue  # removed behind our back (a system reset): the next one
        else:
            make(path)
        self.top_up()

    def top_up(self) -> None:
        """Make spares in a thread until KEEP are ready (one filling at a time)."""
        if self.filling is not None or len(self.ready) >= KEEP:
            return
        loop = asyncio.get_running_loop()
        self.filling = loop.run_in_executor(self.worker, self._make_one)
        self.filling.add_done_callback(self._made)

    def _make_one(self) -> str:
        tag = secrets.token_hex(6)
        making = os.path.join(self.dir, MAKING + tag)
        make(making)
        done = os.path.join(self.dir, PREFIX + tag)
        os.rename(making, done)
        return done

    def _made(self, fut: asyncio.Future[str]) -> None:
        self.filling = None
        try:
            self.ready.append(fut.result())
        except OSError as e:
            log.warning("no spare container directory made: %s", e)
            return
        self.top_up()

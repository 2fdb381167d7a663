"""Attached streams: relaying a hijacked connection to this terminal.

With a Tty the stream is raw bytes and our terminal goes raw too (so Ctrl-C
travels to the container as a byte); without one, Docker's multiplexed
frames are split into stdout and stderr.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import struct
import sys
import termios
import tty as ttymod
from collections.abc import Callable

from ..client import demux


def window_size() -> tuple[int, int] | None:
    try:
        import fcntl

        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(sys.stdout.fileno(), termios.TIOCGWINSZ, b"\0" * 8))
        return rows, cols
    except OSError:
        return None


def relay(sock: socket.socket, *, tty: bool, stdin: bool, on_resize: Callable[[], None] | None = None) -> None:
    """Copy stdin → sock and sock → stdout/stderr until the container side closes."""
    in_fd = sys.stdin.fileno() if stdin else None
    old = None
    if tty and in_fd is not None and os.isatty(in_fd):
        old = termios.tcgetattr(in_fd)
        ttymod.setraw(in_fd)
    if on_resize is not None:
        signal.signal(signal.SIGWINCH, lambda *_: on_resize())
    buf = bytearray()
    out, err = sys.stdout.buffer, sys.stderr.buffer
    try:
        watching = [sock] + ([in_fd] if in_fd is not None else [])
        while True:
            try:
                ready, _, _ = select.select(watching, [], [])
            except InterruptedError:
                continue
            if sock in ready:
                data = sock.recv(65536)
                if not data:
                    break
                if tty:
                    out.write(data)
                    out.flush()
                else:
                    buf += data
                    for stream, chunk in demux(buf):
                        target = err if stream == 2 else out
                        target.write(chunk)
                        target.flush()
            if in_fd is not None and in_fd in ready:
                data = os.read(in_fd, 65536)
                if not data:
                    watching.remove(in_fd)
                    try:
                        sock.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                else:
                    sock.sendall(data)
    finally:
        if old is not None:
            termios.tcsetattr(in_fd, termios.TCSADRAIN, old)
        if on_resize is not None:
            signal.signal(signal.SIGWINCH, signal.SIG_DFL)
        sock.close()

"""`run -it` and `exec -it`: a real terminal, driven through a pty as a user would."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import termios
import time

from tests.sandbox import MINIDOCK, Sandbox


class Terminal:
    """A minidock command on the slave side of a pty we hold the master of."""

    def __init__(self, md: Sandbox, *args: str, rows: int = 33, cols: int = 101,
                 program: list[str] = MINIDOCK, env: dict[str, str] | None = None) -> None:
        pid, fd = pty.fork()
        if pid == 0:
            fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            os.execvpe(program[0], [*program, *args], env or md.env)
        self.pid, self.fd, self.seen = pid, fd, b""

    def expect(self, text: str, timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        while text.encode() not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"did not see {text!r} in {self.seen.decode(errors='replace')!r}")
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"EOF before {text!r}: {self.seen.decode(errors='replace')!r}")
                self.seen += chunk
        return self.seen.decode(errors="replace")

    def send(self, data: str) -> None:
        os.write(self.fd, data.encode())

    def wait(self, timeout: float = 15) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                ready, _, _ = select.select([self.fd], [], [], 0.1)
                if ready:
                    self.seen += os.read(self.fd, 4096)
            except OSError:
                pass
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        raise AssertionError("the command did not exit")


def test_run_it_gives_a_working_shell_with_ctrl_c_and_window_size(md: Sandbox) -> None:
    t = Terminal(md, "run", "-it", "--rm", "--name", "interactive", "alpine", "sh")
    t.expect("# ")
    t.send("echo $((6*7))\r")
    t.expect("42")
    t.send("stty size\r")
    t.expect("33 101")
    t.send("tty\r")
    t.expect("/dev/")
    t.send("sleep 60\r")
    time.sleep(0.5)
    started = time.monotonic()
    t.send("\x03")  # Ctrl-C travels as a byte and becomes SIGINT inside
    t.send("echo after-interrupt\r")
    t.expect("after-interrupt")
    assert time.monotonic() - started < 10
    t.send("exit 7\r")
    assert t.wait() == 7
    assert md.cli("ps", "-aq").out == ""


def test_exec_it_into_a_detached_shell(md: Sandbox) -> None:
    md.cli("run", "-dit", "--name", "alpine1", "alpine", "ash")
    t = Terminal(md, "exec", "-it", "alpine1", "sh")
    t.expect("# ")
    t.send("hostname; ip -o addr show eth0\r")
    t.expect("172.17.0.")
    t.send("exit 3\r")
    assert t.wait() == 3
    # the detached shell kept its terminal: its prompt is in the logs
    assert "#" in md.cli("logs", "alpine1").out
    md.cli("rm", "-f", "alpine1")

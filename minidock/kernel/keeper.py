"""The keeper: one small long-lived process per host that launches the containers
and keeps them, whatever happens to the daemon.

The daemon runs it as `python -I -S keeper.py ROOT SOCKET`, in a session of its
own, and is its client. Standard library only. It

  - is a fork server: the launcher is imported once; a start forks a child that
    joins the container's network namespace, unshares the others and forks the
    container's PID 1 (`launcher.launch`): a few milliseconds, no interpreter start;
  - is the containers' child subreaper: it reaps each one and keeps its exit code
    until the daemon has recorded it (`ack`), even while no daemon is connected;
  - owns each container's pty master or output pipes and its stdin, and writes the
    container's log itself (Docker's json-file lines), so that nothing is lost while
    the daemon is away;
  - hands the daemon what it needs over SOCKET (SOCK_SEQPACKET: one JSON message per
    packet, file descriptors by SCM_RIGHTS): a copy of the pty master (stdin, resize)
    and a tap of the terminal's output (attach), or the stdin pipe and copies of the
    output pipes. The daemon holds those copies so that a container's terminal and
    pipes outlive a keeper that dies; a new keeper takes them over (`adopt`).

It exits once it keeps no container and no exit code, and no daemon is connected.

Requests, each answered in order with {"ok": true, ...} or {"ok": false, "error"}:
  hello                       -> boxes [{id, pid, start, tty, adopted}], exited [{id, pid, code}]
  start  {id, spec, log}      -> pid, start (+ fds, named in "fds")
  fds    {id}                 -> the same fds again (a new tap): a restarted daemon's
  close_stdin {id}, ack {id}
  adopt  {id, pid, start, tty, log, fds}: a container whose keeper died (its fds attached)
Events: {"op": "exit", "id", "pid", "code"}.
"""

import errno
import fcntl
import json
import os
import resource
import select
import selectors
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import launcher  # noqa: E402 - the fork server's point: imported once, before any start

PR_SET_CHILD_SUBREAPER = 36
F_SETPIPE_SZ = 1031
MAX_MSG = 1 << 18
MAX_FDS = 8
START_TIMEOUT = 30.0  # a container's mounts and exec; past this the start is refused
LINE_MAX = 16384  # a longer line goes out in pieces, as Docker's copier does
IDLE_FLUSH = 0.1  # a line still unfinished after this long goes out as it is (a prompt)
TIMINGS = bool(os.environ.get("MINIDOCK_TIMINGS"))  # make bench: how long each start takes here
LONELY = 10.0  # started, never connected to, nothing kept: a daemon that died at once


class Box:
    """One container the keeper keeps."""

    __slots__ = ("id", "pid", "start", "tty", "adopted", "log", "master", "tap", "out", "err", "stdin",
                 "partial", "pidfd")

    def __init__(self, cid, pid, start, tty, log, adopted=False):
        self.id, self.pid, self.start, self.tty, self.log, self.adopted = cid, pid, start, tty, log, adopted
        self.master = self.tap = self.out = self.err = self.stdin = self.pidfd = None
        self.partial = {}  # output fd -> the unfinished line

    def outputs(self):
        return [fd for fd in (self.master, self.out, self.err) if fd is not None]

    def stream(self, fd):
        return "stderr" if fd == self.err else "stdout"


def start_time(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
        return int(data[data.rindex(")") + 2:].split()[19])
    except (OSError, ValueError):
        return 0


def exit_code(status):
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


class Keeper:
    def __init__(self, root, path):
        self.root, self.path = root, path
        self.sel = selectors.DefaultSelector()
        self.boxes = {}  # id -> Box
        self.by_pid = {}  # pid -> Box (the containers we reap)
        self.by_fd = {}  # output fd or pidfd -> Box
        self.exited = {}  # id -> (pid, code), until the daemon acknowledges it
        self.client = None
        self.ever_connected = False
        self.born = time.monotonic()

    # -- set-up
    def open(self):
        lock = os.open(os.path.join(self.root, "keeper.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            sys.exit(f"minidock keeper: another keeper serves {self.root}")
        self.lock = lock
        launcher.check(launcher.libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "prctl")
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:  # a pty or two pipes and a log per container: 1024 is too few
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        r, w = os.pipe()
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        signal.set_wakeup_fd(w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.sel.register(r, selectors.EVENT_READ, "signal")
        if os.path.lexists(self.path):
            os.unlink(self.path)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        old = os.umask(0o177)
        try:
            self.listener.bind(self.path)
        finally:
            os.umask(old)
        self.listener.listen(8)
        self.sel.register(self.listener, selectors.EVENT_READ, "listen")
        with open(os.path.join(self.root, "keeper.pid"), "w") as f:
            f.write(f"{os.getpid()} {start_time(os.getpid())}\n")

    # -- the loop
    def serve(self):
        while True:
            timeout = IDLE_FLUSH if any(b.partial for b in self.boxes.values()) else 1.0
            events = self.sel.select(timeout)
            if not events:
                self.flush_partials()
            for key, _mask in events:
                kind = key.data
                if kind == "signal":
                    try:
                        os.read(key.fd, 512)
                    except BlockingIOError:
                        pass
                    self.reap()
                elif kind == "listen":
                    self.accept()
                elif kind == "client":
                    self.on_request()
                elif kind == "pidfd":
                    box = self.by_fd.get(key.fd)
                    if box is not None:
                        self.finish(box, None)
                else:
                    box = self.by_fd.get(key.fd)
                    if box is not None:
                        self.on_output(box, key.fd)
            if self.done():
                break
        self.close()

    def done(self):
        if self.boxes or self.exited or self.client is not None:
            return False
        return self.ever_connected or time.monotonic() - self.born > LONELY

    def close(self):
        for path in (self.path, os.path.join(self.root, "keeper.pid")):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    # -- the daemon
    def accept(self):
        conn, _ = self.listener.accept()
        if self.client is not None:  # a new daemon: the old one's connection is stale
            self.drop_client()
        conn.settimeout(2.0)  # a daemon that stops reading is dropped, not waited for
        self.client = conn
        self.ever_connected = True
        self.sel.register(conn, selectors.EVENT_READ, "client")

    def drop_client(self):
        self.sel.unregister(self.client)
        self.client.close()
        self.client = None

    def send(self, msg, fds=()):
        if self.client is None:
            return
        try:
            socket.send_fds(self.client, [json.dumps(msg).encode()], list(fds))
        except OSError:
            self.drop_client()

    def on_request(self):
        try:
            data, fds, _flags, _addr = socket.recv_fds(self.client, MAX_MSG, MAX_FDS, socket.MSG_CMSG_CLOEXEC)
        except OSError:
            data, fds = b"", []
        if not data:
            self.drop_client()
            return
        try:
            req = json.loads(data)
            reply, out = getattr(self, "op_" + req["op"])(req, fds)
        except Exception as e:  # noqa: BLE001 - the daemon hears of every failure
            for fd in fds:
                os.close(fd)
            reply, out = {"error": str(e) or type(e).__name__}, []
        reply.setdefault("ok", "error" not in reply)
        self.send(reply, out)
        for fd in out:
            os.close(fd)

    def op_hello(self, _req, _fds):
        boxes = [{"id": b.id, "pid": b.pid, "start": b.start, "tty": b.tty, "adopted": b.adopted}
                 for b in self.boxes.values()]
        return {"pid": os.getpid(), "boxes": boxes,
                "exited": [{"id": k, "pid": pid, "code": code} for k, (pid, code) in self.exited.items()]}, []

    def op_ack(self, req, _fds):
        self.exited.pop(req["id"], None)
        return {}, []

    def op_close_stdin(self, req, _fds):
        box = self.boxes.get(req["id"])
        if box is not None and box.stdin is not None:
            os.close(box.stdin)
            box.stdin = None
        return {}, []

    def op_fds(self, req, _fds):
        box = self.boxes.get(req["id"])
        if box is None:
            return {"error": f"no container {req['id']} is kept"}, []
        names, fds = self.handout(box)
        return {"fds": names}, fds

    def handout(self, box):
        """Copies of the container's fds for the daemon; a terminal gets a new tap."""
        names, fds = [], []
        if box.tty:
            if box.tap is not None:
                os.close(box.tap)
            tap_r, box.tap = os.pipe()
            os.set_blocking(box.tap, False)
            try:
                fcntl.fcntl(box.tap, F_SETPIPE_SZ, 1 << 18)
            except OSError:
                pass
            names, fds = ["master", "tap"], [os.dup(box.master), tap_r]
        else:
            for name in ("out", "err", "stdin"):
                fd = getattr(box, name)
                if fd is not None:
                    names.append(name)
                    fds.append(os.dup(fd))
        return names, fds

    # -- starting
    def op_start(self, req, _fds):
        t0 = time.perf_counter()
        reply = self._start(req)
        if TIMINGS:
            sys.stderr.write(f"keeper: start {req['id'][:12]} {(time.perf_counter() - t0) * 1000:.2f} ms\n")
            sys.stderr.flush()
        return reply

    def _start(self, req):
        cid, spec = req["id"], req["spec"]
        if cid in self.boxes:
            return {"error": f"container {cid} is already running"}, []
        box = Box(cid, 0, 0, bool(spec.get("tty")), os.open(
            req["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600))
        theirs, pty = [], None
        try:
            if box.tty:
                pty, pty_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
                spec["pty_socket"] = pty_child.fileno()
                theirs.append(pty_child)
                null = os.open(os.devnull, os.O_RDWR)
                theirs.append(null)
                stdio = (null, null, null)
            else:
                box.out, out_w = os.pipe()
                box.err, err_w = os.pipe()
                if spec.get("stdin"):
                    in_r, box.stdin = os.pipe()
                else:
                    in_r = os.open(os.devnull, os.O_RDONLY)
                theirs += [out_w, err_w, in_r]
                stdio = (in_r, out_w, err_w)
            report = self.fork_launch(spec, stdio, theirs)
            if report.get("error") or not report.get("pid"):
                raise OSError(report.get("error") or "the launcher reported nothing")
            box.pid = int(report["pid"])
            if box.tty:
                pty.settimeout(5)
                _msg, got, _f, _a = socket.recv_fds(pty, 16, 1, socket.MSG_CMSG_CLOEXEC)
                if not got:
                    raise OSError("the container's terminal was not received")
                box.master = got[0]
        except BaseException:
            if box.pid:
                os.kill(box.pid, signal.SIGKILL)
                self.by_pid[box.pid] = box  # reaped by the loop, nothing reported
                box.adopted = True
            self.close_box(box)
            for t in theirs:  # the container's ends, when the failure came before the fork
                t.close() if isinstance(t, socket.socket) else os.close(t)
            raise
        finally:
            if pty is not None:
                pty.close()
        box.start = start_time(box.pid)
        self.keep(box)
        names, fds = self.handout(box)
        return {"pid": box.pid, "start": box.start, "fds": names}, fds

    def fork_launch(self, spec, stdio, theirs):
        """Fork the child that launches the container; its report, read within START_TIMEOUT."""
        report_r, report_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                for fd, target in zip(stdio, (0, 1, 2), strict=True):
                    os.dup2(fd, target)
                launcher.launch(spec, report_w)
            except BaseException as e:  # noqa: BLE001
                os.write(report_w, json.dumps({"pid": 0, "error": str(e)}).encode())
            finally:
                os._exit(0)
        os.close(report_w)
        for t in theirs:
            t.close() if isinstance(t, socket.socket) else os.close(t)
        theirs.clear()
        chunks, deadline = [], time.monotonic() + START_TIMEOUT
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not select_read(report_r, left):
                    os.kill(pid, signal.SIGKILL)
                    raise OSError("the container did not start in time")
                data = os.read(report_r, 65536)
                if not data:
                    break
                chunks.append(data)
        finally:
            os.close(report_r)
            wait_child(pid)
        try:
            return json.loads(b"".join(chunks) or b"{}")
        except ValueError:
            return {"error": "the launcher's report is unreadable"}

    def keep(self, box):
        self.boxes[box.id] = box
        if not box.adopted:
            self.by_pid[box.pid] = box
        for fd in box.outputs():
            os.set_blocking(fd, False)
            self.by_fd[fd] = box
            self.sel.register(fd, selectors.EVENT_READ, "output")
        if box.stdin is not None:
            os.set_blocking(box.stdin, False)

    def op_adopt(self, req, fds):
        """A container whose keeper died: its terminal or pipes (from the daemon's copies)
        and its log are ours again; its exit is the daemon's to reap (it is its parent now)."""
        box = Box(req["id"], int(req["pid"]), int(req["start"]), bool(req["tty"]), os.open(
            req["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600), adopted=True)
        for name, fd in zip(req["fds"], fds, strict=True):
            setattr(box, name, fd)
        try:
            box.pidfd = os.pidfd_open(box.pid)
        except ProcessLookupError:
            self.close_box(box)
            return {"error": "gone"}, []
        self.keep(box)
        self.by_fd[box.pidfd] = box
        self.sel.register(box.pidfd, selectors.EVENT_READ, "pidfd")
        names, out = self.handout(box) if box.tty else ([], [])
        return {"fds": names}, out

    # -- running
    def on_output(self, box, fd):
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: a terminal whose every slave end has closed
            data = b""
        if not data:
            self.unwatch(fd)
            return
        now = time.time_ns()
        if box.tty:
            self.write_log(box, launcher.log_entry(data, "stdout", now))
            if box.tap is not None:
                try:
                    os.write(box.tap, data)
                except BlockingIOError:
                    pass  # an attach that does not keep up loses output; the log has it
                except OSError:
                    os.close(box.tap)  # the daemon that held the other end is gone
                    box.tap = None
            return
        stream = box.stream(fd)
        *lines, rest = (box.partial.pop(fd, b"") + data).split(b"\n")
        out = [launcher.log_entry(line + b"\n", stream, now) for line in lines]
        while len(rest) >= LINE_MAX:
            out.append(launcher.log_entry(rest[:LINE_MAX], stream, now))
            rest = rest[LINE_MAX:]
        if rest:
            box.partial[fd] = rest
        if out:
            self.write_log(box, b"".join(out))

    def flush_partials(self, only=None):
        now = time.time_ns()
        for box in [only] if only else list(self.boxes.values()):
            for fd, rest in list(box.partial.items()):
                self.write_log(box, launcher.log_entry(rest, box.stream(fd), now))
            box.partial.clear()

    def write_log(self, box, data):
        try:
            os.write(box.log, data)
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise

    def unwatch(self, fd):
        if fd in self.by_fd and self.by_fd[fd].pidfd != fd:
            self.sel.unregister(fd)
            del self.by_fd[fd]

    # -- exits
    def reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            box = self.by_pid.pop(pid, None)
            if box is not None:
                self.finish(box, exit_code(status))

    def finish(self, box, code):
        """The container ended: the rest of its output goes to the log, then its exit code
        is kept and sent (a container adopted after a keeper's death is the daemon's to reap)."""
        for fd in box.outputs():
            for _ in range(64):  # bounded: a process the container left behind may write on
                if fd not in self.by_fd or not select_read(fd, 0):
                    break
                self.on_output(box, fd)
        self.flush_partials(box)
        self.boxes.pop(box.id, None)
        self.close_box(box)
        if not box.adopted:
            self.exited[box.id] = (box.pid, code)
            self.send({"op": "exit", "id": box.id, "pid": box.pid, "code": code})

    def close_box(self, box):
        for fd in (*box.outputs(), box.pidfd):
            if fd is not None and fd in self.by_fd:
                self.sel.unregister(fd)
                del self.by_fd[fd]
        for name in ("master", "tap", "out", "err", "stdin", "log", "pidfd"):
            fd = getattr(box, name)
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
                setattr(box, name, None)


def select_read(fd, timeout):
    """Whether `fd` is readable within `timeout` s (poll: fds past 1024 are the rule here)."""
    p = select.poll()
    p.register(fd, select.POLLIN)
    return bool(p.poll(timeout * 1000))


def wait_child(pid):
    while True:
        try:
            os.waitpid(pid, 0)
            return
        except ChildProcessError:
            return
        except InterruptedError:
            continue


def main():
    root, path = sys.argv[1], sys.argv[2]
    keeper = Keeper(root, path)
    keeper.open()
    os.write(1, b"ready\n")
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)  # the daemon that started us read that line; it may be gone next time
    os.close(null)
    keeper.serve()


if __name__ == "__main__":
    main()

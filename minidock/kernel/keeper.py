"""The keeper: one small long-lived process per host that launches the containers
and keeps them, whatever happens to the daemon.

The daemon runs it (`python -I -S -c 'import keeper; keeper.main()' ROOT SOCKET`:
from its cached bytecode), in a session of its own, and is its client. Standard library only. It

  - is a fork server: the launcher is imported once, and one process is kept ready
    for the next container, its namespaces (network included) already unshared and
    the common mounts staged (`launcher.pid1`). A start hands it the container
    (`prepare`): it mounts the container's root while the daemon wires the network
    in its namespace, then execs on `go`. No interpreter starts, no fork is waited for;
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
A start prepared and never let go is undone (its process killed) when its daemon
goes away.

Requests, each answered in order with {"ok": true, ...} or {"ok": false, "error"}:
  hello                       -> boxes [{id, pid, start, tty, adopted}], exited [{id, pid, code}]
  prepare {id, spec, log, ready?, root?} -> pid, start: the process, stopped at the gate before exec
                                 (`ready`: the PID of the process made ready, taken; `root`:
                                 its root filesystem comes with it, mounted ahead, as an fd)
  go     {id}                 -> pid, start (+ fds, named in "fds"): it execs the command
  start  {id, spec, log}      -> the same as prepare and go at once
  cancel {id}                 -> cancelled: a prepared start undone (its process killed)
  fds    {id}                 -> the same fds again (a new tap): a restarted daemon's
  close_stdin {id}, ack {id}
  adopt  {id, pid, start, tty, log, fds}: a container whose keeper died (its fds attached)
Events: {"op": "exit", "id", "pid", "code"}; {"op": "ready", "pid", "gone"?}: a process is
ready (or, with "gone", no longer is): a start may name it in its `prepare`.
"""

import _signal as signal
import _socket
import errno
import fcntl
import gc
import os
import resource
import select
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# the fork server's point: imported once, before any start. Its JSON and fd passing are ours
# too: with the json, socket, signal and selectors modules, we and each ready process would
# hold ~1.4 MB more (enum, re, collections)
import launcher  # noqa: E402

PR_SET_CHILD_SUBREAPER = 36
F_SETPIPE_SZ = 1031
MAX_MSG = 1 << 18
MAX_FDS = 8
START_TIMEOUT = 30.0  # a container's mounts and exec; past this the start is refused
LINE_MAX = 16384  # a longer line goes out in pieces, as Docker's copier does
IDLE_FLUSH = 0.1  # a line still unfinished after this long goes out as it is (a prompt)
LONELY = 10.0  # started, never connected to, nothing kept: a daemon that died at once


class Poller:
    """epoll, and what each fd registered is for (selectors' job, without its imports)."""

    def __init__(self):
        self.epoll = select.epoll()
        self.what = {}  # fd -> (the fd or socket registered, its kind)

    def register(self, obj, kind):
        fd = obj if isinstance(obj, int) else obj.fileno()
        self.epoll.register(fd, select.EPOLLIN)
        self.what[fd] = (obj, kind)

    def unregister(self, obj):
        fd = obj if isinstance(obj, int) else obj.fileno()
        del self.what[fd]
        try:
            self.epoll.unregister(fd)
        except OSError:
            pass  # closed already: the kernel dropped it

    def select(self, timeout):
        """[(fd, its object, its kind)] of those readable within `timeout` s."""
        try:
            events = self.epoll.poll(timeout, max(len(self.what), 1))
        except InterruptedError:
            return []
        return [(fd, *self.what[fd]) for fd, _mask in events if fd in self.what]


class Box:
    """One container the keeper keeps."""

    __slots__ = ("id", "pid", "start", "tty", "adopted", "log", "master", "tap", "out", "err", "stdin",
                 "partial", "pidfd", "gate", "code")

    def __init__(self, cid, pid, start, tty, log, adopted=False):
        self.id, self.pid, self.start, self.tty, self.log, self.adopted = cid, pid, start, tty, log, adopted
        self.master = self.tap = self.out = self.err = self.stdin = self.pidfd = None
        self.gate = None  # a Zygote while the process waits for `go`
        self.code = None  # its exit code, if it died there
        self.partial = {}  # output fd -> the unfinished line

    def outputs(self):
        return [fd for fd in (self.master, self.out, self.err) if fd is not None]

    def stream(self, fd):
        return "stderr" if fd == self.err else "stdout"


class Zygote:
    """A process ready to become a container: PID 1 of namespaces of its own, waiting on
    `ctl` for its container (it says "staged", then "ready" at the gate there); `exec_r`
    carries why it could not get to the gate;
    `pty`, once handed a Tty container, is where its terminal's master comes from."""

    __slots__ = ("pid", "flags", "ctl", "exec_r", "pty")

    def __init__(self, pid, flags, ctl, exec_r):
        self.pid, self.flags, self.ctl, self.exec_r, self.pty = pid, flags, ctl, exec_r, None

    def close(self):
        for s in (self.ctl, self.pty):
            if s is not None:
                s.close()
        if self.exec_r is not None:
            os.close(self.exec_r)
        self.ctl = self.pty = self.exec_r = None


READY_FLAGS = launcher.namespaces({"new_netns": True})  # a container of its own network: the usual
READY = 1  # kept ready: one is remade within ~3 ms of a start; a second cost ~3.7 MB and no speed
READY_GONE = "the process made ready is gone"  # keeperlink.READY_GONE: that start is tried again


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
        self.stage = os.path.join(root, "keeper.stage")  # where a ready process stages its mounts
        self.sel = Poller()
        self.boxes = {}  # id -> Box
        self.by_pid = {}  # pid -> Box (the containers we reap)
        self.by_fd = {}  # output fd or pidfd -> Box
        self.exited = {}  # id -> (pid, code), until the daemon acknowledges it
        self.client = None
        self.ready = {}  # pid -> Zygote: the processes ready for the next starts
        self.coming = None  # the one being made: (forked child, its report pipe, ...)
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
        os.makedirs(self.stage, mode=0o700, exist_ok=True)
        self.pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)  # ours, for our children
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:  # a pty or two pipes and a log per container: 1024 is too few
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        r, w = os.pipe()
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        signal.set_wakeup_fd(w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.sel.register(r, "signal")
        if os.path.lexists(self.path):
            os.unlink(self.path)
        self.listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        old = os.umask(0o177)
        try:
            self.listener.bind(self.path)
        finally:
            os.umask(old)
        self.listener.listen(8)
        self.sel.register(self.listener, "listen")
        with open(os.path.join(self.root, "keeper.pid"), "w") as f:
            f.write(f"{os.getpid()} {start_time(os.getpid())}\n")

    # -- the loop
    def serve(self):
        self.refill()
        while True:
            timeout = IDLE_FLUSH if any(b.partial for b in self.boxes.values()) else 1.0
            events = self.sel.select(timeout)
            if not events:
                self.flush_partials()
            for fd, obj, kind in events:
                if kind == "signal":
                    try:
                        os.read(fd, 512)
                    except BlockingIOError:
                        pass
                    self.reap()
                elif kind == "zygote":
                    # not if a start took it already, earlier in this round of events
                    if self.coming is not None and obj is self.coming.ctl:
                        self.zygote_made()
                        self.refill()
                elif kind == "listen":
                    self.accept()
                elif kind == "client":
                    if obj is self.client:  # not one dropped earlier in this round
                        self.on_request()
                elif kind == "pidfd":
                    box = self.by_fd.get(fd)
                    if box is not None:
                        self.finish(box, None)
                else:
                    box = self.by_fd.get(fd)
                    if box is not None:
                        self.on_output(box, fd)
            if self.done():
                break
        self.close()

    def done(self):
        if self.boxes or self.exited or self.client is not None:
            return False
        return self.ever_connected or time.monotonic() - self.born > LONELY

    def close(self):
        if self.coming is not None:
            self.zygote_made()
        for z in self.ready.values():
            self.discard(z)
        self.ready.clear()
        for path in (self.path, os.path.join(self.root, "keeper.pid")):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    # -- the daemon
    def accept(self):
        fd, _addr = self.listener._accept()
        conn = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET, 0, fd)
        if self.client is not None:  # a new daemon: the old one's connection is stale
            self.drop_client()
        conn.settimeout(2.0)  # a daemon that stops reading is dropped, not waited for
        self.client = conn
        self.ever_connected = True
        self.sel.register(conn, "client")

    def drop_client(self):
        self.sel.unregister(self.client)
        self.client.close()
        self.client = None
        for box in [b for b in self.boxes.values() if b.gate is not None]:
            self.cancel(box)  # its daemon will never say go

    def send(self, msg, fds=()):
        if self.client is None:
            return
        try:
            launcher.send_fds(self.client, launcher.dumps(msg).encode(), list(fds))
        except OSError:
            self.drop_client()

    def on_request(self):
        try:
            data, fds = launcher.recv_fds(self.client, MAX_MSG, MAX_FDS, _socket.MSG_CMSG_CLOEXEC)
        except OSError:
            data, fds = b"", []
        if not data:
            self.drop_client()
            return
        req = {}
        try:
            req = launcher.loads(data)
            reply, out = getattr(self, "op_" + req["op"])(req, fds)
        except Exception as e:  # noqa: BLE001 - the daemon hears of every failure
            for fd in fds:
                os.close(fd)
            reply, out = {"error": str(e) or type(e).__name__}, []
        reply.setdefault("ok", "error" not in reply)
        self.send(reply, out)
        for fd in out:
            os.close(fd)
        if req.get("op") in ("go", "start", "cancel"):
            self.refill()  # while the daemon records (or undoes) the start: off its path

    def op_hello(self, _req, _fds):
        boxes = [{"id": b.id, "pid": b.pid, "start": b.start, "tty": b.tty, "adopted": b.adopted}
                 for b in self.boxes.values()]
        return {"pid": os.getpid(), "boxes": boxes, "ready": list(self.ready),
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
    def op_start(self, req, fds):
        self.op_prepare(req, fds)
        return self.op_go(req, [])

    def op_prepare(self, req, fds):
        """Hand the container to a ready process; it sets up the root and stops at the gate.
        With `root`, the one fd that came with the request is the container's root filesystem,
        mounted ahead by the daemon (nowhere yet): the process attaches it."""
        cid, spec = req["id"], req["spec"]
        theirs, names = (fds[:1], ["root"]) if req.get("root") and fds else ([], [])
        for fd in fds[len(theirs):]:
            os.close(fd)
        fds.clear()  # ours now: a failure must not see them closed twice (on_request)
        try:
            if cid in self.boxes:
                raise OSError(f"container {cid} is already running")
            box = Box(cid, 0, 0, bool(spec.get("tty")), os.open(
                req["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600))
        except OSError as e:
            for fd in theirs:
                os.close(fd)
            return {"error": str(e)}, []
        z = None
        try:
            if box.tty:
                pty, pty_child = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
                null = os.open(os.devnull, os.O_RDWR)
                theirs += [null, os.dup(null), os.dup(null), pty_child]
                names += ["stdin", "stdout", "stderr", "pty"]
            else:
                pty = None
                box.out, out_w = os.pipe()
                box.err, err_w = os.pipe()
                if spec.get("stdin"):
                    in_r, box.stdin = os.pipe()
                else:
                    in_r = os.open(os.devnull, os.O_RDONLY)
                theirs += [in_r, out_w, err_w]
                names += ["stdin", "stdout", "stderr"]
            if spec.get("netns"):
                theirs.append(os.open(spec["netns"], os.O_RDONLY | os.O_CLOEXEC))
                names.append("netns")
            ready = int(req.get("ready") or 0)
            z = self.take_zygote(launcher.namespaces(spec), ready,
                                 any(m["type"] == "bind" for m in spec.get("mounts") or []))
            z.pty = pty
            try:
                launcher.send_fds(z.ctl, launcher.dumps({**spec, "fds": names}).encode(),
                                  [t.fileno() if isinstance(t, _socket.socket) else t for t in theirs])
            except OSError:
                if ready:  # it died since it was made
                    raise OSError(READY_GONE) from None
                raise
        except BaseException:
            if z is not None:
                self.discard(z)
            elif box.tty and pty is not None:
                pty.close()
            self.close_box(box)
            raise
        finally:
            for t in theirs:  # the container's ends: its process has its own copies now
                t.close() if isinstance(t, _socket.socket) else os.close(t)
        box.pid, box.gate, box.start = z.pid, z, start_time(z.pid)
        self.keep(box)
        return {"pid": box.pid, "start": box.start}, []

    def op_go(self, req, _fds):
        """Let a prepared container exec its command, once it is at the gate (or say why it
        could not get there). As runc's start, this does not wait for the exec itself: all
        that could fail was done before the gate."""
        box = self.boxes.get(req["id"])
        if box is None or box.gate is None:
            return {"error": f"no container {req['id']} is being started"}, []
        z = box.gate
        error = ""
        try:
            error = self.at_gate(z, box)
            if not error:
                z.ctl.send(b"g")
            if not error and box.tty:
                z.pty.settimeout(5)
                _msg, got = launcher.recv_fds(z.pty, 16, 1, _socket.MSG_CMSG_CLOEXEC)
                if not got:
                    raise OSError("the container's terminal was not received")
                box.master = got[0]
        except OSError as e:
            error = str(e)
        if error:
            self.cancel(box)
            return {"error": error}, []
        box.gate = None
        z.close()
        if box.master is not None:
            self.watch_outputs(box, [box.master])
        names, fds = self.handout(box)
        return {"pid": box.pid, "start": box.start, "fds": names}, fds

    def op_cancel(self, req, _fds):
        """A prepared start the daemon undoes: its process goes, and nothing is reported. (One
        past `go` is a running container: the daemon kills it, its exit is reported.)"""
        box = self.boxes.get(req["id"])
        if box is None or box.gate is None:
            return {"cancelled": False}, []
        self.cancel(box)
        return {"cancelled": True}, []

    def at_gate(self, z, box):
        """"" once the process says it is ready at the gate; else why it will never be."""
        p = select.poll()
        p.register(z.ctl, select.POLLIN)
        p.register(z.exec_r, select.POLLIN)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            left = deadline - time.monotonic()
            ready = {fd for fd, _ev in p.poll(max(left, 0) * 1000)} if left > 0 else set()
            if not ready:
                return "the container did not start in time"
            if z.ctl.fileno() in ready and z.ctl.recv(16):
                return ""
            if z.exec_r in ready:
                break
        chunks = []  # it failed: what it wrote before it ended
        while select_read(z.exec_r, START_TIMEOUT):
            data = os.read(z.exec_r, 65536)
            if not data:
                break
            chunks.append(data)
        text = b"".join(chunks).decode(errors="replace")
        return text or f"the container's process ended before its command ran (exit {box.code})"

    def cancel(self, box):
        """Undo a start that never got to exec: kill its process, forget it, report nothing."""
        if box.code is None:
            try:
                os.kill(box.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.by_pid.pop(box.pid, None)
            wait_child(box.pid)
        if box.gate is not None:
            box.gate.close()
            box.gate = None
        self.boxes.pop(box.id, None)
        self.close_box(box)

    def take_zygote(self, flags, ready, binds):
        """The process made ready that the daemon named (`ready`, its PID: the daemon has named
        its network namespace already); else one ready that suits (the daemon's start came
        before it heard of it), or the one being made, if it suits, or one made now, with the
        namespaces wanted."""
        if ready:
            z = self.ready.pop(ready, None)
            if z is None:
                raise OSError(READY_GONE)
            return z
        for pid, z in self.ready.items():
            # one the daemon had not heard of yet when it asked (it forgets it now); not for a
            # bind of a host path, which may be a mount newer than its copy of the host's
            if z.flags == flags and not binds:
                del self.ready[pid]
                self.send({"op": "ready", "pid": pid, "gone": True})
                return z
        if self.coming is not None and self.coming.flags == flags:
            try:  # a start waits for it now: no longer work done ahead
                os.setpriority(os.PRIO_PROCESS, self.coming.pid, os.getpriority(os.PRIO_PROCESS, 0))
            except ProcessLookupError:
                pass  # it died: zygote_made says why
            z = self.zygote_made(advertise=False)
            if z is not None:
                return z
        return self.finish_zygote(self.spawn_zygote(flags))

    def refill(self):
        """Start making a process for the next starts, once a start is over (not while the
        daemon waits), until READY are; the daemon hears of each (`ready`) once it is made."""
        if len(self.ready) < READY and self.coming is None:
            try:
                self.coming = self.spawn_zygote(READY_FLAGS, background=True)
            except OSError as e:
                sys.stderr.write(f"keeper: no process made ready: {e}\n")
                return
            self.sel.register(self.coming.ctl, "zygote")

    def zygote_made(self, advertise=True):
        coming, self.coming = self.coming, None
        self.sel.unregister(coming.ctl)
        try:
            z = self.finish_zygote(coming)
        except OSError as e:
            sys.stderr.write(f"keeper: no process made ready: {e}\n")
            return None
        if advertise:
            self.ready[z.pid] = z
            self.send({"op": "ready", "pid": z.pid})
        return z

    def spawn_zygote(self, flags, background=False):
        """Fork the process to be made ready: PID 1 of a PID namespace of its own (we unshare
        one for our next child, then take ours back), it unshares the others and stages the
        common mounts (`launcher.pid1`); it says "staged" on its control socket when done."""
        ctl, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        exec_r, exec_w = os.pipe()
        if flags & launcher.CLONE_NEWPID:
            launcher.check(launcher.libc.unshare(launcher.CLONE_NEWPID), "unshare pid")
        try:
            pid = os.fork()
        except OSError:
            self.own_pidns(flags)
            raise
        if pid != 0:
            self.own_pidns(flags)
        else:
            try:
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                # the ready process may wait long: it must not hold other containers' fds
                # (a copy of a stdin pipe or a tap would keep it from ever ending)
                low = 3
                for fd in sorted((theirs.fileno(), exec_w)):
                    os.closerange(low, fd)
                    low = fd + 1
                os.closerange(low, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
                gc.disable()  # a collection would write to (copy) every page it shares with us
                launcher.pid1(theirs.fileno(), exec_w, flags, self.stage, background)
            finally:
                os._exit(127)
        theirs.close()
        os.close(exec_w)
        return Zygote(pid, flags, ctl, exec_r)

    def own_pidns(self, flags):
        if flags & launcher.CLONE_NEWPID:  # our later children are in our PID namespace again
            launcher.check(launcher.libc.setns(self.pidns, launcher.CLONE_NEWPID), "setns pid")

    def finish_zygote(self, z):
        """The process, once it has said "staged" (within START_TIMEOUT); else why it could not."""
        if select_read(z.ctl, START_TIMEOUT) and z.ctl.recv(16) == b"staged":
            return z
        error = os.read(z.exec_r, 65536).decode(errors="replace") if select_read(z.exec_r, 0) else ""
        self.discard(z)
        raise OSError(error or "the container's process was not made in time")

    def discard(self, z):
        """A ready process not used: it ends at the EOF of its control socket; killed to be sure."""
        try:
            os.kill(z.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        z.close()
        wait_child(z.pid)

    def keep(self, box):
        self.boxes[box.id] = box
        if not box.adopted:
            self.by_pid[box.pid] = box
        self.watch_outputs(box, box.outputs())
        if box.stdin is not None:
            os.set_blocking(box.stdin, False)

    def watch_outputs(self, box, fds):
        for fd in fds:
            os.set_blocking(fd, False)
            self.by_fd[fd] = box
            self.sel.register(fd, "output")

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
        self.sel.register(box.pidfd, "pidfd")
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
            if pid in self.ready:
                self.ready.pop(pid).close()  # died waiting: the next start makes another
                self.send({"op": "ready", "pid": pid, "gone": True})
                continue
            box = self.by_pid.pop(pid, None)
            if box is not None and box.gate is not None:
                box.code = exit_code(status)  # died before its exec: `go` says why
            elif box is not None:
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
    gc.freeze()  # what is here now is never collected: its pages stay shared with our forks
    keeper.serve()


if __name__ == "__main__":
    main()

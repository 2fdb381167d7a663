"""The container launcher: the code that becomes a container, run inside the keeper.

The keeper (keeper.py, a fork server) imports this module once. A container's
process is made in two halves:

  1. ahead of time (`pid1`, in a fork of the keeper that is PID 1 of a PID
     namespace of its own: the keeper unshared one for it): unshare the mount,
     UTS, IPC and network namespaces, and mount what every container gets
     (`stage`: /proc, /dev with its nodes made with mknod as runc does,
     /dev/pts, /dev/shm, /tmp, /sys) under a private tmpfs; say "staged" on
     the control socket and wait there. The keeper keeps one such process
     ready, so a start pays for no fork, unshare or common mount;
  2. per container: it receives the container's spec and its stdio (and the
     network namespace to join, when it is not its own), mounts the root
     filesystem (an overlay of the image), moves the staged mounts in, binds
     the container's own /etc/hosts, /etc/resolv.conf and /etc/hostname, then
     its binds, volumes and tmpfs mounts (`-v`, `--mount`, `--tmpfs`), pivots
     into the root, drops the old root (with it every copy of the host's
     mounts), sets the hostname, resolves the command and the user, says
     "ready" and waits at the gate: the daemon wires the network meanwhile, in
     the namespace this process made, and says "go". Then it takes the
     container's user and execs the command.

A failure before the gate is written on the exec pipe (the keeper reads it at
`go`); past the gate, as runc's, it is the container's: it goes to its stderr.
The keeper, a child subreaper, reaps the container and keeps its exit code.

Before exec, the command takes the container's user (Docker's `User`: a name or
uid from the container's /etc/passwd, with `:group`) and groups (its groups in
the container's /etc/group plus HostConfig.GroupAdd), for a container and an exec alike.

Run as a script (`python -I -S launcher.py --exec SPEC_JSON`) it runs an exec inside
a running container. Standard library only: both start in a few milliseconds.
"""

# the keeper imports this module and forks every container from it: only modules that cost
# little memory (each ready process shares, and partly copies, what they hold). The socket,
# signal and json modules bring enum and re with them (~1.4 MB): their C parts are used here
import _json
import _signal as signal
import _socket
import ctypes
import errno
import fcntl
import os
import sys
import time

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWPID, CLONE_NEWNET = (
    0x00020000, 0x04000000, 0x08000000, 0x20000000, 0x40000000)
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = (
    1, 2, 4, 8, 32, 4096, 16384, 1 << 18)
MS_NOATIME, MS_NODIRATIME, MS_RELATIME, MS_SLAVE, MS_SHARED = 1024, 2048, 1 << 21, 1 << 19, 1 << 20
PROPAGATION = {"private": MS_PRIVATE, "slave": MS_SLAVE, "shared": MS_SHARED}
# a mount option word -> (flag, set it?); the other words are the filesystem's data (size=, mode=)
FLAG_WORDS = {"ro": (MS_RDONLY, True), "rw": (MS_RDONLY, False), "nosuid": (MS_NOSUID, True),
              "suid": (MS_NOSUID, False), "nodev": (MS_NODEV, True), "dev": (MS_NODEV, False),
              "noexec": (MS_NOEXEC, True), "exec": (MS_NOEXEC, False)}
# statvfs f_flag bits -> the mount flags a read-only remount of a bind must keep
KEPT_FLAGS = {2: MS_NOSUID, 4: MS_NODEV, 8: MS_NOEXEC, 1024: MS_NOATIME, 2048: MS_NODIRATIME, 4096: MS_RELATIME}
MNT_DETACH, MS_MOVE = 2, 8192
TIOCSCTTY = 0x540E
DEVICES = ["null", "zero", "full", "random", "urandom", "tty"]

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}[os.uname().machine]
SYS_MOVE_MOUNT, AT_FDCWD, MOVE_MOUNT_F_EMPTY_PATH = 429, -100, 4  # the same on both


class _JsonContext:
    """What json's C scanner reads of a decoder: json.loads's defaults."""

    strict, object_hook, object_pairs_hook = True, None, None
    parse_float, parse_int, parse_constant = float, int, float


_scan = _json.make_scanner(_JsonContext())
# json.dumps's defaults: ASCII, ", " and ": ", no circular check (our messages are trees)
_encode = _json.make_encoder(None, None, _json.encode_basestring_ascii, None, ": ", ", ", False, False, True)


def loads(data):
    """json.loads, by json's own C scanner."""
    text = data.decode() if isinstance(data, bytes) else data
    try:
        obj, end = _scan(text, len(text) - len(text.lstrip()))
    except StopIteration as e:
        raise ValueError(f"not JSON (at {e.value})") from None
    if text[end:].strip():
        raise ValueError(f"not JSON (extra data at {end})")
    return obj


def dumps(obj):
    """json.dumps, by json's own C encoder."""
    return "".join(_encode(obj, 0))


def send_fds(sock, data, fds):
    """socket.send_fds: `data` and the file descriptors `fds` in one message (SCM_RIGHTS)."""
    rights = b"".join(fd.to_bytes(4, sys.byteorder, signed=True) for fd in fds)
    return sock.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)] if fds else [])


def recv_fds(sock, bufsize, maxfds, flags=0):
    """socket.recv_fds: a message and the file descriptors that came with it."""
    data, ancillary, _flags, _addr = sock.recvmsg(bufsize, _socket.CMSG_LEN(maxfds * 4), flags)
    fds = []
    for level, kind, cdata in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            fds += [int.from_bytes(cdata[i:i + 4], sys.byteorder, signed=True)
                    for i in range(0, len(cdata) - len(cdata) % 4, 4)]
    return data, fds


def check(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def b(s):
    return s.encode() if s is not None else None


def mount(src, dst, fstype, flags=0, data=None):
    check(libc.mount(b(src), b(dst), b(fstype), flags, b(data)), f"mount {dst}")


def touch(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if not os.path.lexists(path):
        open(path, "a").close()
    elif os.path.islink(path):
        os.unlink(path)
        open(path, "a").close()


def make_files(spec):
    """The container's directories and its /etc files, if they are not made yet (the daemon
    makes them ahead, and writes the files' contents, in place, before it says go)."""
    if os.path.isdir(spec["merged"]) and all(os.path.exists(p) for p in spec["files"].values()):
        return  # made ahead: the usual
    for d in ("upper", "work", "merged"):
        if spec.get(d):
            os.makedirs(spec[d], exist_ok=True)
    for path in spec["files"].values():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))


def base_mounts(base, which):
    """/proc, /dev (its nodes, /dev/pts, /dev/shm), /tmp and /sys, those named in `which`, under `base`."""
    if "proc" in which:
        mount("proc", f"{base}/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    if "dev" in which:
        mount("tmpfs", f"{base}/dev", "tmpfs", MS_NOSUID, "mode=755,size=65536k")
        for dev in DEVICES:  # as runc outside a user namespace: nodes, not binds (a mount each)
            st = os.stat(f"/dev/{dev}")
            os.mknod(f"{base}/dev/{dev}", st.st_mode, st.st_rdev)
            os.chmod(f"{base}/dev/{dev}", st.st_mode & 0o7777)
        os.makedirs(f"{base}/dev/pts")
        mount("devpts", f"{base}/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
              "newinstance,ptmxmode=0666,mode=0620")
        os.symlink("pts/ptmx", f"{base}/dev/ptmx")
        os.makedirs(f"{base}/dev/shm")
        mount("shm", f"{base}/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k")
        for fd, name in enumerate(("stdin", "stdout", "stderr")):
            os.symlink(f"/proc/self/fd/{fd}", f"{base}/dev/{name}")
        os.symlink("/proc/self/fd", f"{base}/dev/fd")
    if "tmp" in which:
        mount("tmpfs", f"{base}/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    if "sys" in which:
        try:
            mount("sysfs", f"{base}/sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
        except OSError:
            pass  # a host-network container cannot mount sysfs of a namespace it does not own


def stage(path, flags):
    """What every container gets, mounted ahead by the ready process in its own mount namespace,
    under a tmpfs at `path` (a directory nobody else sees mounted): the names it staged.
    /sys only in a network namespace of its own (sysfs shows the mounter's)."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=700,size=64k")
    which = ["proc", "dev", "tmp"] + (["sys"] if flags & CLONE_NEWNET else [])
    for d in which:
        os.mkdir(f"{path}/{d}")
    base_mounts(path, which)
    return which


def setup_root(spec):
    root = spec["merged"]
    make_files(spec)
    staged = spec.get("staged") or []
    if not staged:
        mount(None, "/", None, MS_REC | MS_PRIVATE)
    if spec.get("root_fd") is not None:  # the daemon mounted it ahead: attached here
        attach_root(spec.pop("root_fd"), spec)
    elif spec.get("lower"):
        mount_overlay(spec)
    else:
        mount(spec["rootfs"], root, None, MS_BIND | MS_REC)
    for d in ("proc", "dev", "sys", "tmp", "etc"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    for d in staged:  # made ahead by the ready process: moved in, not made now
        mount(f"{spec['stage']}/{d}", f"{root}/{d}", None, MS_MOVE)
    base_mounts(root, [d for d in ("proc", "dev", "tmp", "sys") if d not in staged])
    # the container's /etc files and its own mounts, parents first (a volume at /etc must not hide
    # /etc/hosts); a mount of the user's at /etc/hosts replaces ours, as in Docker
    user = spec.get("mounts") or []
    taken = {m["target"].rstrip("/") for m in user}
    files = [{"type": "file", "source": src, "target": f"/etc/{name}"} for name, src in spec["files"].items()
             if f"/etc/{name}" not in taken]
    for m in sorted(files + user, key=lambda m: m["target"].rstrip("/").count("/")):
        if m["type"] == "file":
            dst = in_root(root, m["target"])
            touch(dst)
            mount(m["source"], dst, None, MS_BIND)
        else:
            user_mount(root, m)
    os.chdir(root)
    check(libc.syscall(SYS_PIVOT_ROOT, b".", b"."), "pivot_root")
    check(libc.umount2(b".", MNT_DETACH), "umount old root")
    os.chdir("/")


def mount_overlay(spec):
    opts = f"lowerdir={spec['lower']},upperdir={spec['upper']},workdir={spec['work']}"
    mount("overlay", spec["merged"], "overlay", 0, opts)


def attach_root(fd, spec):
    """The overlay the daemon mounted ahead, nowhere yet (its fd): attached at the root's place,
    as `mount` would have put it (move_mount); if that fails, it goes and the overlay is
    mounted here (one overlay at a time on the container's upper/)."""
    try:
        check(libc.syscall(SYS_MOVE_MOUNT, fd, b"", AT_FDCWD, b(spec["merged"]), MOVE_MOUNT_F_EMPTY_PATH),
              "move_mount")
    except OSError:
        os.close(fd)
        mount_overlay(spec)
    else:
        os.close(fd)


def in_root(root, path):
    """`path` as the container will see it, on the host: its symlinks resolved inside `root`
    (an absolute link starts again at `root`, `..` stops there), never outside it."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    cur, links = root, 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            cur = os.path.dirname(cur) if cur != root else root
            continue
        nxt = os.path.join(cur, part)
        if os.path.islink(nxt):
            links += 1
            if links > 40:
                raise OSError(40, f"too many levels of symbolic links: {path}")
            target = os.readlink(nxt)
            if target.startswith("/"):
                cur = root
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        cur = nxt
    return cur


def user_mount(root, m):
    """One of the container's own mounts: a bind of a host path or of a volume's data (read-only
    if asked: a remount, so that a write fails with EROFS), or a tmpfs."""
    target = in_root(root, m["target"])
    if m["type"] == "tmpfs":
        os.makedirs(target, exist_ok=True)
        flags, data = 0, []
        for word in filter(None, m.get("data", "").split(",")):
            if word in FLAG_WORDS:
                flag, on = FLAG_WORDS[word]
                flags = flags | flag if on else flags & ~flag
            else:
                data.append(word)
        mount("tmpfs", target, "tmpfs", flags, ",".join(data) or None)
        return
    source = m["source"]
    if os.path.isdir(source):
        if m.get("copy") and os.path.isdir(target) and os.listdir(target) and not os.listdir(source):
            # an empty volume takes the image's files at its destination, as Docker's do
            import shutil
            shutil.copytree(target, source, symlinks=True, dirs_exist_ok=True)
        os.makedirs(target, exist_ok=True)
    else:
        touch(target)
    mount(source, target, None, MS_BIND | MS_REC)
    if m.get("ro"):
        kept = 0
        have = os.statvfs(target).f_flag
        for bit, flag in KEPT_FLAGS.items():
            if have & bit:
                kept |= flag
        mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | kept)
    prop = m.get("propagation") or "rprivate"
    recursive = prop.startswith("r")
    flag = PROPAGATION.get(prop[1:] if recursive else prop)
    if flag is not None and flag != MS_PRIVATE:
        mount(None, target, None, flag | (MS_REC if recursive else 0))


def resolve(argv0, env):
    """The command's path, checked as runc checks it before its start: what exec would refuse
    is refused here, before the gate, so that the start fails and not the container."""
    if "/" in argv0:
        if not os.path.exists(argv0):
            raise OSError(errno.ENOENT, os.strerror(errno.ENOENT))
        if not os.path.isfile(argv0) or not os.access(argv0, os.X_OK):
            raise OSError(errno.EACCES, os.strerror(errno.EACCES))
        return argv0
    for d in env.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin").split(":"):
        cand = os.path.join(d or ".", argv0)
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    raise FileNotFoundError(f'exec: "{argv0}": executable file not found in $PATH')


def console(spec):
    """Open a pty in the container's own devpts, hand its master to the
    keeper over the socket `spec["pty_socket"]`, make the slave our stdio and
    controlling terminal (so `tty` says /dev/pts/0, as in Docker).

    Runs after pivot_root, where the host's Python library is out of reach:
    everything it uses is imported at the top."""
    master, slave = os.openpty()
    sock = _socket.socket(fileno=spec["pty_socket"])
    send_fds(sock, b"pty", [master])
    sock.close()
    os.close(master)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)
    fcntl.ioctl(0, TIOCSCTTY, 0)


def child(spec):
    os.setsid()
    setup_root(spec)
    if spec.get("tty"):
        console(spec)
    if spec.get("hostname") and not spec.get("share_uts"):
        check(libc.sethostname(b(spec["hostname"]), len(spec["hostname"])), "sethostname")
    env = environment(spec["env"])
    user = lookup_user(spec.get("user") or "", spec.get("group_add") or [])
    env.setdefault("HOME", user[3])
    try:
        os.chdir(spec.get("cwd") or "/")
    except OSError:
        os.makedirs(spec["cwd"], exist_ok=True)
        os.chdir(spec["cwd"])
    path = resolve(spec["argv"][0], env)
    wait_go(spec["go"])
    try:
        if spec.get("init"):
            run_init(path, spec["argv"], env, user, bool(spec.get("tty")))
        become(user)
        os.execve(path, spec["argv"], env)
    except OSError as e:  # past the gate the start has succeeded: the container fails, as runc's
        os.write(2, f"exec {path}: {e.strerror or e}\n".encode())
        os._exit(126 if e.errno in (errno.EACCES, errno.ENOEXEC) else 127)


def wait_go(ctl):
    """The gate: say "ready" (all that could fail has been done), then wait for "g", sent once
    the daemon has wired the network and written the /etc files; EOF if the start is undone."""
    ctl.send(b"ready")
    if not ctl.recv(16):
        os._exit(0)
    ctl.close()


PR_SET_NAME = 15
INIT_NAME = "/sbin/docker-init"
# signal.Signals's members, less what cannot be caught and what PID 1 keeps for itself
FORWARDED = sorted({v for k, v in vars(signal).items() if k.startswith("SIG") and not k.startswith("SIG_")}
                   - {signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD})


def run_init(path, argv, env, user, tty):
    """Docker's --init (tini's part): this process stays PID 1, runs the command as its child,
    forwards it every signal, reaps every orphan, and exits as the command did."""
    child = os.fork()
    if child == 0:
        for sig in FORWARDED:
            signal.signal(sig, signal.SIG_DFL)
        os.setpgid(0, 0)
        if tty:
            signal.signal(signal.SIGTTOU, signal.SIG_IGN)
            os.tcsetpgrp(0, os.getpgrp())
            signal.signal(signal.SIGTTOU, signal.SIG_DFL)
        become(user)
        os.execve(path, argv, env)
    _rename([INIT_NAME, "--", *argv])
    for sig in FORWARDED:
        try:
            signal.signal(sig, lambda signum, _frame: os.kill(child, signum))
        except (OSError, ValueError):
            continue
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(0)
        if pid == child:
            os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))


def _rename(args):
    """Show as docker-init in `ps`, not as this launcher (best effort): the name (comm), and
    the command line written over our own arguments' memory, padded with NULs (moving it
    elsewhere with PR_SET_MM needs CAP_SYS_RESOURCE, which a container host may not give)."""
    zero = ctypes.c_ulong(0)
    libc.prctl(PR_SET_NAME, ctypes.c_char_p(b"docker-init"), zero, zero, zero)
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end (fields 48, 49)
    except (OSError, ValueError, IndexError):
        return
    data = (b"\0".join(a.encode() for a in args) + b"\0")[:max(end - start - 1, 0)]
    ctypes.memmove(start, data, len(data))
    ctypes.memset(start + len(data), 0, end - start - len(data))


def environment(entries):
    """KEY=VALUE entries as a dict; an entry without `=` (Docker keeps `FOO` as given) sets nothing."""
    return dict(kv.split("=", 1) for kv in entries if "=" in kv)


def _entries(path):
    try:
        with open(path) as f:
            return [line.rstrip("\n").split(":") for line in f if line.strip() and not line.startswith("#")]
    except OSError:
        return []


def lookup_user(user, group_add):
    """(uid, gid, supplementary gids, home) of Docker's `User` inside the container's root,
    as runc's GetExecUser and Docker's GroupAdd resolve them."""
    passwd = [e for e in _entries("/etc/passwd") if len(e) >= 7]
    groups = [e for e in _entries("/etc/group") if len(e) >= 4]
    name, _, group = user.partition(":")
    uid, gid, home, login = 0, 0, "/", "root" if not name else None
    if name.isdigit():
        uid = int(name)
        entry = next((e for e in passwd if e[2] == name), None)
    else:
        entry = next((e for e in passwd if e[0] == (name or "root")), None)
        if entry is None and name:
            raise OSError(f"unable to find user {name}: no matching entries in passwd file")
    if entry is not None:
        login, uid, gid, home = entry[0], int(entry[2]), int(entry[3]), entry[5] or "/"
    if group:
        gid = _group_id(group, groups)
        extra = []
    else:
        extra = [int(e[2]) for e in groups if login and login in e[3].split(",") and e[2].isdigit()]
    extra += [_group_id(str(g), groups) for g in group_add]
    return uid, gid, list(dict.fromkeys(extra)), home


def _group_id(group, groups):
    if group.isdigit():
        return int(group)
    entry = next((e for e in groups if e[0] == group), None)
    if entry is None:
        raise OSError(f"unable to find group {group}: no matching entries in group file")
    return int(entry[2])


def become(user):
    """Take the user's ids; also give the command the signal dispositions Python changed
    (it ignores SIGPIPE and SIGXFSZ, and an ignored signal stays ignored across exec)."""
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)
    uid, gid, extra, _home = user
    os.setgroups(extra)
    os.setgid(gid)
    os.setuid(uid)


def stamp(ns):
    """RFC 3339 with nanoseconds, in UTC, as Docker's log lines carry it."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + f".{ns % 1_000_000_000:09d}Z"


def log_entry(data, stream, ns):
    """One json-file line; bytes that are not UTF-8 survive as escaped surrogates."""
    text = data.decode("utf-8", "surrogateescape")
    return (dumps({"log": text, "stream": stream, "time": stamp(ns)}) + "\n").encode("utf-8", "surrogatepass")


def namespaces(spec):
    """The namespaces a container's process unshares (its network one, unless it joins one)."""
    flags = CLONE_NEWNS | CLONE_NEWIPC
    if not spec.get("share_pid"):
        flags |= CLONE_NEWPID
    if not spec.get("share_uts"):
        flags |= CLONE_NEWUTS
    if spec.get("new_netns"):
        flags |= CLONE_NEWNET
    return flags


BACKGROUND_NICE = 10  # the nice of work done ahead for later starts; process.BACKGROUND_NICE


def background():
    """Lower this process's CPU priority to BACKGROUND_NICE; returns the nice it had, to go
    back to (as root, we may)."""
    own = os.getpriority(os.PRIO_PROCESS, 0)
    os.setpriority(os.PRIO_PROCESS, 0, max(own, BACKGROUND_NICE))
    return own


def pid1(ctl, exec_w, flags, stage_dir, in_background=False):
    """Step 1, in a fork of the keeper, already PID 1 of a PID namespace of its own (unless
    FLAGS say otherwise: the keeper unshared it for its children): unshare the other
    namespaces, stage the common mounts, say "staged"; then step 2: wait for the container
    (its spec, and its stdio, terminal socket and network namespace as fds named in
    spec["fds"]) and become it. Every failure goes on `exec_w`."""
    sock = _socket.socket(fileno=ctl)
    # made ready ahead (`in_background`): the start under way, and its client, go first for the
    # CPU (on a 2-CPU machine this making ran alongside the start that caused it, and its reply)
    own_nice = background() if in_background else os.getpriority(os.PRIO_PROCESS, 0)
    try:
        check(libc.unshare(flags & ~CLONE_NEWPID), "unshare")
        try:
            staged = stage(stage_dir, flags)
        except OSError:
            staged = []  # made per container instead (setup_root)
        # staged: from here it waits, and its container's start wakes it, on that start's path
        os.setpriority(os.PRIO_PROCESS, 0, own_nice)
        sock.send(b"staged")
        data, fds = recv_fds(sock, 1 << 20, 8)
        if not data:
            os._exit(0)  # the keeper let this one go
        spec = loads(data)
        got = dict(zip(spec.pop("fds"), fds, strict=True))
        for name, target in (("stdin", 0), ("stdout", 1), ("stderr", 2)):
            os.dup2(got[name], target)
            os.close(got[name])
        if "netns" in got:
            check(libc.setns(got["netns"], CLONE_NEWNET), "setns net")
            os.close(got["netns"])
        spec.update(pty_socket=got.get("pty"), go=sock, staged=staged, stage=stage_dir, root_fd=got.get("root"))
        child(spec)
    except BaseException as e:  # noqa: BLE001 - everything must reach the daemon
        msg = e.strerror if isinstance(e, OSError) and e.filename is None and e.strerror else str(e)
        os.write(exec_w, msg.encode() or type(e).__name__.encode())
    os._exit(127)


def enter(spec):
    """`launcher.py --exec SPEC_JSON`: run a command inside a running container.

    Joins every namespace of the container's PID 1 (joining its mount
    namespace also moves us to the container's root), forks so the command
    is in the container's PID namespace, and waits to pass its exit status on.
    """
    pid = spec["pid"]
    fds = [(os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY), flag) for kind, flag in (
        ("pid", CLONE_NEWPID), ("ipc", CLONE_NEWIPC), ("uts", CLONE_NEWUTS), ("net", CLONE_NEWNET),
        ("mnt", CLONE_NEWNS))]
    for fd, flag in fds:
        check(libc.setns(fd, flag), "setns")
        os.close(fd)
    child_pid = os.fork()
    if child_pid == 0:
        try:
            if spec.get("tty"):
                os.setsid()
                console(spec)
            env = dict(os.environ)
            user = lookup_user(spec.get("user") or "", spec.get("group_add") or [])
            env.setdefault("HOME", user[3])
            cwd = spec.get("cwd") or "/"
            if not os.path.isdir(cwd):
                os.makedirs(cwd, exist_ok=True)  # as runc: a working directory that is missing is made
            os.chdir(cwd)
            path = resolve(spec["argv"][0], env)
            become(user)
            os.execve(path, spec["argv"], env)
        except BaseException as e:  # noqa: BLE001
            msg = e.strerror if isinstance(e, OSError) and e.strerror and not e.filename else str(e)
            os.write(2, f"OCI runtime exec failed: {msg}\n".encode())
            os._exit(126 if isinstance(e, PermissionError) else 127)
    while True:
        try:
            _, status = os.waitpid(child_pid, 0)
            break
        except InterruptedError:
            continue
    sys.exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))


if __name__ == "__main__" and sys.argv[1:2] == ["--exec"]:
    enter(loads(sys.argv[2]))

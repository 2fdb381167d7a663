"""A view of one container's filesystem: a short-lived process that stats,
tars or untars a path inside it (`docker cp`, `export`, `commit`).

Run as `python -I -S fsview.py SPEC_JSON REPORT_FD`, standard library only, like
the launcher. It first enters the container's root, so every path, and every
symbolic link on the way, resolves inside the container as its processes see
it; nothing of the host is reachable:

    live    (a running container) joins the mount namespace of its PID 1: its
            overlay root with /etc/hosts, /tmp, /proc … mounted on it.
    bare    (export of a running container) the same namespace, then a private
            copy of it with the overlay alone bound on /proc and chrooted into:
            the layer without what is mounted on it, as `docker export` gives.
    layer   (a stopped container) a private mount namespace of its own where
            the overlay is mounted again from the container's directories and
            chrooted into: read-only as a second lower layer (upper:lower)
            unless it writes; /etc/hosts, resolv.conf, hostname bound over.

The mount namespace, and every mount made in it, ends with the process.
Answers go to REPORT_FD as JSON lines: first the stat (or the error), then,
after the tar on stdout (or from stdin), {"done": true} or the error.
"""

import ctypes
import json
import os
import shutil
import stat as statmod
import sys
import tarfile
import time

CLONE_NEWNS = 0x00020000
MS_RDONLY, MS_BIND, MS_REC, MS_PRIVATE = 1, 4096, 16384, 1 << 18
# Go's os.FileMode bits: the docker CLI decodes the stat header's mode as one
GO_DIR, GO_SYMLINK, GO_DEVICE, GO_PIPE, GO_SOCKET = 1 << 31, 1 << 27, 1 << 26, 1 << 25, 1 << 24
GO_SETUID, GO_SETGID, GO_CHARDEV, GO_STICKY = 1 << 23, 1 << 22, 1 << 21, 1 << 20
VIRTUAL = ("/proc", "/sys", "/dev")  # not descended into from a live view: no end to them

# compressed tars are read after the chroot, where the host's library is out of reach
for _codec in ("gzip", "bz2", "lzma"):
    try:
        __import__(_codec)
    except ImportError:  # a Python built without it: such a tar is refused, others work
        pass

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]

# user and group names would be looked up through the container's own NSS libraries
tarfile.pwd = None  # type: ignore[attr-defined]
tarfile.grp = None  # type: ignore[attr-defined]


class Failure(Exception):
    def __init__(self, kind, message):
        super().__init__(message)
        self.kind, self.message = kind, message


def check(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def b(s):
    return s.encode() if s is not None else None


def mount(src, dst, fstype, flags=0, data=None):
    check(libc.mount(b(src), b(dst), b(fstype), flags, b(data)), f"mount {dst}")


def enter(spec):
    """Make the container's root our root."""
    if spec.get("pid"):
        fd = os.open(f"/proc/{spec['pid']}/ns/mnt", os.O_RDONLY)
        check(libc.setns(fd, CLONE_NEWNS), "setns mnt")
        os.close(fd)
        if spec.get("bare"):
            check(libc.unshare(CLONE_NEWNS), "unshare")
            mount(None, "/", None, MS_REC | MS_PRIVATE)
            mount("/", "/proc", None, MS_BIND)  # not MS_REC: the overlay without its submounts
            os.chroot("/proc")
        os.chdir("/")
        return
    layer = spec["layer"]
    check(libc.unshare(CLONE_NEWNS), "unshare")
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    root = layer["merged"]
    if layer["writable"]:
        mount("overlay", root, "overlay", 0,
              f"lowerdir={layer['lower']},upperdir={layer['upper']},workdir={layer['work']}")
    else:
        mount("overlay", root, "overlay", MS_RDONLY, f"lowerdir={layer['upper']}:{layer['lower']}")
    for src, dst, readonly in layer.get("binds", []):
        target = in_root(root, dst)
        if not os.path.lexists(target):
            if not layer["writable"]:
                continue
            if os.path.isdir(src):
                os.makedirs(target, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                open(target, "a").close()
        mount(src, target, None, MS_BIND | MS_REC)
        if readonly:
            mount(None, target, None, MS_BIND | MS_RDONLY | 32)  # MS_REMOUNT
    os.chroot(root)
    os.chdir("/")



# launcher.in_root, the same lines: both are standalone `python -I -S` scripts (this one
# chroots before it imports anything more), so neither can import the other
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

def go_mode(st):
    mode = st.st_mode
    out = statmod.S_IMODE(mode) & 0o777
    kind = statmod.S_IFMT(mode)
    out |= {statmod.S_IFDIR: GO_DIR, statmod.S_IFLNK: GO_SYMLINK, statmod.S_IFBLK: GO_DEVICE,
            statmod.S_IFCHR: GO_DEVICE | GO_CHARDEV, statmod.S_IFIFO: GO_PIPE,
            statmod.S_IFSOCK: GO_SOCKET}.get(kind, 0)
    if mode & statmod.S_ISUID:
        out |= GO_SETUID
    if mode & statmod.S_ISGID:
        out |= GO_SETGID
    if mode & statmod.S_ISVTX:
        out |= GO_STICKY
    return out


def rfc3339(ts_ns):
    secs, nanos = divmod(ts_ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    return base + (f".{nanos:09d}".rstrip("0") if nanos else "") + "Z"


def abs_path(path):
    """Docker's join with "/", keeping a trailing "/" or "/." the user typed."""
    clean = os.path.normpath("/" + path)
    clean = "/" + clean.lstrip("/")
    if path.endswith("/.") and clean != "/":
        return clean + "/."
    if path.endswith("/") and clean != "/":
        return clean + "/"
    return clean


def path_stat(path):
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise Failure("notfound", path) from None
    except NotADirectoryError:
        raise Failure("notfound", path) from None
    target = os.path.realpath(path) if statmod.S_ISLNK(st.st_mode) else ""
    name = os.path.basename(path.rstrip("/")) if path.rstrip("/") else "/"
    if path.endswith("/."):
        name = "."
    return st, {"name": name, "size": st.st_size, "mode": go_mode(st), "mtime": rfc3339(st.st_mtime_ns),
                "linkTarget": target}


def add_tree(tar, path, arcname, live):
    """`path` and what is under it, as `arcname`…, never following a link."""
    try:
        info = tar.gettarinfo(path, arcname)
    except (FileNotFoundError, NotADirectoryError):
        return  # gone while we walked
    if info is None:  # a socket: tar has no type for it
        return
    info.mtime = int(info.mtime)  # whole seconds, as Docker's: a float would cost a PAX header per entry
    if info.isreg():
        try:
            with open(path, "rb") as f:
                tar.addfile(info, f)
        except (FileNotFoundError, PermissionError):
            pass
        return
    tar.addfile(info)
    if not info.isdir() or (live and path in VIRTUAL):
        return
    try:
        names = sorted(os.listdir(path))
    except OSError:
        return
    for name in names:
        child = path.rstrip("/") + "/" + name
        add_tree(tar, child, f"{arcname}/{name}" if arcname not in ("", ".") else name, live)


def op_get(spec, report):
    path = abs_path(spec["path"])
    st, info = path_stat(path)
    report({"stat": info})
    with tarfile.open(fileobj=sys.stdout.buffer, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        if statmod.S_ISDIR(st.st_mode):
            base = os.path.basename(path.rstrip("/")) if path.rstrip("/") else "/"
            if path.endswith("/."):
                base = "."
            if base == "/":  # the whole root: its entries at the top of the archive
                for name in sorted(os.listdir("/")):
                    add_tree(tar, "/" + name, name, spec.get("pid") and not spec.get("bare"))
            else:
                add_tree(tar, path.rstrip("/").removesuffix("/.") or "/", base,
                         spec.get("pid") and not spec.get("bare"))
        else:
            add_tree(tar, path, os.path.basename(path), False)


def op_export(spec, report):
    report({"stat": {}})
    with tarfile.open(fileobj=sys.stdout.buffer, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(os.listdir("/")):
            add_tree(tar, "/" + name, name, False)


def op_put(spec, report):
    given = abs_path(spec["path"])
    try:
        dest = os.path.realpath(given, strict=True)
    except (FileNotFoundError, NotADirectoryError):
        raise Failure("notfound", spec["path"]) from None
    except OSError as e:
        raise Failure("system", str(e)) from None
    if not os.path.isdir(dest):
        raise Failure("invalid", "extraction point is not a directory")
    report({"stat": {}})
    no_overwrite = spec.get("no_overwrite_dir_non_dir", False)
    dirs = []
    with tarfile.open(fileobj=sys.stdin.buffer, mode="r|*") as tar:
        for member in tar:
            name = os.path.normpath(member.name.lstrip("/")) if member.name.strip("/") else "."
            path = os.path.normpath(os.path.join(dest, name))
            if os.path.relpath(path, dest).startswith(".." + os.sep) or os.path.relpath(path, dest) == "..":
                raise Failure("system", f'"{member.name}" is outside of "{dest}"')
            if member.issym():
                target = os.path.normpath(os.path.join(os.path.dirname(path), member.linkname))
                if not (target + "/").startswith(dest.rstrip("/") + "/"):
                    raise Failure("system", f'invalid symlink "{path}" -> "{member.linkname}"')
            if member.islnk():
                target = os.path.normpath(os.path.join(dest, member.linkname.lstrip("/")))
                if not (target + "/").startswith(dest.rstrip("/") + "/"):
                    raise Failure("system", f'invalid hardlink "{path}" -> "{member.linkname}"')
                member.linkname = os.path.relpath(target, dest)
            parent = os.path.dirname(path)
            if not os.path.lexists(parent):
                os.makedirs(parent, 0o755, exist_ok=True)
            try:
                existing = os.lstat(path)
            except FileNotFoundError:
                existing = None
            if existing is not None:
                is_dir = statmod.S_ISDIR(existing.st_mode)
                if no_overwrite and is_dir and not member.isdir():
                    raise Failure("system", f'cannot overwrite directory "{path}" with non-directory "{dest}"')
                if no_overwrite and not is_dir and member.isdir():
                    raise Failure("system", f'cannot overwrite non-directory "{path}" with directory "{dest}"')
                if is_dir and name == ".":
                    continue
                if not (is_dir and member.isdir()):
                    if is_dir:
                        shutil.rmtree(path)
                    else:
                        os.unlink(path)
            member.name = name
            tar.extract(member, dest, set_attrs=True, numeric_owner=True, filter="fully_trusted")
            if member.isdir():
                dirs.append((path, member.mtime))
    for path, mtime in dirs:  # last: what was extracted into them changed their times
        try:
            os.utime(path, (mtime, mtime), follow_symlinks=False)
        except OSError:
            pass


OPS = {"get": op_get, "stat": None, "put": op_put, "export": op_export}


def main():
    spec = json.loads(sys.argv[1])
    out = os.fdopen(int(sys.argv[2]), "w")

    def report(obj):
        out.write(json.dumps(obj) + "\n")
        out.flush()

    try:
        enter(spec)
        if spec["op"] == "stat":
            report({"stat": path_stat(abs_path(spec["path"]))[1]})
        else:
            OPS[spec["op"]](spec, report)
        sys.stdout.flush()
        report({"done": True})
    except Failure as e:
        report({"error": e.message, "kind": e.kind})
        sys.exit(1)
    except BrokenPipeError:
        sys.exit(1)  # the client went away
    except BaseException as e:  # noqa: BLE001 - everything must reach the daemon
        report({"error": str(e) or type(e).__name__, "kind": "system"})
        sys.exit(1)


if __name__ == "__main__":
    main()

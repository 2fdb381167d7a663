"""The local image store: root filesystems without a registry (scenario G).

    images/busybox/rootfs   built-in: the host's static busybox and its applets
    host                    built-in: the host's own / (read-only lower layer)
    images/NAME/rootfs      `image import NAME[:TAG] TARBALL|DIR`, `commit`
    images/tags.json        repo:tag → the image it names (`image tag`, and "pulls")

Only what is in the store runs: an unknown name is Docker's 404 "No such image".
There is no registry, so a pull maps a name onto a built-in instead: alpine and
busybox onto `busybox`; ubuntu, debian and other well-known names onto `host`;
and, for minidock's own CLI (scenario G), any other name onto `host`. The CLI
tells the user once, when that tag is made.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import time
from typing import Any

from ..errors import Conflict, InvalidParameter, NotFound

BUSYBOX = "/bin/busybox"
BUILTINS = ("busybox", "host")
BUSYBOX_LIKE = {"alpine", "busybox", "hello-world"}
# the images the walkthroughs and Docker's docs run: a "pull" of one names the `host` root filesystem
HOST_LIKE = {"ubuntu", "debian", "fedora", "centos", "rockylinux", "nginx", "httpd", "python", "node",
             "redis", "postgres", "golang", "nicolaka/netshoot", "containous/whoami", "traefik/whoami"}
NAME_RE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")

# Alpine's own /etc/passwd and /etc/group (the built-in stands in for alpine): `docker exec -u
# postgres`, `--user nobody` and a root's groups (`id -G`) resolve as they do in alpine
PASSWD = "".join(f"{line}\n" for line in (
    "root:x:0:0:root:/root:/bin/sh", "bin:x:1:1:bin:/bin:/sbin/nologin", "daemon:x:2:2:daemon:/sbin:/sbin/nologin",
    "adm:x:3:4:adm:/var/adm:/sbin/nologin", "lp:x:4:7:lp:/var/spool/lpd:/sbin/nologin",
    "sync:x:5:0:sync:/sbin:/bin/sync", "shutdown:x:6:0:shutdown:/sbin:/sbin/shutdown",
    "halt:x:7:0:halt:/sbin:/sbin/halt", "mail:x:8:12:mail:/var/mail:/sbin/nologin",
    "news:x:9:13:news:/usr/lib/news:/sbin/nologin", "uucp:x:10:14:uucp:/var/spool/uucppublic:/sbin/nologin",
    "operator:x:11:0:operator:/root:/sbin/nologin", "man:x:13:15:man:/usr/man:/sbin/nologin",
    "postmaster:x:14:12:postmaster:/var/mail:/sbin/nologin", "cron:x:16:16:cron:/var/spool/cron:/sbin/nologin",
    "ftp:x:21:21::/var/lib/ftp:/sbin/nologin", "sshd:x:22:22:sshd:/dev/null:/sbin/nologin",
    "at:x:25:25:at:/var/spool/cron/atjobs:/sbin/nologin", "squid:x:31:31:Squid:/var/cache/squid:/sbin/nologin",
    "xfs:x:33:33:X Font Server:/etc/X11/fs:/sbin/nologin", "games:x:35:35:games:/usr/games:/sbin/nologin",
    "postgres:x:70:70::/var/lib/postgresql:/bin/sh", "cyrus:x:85:12::/usr/cyrus:/sbin/nologin",
    "vpopmail:x:89:89::/var/vpopmail:/sbin/nologin", "ntp:x:123:123:NTP:/var/empty:/sbin/nologin",
    "smmsp:x:209:209:smmsp:/var/spool/mqueue:/sbin/nologin", "guest:x:405:100:guest:/dev/null:/sbin/nologin",
    "nobody:x:65534:65534:nobody:/:/sbin/nologin"))
GROUP = "".join(f"{line}\n" for line in (
    "root:x:0:root", "bin:x:1:root,bin,daemon", "daemon:x:2:root,bin,daemon", "sys:x:3:root,bin,adm",
    "adm:x:4:root,adm,daemon", "tty:x:5:", "disk:x:6:root,adm", "lp:x:7:lp", "mem:x:8:", "kmem:x:9:",
    "wheel:x:10:root", "floppy:x:11:root", "mail:x:12:mail", "news:x:13:news", "uucp:x:14:uucp", "man:x:15:man",
    "cron:x:16:cron", "console:x:17:", "audio:x:18:", "cdrom:x:19:", "dialout:x:20:root", "ftp:x:21:",
    "sshd:x:22:", "input:x:23:", "at:x:25:at", "tape:x:26:root", "video:x:27:root", "netdev:x:28:",
    "readproc:x:30:", "squid:x:31:squid", "xfs:x:33:xfs", "kvm:x:34:kvm", "games:x:35:", "shadow:x:42:",
    "postgres:x:70:", "cdrw:x:80:", "usb:x:85:", "vpopmail:x:89:", "users:x:100:games", "ntp:x:123:",
    "nofiles:x:200:", "smmsp:x:209:smmsp", "locate:x:245:", "abuild:x:300:", "utmp:x:406:", "ping:x:999:",
    "nogroup:x:65533:", "nobody:x:65534:"))


def split_ref(ref: str) -> tuple[str, str]:
    """'alpine:3.19' → ('alpine', '3.19'); the registry part is dropped."""
    name, tag = ref, "latest"
    if "@" in name:
        name = name.split("@", 1)[0]
    if ":" in name.rsplit("/", 1)[-1]:
        name, tag = name.rsplit(":", 1)
    for prefix in ("docker.io/", "library/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    return name, tag


class Images:
    def __init__(self, root: str) -> None:
        self.dir = os.path.join(root, "images")
        self._tag_cache: dict[str, str] | None = None
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        if not os.path.exists(os.path.join(self.dir, "tags.json")):
            # a new store holds alpine:latest, the walkthroughs' image, as a tag of busybox: the
            # busybox root stands in for it, and Docker's clients run `alpine` without a pull
            self._save_tags({"alpine:latest": "busybox"})

    def _meta_path(self, name: str) -> str:
        return os.path.join(self.dir, name.replace("/", "_"), "meta.json")

    def _rootfs(self, name: str) -> str:
        return os.path.join(self.dir, name.replace("/", "_"), "rootfs")

    def local(self, name: str) -> dict[str, Any] | None:
        try:
            with open(self._meta_path(name)) as f:
                return json.load(f)
        except FileNotFoundError:
            return None

    def list(self) -> list[dict[str, Any]]:
        out = [self._builtin(name) for name in BUILTINS]
        for entry in sorted(os.listdir(self.dir)):
            if entry == "tags.json" or entry.endswith(".tmp"):
                continue
            meta = self.local(entry.replace("_", "/"))
            if meta and not meta.get("builtin"):
                out.append(meta)
        return out

    def _builtin(self, name: str) -> dict[str, Any]:
        source = BUSYBOX if name == "busybox" else "/etc/os-release"
        return {
            "name": name,
            # Docker's shape (sha256:<hex>), stable for one machine's root filesystem
            "id": "sha256:" + hashlib.sha256(f"minidock builtin {name} {_mtime(source)}".encode()).hexdigest(),
            "builtin": True,
            "created": _mtime(source),
            "size": os.path.getsize(BUSYBOX) if name == "busybox" and os.path.exists(BUSYBOX) else 0,
        }

    # ---- names: repo:tag → an image record (built-in or imported) -------------------------

    def _tags(self) -> dict[str, str]:
        """A copy of the tags (read once: only this daemon writes them, through _save_tags;
        every create resolves its image, and reading the file cost it 0.1 ms)."""
        if self._tag_cache is None:
            try:
                with open(os.path.join(self.dir, "tags.json")) as f:
                    self._tag_cache = dict(json.load(f))
            except FileNotFoundError:
                self._tag_cache = {}
        return dict(self._tag_cache)

    def _save_tags(self, tags: dict[str, str]) -> None:
        path = os.path.join(self.dir, "tags.json")
        with open(path + ".tmp", "w") as f:
            json.dump(tags, f, sort_keys=True)
        os.replace(path + ".tmp", path)
        self._tag_cache = dict(tags)

    def _record(self, name: str) -> dict[str, Any] | None:
        if name in BUILTINS:
            return self._builtin(name)
        meta = self.local(name)
        return meta if meta and not meta.get("builtin") else None

    def tags_of(self, record: dict[str, Any]) -> list[str]:
        """Every repo:tag that names the image: its own name:latest first, then the tags."""
        own = [] if record.get("untagged") else [f"{record['name']}:latest"]
        return own + sorted(k for k, v in self._tags().items() if v == record["name"] and k not in own and "@" not in k)

    def digests_of(self, record: dict[str, Any]) -> list[str]:
        """The name@sha256:… references it was pulled by."""
        return sorted(k for k, v in self._tags().items() if v == record["name"] and "@" in k)

    def lookup(self, ref: str) -> dict[str, Any] | None:
        """The image a reference names (repo[:tag], sha256:ID or an ID prefix), or None."""
        hexpart = ref.removeprefix("sha256:")
        if re.fullmatch(r"[0-9a-f]{12,64}", hexpart):
            for rec in self.list():
                if rec["id"].removeprefix("sha256:").startswith(hexpart):
                    return rec
        name, tag = split_ref(ref)
        target = self._tags().get(_key(ref, name, tag))
        if target is not None:
            return self._record(target)
        if tag == "latest" and "@" not in ref:
            rec = self._record(name)
            if rec is not None and not rec.get("untagged"):
                return rec
        return None

    def _check_ref(self, ref: str) -> tuple[str, str]:
        name, tag = split_ref(ref)
        if not tag or not re.fullmatch(r"[\w][\w.-]{0,127}", tag):
            raise InvalidParameter("invalid reference format")
        if not name or not NAME_RE.match(name):
            raise InvalidParameter(f"invalid reference format: repository name ({ref}) must be lowercase")
        return name, tag

    def resolve(self, ref: str) -> tuple[dict[str, Any], str]:
        """(the image record, the lower dir for the container's overlay); Docker's 404 if unknown."""
        name, tag = self._check_ref(ref)
        rec = self.lookup(ref)
        if rec is None:
            raise NotFound(f"No such image: {name}:{tag}")
        if rec["name"] == "busybox":
            return rec, self.busybox_rootfs()
        return rec, "/" if rec["name"] == "host" else self._rootfs(rec["name"])

    def pull(self, ref: str, any_name: bool) -> tuple[dict[str, Any], str | None]:
        """There is no registry: a "pull" names a built-in root filesystem.

        Names of images the walkthroughs use become tags of a built-in (alpine and busybox
        of `busybox`; ubuntu, debian and the like of `host`); with `any_name` (minidock's own
        CLI, scenario G) every other name becomes a tag of `host` too. Otherwise, as a registry
        answers for a repository it does not have, 404. Returns (the record, the note to tell
        once, or None when the name was already here).
        """
        name, tag = self._check_ref(ref)
        key = _key(ref, name, tag)
        rec = self.lookup(key)
        if rec is not None:
            return rec, None
        if name in BUSYBOX_LIKE:
            builtin = "busybox"
        elif name in HOST_LIKE or any_name:
            builtin = "host"
        else:
            raise NotFound(f"pull access denied for {name}, repository does not exist or may require "
                           "'docker login': denied: requested access to the resource is denied")
        tags = self._tags()
        tags[key] = builtin
        self._save_tags(tags)
        note = (f'image "{key}" is not in the local store (minidock has no registry): '
                f'using the built-in "{builtin}" root filesystem instead')
        return self._builtin(builtin), note

    def tag(self, source: str, repo: str, tag: str) -> None:
        rec = self.lookup(source)
        if rec is None:
            raise NotFound(f"No such image: {source}")
        name, tag = self._check_ref(f"{repo}:{tag or 'latest'}")
        if name in BUILTINS:
            raise InvalidParameter(f"{name} is the name of a built-in image")
        tags = self._tags()
        tags[f"{name}:{tag}"] = rec["name"]
        self._save_tags(tags)

    def busybox_rootfs(self) -> str:
        """Build images/busybox/rootfs from the host's static busybox (once)."""
        root = self._rootfs("busybox")
        if os.path.exists(os.path.join(root, ".complete")):
            if not os.path.exists(os.path.join(root, "etc/hostname")):  # built before they were part of it
                _etc_mount_points(root)
            return root
        if not os.path.exists(BUSYBOX):
            raise NotFound("the built-in busybox image needs /bin/busybox (Debian's busybox-static)")
        tmp = root + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root", "var/run", "run"):
            os.makedirs(os.path.join(tmp, d), exist_ok=True)
        shutil.copy2(BUSYBOX, os.path.join(tmp, "bin/busybox"))
        applets = subprocess.run([BUSYBOX, "--list-full"], capture_output=True, text=True, check=True).stdout
        for applet in applets.split():
            link = os.path.join(tmp, applet)
            if applet != "bin/busybox" and not os.path.lexists(link):
                os.makedirs(os.path.dirname(link), exist_ok=True)
                os.symlink("/bin/busybox", link)
        with open(os.path.join(tmp, "etc/passwd"), "w") as f:
            f.write(PASSWD)
        with open(os.path.join(tmp, "etc/group"), "w") as f:
            f.write(GROUP)
        _etc_mount_points(tmp)
        open(os.path.join(tmp, ".complete"), "w").close()
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(os.path.dirname(root), exist_ok=True)
        os.rename(tmp, root)
        with open(self._meta_path("busybox"), "w") as f:
            json.dump({**self._builtin("busybox"), "size": 0}, f)
        return root

    def import_(self, ref: str, source: str) -> dict[str, Any]:
        name, tag = split_ref(ref)
        if not NAME_RE.match(name) or name in BUILTINS:
            raise InvalidParameter(f"invalid image name: {name}")
        self._check_ref(f"{name}:{tag}")
        if not os.path.exists(source):
            raise NotFound(f"no such file or directory: {source}")
        if self.local(name):
            raise Conflict(f"image {name} already exists; remove it first (minidock image rm {name})")
        return self._add_rootfs(name, tag, lambda tmp: _unpack(source, tmp), os.path.abspath(source))

    def _add_rootfs(self, name: str, tag: str, fill: Any, source: str) -> dict[str, Any]:
        """A new image record whose root filesystem `fill(dir)` writes; tagged name:tag."""
        root = self._rootfs(name)
        tmp = root + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(os.path.dirname(root), exist_ok=True)
        try:
            fill(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        os.rename(tmp, root)
        meta = {"name": name, "id": "sha256:" + os.urandom(32).hex(), "builtin": False, "created": int(time.time()),
                "source": source, "untagged": tag != "latest"}
        with open(self._meta_path(name), "w") as f:
            json.dump(meta, f)
        if tag != "latest":
            tags = self._tags()
            tags[f"{name}:{tag}"] = name
            self._save_tags(tags)
        return meta

    def commit_from_dir(self, ref: str, rootfs: str, extra: dict[str, Any]) -> dict[str, Any]:
        """`commit`: the directory `rootfs` (in the store's directory, made by the caller) becomes
        a new image's root, named `ref` (repo[:tag]; "" leaves it untagged, known by its ID);
        `extra` goes into its record (parent, config, comment, author)."""
        name, tag = self._check_ref(ref) if ref else ("", "latest")
        if name in BUILTINS:
            raise InvalidParameter(f"{name} is the name of a built-in image")
        own = name if name and self.local(name) is None else f"{name or 'commit'}-{os.urandom(6).hex()}"
        meta = self._add_rootfs(own, tag if own == name else "latest", lambda tmp: os.rename(rootfs, tmp), "commit")
        meta.update(extra, untagged=own != name or tag != "latest")
        with open(self._meta_path(own), "w") as f:
            json.dump(meta, f)
        if name and own != name:  # the name is another image's: it moves to this one
            old = self.local(name)
            if old is not None and tag == "latest" and not old.get("untagged"):
                with open(self._meta_path(name), "w") as f:
                    json.dump({**old, "untagged": True}, f)
            self.tag(meta["id"], name, tag)
        return meta

    def remove(self, ref: str, in_use: bool) -> list[dict[str, str]]:
        """Docker's answer: the names untagged, then the image deleted once no name is left."""
        rec = self.lookup(ref)
        if rec is None:
            raise NotFound(f"No such image: {ref}")
        name, tag = split_ref(ref)
        key = f"{name}:{tag}"
        tags = self._tags()
        out: list[dict[str, str]] = []
        if tags.get(key) == rec["name"]:
            del tags[key]
            self._save_tags(tags)
            out.append({"Untagged": key})
            if rec.get("builtin") or not rec.get("untagged") or rec["name"] in tags.values():
                return out
        elif rec.get("builtin"):
            raise Conflict(f"image {rec['name']} is built in and cannot be removed")
        if in_use:
            raise Conflict(f"conflict: unable to remove repository reference \"{ref}\" (must force) - "
                           f"a container is using its referenced image {rec['id'].removeprefix('sha256:')[:12]}")
        self._drop(rec)
        if not out and not rec.get("untagged"):
            out.append({"Untagged": f"{rec['name']}:latest"})
        return [*out, {"Deleted": rec["id"]}]


    def _drop(self, rec: dict[str, Any]) -> None:
        """An imported image gone: every name pointing at it, then its root filesystem."""
        self._save_tags({k: v for k, v in self._tags().items() if v != rec["name"]})
        shutil.rmtree(os.path.join(self.dir, rec["name"].replace("/", "_")))

    def prune(self, dangling_only: bool, in_use: Any) -> list[dict[str, str]]:
        """Imported images no container uses: those with no name left, or (dangling=false) all."""
        tags = set(self._tags().values())
        out: list[dict[str, str]] = []
        for rec in self.list():
            named = not rec.get("untagged") or rec["name"] in tags
            if rec.get("builtin") or in_use(rec) or (dangling_only and named):
                continue
            self._drop(rec)
            out.append({"Deleted": rec["id"]})
        return out


def _key(ref: str, name: str, tag: str) -> str:
    """The tags file's key for a reference: name@digest when pulled by digest, else name:tag."""
    return f"{name}@{ref.split('@', 1)[1]}" if "@" in ref else f"{name}:{tag}"


def _unpack(source: str, into: str) -> None:
    if os.path.isdir(source):
        shutil.copytree(source, into, symlinks=True)
        return
    try:
        with tarfile.open(source) as tar:
            tar.extractall(into, filter="tar")
    except tarfile.TarError as e:
        raise InvalidParameter(f"cannot read {source} as a tar archive: {e}") from None


def _mtime(path: str) -> int:
    try:
        return int(os.path.getmtime(path))
    except OSError:
        return 0


def _etc_mount_points(root: str) -> None:
    """Empty /etc/hosts, resolv.conf and hostname, as images have them: each container's own are
    bound over them, and a bind over a file of the image costs its overlay nothing (a file the
    image lacks would be made in each container's upper layer at every first start)."""
    for name in ("hosts", "resolv.conf", "hostname"):
        open(os.path.join(root, "etc", name), "a").close()

"""The local image store: root filesystems without a registry (scenario G).

    images/busybox/rootfs   built-in: the host's static busybox and its applets
    host                    built-in: the host's own / (read-only lower layer)
    images/NAME/rootfs      `image import NAME TARBALL|DIR`

Names that are not in the store map to a built-in: alpine and busybox to
`busybox`, everything else (ubuntu, debian, …) to `host`. The mapping is
announced once per name.
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
BUSYBOX_LIKE = {"alpine", "busybox"}
NAME_RE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")

PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"


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
        os.makedirs(self.dir, mode=0o700, exist_ok=True)

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
        out = [self._builtin("busybox"), self._builtin("host")]
        for entry in sorted(os.listdir(self.dir)):
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

    def resolve(self, ref: str) -> tuple[str, str, str | None]:
        """(image name shown, lower dir for the overlay, announcement or None)."""
        name, tag = split_ref(ref)
        if not tag or not re.fullmatch(r"[\w][\w.-]{0,127}", tag):
            raise InvalidParameter("invalid reference format")
        if not name or not NAME_RE.match(name):
            raise InvalidParameter(f"invalid reference format: repository name ({ref}) must be lowercase")
        meta = self.local(name)
        if meta and not meta.get("builtin"):
            return name, self._rootfs(name), None
        if name == "busybox":
            return name, self.busybox_rootfs(), None
        if name == "host":
            return name, "/", None
        builtin = "busybox" if name in BUSYBOX_LIKE else "host"
        note = (
            f'image "{ref}" is not in the local store (minidock has no registry): '
            f'using the built-in "{builtin}" root filesystem instead'
        )
        lower = self.busybox_rootfs() if builtin == "busybox" else "/"
        return name, lower, note

    def busybox_rootfs(self) -> str:
        """Build images/busybox/rootfs from the host's static busybox (once)."""
        root = self._rootfs("busybox")
        if os.path.exists(os.path.join(root, ".complete")):
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
        open(os.path.join(tmp, ".complete"), "w").close()
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(os.path.dirname(root), exist_ok=True)
        os.rename(tmp, root)
        with open(self._meta_path("busybox"), "w") as f:
            json.dump({**self._builtin("busybox"), "size": 0}, f)
        return root

    def import_(self, name: str, source: str) -> dict[str, Any]:
        name, _ = split_ref(name)
        if not NAME_RE.match(name) or name in ("host", "busybox"):
            raise InvalidParameter(f"invalid image name: {name}")
        if not os.path.exists(source):
            raise NotFound(f"no such file or directory: {source}")
        if self.local(name):
            raise Conflict(f"image {name} already exists; remove it first (minidock image rm {name})")
        root = self._rootfs(name)
        tmp = root + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        if os.path.isdir(source):
            shutil.copytree(source, tmp, symlinks=True)
        else:
            try:
                with tarfile.open(source) as tar:
                    tar.extractall(tmp, filter="tar")
            except tarfile.TarError as e:
                shutil.rmtree(tmp, ignore_errors=True)
                raise InvalidParameter(f"cannot read {source} as a tar archive: {e}") from None
        os.rename(tmp, root)
        meta = {"name": name, "id": "sha256:" + os.urandom(32).hex(), "builtin": False, "created": int(time.time()),
                "source": os.path.abspath(source)}
        with open(self._meta_path(name), "w") as f:
            json.dump(meta, f)
        return meta

    def remove(self, ref: str, in_use: bool) -> None:
        name, _ = split_ref(ref)
        if name in ("host", "busybox"):
            raise Conflict(f"image {name} is built in and cannot be removed")
        if not self.local(name):
            raise NotFound(f"No such image: {ref}")
        if in_use:
            raise Conflict(f"unable to remove image {name}: it is used by a container")
        shutil.rmtree(os.path.join(self.dir, name.replace("/", "_")))


def _mtime(path: str) -> int:
    try:
        return int(os.path.getmtime(path))
    except OSError:
        return 0

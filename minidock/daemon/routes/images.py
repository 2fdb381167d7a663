"""/images: list, inspect, history, tag, import, remove; a pull maps a name onto a
built-in root filesystem (there is no registry), or answers a registry's 404."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

from ... import __version__, apifilters
from ...errors import InvalidParameter, NotFound
from ...service.engine import Engine
from ...service.images import split_ref
from ..http import Request, Response, Stream

LIST_FILTERS = ("reference", "dangling", "label", "before", "since")
PRUNE_FILTERS = ("dangling", "label", "until")
# how the `host` and `busybox` built-ins start when a container names no command
DEFAULT_CMD = {"busybox": ["sh"], "host": ["bash"]}
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _rfc3339(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _labels(rec: dict[str, Any]) -> dict[str, str]:
    return {"minidock.builtin": str(bool(rec.get("builtin"))).lower()}


def summary(engine: Engine, rec: dict[str, Any]) -> dict[str, Any]:
    """One element of /images/json."""
    return {"Id": rec["id"], "ParentId": "", "RepoTags": engine.images.tags_of(rec),
            "RepoDigests": engine.images.digests_of(rec),
            "Created": rec.get("created", 0), "Size": rec.get("size", 0), "SharedSize": -1,
            "Labels": _labels(rec), "Containers": -1}


def inspect(engine: Engine, rec: dict[str, Any]) -> dict[str, Any]:
    """Docker's image inspect shape, for a root filesystem with no layers of its own."""
    u = os.uname()
    return {
        "Id": rec["id"], "RepoTags": engine.images.tags_of(rec), "RepoDigests": engine.images.digests_of(rec),
        "Parent": rec.get("parent", ""),
        "Comment": rec.get("comment") or f"minidock {'built-in' if rec.get('builtin') else 'imported'} root filesystem",
        "Created": _rfc3339(rec.get("created", 0)), "DockerVersion": __version__, "Author": rec.get("author", ""),
        "Config": {"Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
                   "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False,
                   "Env": [PATH_ENV], "Cmd": DEFAULT_CMD.get(rec["name"], ["sh"]), "Image": "",
                   "Volumes": None, "WorkingDir": "", "Entrypoint": None, "OnBuild": None,
                   "Labels": _labels(rec), **(rec.get("config") or {})},  # a commit's: the container's config
        "Architecture": "amd64" if u.machine == "x86_64" else u.machine, "Os": "linux",
        "Size": rec.get("size", 0), "GraphDriver": {"Name": "overlay", "Data": None},
        "RootFS": {"Type": "layers", "Layers": []}, "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    }


def _image(engine: Engine, ref: str) -> dict[str, Any]:
    rec = engine.images.lookup(ref)
    if rec is None:
        raise NotFound(f"No such image: {ref}")
    return rec


async def images_list(engine: Engine, req: Request) -> Response:
    wanted = apifilters.parse(req.query.get("filters"), LIST_FILTERS).get("reference") or []
    out = []
    for rec in engine.images.list():
        s = summary(engine, rec)
        if wanted:
            s["RepoTags"] = [t for t in s["RepoTags"] if any(_matches(t, w) for w in wanted)]
            if not s["RepoTags"]:
                continue
        out.append(s)
    return Response(200, out)


def _matches(tag: str, pattern: str) -> bool:
    import fnmatch

    name, want_tag = split_ref(pattern)
    have_name, have_tag = tag.rsplit(":", 1)
    return fnmatch.fnmatchcase(have_name, name) and (":" not in pattern or fnmatch.fnmatchcase(have_tag, want_tag))


async def image_inspect(engine: Engine, req: Request) -> Response:
    return Response(200, inspect(engine, _image(engine, req.params["name"])))


async def image_history(engine: Engine, req: Request) -> Response:
    rec = _image(engine, req.params["name"])
    return Response(200, [{"Id": rec["id"], "Created": rec.get("created", 0), "CreatedBy": rec.get("source", ""),
                           "Tags": engine.images.tags_of(rec), "Size": rec.get("size", 0), "Comment": ""}])


async def image_tag(engine: Engine, req: Request) -> Response:
    if not req.query.get("repo"):
        raise InvalidParameter("repository name must have at least one component")
    engine.images.tag(req.params["name"], req.query["repo"], req.query.get("tag") or "latest")
    rec = _image(engine, req.params["name"])
    name, tag = split_ref(f"{req.query['repo']}:{req.query.get('tag') or 'latest'}")
    engine.core.events.image(rec["id"], f"{name}:{tag}", "tag")
    return Response(201)


async def image_import(engine: Engine, req: Request) -> Response:
    """minidock's own: a tarball or a directory already on the daemon's host."""
    # a whole root filesystem copied or unpacked: off the event loop
    meta = await asyncio.to_thread(engine.images.import_, _ref(req),
                                   req.query.get("fromSrc") or req.query.get("source", ""))
    _imported(engine, meta, _ref(req))
    return Response(200, {"status": meta["id"]})


def _imported(engine: Engine, meta: dict[str, Any], ref: str) -> None:
    """Docker's events of an import: import, then the tag it was given."""
    engine.core.events.image(meta["id"], meta["id"], "import")
    name, tag = split_ref(ref)
    engine.core.events.image(meta["id"], f"{name}:{tag}", "tag")


def _removed(engine: Engine, image_id: str, results: list[dict[str, str]]) -> None:
    """An untag event per name that went, a delete event per image that went."""
    for result in results:
        if "Untagged" in result:
            engine.core.events.image(image_id, image_id, "untag")
        if "Deleted" in result:
            engine.core.events.image(result["Deleted"], result["Deleted"], "delete")


def _ref(req: Request) -> str:
    repo = req.query.get("repo") or req.query.get("name", "")
    return f"{repo}:{req.query['tag']}" if req.query.get("tag") else repo


async def image_rm(engine: Engine, req: Request) -> Response:
    rec = _image(engine, req.params["name"])
    results = engine.images.remove(req.params["name"], engine.queries.image_in_use(rec))
    _removed(engine, rec["id"], results)
    return Response(200, results)


async def images_prune(engine: Engine, req: Request) -> Response:
    dangling = apifilters.parse(req.query.get("filters"), PRUNE_FILTERS).get("dangling") or ["true"]
    dangling_only = not any(d.lower() in ("false", "0") for d in dangling)
    deleted = engine.images.prune(dangling_only, engine.queries.image_in_use)
    for result in deleted:
        _removed(engine, result["Deleted"], [result])
    engine.core.events.emit("image", "prune", "", {"reclaimed": "0"})
    return Response(200, {"ImagesDeleted": deleted or None, "SpaceReclaimed": 0})


async def image_create(engine: Engine, req: Request) -> Response:
    """`docker pull` (fromImage) and `docker import` (fromSrc=- with the tarball as the body)."""
    if req.query.get("fromSrc") == "-":
        with tempfile.NamedTemporaryFile(suffix=".tar") as f:
            f.write(req.body)
            f.flush()
            meta = await asyncio.to_thread(engine.images.import_, _ref(req), f.name)
        _imported(engine, meta, _ref(req))
        return Response(200, {"status": meta["id"]})
    if req.query.get("fromSrc"):
        return await image_import(engine, req)
    ref = req.query.get("fromImage", "")
    if req.query.get("tag"):  # a tag, or a digest (sha256:…), which names no tag here: latest
        ref = f"{ref}{'@' if ':' in req.query['tag'] else ':'}{req.query['tag']}"
    rec, note = engine.images.pull(ref, req.flag("minidock-any-name"))
    name, tag = split_ref(ref)
    engine.core.events.image(ref if "@" in ref else f"{name}:{tag}", name, "pull")
    shown = ref if "@" in ref else f"{name}:{tag}"
    lines = [{"status": f"Pulling from {name}", "id": tag},
             {"status": note or f"{shown} is the local image {rec['id'][:19]}"},
             {"status": f"Digest: {rec['id']}"},
             {"status": f"Status: {'Downloaded newer image' if note else 'Image is up to date'} for {shown}"}]
    return Stream(_each(json.dumps(line).encode() + b"\r\n" for line in lines), "application/json", chunked=True)


async def _each(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


ROUTES = [
    ("GET", "/images/json", images_list), ("POST", "/images/import", image_import),
    ("POST", "/images/create", image_create), ("POST", "/images/prune", images_prune),
    ("GET", "/images/{name*}/json", image_inspect), ("GET", "/images/{name*}/history", image_history),
    ("POST", "/images/{name*}/tag", image_tag), ("DELETE", "/images/{name*}", image_rm),
]

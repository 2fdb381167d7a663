"""/images: list, import, remove; a pull answers that there is no registry."""

from __future__ import annotations

from ...errors import NotFound
from ...service.engine import Engine
from ...service.images import split_ref
from ..http import Request, Response


async def images_list(engine: Engine, req: Request) -> Response:
    out = []
    for m in engine.images.list():
        out.append({"Id": m["id"], "RepoTags": [f"{m['name']}:latest"], "Created": m.get("created", 0),
                    "Size": m.get("size", 0), "Labels": {"minidock.builtin": str(m["builtin"]).lower()}})
    return Response(200, out)


async def image_import(engine: Engine, req: Request) -> Response:
    meta = engine.images.import_(req.query.get("repo") or req.query.get("name", ""),
                                 req.query.get("fromSrc") or req.query.get("source", ""))
    engine.core.events.image(meta["id"], meta["id"], "import")
    engine.core.events.image(meta["id"], f"{meta['name']}:latest", "tag")
    return Response(200, {"status": meta["id"]})


async def image_rm(engine: Engine, req: Request) -> Response:
    name = req.params["name"]
    meta = engine.images.local(split_ref(name)[0]) or {}
    engine.images.remove(name, engine.queries.image_in_use(name))
    image_id = meta.get("id", name)
    engine.core.events.image(image_id, image_id, "untag")
    engine.core.events.image(image_id, image_id, "delete")
    return Response(200, [{"Deleted": name}])


async def image_pull(engine: Engine, req: Request) -> Response:
    raise NotFound(
        f"minidock has no registry: it runs images from its local store (see `minidock image ls`); "
        f"{req.query.get('fromImage', 'the image')} maps to a built-in root filesystem when run")


ROUTES = [
    ("GET", "/images/json", images_list), ("POST", "/images/import", image_import),
    ("POST", "/images/create", image_pull), ("DELETE", "/images/{name}", image_rm),
]

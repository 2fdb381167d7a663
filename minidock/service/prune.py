"""`POST /containers/prune`: every container that does not run goes, as Docker's
ContainersPrune: created and exited ones alike, narrowed by the `until` and
`label` / `label!` filters. The space reclaimed is what their writable layers
(the overlay's upper directories) held.
"""

from __future__ import annotations

import os
from typing import Any

from .. import timestamps
from ..apifilters import Filters, match_labels
from ..errors import InvalidParameter, MinidockError
from .common import dir_size
from .core import Core
from .lifecycle import Lifecycle

PRUNE_FILTERS = ("label", "label!", "until")


def _until(f: Filters) -> int | None:
    values = f.get("until")
    if not values:
        return None
    if len(values) > 1:
        raise InvalidParameter("more than one until filter specified")
    try:
        return timestamps.parse(next(iter(values)))
    except timestamps.TimeError as e:
        raise InvalidParameter(str(e)) from None


async def prune_containers(core: Core, life: Lifecycle, f: Filters) -> dict[str, Any]:
    until = _until(f)
    deleted: list[str] = []
    reclaimed = 0
    for c in core.store.containers.all():
        if c.running:
            continue
        if until is not None and c.created * 10**9 > until:
            continue
        labels = c.config.get("Labels") or {}
        if not match_labels(f, "label", labels) or (f.get("label!") and match_labels(f, "label!", labels)):
            continue
        size = dir_size(os.path.join(core.layer_dir(c), "upper"))
        try:
            await life.remove(c.id, force=False)
        except MinidockError:  # started (or removed) meanwhile
            continue
        deleted.append(c.id)
        reclaimed += size
    core.events.emit("container", "prune", "", {"reclaimed": str(reclaimed)})
    # Docker's nil list is JSON null: `docker container prune` prints nothing for it
    return {"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed}

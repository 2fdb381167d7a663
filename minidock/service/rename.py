"""A container's names after create: `rename`, and the removal of a legacy
link (`DELETE /containers/PARENT/ALIAS?link=1`, `docker rm --link`).

A rename changes everything that carries the name, while the container runs:

    the record                    name, and other containers' --link entries that named it
    the DNS stub's records        the new name answers on every user network, the old one no more
    the cluster store (overlay)   the endpoint's names, so other hosts resolve the new one
    /run/netns/md-<name>          follows: md-<new> is bound to the same namespace, md-<old> goes

The namespace follows (Docker keeps its sandbox's key) because minidock names
namespaces after containers: a new container may take the old name at once,
and its start must find md-<old> free; `ip netns list` also shows the name
`docker ps` shows. The processes inside do not notice: a namespace is the same
kernel object under any name.
"""

from __future__ import annotations

import posixpath

from ..errors import Conflict, InvalidParameter, MinidockError, no_such_container
from ..kernel import netns
from ..model import Container
from ..steps import Transaction
from .common import NAME_RE
from .core import Core
from .planner import hosts_text
from .sandbox import namespace_of

NAME_CHARS = "[a-zA-Z0-9][a-zA-Z0-9_.-]"


async def rename(core: Core, ref: str, new_name: str) -> None:
    """`POST /containers/{ref}/rename?name=NEW`, with Docker's checks and words."""
    ref, new_name = ref.strip(), new_name.strip()
    if not ref.removeprefix("/") or not new_name.removeprefix("/"):
        raise InvalidParameter("Neither old nor new names may be empty")
    c = core.container(ref)
    new = new_name.removeprefix("/")
    if c.name == new:
        raise InvalidParameter("Renaming a container with the same name as its current name")
    if not NAME_RE.match(new):
        raise InvalidParameter(f"Error when allocating new name: Invalid container name (/{new}), "
                               f"only {NAME_CHARS} are allowed")
    async with core.locks.hold("names"):
        other = core.store.containers.find(new)
        if other is not None and other.name == new:
            raise Conflict(f'Error when allocating new name: Conflict. The container name "/{new}" is already '
                           f'in use by container "{other.id}". You have to remove (or rename) that container '
                           "to be able to reuse that name.")
        async with core.locks.hold(c.id):
            c = core.container(c.id)
            old, old_ns = c.name, c.netns
            async with Transaction(context="failed to rename container") as tx:
                if c.running and c.netns and not c.joined and c.netns == namespace_of(c):
                    c.netns = await _rename_namespace(old_ns, new, tx)
                c.name = new
                with core.store.transaction():
                    core.store.containers.put(c)
                    for joiner in core.store.containers.all():  # they entered it: their records name it too
                        if c.netns != old_ns and joiner.id != c.id and joiner.netns == old_ns:
                            joiner.netns = c.netns
                            core.store.containers.put(joiner)
                    for linker in _linkers(core, old):
                        linker.host_config.links = [_relinked(link, old, new) for link in linker.host_config.links]
                        core.store.containers.put(linker)
    core.refresh_dns(c.id)
    if c.running and core.cluster is not None and core.cluster.up:
        await core.cluster.republish()  # the endpoint's names, as other hosts resolve them
    core.events.container(c, "rename", oldName="/" + old)


async def _rename_namespace(old_ns: str, new: str, tx: Transaction) -> str:
    """md-<old> becomes md-<new> (returned)."""
    new_ns = netns.NETNS_PREFIX + new
    if netns.exists(new_ns):
        raise Conflict(f"namespace {new_ns} exists already (an orphan? `minidock system check` tells)")

    async def move(a: str, b: str) -> None:
        netns.rename(a, b)

    async def back() -> None:
        netns.rename(new_ns, old_ns)

    await tx.step("rename the namespace", move(old_ns, new_ns), undo=back,
                  commands=[f"touch {netns.path(new_ns)}", f"mount --bind {netns.path(old_ns)} {netns.path(new_ns)}",
                            f"ip netns del {old_ns}"],
                  why="the namespace is named after the container: the same namespace, bound to its new name")
    return new_ns


def _link_parts(link: str) -> tuple[str, str]:
    """'target:alias' (or Docker's own '/target:/parent/alias') as (target, alias)."""
    target, _, alias = link.partition(":")
    target = target.lstrip("/")
    return target, posixpath.basename(alias) if alias else target


def _linkers(core: Core, name: str) -> list[Container]:
    return [o for o in core.store.containers.all() if any(_link_parts(li)[0] == name for li in o.host_config.links)]


def _relinked(link: str, old: str, new: str) -> str:
    target, alias = _link_parts(link)
    return f"{new}:{alias}" if target == old else link


def _parent_and_alias(core: Core, name: str) -> tuple[Container, str]:
    """`PARENT/ALIAS`: the parent container, and the alias of one of its links."""
    full = "/" + name.lstrip("/")
    parent_name, alias = posixpath.split(full)
    if parent_name == "/":
        if core.store.containers.find(name.lstrip("/")) is None:
            raise no_such_container(name)
        raise MinidockError("Conflict, cannot remove the default link name of the container")
    parent = core.store.containers.find(parent_name.lstrip("/"))
    if parent is None or not any(_link_parts(li)[1] == alias for li in parent.host_config.links):
        raise no_such_container(name)
    return parent, alias


def linked_container(core: Core, name: str) -> str:
    """The id of the container that link name `PARENT/ALIAS` stands for (a name of it, in Docker)."""
    parent, alias = _parent_and_alias(core, name)
    target = next(_link_parts(li)[0] for li in parent.host_config.links if _link_parts(li)[1] == alias)
    return core.container(target).id


async def remove_link(core: Core, name: str) -> None:
    """Docker's rmLink: `PARENT/ALIAS` names the link; the parent forgets it, and a running
    parent's /etc/hosts loses its line at once (Docker refreshes the sandbox)."""
    parent, alias = _parent_and_alias(core, name)
    async with core.locks.hold(parent.id):
        parent = core.container(parent.id)
        parent.host_config.links = [li for li in parent.host_config.links if _link_parts(li)[1] != alias]
        core.store.containers.put(parent)
        if parent.running and not parent.joined:
            _rewrite_hosts(core, parent)


def _rewrite_hosts(core: Core, c: Container) -> None:
    """In place, not by rename: the running container has this inode bind-mounted."""
    eps = sorted(core.store.endpoints(container_id=c.id), key=lambda ep: int(ep.ifname[3:] or 0))
    mode_net = core.network(next(iter(c.networks))) if c.networks else core.network("none")
    text = hosts_text(core, c, eps, not core.driver(mode_net).own_namespace)
    with open(posixpath.join(core.dir(c.id), "hosts"), "w") as f:
        f.write(text)

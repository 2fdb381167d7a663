"""Legacy links' environment (`--link NAME:ALIAS` on the default bridge): the
variables moby's daemon/links gives the linking container, from the linked
one's name, address, exposed ports and environment."""

from __future__ import annotations

from .. import ports
from ..model import Container
from .core import Core


def link_env(core: Core, c: Container) -> list[str]:
    """ALIAS_NAME, ALIAS_PORT…, ALIAS_ENV_… for each running container `c` links to."""
    env: list[str] = []
    for link in c.host_config.links:
        target, _, alias = link.partition(":")
        other = core.store.containers.find(target.lstrip("/"))
        if other is None or not other.running:
            continue
        alias = alias.lstrip("/").rsplit("/", 1)[-1] or other.name
        prefix = alias.upper().replace("-", "_")
        ip = next((ep.ip for ep in core.store.endpoints(container_id=other.id) if ep.ip), "")
        env.append(f"{prefix}_NAME=/{c.name}/{alias}")
        exposed = sorted((ports.parse_key(k) for k in other.config.get("ExposedPorts") or {}),
                         key=lambda pp: (pp[0], pp[1]))
        if exposed and ip:
            port, proto = exposed[0]
            env.append(f"{prefix}_PORT={proto}://{ip}:{port}")
        for port, proto in exposed if ip else []:
            key = f"{prefix}_PORT_{port}_{proto.upper()}"
            env += [f"{key}={proto}://{ip}:{port}", f"{key}_ADDR={ip}", f"{key}_PORT={port}", f"{key}_PROTO={proto}"]
        for kv in other.config.get("Env") or []:
            name, sep, value = kv.partition("=")
            if sep and name not in ("HOME", "PATH"):
                env.append(f"{prefix}_ENV_{name}={value}")
    return env

"""The `host` driver: the container has no namespace of its own; it shares
the daemon's network namespace, so there is nothing to make."""

from __future__ import annotations

from .null import NullDriver


class HostDriver(NullDriver):
    name = "host"
    own_namespace = False

"""The one error family: every failure the user can see, with an HTTP status.

Messages follow Docker's wording where Docker has one, so a student who reads
Docker's docs recognises them.
"""

from __future__ import annotations


class MinidockError(Exception):
    """A failure reported to the user as one line; `status` is the HTTP code."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidParameter(MinidockError):
    status = 400


class Forbidden(MinidockError):
    status = 403


class NotFound(MinidockError):
    status = 404


class Conflict(MinidockError):
    status = 409


class KernelError(MinidockError):
    status = 500


class Unavailable(MinidockError):
    """A service minidock depends on (the cluster store) does not answer."""

    status = 503


def no_such_container(ref: str) -> NotFound:
    return NotFound(f"No such container: {ref}")


def no_such_network(ref: str) -> NotFound:
    return NotFound(f"network {ref} not found")


def not_running(ref: str) -> Conflict:
    return Conflict(f"container {ref} is not running")


HOST_MODE_PORTS = '"host" network_mode is incompatible with port_bindings'

# Docker's refusals for `--network container:X` (validateNetContainerMode): what shapes a
# network stack belongs to the container that owns it. Keyed by the compose option.
CONTAINER_MODE_CONFLICTS = {
    "hostname": "conflicting options: hostname and the network mode",
    "links": "conflicting options: container type network can't be used with links. "
             "This would result in undefined behavior",
    "dns": "conflicting options: dns and the network mode",
    "extra_hosts": "conflicting options: custom host-to-IP mapping and the network mode",
    "ports": "conflicting options: port publishing and the container type network mode",
    "expose": "conflicting options: port exposing and the container type network mode",
}

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


def no_such_container(ref: str) -> NotFound:
    return NotFound(f"No such container: {ref}")


def no_such_network(ref: str) -> NotFound:
    return NotFound(f"network {ref} not found")


def not_running(ref: str) -> Conflict:
    return Conflict(f"container {ref} is not running")

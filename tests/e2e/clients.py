"""The `docker` CLI as a client of a sandboxed daemon: one helper for every e2e file
that drives minidock with Docker's own command line."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.sandbox import Result, Sandbox

DOCKER = shutil.which("docker")
needs_cli = pytest.mark.skipif(DOCKER is None, reason="the docker CLI is not installed on this machine")


def docker(md: Sandbox, *args: str, check: bool = True, input: str | None = None, timeout: float = 60,
           binary: bool = False) -> Result:
    """`docker ARGS` on `md`'s socket; with `binary` its stdout is left as bytes (`docker cp … -`)."""
    p = subprocess.run([DOCKER or "docker", *args], capture_output=True, timeout=timeout,
                       input=input.encode() if input is not None else None,
                       env={**os.environ, "DOCKER_HOST": f"unix://{md.socket}"})
    out = p.stdout if binary else p.stdout.decode(errors="replace")
    r = Result(p.returncode, out, p.stderr.decode(errors="replace"))  # type: ignore[arg-type]
    assert r.code == 0 or not check, f"docker {' '.join(args)}: {r}\n{md.daemon_log()}"
    return r

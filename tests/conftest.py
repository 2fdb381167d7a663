"""Test harness.

Kernel and end-to-end tests need root. The whole pytest run re-executes
itself inside a private mount namespace with its own tmpfs on /run/netns, so
`ip netns list` shows only what the tests made and nothing we do can touch
another program's namespaces. Each e2e module starts its own daemon inside a
sandbox "host" network namespace (never the machine's real one).
"""

from __future__ import annotations

import os
import sys

SANDBOX_FLAG = "MINIDOCK_TEST_SANDBOX"


def pytest_configure(config: object) -> None:
    if os.geteuid() != 0 or os.environ.get(SANDBOX_FLAG) == "1":
        return
    os.environ[SANDBOX_FLAG] = "1"
    script = ("mkdir -p /run/netns && mount -t tmpfs -o mode=755 tmpfs /run/netns && "
              'exec "$0" "$@"')
    os.execvp("unshare", ["unshare", "-m", "--propagation", "private", "sh", "-c", script,
                          sys.executable, "-m", "pytest", *sys.argv[1:]])

"""The lab box's provisioning script installs a working minidock on a plain
Debian 12 machine (its install part: no service is started here)."""

from __future__ import annotations

import os
import secrets
import subprocess
import tempfile
import time
from pathlib import Path

from tests.sandbox import sh

REPO = Path(__file__).resolve().parents[2]


def test_provision_installs_a_minidock_that_runs(tmp_path: Path) -> None:
    prefix = tmp_path / "opt-minidock"
    r = sh("bash", str(REPO / "vagrant" / "provision.sh"), "--repo", str(REPO), "--prefix", str(prefix),
           "--no-service", timeout=600)
    assert "installed (no service)" in r.out, r
    # the installed daemon serves its own CLI, in a namespace of its own
    host = "mdprov-" + secrets.token_hex(3)
    root = tempfile.mkdtemp(prefix="minidock-prov-")
    sock = f"{root}/sock"
    sh("ip", "netns", "add", host)
    proc = subprocess.Popen(["nsenter", f"--net=/run/netns/{host}", str(prefix / "bin" / "minidock"), "daemon",
                             "--root", f"{root}/state", "--socket", sock],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if os.path.exists(sock):
                break
            time.sleep(0.1)
        out = sh(str(prefix / "bin" / "minidock"), "-H", f"unix://{sock}", "network", "ls",
                 "--format", "{{.Name}} {{.Driver}}").out
        assert out.split("\n")[:3] == ["bridge bridge", "host host", "none null"]
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        sh("ip", "netns", "del", host, check=False)
        sh("rm", "-rf", root)

"""`make labs`: each lab of vagrant/labs, its steps then its check, on a fresh
sandboxed daemon. The check must fail before the steps (it checks something)
and pass after them; nothing of the lab may be left afterwards."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.sandbox import Sandbox, sh

LABS = Path(__file__).resolve().parents[2] / "vagrant" / "labs"


def lab_names() -> list[str]:
    return sorted(p.name for p in LABS.iterdir() if (p / "check").exists())


def test_there_is_a_lab_per_walkthrough() -> None:
    names = lab_names()
    assert len(names) >= 6, names
    for lab in names:
        text = (LABS / lab / "README.md").read_text()
        assert "## Steps" in text and "## Questions" in text, lab


@pytest.mark.parametrize("lab", lab_names())
def test_lab(lab: str) -> None:
    before = set(os.listdir("/run/netns"))
    sb = Sandbox()
    sb.start()
    env = {**sb.env, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}

    def in_host(*argv: str, timeout: float = 180) -> object:
        import subprocess

        p = subprocess.run(["nsenter", f"--net=/run/netns/{sb.name}", *argv], cwd=LABS / lab, env=env,
                           capture_output=True, text=True, timeout=timeout)
        return p

    try:
        early = in_host("bash", "check", timeout=120)
        assert early.returncode != 0, f"{lab}: the check passes before the steps:\n{early.stdout}"
        steps = in_host("bash", "-ex", "steps.sh")
        assert steps.returncode == 0, f"{lab}: steps failed:\n{steps.stdout}\n{steps.stderr}"
        done = in_host("bash", "check", timeout=120)
        assert done.returncode == 0 and "FAIL" not in done.stdout, f"{lab}:\n{done.stdout}\n{done.stderr}"
        assert "all checks passed" in done.stdout
    finally:
        sb.destroy()
        for ns in set(os.listdir("/run/netns")) - before:  # what a lab made by hand (lab 06)
            sh("ip", "netns", "del", ns, check=False)
    assert set(os.listdir("/run/netns")) == before

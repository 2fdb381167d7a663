"""Images through Docker's clients: inspect, pull onto a built-in, tag, import
with a tag, remove; an unknown name is Docker's 404, while minidock's own CLI
still runs any name (scenario G). Each proof is a process run from the image."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

import pytest

from tests.sandbox import Sandbox

DOCKER = shutil.which("docker")


def client(md: Sandbox) -> Any:
    docker_py = pytest.importorskip("docker", reason="docker-py is not installed")
    return docker_py.DockerClient(base_url=f"unix://{md.socket}", version="auto")


def tiny_root(tmp_path: object, marker: str) -> str:
    root = os.path.join(str(tmp_path), "rootfs")
    os.makedirs(os.path.join(root, "bin"))
    shutil.copy("/bin/busybox", os.path.join(root, "bin/busybox"))
    os.symlink("busybox", os.path.join(root, "bin/sh"))
    os.symlink("busybox", os.path.join(root, "bin/cat"))
    with open(os.path.join(root, "marker"), "w") as f:
        f.write(marker)
    return root


def test_docker_py_pulls_a_walkthrough_name_onto_busybox_and_runs_it(md: Sandbox) -> None:
    docker_py = pytest.importorskip("docker")
    c = client(md)
    with pytest.raises(docker_py.errors.ImageNotFound):
        c.images.get("alpine:3.10")
    img = c.images.pull("alpine", tag="3.10")
    assert img.id.startswith("sha256:") and "alpine:3.10" in img.tags
    assert c.images.get("alpine:3.10").id == img.id == c.images.get("busybox").id
    # the image really is busybox: its applets answer
    out = c.containers.run("alpine:3.10", ["sh", "-c", "busybox | head -1"], remove=True)
    assert out.decode().startswith("BusyBox")
    ctr = c.containers.create("alpine:3.10", ["true"])
    try:
        assert ctr.attrs["Image"] == img.id and ctr.attrs["Config"]["Image"] == "alpine:3.10"
    finally:
        ctr.remove()
    with pytest.raises(docker_py.errors.ImageNotFound):
        c.containers.run("dockerpytest_does_not_exist")
    c.images.remove("alpine:3.10")
    with pytest.raises(docker_py.errors.ImageNotFound):
        c.images.get("alpine:3.10")
    assert c.images.get("busybox").id == img.id  # untagged, the built-in stays


def test_tag_import_with_a_tag_and_rm(md: Sandbox, tmp_path: object) -> None:
    root = tiny_root(tmp_path, "tagged-root")
    md.cli("image", "import", "tiny:v1", root)
    md.cli("image", "tag", "tiny:v1", "lab/tiny:teach")
    rows = md.cli("image", "ls").out
    assert "tiny " in rows and "v1" in rows and "lab/tiny" in rows and "teach" in rows
    for ref in ("tiny:v1", "lab/tiny:teach"):
        assert md.cli("run", "--rm", ref, "cat", "/marker").out == "tagged-root"
    docker_py = pytest.importorskip("docker")
    with pytest.raises(docker_py.errors.ImageNotFound, match="No such image: tiny:latest"):
        client(md).containers.create("tiny")  # imported as v1: there is no tiny:latest
    assert md.cli("image", "rm", "lab/tiny:teach").out.strip() == "Untagged: lab/tiny:teach"
    out = md.cli("image", "rm", "tiny:v1").out
    assert "Untagged: tiny:v1" in out and "Deleted: sha256:" in out
    assert "tiny" not in md.cli("image", "ls").out


def test_an_image_in_use_is_not_removed(md: Sandbox, tmp_path: object) -> None:
    md.cli("image", "import", "busy", tiny_root(tmp_path, "in-use"))
    md.cli("run", "-d", "--name", "user", "busy", "sh", "-c", "sleep 300")
    r = md.cli("image", "rm", "busy", check=False)
    assert r.code != 0 and "must force" in r.err
    assert md.cli("exec", "user", "cat", "/marker").out == "in-use"
    md.cli("rm", "-f", "user")
    md.cli("image", "rm", "busy")


def test_minidock_cli_runs_any_name_and_says_so_once(md: Sandbox) -> None:
    first = md.cli("run", "--rm", "someorg/someimage:1.2", "sh", "-c", "grep ^ID= /etc/os-release")
    assert first.out.strip() == "ID=debian"  # the host image
    assert 'image "someorg/someimage:1.2" is not in the local store' in first.err
    again = md.cli("run", "--rm", "someorg/someimage:1.2", "true")
    assert "not in the local store" not in again.err
    md.cli("image", "rm", "someorg/someimage:1.2")


@pytest.mark.skipif(DOCKER is None, reason="the docker CLI is not installed on this machine")
def test_docker_cli_import_inspect_and_run(md: Sandbox, tmp_path: object) -> None:
    tar = os.path.join(str(tmp_path), "root.tar")
    subprocess.run(["tar", "-C", tiny_root(tmp_path, "from-docker-import"), "-cf", tar, "."], check=True)
    env = {**os.environ, "DOCKER_HOST": f"unix://{md.socket}"}

    def docker(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([DOCKER or "docker", *args], capture_output=True, text=True, env=env, timeout=60)

    r = docker("import", tar, "imported:1")
    assert r.returncode == 0, r.stderr
    assert docker("image", "inspect", "-f", "{{.Os}} {{index .RepoTags 0}}", "imported:1").stdout.strip() == \
        "linux imported:1"
    assert docker("run", "--rm", "imported:1", "cat", "/marker").stdout == "from-docker-import"
    assert docker("rmi", "imported:1").returncode == 0
    assert docker("image", "inspect", "imported:1").returncode != 0

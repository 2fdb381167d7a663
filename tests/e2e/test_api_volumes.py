"""Volumes, bind mounts and tmpfs, driven by Docker's own clients (the `docker` CLI,
docker-py) and by minidock's CLI: files cross between the host and containers
for real, a read-only bind refuses writes with the kernel's EROFS, a named
volume's data outlives its container, a tmpfs is a tmpfs in the container's
/proc/mounts, and nothing stays mounted on the host afterwards."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import pytest

from tests.e2e.clients import docker, needs_cli
from tests.sandbox import Result, Sandbox


def host_mounts() -> str:
    with open("/proc/mounts") as f:
        return f.read()


@pytest.fixture
def hostdir() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="md-vol-")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def vol_cleanup(md: Sandbox) -> Iterator[None]:
    """After the test: no container, no volume, and no mount of ours on the host."""
    yield
    ids = md.cli("ps", "-aq").out.split()
    if ids:
        md.cli("rm", "-f", "-v", *ids)
    md.cli("volume", "prune", "-f", "--all")
    assert md.cli("volume", "ls", "-q").out == ""
    assert md.root not in host_mounts()


@needs_cli
def test_bind_mount_carries_files_both_ways(md: Sandbox, hostdir: str, vol_cleanup: None) -> None:
    with open(os.path.join(hostdir, "from-host.txt"), "w") as f:
        f.write("written by the host\n")
    r = docker(md, "run", "--rm", "-v", f"{hostdir}:/data", "busybox",
               "sh", "-c", "cat /data/from-host.txt; echo written by the container > /data/from-ctr.txt")
    assert r.out == "written by the host\n"
    with open(os.path.join(hostdir, "from-ctr.txt")) as f:
        assert f.read() == "written by the container\n"
    # the bind lived in the container's mount namespace only: gone with it
    assert hostdir not in host_mounts()


@needs_cli
def test_bind_of_a_missing_host_directory_makes_it(md: Sandbox, hostdir: str, vol_cleanup: None) -> None:
    missing = os.path.join(hostdir, "made", "by", "start")
    docker(md, "run", "--rm", "-v", f"{missing}:/m", "busybox", "sh", "-c", "echo x > /m/f")
    with open(os.path.join(missing, "f")) as f:
        assert f.read() == "x\n"
    r = docker(md, "run", "--rm", "--mount", f"type=bind,source={hostdir}/nope,target=/m", "busybox", "true",
               check=False)
    assert r.code == 125
    assert f'invalid mount config for type "bind": bind source path does not exist: {hostdir}/nope' in r.err
    assert not os.path.exists(os.path.join(hostdir, "nope"))


@needs_cli
def test_read_only_bind_refuses_writes_with_erofs(md: Sandbox, hostdir: str, vol_cleanup: None) -> None:
    with open(os.path.join(hostdir, "keep.txt"), "w") as f:
        f.write("original\n")
    for how in (["-v", f"{hostdir}:/data:ro"], ["--mount", f"type=bind,source={hostdir},target=/data,readonly"]):
        r = docker(md, "run", "--rm", *how, "busybox", "sh", "-c",
                   "cat /data/keep.txt; echo changed > /data/keep.txt; touch /data/new; "
                   "grep ' /data ' /proc/mounts", check=False)
        lines = (r.out + r.err).splitlines()  # stdout and stderr: one stream in minidock's log
        assert lines[0] == "original", r
        assert sum("Read-only file system" in ln for ln in lines) == 2, r  # the kernel's EROFS, for both writes
        assert " ro," in next(ln for ln in lines if " /data " in ln)
        with open(os.path.join(hostdir, "keep.txt")) as f:
            assert f.read() == "original\n"
        assert os.listdir(hostdir) == ["keep.txt"]
    docker(md, "run", "--name", "ro", "-v", f"{hostdir}:/data:ro", "busybox", "true")
    mounts = json.loads(docker(md, "inspect", "-f", "{{json .Mounts}}", "ro").out)
    assert mounts == [{"Type": "bind", "Source": hostdir, "Destination": "/data", "Mode": "ro", "RW": False,
                       "Propagation": "rprivate"}]
    assert json.loads(docker(md, "inspect", "-f", "{{json .HostConfig.Binds}}", "ro").out) == [f"{hostdir}:/data:ro"]


@needs_cli
def test_named_volume_outlives_its_container_and_is_shared(md: Sandbox, vol_cleanup: None) -> None:
    docker(md, "volume", "create", "--label", "course=net101", "notes")
    info = json.loads(docker(md, "volume", "inspect", "notes").out)[0]
    assert (info["Name"], info["Driver"], info["Scope"], info["Labels"]) == ("notes", "local", "local",
                                                                             {"course": "net101"})
    assert info["Mountpoint"] == os.path.join(md.root, "state", "volumes", "notes", "_data")
    docker(md, "run", "--name", "writer", "-v", "notes:/notes", "busybox", "sh", "-c", "echo kept > /notes/a")
    docker(md, "rm", "writer")
    assert docker(md, "run", "--rm", "-v", "notes:/n", "busybox", "cat", "/n/a").out == "kept\n"
    # two running containers see each other's writes at once: the same directory
    docker(md, "run", "-d", "--name", "one", "-v", "notes:/n", "busybox", "sleep", "300")
    docker(md, "run", "-d", "--name", "two", "--mount", "source=notes,target=/m", "busybox", "sleep", "300")
    docker(md, "exec", "two", "sh", "-c", "echo from-two > /m/b")
    assert docker(md, "exec", "one", "cat", "/n/b").out == "from-two\n"
    with open(os.path.join(info["Mountpoint"], "b")) as f:
        assert f.read() == "from-two\n"
    r = docker(md, "volume", "rm", "notes", check=False)
    assert r.code == 1 and "remove notes: volume is in use - [" in r.err
    assert os.path.isdir(info["Mountpoint"])
    docker(md, "rm", "-f", "one", "two")
    docker(md, "volume", "rm", "notes")
    assert not os.path.exists(os.path.dirname(info["Mountpoint"]))
    r = docker(md, "volume", "inspect", "notes", check=False)
    assert r.code == 1 and "no such volume" in r.err


@needs_cli
def test_volume_named_in_run_is_created_and_anonymous_ones_go_with_rm_v(md: Sandbox, vol_cleanup: None) -> None:
    docker(md, "run", "--name", "c1", "-v", "fresh:/f", "-v", "/anon", "busybox", "sh", "-c",
           "echo 1 > /f/x; echo 2 > /anon/y")
    names = set(docker(md, "volume", "ls", "-q").out.split())
    assert "fresh" in names and len(names) == 2
    anon = (names - {"fresh"}).pop()
    mounts = {m["Destination"]: m for m in json.loads(docker(md, "inspect", "-f", "{{json .Mounts}}", "c1").out)}
    assert mounts["/anon"]["Name"] == anon and mounts["/f"]["Name"] == "fresh"
    with open(os.path.join(mounts["/anon"]["Source"], "y")) as f:
        assert f.read() == "2\n"
    labels = json.loads(docker(md, "volume", "inspect", "-f", "{{json .Labels}}", anon).out)
    assert labels == {"com.docker.volume.anonymous": ""}
    docker(md, "rm", "-v", "c1")
    # rm -v removes the anonymous volume, not the one named by the user
    assert docker(md, "volume", "ls", "-q").out.split() == ["fresh"]
    assert not os.path.exists(mounts["/anon"]["Source"])
    # a prune (API >= 1.42) takes unused anonymous volumes only; --all takes named ones too
    docker(md, "run", "--name", "c2", "-v", "/anon2", "busybox", "true")
    docker(md, "rm", "c2")
    assert len(docker(md, "volume", "ls", "-q").out.split()) == 2
    out = docker(md, "volume", "prune", "-f").out
    assert "Deleted Volumes:" in out and "fresh" not in out
    assert docker(md, "volume", "ls", "-q").out.split() == ["fresh"]
    docker(md, "volume", "prune", "-f", "--all")
    assert docker(md, "volume", "ls", "-q").out == ""
    # --rm takes the anonymous volumes with the container, as Docker's does; named ones stay
    docker(md, "run", "--rm", "-v", "/gone", "-v", "stays:/s", "busybox", "touch", "/gone/f")
    assert docker(md, "volume", "ls", "-q").out.split() == ["stays"]


@needs_cli
def test_tmpfs_is_a_tmpfs_in_the_container(md: Sandbox, vol_cleanup: None) -> None:
    r = docker(md, "run", "--rm", "--tmpfs", "/scratch:size=3m", "--mount", "type=tmpfs,target=/t,tmpfs-size=1m",
               "busybox", "sh", "-c", "echo hi > /scratch/f && cat /scratch/f && grep -E ' /(scratch|t) ' /proc/mounts")
    lines = r.out.splitlines()
    assert lines[0] == "hi"
    fields = {line.split()[1]: line.split() for line in lines[1:]}
    assert fields["/scratch"][2] == "tmpfs" and "size=3072k" in fields["/scratch"][3]
    assert "noexec" in fields["/scratch"][3] and "nosuid" in fields["/scratch"][3]
    assert fields["/t"][2] == "tmpfs" and "size=1024k" in fields["/t"][3]
    docker(md, "create", "--name", "tmp", "--tmpfs", "/run:size=3m", "busybox")
    assert json.loads(docker(md, "inspect", "-f", "{{json .HostConfig.Tmpfs}}", "tmp").out) == {"/run": "size=3m"}
    assert json.loads(docker(md, "inspect", "-f", "{{json .Mounts}}", "tmp").out) == []


@needs_cli
def test_volumes_from_mounts_the_other_containers_mounts(md: Sandbox, hostdir: str, vol_cleanup: None) -> None:
    docker(md, "create", "--name", "data", "-v", f"{hostdir}:/shared", "-v", "vf:/vol", "busybox")
    docker(md, "run", "--rm", "--volumes-from", "data", "busybox", "sh", "-c",
           "echo via-bind > /shared/a; echo via-volume > /vol/b")
    with open(os.path.join(hostdir, "a")) as f:
        assert f.read() == "via-bind\n"
    r = docker(md, "run", "--rm", "--volumes-from", "data:ro", "busybox", "sh", "-c",
               "cat /vol/b; touch /vol/c", check=False)
    assert (r.out + r.err).startswith("via-volume\n") and "Read-only file system" in r.out + r.err
    docker(md, "create", "--name", "user", "--volumes-from", "data", "busybox")
    assert json.loads(docker(md, "inspect", "-f", "{{json .HostConfig.VolumesFrom}}", "user").out) == ["data"]
    r = docker(md, "create", "--volumes-from", "nosuch", "busybox", check=False)
    assert r.code == 1 and "No such container: nosuch" in r.err


@needs_cli
def test_bad_mount_specs_are_refused_with_dockers_words(md: Sandbox, vol_cleanup: None) -> None:
    cases = [
        (["-v", "/a:relative"], "invalid mount path: 'relative' mount path must be absolute"),
        (["--mount", "type=bind,source=/tmp,target=/"], "invalid specification: destination can't be '/'"),
        (["-v", "/a:/b:bogus"], "invalid mode: bogus"),
        (["-v", "/a:/b", "-v", "/c:/b"], "Duplicate mount point: /b"),
        (["-v", "a!b:/x"], 'includes invalid characters for a local volume name'),
    ]
    for args, message in cases:
        r = docker(md, "create", *args, "busybox", check=False)
        assert r.code == 1 and message in r.err, (args, r)
    # a driver other than local is a plugin minidock does not have: 404, as Docker's (whose CLI then
    # takes a 404 at create for a missing image, so the volume create shows the words)
    r = docker(md, "volume", "create", "-d", "nosuch", "v1", check=False)
    assert r.code == 1 and 'error looking up volume plugin nosuch: plugin "nosuch" not found' in r.err
    assert docker(md, "ps", "-aq").out == ""
    assert docker(md, "volume", "ls", "-q").out == ""  # a refused create made no volume


def test_minidock_cli_volume_commands_and_run_flags(md: Sandbox, hostdir: str, vol_cleanup: None) -> None:
    assert md.cli("volume", "create", "--label", "a=b", "mdvol").out.strip() == "mdvol"
    assert md.cli("volume", "ls", "--format", "{{.Name}} {{.Driver}}").out == "mdvol local\n"
    assert md.cli("volume", "ls", "-q", "-f", "label=a=b").out == "mdvol\n"
    assert md.cli("volume", "ls", "-q", "-f", "label=a=c").out == ""
    mountpoint = md.cli("volume", "inspect", "-f", "{{.Mountpoint}}", "mdvol").out.strip()
    assert md.cli("inspect", "-f", "{{.Mountpoint}}", "mdvol").out.strip() == mountpoint  # as `docker inspect`
    with open(os.path.join(hostdir, "h"), "w") as f:
        f.write("host\n")
    r = md.cli("run", "--rm", "-v", "mdvol:/v", "--mount", f"type=bind,src={hostdir},dst=/h,ro",
               "--tmpfs", "/tt", "busybox", "sh", "-c",
               "cat /h/h; echo vol > /v/f; grep ' /tt ' /proc/mounts | cut -d' ' -f3; touch /h/no", check=False)
    lines = (r.out + r.err).splitlines()
    assert lines[:2] == ["host", "tmpfs"] and "Read-only file system" in lines[2]
    with open(os.path.join(mountpoint, "f")) as f:
        assert f.read() == "vol\n"
    md.cli("run", "-d", "--name", "holder", "-v", "mdvol:/v", "busybox", "sleep", "300")
    r = md.cli("volume", "rm", "mdvol", check=False)
    assert r.code == 1 and "volume is in use" in r.err
    md.cli("rm", "-f", "holder")
    assert md.cli("volume", "rm", "mdvol").out == "mdvol\n"
    assert not os.path.exists(mountpoint)
    # --explain: the shell command equal to what a volume create did (and it did it)
    err = md.cli("--explain", "volume", "create", "shown").err
    made = os.path.join(md.root, "state", "volumes", "shown", "_data")
    assert f"mkdir -p -m 0755 {made}" in err and os.path.isdir(made)
    md.cli("volume", "rm", "shown")


def test_docker_py_binds_and_volumes(md: Sandbox, hostdir: str, vol_cleanup: None) -> None:
    docker_py = pytest.importorskip("docker", reason="docker-py is not installed (pip install 'docker>=7')")
    client = docker_py.DockerClient(base_url=f"unix://{md.socket}", version="auto")
    try:
        vol = client.volumes.create("pyvol", labels={"k": "v"})
        assert vol.attrs["Labels"] == {"k": "v"} and vol in client.volumes.list(filters={"name": "pyv"})
        out = client.containers.run("busybox", "sh -c 'echo py > /h/f; echo inside > /v/g; cat /v/g'",
                                    volumes=[f"{hostdir}:/h", "pyvol:/v"], remove=True)
        assert out == b"inside\n"
        with open(os.path.join(hostdir, "f")) as f:
            assert f.read() == "py\n"
        c = client.containers.create("busybox", "true", volumes={"pyvol": {"bind": "/v", "mode": "ro"}})
        assert [(m["Name"], m["RW"]) for m in c.attrs["Mounts"]] == [("pyvol", False)]
        with pytest.raises(docker_py.errors.APIError) as err:
            vol.remove()
        assert err.value.response.status_code == 409
        c.remove(v=True)
        vol.remove()
        with pytest.raises(docker_py.errors.NotFound):
            client.volumes.get("pyvol")
    finally:
        client.close()


COMPOSE = """\
services:
  writer:
    image: busybox
    command: sh -c "cat /cfg/config.txt > /store/copy; echo t > /scratch/t; grep ' /scratch ' /proc/mounts > /store/scratch; touch /cfg/no 2> /store/ro-error"
    volumes:
      - store:/store
      - ./cfg:/cfg:ro
    tmpfs:
      - /scratch:size=1m
  reader:
    image: busybox
    command: sleep 300
    volumes_from:
      - writer
volumes:
  store:
    labels:
      course: net101
"""


def test_compose_named_volume_bind_tmpfs_and_down_v(md: Sandbox, vol_cleanup: None) -> None:
    folder = os.path.join(tempfile.mkdtemp(prefix="compose-"), "volproj")
    os.makedirs(os.path.join(folder, "cfg"))
    try:
        with open(os.path.join(folder, "docker-compose.yml"), "w") as f:
            f.write(COMPOSE)
        with open(os.path.join(folder, "cfg", "config.txt"), "w") as f:
            f.write("from the project folder\n")

        def compose(*args: str) -> Result:
            p = subprocess.run([sys.executable, "-m", "minidock.cli.main", "compose", *args], capture_output=True,
                               text=True, cwd=folder, env=md.env, timeout=60)
            assert p.returncode == 0, f"compose {args}: {p.stdout}{p.stderr}\n{md.daemon_log()}"
            return Result(p.returncode, p.stdout, p.stderr)

        assert "Volume volproj_store" in compose("up", "-d").err
        info = json.loads(md.cli("volume", "inspect", "volproj_store").out)[0]
        assert info["Labels"] == {"course": "net101", "com.docker.compose.project": "volproj",
                                  "com.docker.compose.volume": "store", "com.docker.compose.version": "2.20.2"}
        md.cli("wait", "volproj-writer-1")
        data = info["Mountpoint"]
        with open(os.path.join(data, "copy")) as f:
            assert f.read() == "from the project folder\n"  # ./cfg, relative to the file's folder
        with open(os.path.join(data, "scratch")) as f:
            assert f.read().split()[2] == "tmpfs"
        with open(os.path.join(data, "ro-error")) as f:
            assert "Read-only file system" in f.read()
        assert md.cli("exec", "volproj-reader-1", "cat", "/store/copy").out == "from the project folder\n"
        compose("down")
        assert md.cli("volume", "ls", "-q").out.split() == ["volproj_store"]  # down keeps volumes
        compose("up", "-d")
        md.cli("wait", "volproj-writer-1")
        assert "Volume volproj_store" in compose("down", "-v").err
        assert md.cli("volume", "ls", "-q").out == ""
        assert not os.path.exists(data)
    finally:
        shutil.rmtree(os.path.dirname(folder), ignore_errors=True)


def test_a_symlink_in_the_image_cannot_send_a_mount_to_the_host(md: Sandbox, hostdir: str,
                                                                 vol_cleanup: None) -> None:
    """An image whose /leak is a symlink to a host path: the mount goes to that path *inside*
    the container's root, so the host's files are neither copied into the volume nor touched."""
    secret = os.path.join(hostdir, "secret")
    os.makedirs(secret)
    with open(os.path.join(secret, "key"), "w") as f:
        f.write("host only\n")
    rootfs = os.path.join(hostdir, "rootfs")
    os.makedirs(os.path.join(rootfs, "bin"))
    shutil.copy2("/bin/busybox", os.path.join(rootfs, "bin", "busybox"))
    for applet in ("sh", "ls", "cat"):
        os.symlink("busybox", os.path.join(rootfs, "bin", applet))
    os.symlink(secret, os.path.join(rootfs, "leak"))
    md.cli("image", "import", "linkimg", rootfs)
    try:
        r = md.cli("run", "--rm", "-v", "grab:/leak", "linkimg", "/bin/sh", "-c", "ls -A /leak; echo end")
        assert r.out == "end\n"  # an empty volume: the host's key was not copied in
        data = md.cli("volume", "inspect", "-f", "{{.Mountpoint}}", "grab").out.strip()
        assert os.listdir(data) == []
        assert os.listdir(secret) == ["key"]
    finally:
        md.cli("image", "rm", "linkimg", check=False)


@needs_cli
def test_volume_over_etc_is_filled_from_the_image_and_keeps_the_containers_files(md: Sandbox, hostdir: str,
                                                                                  vol_cleanup: None) -> None:
    """An empty volume takes the image's files at its destination (Docker's copy-up); the
    container's own /etc/hosts and hostname stay visible on top of a volume at /etc; a file
    can be bound too, and a bind at /etc/hosts replaces minidock's."""
    r = docker(md, "run", "--rm", "-h", "voltest", "-v", "etcvol:/etc", "busybox", "sh", "-c",
               "head -1 /etc/passwd; cat /etc/hostname; grep -c voltest /etc/hosts")
    assert r.out.splitlines() == ["root:x:0:0:root:/root:/bin/sh", "voltest", "1"]
    data = json.loads(docker(md, "volume", "inspect", "etcvol").out)[0]["Mountpoint"]
    with open(os.path.join(data, "passwd")) as f:
        assert f.readline() == "root:x:0:0:root:/root:/bin/sh\n"  # copied into the volume on the host
    hosts = os.path.join(hostdir, "myhosts")
    with open(hosts, "w") as f:
        f.write("192.0.2.7 seven\n")
    r = docker(md, "run", "--rm", "-v", f"{hosts}:/etc/hosts:ro", "-v", f"{hosts}:/srv/one-file", "busybox",
               "sh", "-c", "cat /etc/hosts; cat /srv/one-file")
    assert r.out == "192.0.2.7 seven\n192.0.2.7 seven\n"


@needs_cli
def test_a_volume_subpath_cannot_follow_a_symlink_out_of_the_volume(md: Sandbox, vol_cleanup: None) -> None:
    docker(md, "run", "--rm", "-v", "sub:/v", "busybox", "sh", "-c",
           "mkdir /v/ok && echo inside > /v/ok/f && ln -s /etc /v/esc")
    r = docker(md, "run", "--rm", "--mount", "source=sub,target=/m,volume-subpath=ok", "busybox", "cat", "/m/f")
    assert r.out == "inside\n"
    docker(md, "create", "--name", "esc", "--mount", "source=sub,target=/m,volume-subpath=esc", "busybox",
           "ls", "/m")
    r = docker(md, "start", "esc", check=False)
    assert r.code != 0 and "path concatenation escapes the base directory" in r.err, r
    assert docker(md, "inspect", "-f", "{{.State.Status}}", "esc").out.strip() == "created"


@needs_cli
def test_docker_events_shows_volume_create_mount_unmount_destroy(md: Sandbox, vol_cleanup: None) -> None:
    since = str(int(time.time()) - 1)
    docker(md, "volume", "create", "evvol")
    docker(md, "run", "--rm", "-v", "evvol:/e:ro", "busybox", "true")
    docker(md, "volume", "rm", "evvol")
    until = str(int(time.time()) + 1)
    out = docker(md, "events", "--since", since, "--until", until, "--filter", "type=volume", "--filter", "volume=evvol", "--format",
                 "{{.Action}} {{.Actor.ID}} {{index .Actor.Attributes \"read/write\"}} "
                 "{{index .Actor.Attributes \"destination\"}}").out
    assert [line.split() for line in out.splitlines()] == [
        ["create", "evvol"], ["mount", "evvol", "false", "/e"], ["unmount", "evvol"], ["destroy", "evvol"]]


@needs_cli
def test_a_stopped_containers_symlink_cannot_send_a_cp_mount_to_the_host(md: Sandbox, hostdir: str,
                                                                          vol_cleanup: None) -> None:
    """`docker cp` into a stopped container mounts its volumes over its layer: a symlink the
    container made where a mount's parent was resolves inside its root, never on the host."""
    outside = os.path.join(hostdir, "outside")
    os.makedirs(outside)
    docker(md, "run", "--name", "linker", "-v", "cpvol:/mnt/inner", "busybox", "sh", "-c",
           f"umount /mnt/inner 2>/dev/null; rm -rf /mnt; ln -s {outside} /mnt")
    try:
        with open(os.path.join(hostdir, "f"), "w") as f:
            f.write("copied\n")
        docker(md, "cp", os.path.join(hostdir, "f"), "linker:/tmp/f")
        assert os.listdir(outside) == []  # no mount point made through the link on the host
        assert docker(md, "start", "-a", "linker").code == 0
    finally:
        docker(md, "rm", "-f", "linker", check=False)

"""A container as a whole, driven by Docker's own clients (the `docker` CLI and
docker-py): `docker cp` both ways (running and stopped), diff, export, commit,
stats with each interface's counters, pause/unpause, update.

The proofs are real: bytes read back inside the container and out of it, files
in an exported tar and in a container of a committed image, packet counters
that moved by the pings sent, a loop's counter and an HTTP server that stop
while paused, processes in state T."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import tempfile
import time
from collections.abc import Iterator

import pytest

from tests.e2e.clients import DOCKER, docker
from tests.sandbox import Result, Sandbox

pytestmark = pytest.mark.skipif(DOCKER is None, reason="the docker CLI is not installed on this machine")



@pytest.fixture
def tmp() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="md-cp-")
    try:
        yield d
    finally:
        shutil.rmtree(d)


def _count(md: Sandbox, name: str, tmp: str) -> int:
    """The loop's counter, read with `docker cp` (which works on a paused container too)."""
    out = os.path.join(tmp, f"count-{time.monotonic_ns()}")
    docker(md, "cp", f"{name}:/count", out)
    with open(out) as f:
        return int(f.read().strip() or 0)


def test_docker_cp_into_and_out_of_a_running_container(md: Sandbox, tmp: str) -> None:
    docker(md, "run", "-d", "--name", "cp1", "busybox", "sleep", "300")
    payload = os.urandom(200_000)
    src = os.path.join(tmp, "blob.bin")
    with open(src, "wb") as f:
        f.write(payload)
    docker(md, "cp", src, "cp1:/root/blob.bin")
    # read inside the container, by its own md5sum
    inside = docker(md, "exec", "cp1", "md5sum", "/root/blob.bin").out.split()[0]
    assert inside == hashlib.md5(payload).hexdigest()
    back = os.path.join(tmp, "back.bin")
    docker(md, "cp", "cp1:/root/blob.bin", back)
    with open(back, "rb") as f:
        assert f.read() == payload
    # a directory in, listed inside; a file the container wrote, out
    os.makedirs(os.path.join(tmp, "tree", "sub"))
    with open(os.path.join(tmp, "tree", "sub", "a.txt"), "w") as f:
        f.write("in a tree\n")
    docker(md, "cp", os.path.join(tmp, "tree"), "cp1:/srv")
    assert docker(md, "exec", "cp1", "cat", "/srv/sub/a.txt").out == "in a tree\n"
    docker(md, "exec", "cp1", "sh", "-c", "echo written-inside > /root/made.txt")
    docker(md, "cp", "cp1:/root/made.txt", os.path.join(tmp, "made.txt"))
    with open(os.path.join(tmp, "made.txt")) as f:
        assert f.read() == "written-inside\n"
    # a symlink resolves inside the container, never on the host: /bin/sh -> /bin/busybox
    docker(md, "cp", "-L", "cp1:/bin/sh", os.path.join(tmp, "sh"))
    with open(os.path.join(tmp, "sh"), "rb") as f, open(shutil.which("busybox") or "/bin/busybox", "rb") as g:
        assert f.read(4096) == g.read(4096)
    r = docker(md, "cp", "cp1:/no/such/file", os.path.join(tmp, "x"), check=False)
    assert r.code != 0 and "Could not find the file /no/such/file in container cp1" in r.err
    docker(md, "rm", "-f", "cp1")


def test_docker_cp_into_a_created_container_before_it_starts(md: Sandbox, tmp: str) -> None:
    src = os.path.join(tmp, "greeting")
    with open(src, "w") as f:
        f.write("copied before start\n")
    docker(md, "create", "--name", "cp2", "busybox", "cat", "/etc/greeting")
    docker(md, "cp", src, "cp2:/etc/greeting")
    assert docker(md, "start", "-a", "cp2").out == "copied before start\n"
    # stopped now: its files are still there, read without a running process
    docker(md, "cp", "cp2:/etc/greeting", os.path.join(tmp, "again"))
    with open(os.path.join(tmp, "again")) as f:
        assert f.read() == "copied before start\n"
    docker(md, "rm", "cp2")


def test_archive_through_docker_py_stat_header_and_put(md: Sandbox) -> None:
    docker_py = pytest.importorskip("docker")
    api = docker_py.APIClient(base_url=f"unix://{md.socket}", version="auto")
    cid = api.create_container("busybox", "sleep 300", name="cp3")["Id"]
    api.start(cid)
    try:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo("hello.txt")
            info.size, info.mode = 6, 0o640
            tar.addfile(info, io.BytesIO(b"hello\n"))
        assert api.put_archive(cid, "/tmp", buf.getvalue())
        assert docker(md, "exec", "cp3", "stat", "-c", "%a %s", "/tmp/hello.txt").out.split() == ["640", "6"]
        stream, stat = api.get_archive(cid, "/tmp/hello.txt")
        assert stat["name"] == "hello.txt" and stat["size"] == 6 and stat["mode"] == 0o640
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            member = tar.extractfile("hello.txt")
            assert member is not None and member.read() == b"hello\n"
        gz = io.BytesIO()  # a compressed tar is taken too, as Docker decompresses what it is sent
        with tarfile.open(fileobj=gz, mode="w:gz") as tar:
            info = tarfile.TarInfo("zipped.txt")
            info.size = 7
            tar.addfile(info, io.BytesIO(b"zipped\n"))
        assert api.put_archive(cid, "/root", gz.getvalue())
        assert docker(md, "exec", "cp3", "cat", "/root/zipped.txt").out == "zipped\n"
        # a directory's mode carries Go's ModeDir bit, as the docker CLI decodes it
        assert api.get_archive(cid, "/etc")[1]["mode"] & (1 << 31)
        with pytest.raises(docker_py.errors.NotFound):
            api.put_archive(cid, "/nowhere", buf.getvalue())
    finally:
        api.remove_container(cid, force=True)


def test_diff_and_export_show_what_the_container_made(md: Sandbox, tmp: str) -> None:
    docker(md, "run", "--name", "d1", "busybox", "sh", "-c",
           "echo made > /made.txt && rm /etc/group && mkdir -p /var/new && echo x > /var/new/f")
    lines = docker(md, "diff", "d1").out.splitlines()
    assert "A /made.txt" in lines and "D /etc/group" in lines and "A /var/new" in lines and "A /var/new/f" in lines
    assert "C /etc" in lines  # the directory of a deleted file changed
    assert not any(line.endswith(("/etc/hosts", "/etc/resolv.conf", "/etc/hostname")) for line in lines)
    out = os.path.join(tmp, "d1.tar")
    docker(md, "export", "-o", out, "d1")
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
        made = tar.extractfile("made.txt")
        assert made is not None and made.read() == b"made\n"
    assert "etc/group" not in names and "etc/passwd" in names and "bin/busybox" in names
    assert not any(n.startswith("proc/") for n in names)  # the layer, not what is mounted on it
    docker(md, "rm", "d1")


def test_commit_makes_an_image_that_runs_with_the_changes(md: Sandbox) -> None:
    docker(md, "run", "-d", "--name", "cm1", "busybox", "sh", "-c", "echo committed > /state.txt; sleep 300")
    deadline = time.monotonic() + 10
    while docker(md, "exec", "cm1", "cat", "/state.txt", check=False).code != 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    # export of a running container: its layer, not what is mounted on it (no /proc of its processes)
    with tarfile.open(fileobj=io.BytesIO(docker(md, "export", "cm1", binary=True).out)) as tar:  # type: ignore[arg-type]
        names = tar.getnames()
        state = tar.extractfile("state.txt")
        assert state is not None and state.read() == b"committed\n"
    assert "proc" in names and not any(n.startswith("proc/") for n in names)
    image_id = docker(md, "commit", "-m", "a snapshot", "-c", "EXPOSE 8080", "-c", 'CMD ["cat", "/state.txt"]',
                      "cm1", "snap:one").out.strip()
    assert image_id.startswith("sha256:")
    assert docker(md, "inspect", "-f", "{{.State.Status}}", "cm1").out.strip() == "running"  # unpaused after
    assert docker(md, "image", "inspect", "-f", "{{.Id}} {{json .Config.Cmd}} {{json .Config.ExposedPorts}}",
                  "snap:one").out.split() == [image_id, '["cat","/state.txt"]', '{"8080/tcp":{}}']
    parent = docker(md, "image", "inspect", "-f", "{{.Id}}", "busybox").out.strip()
    assert docker(md, "image", "inspect", "-f", "{{.Parent}}|{{.Comment}}", "snap:one").out.strip() == \
        f"{parent}|a snapshot"
    assert docker(md, "run", "--rm", "snap:one", "cat", "/state.txt").out == "committed\n"
    assert docker(md, "run", "--rm", "snap:one").out == "committed\n"  # the CMD the commit set
    docker(md, "rm", "-f", "cm1")
    docker(md, "rmi", "snap:one")


def _stats(api: object, cid: str) -> dict[str, int]:
    s = api.stats(cid, stream=False, one_shot=True)  # type: ignore[attr-defined]
    return dict(s["networks"]["eth0"])


def test_stats_count_the_packets_of_a_ping_between_two_containers(md: Sandbox) -> None:
    docker_py = pytest.importorskip("docker")
    api = docker_py.APIClient(base_url=f"unix://{md.socket}", version="auto")
    docker(md, "network", "create", "statsnet")
    try:
        docker(md, "run", "-d", "--name", "st1", "--network", "statsnet", "busybox", "sleep", "300")
        docker(md, "run", "-d", "--name", "st2", "--network", "statsnet", "busybox", "sleep", "300")
        before1, before2 = _stats(api, "st1"), _stats(api, "st2")
        pings = 5
        docker(md, "exec", "st1", "ping", "-c", str(pings), "-i", "0.2", "-W", "2", "st2")
        after1, after2 = _stats(api, "st1"), _stats(api, "st2")
        assert after1["tx_packets"] - before1["tx_packets"] >= pings  # echo requests (and a DNS query)
        assert after1["rx_packets"] - before1["rx_packets"] >= pings  # echo replies
        assert after2["rx_packets"] - before2["rx_packets"] >= pings
        assert after2["tx_packets"] - before2["tx_packets"] >= pings
        assert after1["tx_bytes"] - before1["tx_bytes"] >= pings * 84  # an ICMP echo of 56 bytes: 84 on the wire
        full = api.stats("st1", stream=False)  # two readings a second apart, as `docker stats` asks
        for key in ("read", "preread", "cpu_stats", "precpu_stats", "memory_stats", "pids_stats", "blkio_stats"):
            assert key in full
        assert full["pids_stats"]["current"] >= 1 and full["memory_stats"]["usage"] > 0
        assert "lo" not in full["networks"]
        table = docker(md, "stats", "--no-stream", "st1", "st2").out
        assert "NET I/O" in table and "st1" in table and "st2" in table
    finally:
        docker(md, "rm", "-f", "st1", "st2", check=False)
        docker(md, "network", "rm", "statsnet", check=False)


def test_pause_stops_every_process_and_unpause_resumes_them(md: Sandbox, tmp: str) -> None:
    docker(md, "run", "-d", "--name", "pz", "busybox", "sh", "-c",
           "trap 'exit 7' TERM; mkdir -p /www && echo served > /www/index.html && httpd -p 80 -h /www && "
           "{ sleep 1000 & } && i=0; while true; do i=$((i+1)); echo $i > /count.new; mv /count.new /count; "
           "sleep 0.1; done")  # renamed into place: a read never finds it truncated
    docker(md, "run", "-d", "--name", "pzc", "busybox", "sleep", "300")
    since = str(int(time.time()) - 1)
    ip = md.ip_of("pz")

    def get() -> Result:  # busybox's static wget crashes on a lookup here: HTTP by hand
        return docker(md, "exec", "pzc", "sh", "-c",
                      f"printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | timeout 3 nc {ip} 80", check=False)

    deadline = time.monotonic() + 10
    while "served" not in get().out:
        assert time.monotonic() < deadline, "httpd did not answer"
        time.sleep(0.2)
    docker(md, "pause", "pz")
    try:
        assert docker(md, "inspect", "-f", "{{.State.Status}} {{.State.Running}} {{.State.Paused}}",
                      "pz").out.split() == ["paused", "true", "true"]
        assert "(Paused)" in docker(md, "ps", "--filter", "name=pz", "--format", "{{.Status}}").out
        pid = docker(md, "inspect", "-f", "{{.State.Pid}}", "pz").out.strip()
        members = [p for p in os.listdir("/proc") if p.isdigit() and _same_pidns(p, pid)]
        # sh, httpd, sleep 1000 (and the loop's sleep 0.1, unless the pause came between two)
        assert len(members) >= 3, members
        # Z: a child that exited as the pause came (its parent, stopped, has not reaped it yet)
        assert all(_state(p) in ("T", "X", "Z") for p in members), [(p, _state(p)) for p in members]
        assert sum(_state(p) == "T" for p in members) >= 3
        first = _count(md, "pz", tmp)
        time.sleep(1)
        assert _count(md, "pz", tmp) == first  # the loop does not run
        # the kernel still answers ICMP (as with Docker's freezer); the process does not answer HTTP
        assert docker(md, "exec", "pzc", "ping", "-c", "1", "-W", "2", ip, check=False).code == 0
        assert "served" not in get().out
        r = docker(md, "exec", "pz", "true", check=False)
        assert r.code != 0 and "Container pz is paused, unpause the container before exec" in r.err
        assert "is already paused" in docker(md, "pause", "pz", check=False).err
    finally:
        docker(md, "unpause", "pz")
    assert docker(md, "inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "pz").out.split() == ["running", "false"]
    assert "served" in get().out
    first = _count(md, "pz", tmp)
    time.sleep(0.6)
    assert _count(md, "pz", tmp) > first
    assert "is not paused" in docker(md, "unpause", "pz", check=False).err
    # a paused container is resumed after the stop signal, so that its trap runs (as Docker does)
    docker(md, "pause", "pz")
    t0 = time.monotonic()
    docker(md, "stop", "-t", "8", "pz")
    assert time.monotonic() - t0 < 5
    assert docker(md, "inspect", "-f", "{{.State.Status}} {{.State.Paused}} {{.State.ExitCode}}",
                  "pz").out.split() == ["exited", "false", "7"]
    actions = docker(md, "events", "--since", since, "--until", str(int(time.time()) + 1), "--filter", "container=pz",
                     "--filter", "event=pause", "--filter", "event=unpause", "--format", "{{.Action}}").out.split()
    assert actions == ["pause", "unpause", "pause", "unpause"]  # the stop resumed it
    docker(md, "rm", "-f", "pz", "pzc")


def _same_pidns(pid: str, init: str) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid") == os.readlink(f"/proc/{init}/ns/pid")
    except OSError:
        return False


def _state(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "X"


def test_pause_of_a_host_pid_container_stops_only_its_own_processes(md: Sandbox) -> None:
    """--pid host shares the daemon's PID namespace: pause must stop the container's
    process tree, not every process of the host (the daemon among them)."""
    import subprocess

    bystander = subprocess.Popen(["sleep", "60"])
    try:
        docker(md, "run", "-d", "--name", "hostpid", "--pid", "host", "busybox", "sh", "-c", "sleep 300 & wait")
        pid = docker(md, "inspect", "-f", "{{.State.Pid}}", "hostpid").out.strip()
        docker(md, "pause", "hostpid")
        try:
            kids = [p for p in os.listdir("/proc") if p.isdigit() and _parent(p) == pid]
            assert _state(pid) == "T" and kids and all(_state(k) in ("T", "Z") for k in kids)
            assert _state(str(bystander.pid)) == "S"  # the host's own process runs on
            # the daemon runs on: it answers, and reports the pause
            assert docker(md, "inspect", "-f", "{{.State.Status}}", "hostpid").out.strip() == "paused"
        finally:
            docker(md, "unpause", "hostpid")
        assert _state(pid) != "T"
        docker(md, "rm", "-f", "hostpid")
    finally:
        bystander.kill()
        bystander.wait()


def _parent(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[1]
    except OSError:
        return ""


def test_update_keeps_the_settings_and_checks_them_as_docker(md: Sandbox) -> None:
    docker(md, "run", "-d", "--name", "up1", "busybox", "sleep", "300")
    assert docker(md, "update", "--memory", "300m", "--memory-swap", "1g", "--cpu-shares", "512",
                  "--pids-limit", "64", "--restart", "on-failure:3", "up1").out.strip() == "up1"
    shown = docker(md, "inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.CpuShares}} "
                   "{{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}} "
                   "{{.HostConfig.RestartPolicy.MaximumRetryCount}}", "up1").out.split()
    assert shown == [str(300 << 20), str(1 << 30), "512", "64", "on-failure", "3"]
    r = docker(md, "update", "--memory", "1m", "up1", check=False)
    assert r.code != 0 and "Minimum memory limit allowed is 6MB" in r.err
    r = docker(md, "update", "--memory", "2g", "up1", check=False)
    assert r.code != 0 and "Memory limit should be smaller than already set memoryswap limit" in r.err
    # still running, its process untouched by what update stores
    assert docker(md, "exec", "up1", "true").code == 0
    docker(md, "rm", "-f", "up1")


def test_minidocks_own_cli_copies_diffs_pauses_and_commits(md: Sandbox, tmp: str) -> None:
    md.cli("run", "-d", "--name", "own", "busybox", "sh", "-c", "mkdir /srv && ln -s /srv /linkdir && sleep 300")
    src = os.path.join(tmp, "note.txt")
    with open(src, "w") as f:
        f.write("through minidock cp\n")
    deadline = time.monotonic() + 10
    while md.cli("exec", "own", "test", "-L", "/linkdir", check=False).code != 0:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    r = md.cli("cp", src, "own:/linkdir")  # a link to a directory: copied into it
    assert "Successfully copied 20B to own:/linkdir" in r.err
    assert md.cli("exec", "own", "cat", "/srv/note.txt").out == "through minidock cp\n"
    md.cli("cp", "own:/srv/note.txt", os.path.join(tmp, "back.txt"))
    with open(os.path.join(tmp, "back.txt")) as f:
        assert f.read() == "through minidock cp\n"
    raw = md.cli("cp", "own:/srv", "-").out  # a tar on stdout
    assert raw.startswith("srv") and "srv/note.txt" in raw and "through minidock cp" in raw
    lines = md.cli("diff", "own").out.splitlines()
    assert "A /srv/note.txt" in lines and "A /linkdir" in lines
    md.cli("pause", "own")
    assert "(Paused)" in md.cli("ps", "--format", "{{.Status}}").out
    r = md.cli("exec", "own", "true", check=False)
    assert r.code != 0 and "is paused, unpause the container before exec" in r.err
    md.cli("unpause", "own")
    table = md.cli("stats", "--no-stream", "own").out.splitlines()
    assert table[0].split()[:3] == ["CONTAINER", "ID", "NAME"] and table[1].split()[1] == "own"
    image = md.cli("commit", "-c", "CMD cat /srv/note.txt", "own", "ownimg").out.strip()
    assert image.startswith("sha256:")
    assert md.cli("run", "--rm", "ownimg").out == "through minidock cp\n"
    md.cli("rm", "-f", "own")
    md.cli("image", "rm", "ownimg")

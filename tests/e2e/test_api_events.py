"""Events, rename, prune and link removal, driven by Docker's own clients
(docker-py, the `docker` CLI) and by `minidock`; each proven by what really
happened: a process's exit code, a DNS answer, a ping, a file in a container."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.clients import DOCKER, docker, needs_cli
from tests.sandbox import Result, Sandbox


@pytest.fixture
def client(md: Sandbox) -> Iterator[Any]:
    docker_py = pytest.importorskip("docker", reason="docker-py is not installed (pip install 'docker>=7')")
    c = docker_py.APIClient(base_url=f"unix://{md.socket}", version="auto", timeout=30)
    yield c
    c.close()


class Listener:
    """docker-py's `events(decode=True)` read in a thread, until `stop`."""

    def __init__(self, client: Any, **kwargs: Any) -> None:
        self.stream = client.events(decode=True, **kwargs)
        self.seen: list[dict[str, Any]] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for ev in self.stream:
                self.seen.append(ev)
        except Exception:  # noqa: BLE001 - the stream closed under us: that is how it ends
            pass

    def wait_for(self, pred: Any, timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for ev in list(self.seen):
                if pred(ev):
                    return ev
            time.sleep(0.05)
        raise AssertionError(f"no such event among {json.dumps(self.seen, indent=1)}")

    def stop(self) -> None:
        self.stream.close()
        self.thread.join(5)


def test_docker_py_sees_create_start_die_with_the_real_exit_code_and_network_connect(
        md: Sandbox, client: Any, net_cleanup: None) -> None:
    listener = Listener(client)
    try:
        net = client.create_network("evnet", driver="bridge")
        c = client.create_container("busybox", ["sh", "-c", "echo ran-$((40+2)); exit 3"], name="exiter",
                                    labels={"lab": "events"},
                                    host_config=client.create_host_config(network_mode="evnet"))
        client.start(c)
        assert client.wait(c)["StatusCode"] == 3
        cid = c["Id"]
        die = listener.wait_for(lambda e: e.get("Action") == "die" and e["Actor"]["ID"] == cid)
        listener.wait_for(lambda e: e["Type"] == "network" and e["Action"] == "disconnect")
    finally:
        listener.stop()
    assert client.logs(c) == b"ran-42\n"  # the shell really ran: it computed 42
    assert die["Actor"]["Attributes"]["exitCode"] == "3"
    assert {k: die["Actor"]["Attributes"][k] for k in ("name", "image", "lab")} == \
        {"name": "exiter", "image": "busybox", "lab": "events"}
    assert (die["status"], die["id"], die["from"], die["scope"]) == ("die", cid, "busybox", "local")
    assert die["time"] == die["timeNano"] // 10**9
    mine = [(e["Type"], e["Action"]) for e in listener.seen
            if e["Actor"]["ID"] in (cid, net["Id"]) or e["Actor"]["Attributes"].get("container") == cid]
    assert mine == [("network", "create"), ("container", "create"), ("network", "connect"),
                    ("container", "start"), ("network", "disconnect"), ("container", "die")]
    connect = next(e for e in listener.seen if e["Type"] == "network" and e["Action"] == "connect")
    assert connect["Actor"] == {"ID": net["Id"], "Attributes": {"container": cid, "name": "evnet", "type": "bridge"}}
    client.remove_container(c)


def test_since_until_replay_filters_and_the_docker_cli_prints_the_same_lines(
        md: Sandbox, client: Any, net_cleanup: None) -> None:
    t0 = time.time()
    md.cli("run", "--name", "replayed", "busybox", "sh", "-c", "exit 4", check=False)
    md.cli("network", "create", "replaynet")
    md.cli("network", "rm", "replaynet")
    time.sleep(0.05)
    t1 = time.time()
    md.cli("rm", "replayed")  # after `until`: not replayed
    began = time.monotonic()
    past = list(client.events(since=t0, until=t1, decode=True))  # ends by itself: `until` is past
    assert time.monotonic() - began < 5
    assert [(e["Type"], e["Action"]) for e in past] == [
        ("container", "create"), ("container", "attach"), ("network", "connect"), ("container", "start"),
        ("network", "disconnect"), ("container", "die"), ("network", "create"), ("network", "destroy")]
    assert all(t0 * 1e9 <= e["timeNano"] <= t1 * 1e9 for e in past)
    only_die = list(client.events(since=t0, until=t1, decode=True, filters={"event": "die"}))
    assert [e["Actor"]["Attributes"]["exitCode"] for e in only_die] == ["4"]
    nets = list(client.events(since=t0, until=t1, decode=True, filters={"type": "network", "network": "replaynet"}))
    assert [e["Action"] for e in nets] == ["create", "destroy"]
    span = ["--since", f"{t0:.9f}", "--until", f"{t1:.9f}"]
    mine = md.cli("events", *span).out
    assert len(mine.splitlines()) == len(past)
    die = next(line for line in mine.splitlines() if " container die " in line)
    assert die.endswith(f"Z container die {past[5]['Actor']['ID']} (execDuration=0, exitCode=4, image=busybox, "
                        "name=replayed)")
    if DOCKER:  # the docker CLI formats the lines itself: ours must be the same bytes
        assert docker(md, "events", *span).out == mine
        tmpl = "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}"
        assert docker(md, "events", *span, "--filter", "type=network", "--format", tmpl).out == \
            md.cli("events", *span, "--filter", "type=network", "--format", tmpl).out == \
            "network connect bridge\nnetwork disconnect bridge\nnetwork create replaynet\nnetwork destroy replaynet\n"
    bad = md.cli("events", "--since", "2026-13-45", check=False)
    assert bad.code != 0


@needs_cli
def test_docker_events_streams_live_until_its_until(md: Sandbox, net_cleanup: None) -> None:
    since, until = time.time(), time.time() + 6  # `until` alone would replay the whole ring too, as Docker
    proc = subprocess.Popen([DOCKER or "docker", "events", "--since", f"{since:.3f}", "--until", f"{until:.3f}",
                             "--filter", "type=container",
                             "--format", "{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}"],
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "DOCKER_HOST": f"unix://{md.socket}"})
    try:
        time.sleep(0.5)
        md.cli("run", "-d", "--name", "live", "busybox", "sh", "-c", "sleep 0.2; exit 9")
        out, _ = proc.communicate(timeout=15)  # returns once `until` has passed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    # a map key an event lacks prints as Go prints it
    assert out.splitlines() == ["create live <no value>", "start live <no value>", "die live 9"]
    assert md.inspect("live", "{{.State.ExitCode}}") == "9"


def test_docker_py_cancels_an_events_stream(md: Sandbox, client: Any) -> None:
    """client_test.py's CancellableEventsTest: closing the stream ends the loop at once."""
    from datetime import datetime, timedelta

    start = datetime.now()
    events = client.events(until=start + timedelta(seconds=5))
    threading.Timer(1, events.close).start()
    assert client.info()["NEventsListener"] == 1
    for _ in events:
        pass
    assert datetime.now() - start < timedelta(seconds=3)
    # the daemon saw the hang-up at once, not at `until` nor at the next event
    deadline = time.monotonic() + 2
    while client.info()["NEventsListener"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.info()["NEventsListener"] == 0


def test_exec_events_carry_the_command_and_its_exit_code(md: Sandbox, client: Any, net_cleanup: None) -> None:
    t0 = time.time()
    c = client.create_container("busybox", ["sleep", "300"], name="execd")
    client.start(c)
    ex = client.exec_create(c, ["sh", "-c", "echo in-$((2+3)); exit 5"])
    assert client.exec_start(ex) == b"in-5\n"
    assert client.exec_inspect(ex)["ExitCode"] == 5
    time.sleep(0.1)
    seen = list(client.events(since=t0, until=time.time(), decode=True, filters={"event": "exec_create"}))
    assert [e["Action"] for e in seen] == ["exec_create: sh -c echo in-$((2+3)); exit 5"]
    seen = list(client.events(since=t0, until=time.time(), decode=True, filters={"container": "execd"}))
    actions = [e["Action"] for e in seen]
    assert actions[-2:] == ["exec_start: sh -c echo in-$((2+3)); exit 5", "exec_die"]
    assert seen[-1]["Actor"]["Attributes"]["exitCode"] == "5" and seen[-1]["Actor"]["Attributes"]["execID"] == ex["Id"]
    client.kill(c)
    client.wait(c)
    kills = list(client.events(since=t0, until=time.time(), decode=True, filters={"event": ["kill", "die"]}))
    assert [(e["Action"], e["Actor"]["Attributes"].get("signal"), e["Actor"]["Attributes"].get("exitCode"))
            for e in kills] == [("kill", "9", None), ("die", None, "137")]
    client.remove_container(c)


def test_rename_moves_the_dns_name_and_the_namespace(md: Sandbox, client: Any, net_cleanup: None) -> None:
    md.cli("network", "create", "rennet")
    md.cli("run", "-d", "--name", "old", "--network", "rennet", "busybox", "sleep", "300")
    md.cli("run", "-d", "--name", "asker", "--network", "rennet", "busybox", "sleep", "300")
    ip = md.inspect("old", "{{.NetworkSettings.Networks.rennet.IPAddress}}")
    assert md.cli("exec", "asker", "nslookup", "old").code == 0
    t0 = time.time()
    md.cli("rename", "old", "new")
    assert md.inspect("new", "{{.Name}}") == "/new"
    answer = md.cli("exec", "asker", "nslookup", "new").out
    assert f"Address: {ip}" in answer.split("Name:", 1)[1]  # the stub's real answer, its address
    ping = md.cli("exec", "asker", "ping", "-c", "1", "-W", "2", "new")
    assert f"bytes from {ip}" in ping.out
    gone = md.cli("exec", "asker", "nslookup", "old", check=False)
    assert gone.code != 0
    assert "NXDOMAIN" in gone.out + gone.err or "can't find" in gone.out + gone.err
    # the namespace follows the name: md-new is the same namespace (its eth0 has the address)
    names = md.host("ip", "netns", "list").out
    assert "md-new" in names and "md-old " not in names + " "
    assert ip in md.in_ns("md-new", "ip", "-4", "addr", "show", "eth0").out
    # so the old name is free at once, namespace and all
    md.cli("run", "-d", "--name", "old", "--network", "rennet", "busybox", "sleep", "300")
    assert md.cli("exec", "asker", "ping", "-c", "1", "-W", "2", "old").code == 0
    ev = list(client.events(since=t0, until=time.time(), decode=True, filters={"event": "rename"}))
    assert [e["Actor"]["Attributes"]["oldName"] for e in ev] == ["/old"]
    assert ev[0]["Actor"]["Attributes"]["name"] == "new"
    # Docker's refusals
    taken = docker_or_cli(md, "rename", "new", "asker")
    assert taken.code == 1
    assert 'Error response from daemon: Error when allocating new name: Conflict. The container name "/asker" ' \
           "is already in use by container" in taken.err
    assert "Error: failed to rename container named new" in taken.err
    same = md.cli("rename", "new", "new", check=False)
    assert "Renaming a container with the same name as its current name" in same.err
    bad = md.cli("rename", "new", "bad name", check=False)
    assert "Invalid container name (/bad name), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed" in bad.err
    md.cli("rm", "-f", "new", "old", "asker")
    assert "md-new" not in md.host("ip", "netns", "list").out


def docker_or_cli(md: Sandbox, *args: str) -> Result:
    return docker(md, *args, check=False) if DOCKER else md.cli(*args, check=False)


def test_docker_py_rename_of_a_created_container(md: Sandbox, client: Any, net_cleanup: None) -> None:
    """api_container_test.py's RenameContainerTest, then the renamed container runs under its name."""
    res = client.create_container("busybox", ["cat", "/etc/hostname"])
    client.rename(res, "hong_meiling")
    assert client.inspect_container(res["Id"])["Name"] == "/hong_meiling"
    client.start("hong_meiling")
    assert client.wait("hong_meiling")["StatusCode"] == 0
    assert client.logs("hong_meiling").strip() == res["Id"][:12].encode()
    with pytest.raises(Exception, match="Neither old nor new names may be empty"):
        client.rename(res, "")
    client.remove_container(res)


def test_prune_removes_only_what_does_not_run(md: Sandbox, client: Any, net_cleanup: None) -> None:
    md.cli("network", "create", "prunenet")
    md.cli("run", "-d", "--name", "alive", "--network", "prunenet", "busybox", "sleep", "300")
    done = client.create_container("busybox", ["sh", "-c", "head -c 5000 /dev/zero > /data.bin"], name="done",
                                   host_config=client.create_host_config(network_mode="prunenet"))
    client.start(done)
    assert client.wait(done)["StatusCode"] == 0
    created = client.create_container("busybox", ["true"], name="never", labels={"keep": "yes"})
    report = client.prune_containers(filters={"label!": "keep"})
    assert report["ContainersDeleted"] == [done["Id"]]
    assert report["SpaceReclaimed"] >= 5000  # the file the container wrote, in its writable layer
    out = md.cli("container", "prune", "-f").out
    assert out == f"Deleted Containers:\n{created['Id']}\n\nTotal reclaimed space: 0B\n"
    assert md.cli("ps", "-a", "--format", "{{.Names}}").out.split() == ["alive"]
    assert md.cli("container", "prune", "-f").out == "Total reclaimed space: 0B\n"
    if DOCKER:  # the docker CLI's own lines, from the same answer
        md.cli("run", "--name", "wrote", "busybox", "sh", "-c", "head -c 1500 /dev/zero > /f")
        wrote = md.inspect("wrote", "{{.Id}}")
        assert docker(md, "container", "prune", "-f").out == \
            f"Deleted Containers:\n{wrote}\n\nTotal reclaimed space: 1.5kB\n"
    # the running one was not touched: it still answers on its network
    md.cli("run", "--rm", "--network", "prunenet", "busybox", "ping", "-c", "1", "-W", "2", "alive")
    with pytest.raises(Exception, match="invalid filter 'name'"):
        client.prune_containers(filters={"name": "x"})


def test_rm_link_drops_the_alias_from_the_running_parent(md: Sandbox, client: Any, net_cleanup: None) -> None:
    """api_container_test.py's LinkTest::test_remove_link, and what the link was for: the alias resolves
    (by /etc/hosts) before and not after."""
    c1 = client.create_container("busybox", "cat", detach=True, stdin_open=True)
    client.start(c1)
    name1 = client.inspect_container(c1)["Name"][1:]
    c2 = client.create_container("busybox", "cat", detach=True, stdin_open=True,
                                 host_config=client.create_host_config(links={name1: "mylink"}))
    client.start(c2)
    name2 = client.inspect_container(c2)["Name"][1:]
    ip1 = client.inspect_container(c1)["NetworkSettings"]["IPAddress"]
    assert md.cli("exec", name2, "ping", "-c", "1", "-W", "2", "mylink").code == 0
    with pytest.raises(Exception, match="No such container"):
        client.remove_container(f"{name2}/nolink", link=True)
    client.remove_container(f"{name2}/mylink", link=True)
    hosts = md.cli("exec", name2, "cat", "/etc/hosts").out
    assert "mylink" not in hosts and ip1 not in hosts
    assert md.cli("exec", name2, "ping", "-c", "1", "-W", "1", "mylink", check=False).code != 0
    assert not client.inspect_container(c2)["HostConfig"]["Links"]  # Docker: null
    ids = {c["Id"] for c in client.containers(all=True)}
    assert {c1["Id"], c2["Id"]} <= ids  # both containers are still there
    assert md.cli("exec", name2, "ping", "-c", "1", "-W", "2", ip1).code == 0
    if DOCKER:  # `docker rm --link` takes the same road
        client.remove_container(c2, force=True)
        docker(md, "run", "-d", "--name", "linker", "--link", f"{name1}:other", "busybox", "sleep", "300")
        assert "other" in md.cli("exec", "linker", "cat", "/etc/hosts").out
        docker(md, "rm", "--link", "/linker/other")
        assert "other" not in md.cli("exec", "linker", "cat", "/etc/hosts").out

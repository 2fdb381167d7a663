"""The fast path (minidock.cli.fast) against the click commands: the same bytes
for the same daemon answer, served by a fake daemon on a Unix socket; only
flags click knows; and no click, json, re or service code on its road."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

import click
import pytest
from click.testing import CliRunner

from minidock.cli import fast, format, listing, main, networks
from minidock.client import Client

NOW = time.time()
CONTAINERS = [
    {"Id": "a" * 64, "Names": ["/web"], "Image": "busybox", "Command": "nc -lk -p 80 -e echo héllo there",
     "Created": int(NOW - 3 * 3600), "Status": "Up 3 hours", "State": "running",
     "Ports": [{"PrivatePort": 80, "Type": "tcp", "IP": "0.0.0.0", "PublicPort": 8080},
               {"PrivatePort": 9000, "Type": "tcp", "IP": "0.0.0.0", "PublicPort": 9000},
               {"PrivatePort": 9001, "Type": "tcp", "IP": "0.0.0.0", "PublicPort": 9001},
               {"PrivatePort": 53, "Type": "udp"}],
     "Labels": {"a": "1"}, "NetworkSettings": {"Networks": {"bridge": {}, "appnet": {}}}},
    {"Id": "b" * 64, "Names": ["/db"], "Image": "host", "Command": "sleep 3600", "Created": int(NOW - 90),
     "Status": "Exited (0) 2 days ago", "State": "exited", "Ports": [], "Labels": {},
     "NetworkSettings": {"Networks": {"appnet": {}}}},
]
NETWORKS = [
    {"Name": name, "Id": ident * 64, "Driver": driver, "Scope": "local", "EnableIPv6": False, "Internal": False,
     "Labels": {}, "Created": "2026-01-01T00:00:00Z"}
    for name, ident, driver in (("none", "3", "null"), ("bridge", "1", "bridge"), ("appnet", "2", "bridge"),
                                ("host", "4", "host"))
]
INSPECT = {"Id": "a" * 64, "Name": "/web", "State": {"Running": True, "Pid": 42, "StartedAt": "x"},
           "Config": {"Env": [], "Cmd": ["sh", "-c", "echo \"é\" \u2603 \\ \t"], "Labels": {},
                      "ExposedPorts": {"80/tcp": {}}},
           "NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "81/tcp": None},
                               "Networks": {"bridge": {"IPAddress": "172.17.0.2", "IPPrefixLen": 16,
                                                       "Aliases": None, "DriverOpts": {}}}},
           "Ratio": 0.5, "Big": 10 ** 20, "Neg": -1.25e-7, "Flags": [True, False, None], "Empty": [[], {}]}


class FakeDaemon:
    """Answers GETs from a table of path -> (status, JSON body), like the daemon does."""

    def __init__(self, answers: dict[str, tuple[int, Any]]) -> None:
        self.answers = answers
        self.dir = tempfile.mkdtemp(prefix="minidock-fake-")
        self.path = os.path.join(self.dir, "sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(16)
        self.requests: list[str] = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                target = data.split(b" ")[1].decode()
                self.requests.append(target)
                status, obj = self.answers.get(target.removeprefix("/v1.47"), (404, {"message": "no such thing"}))
                body = json.dumps(obj).encode()
                # one answer a connection, and it says so: a client keeps an HTTP/1.1 connection
                # otherwise, and its next request could meet this close (a reset)
                conn.sendall(f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                             f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)

    def close(self) -> None:
        self.sock.close()
        os.unlink(self.path)
        os.rmdir(self.dir)


@pytest.fixture
def daemon() -> Iterator[FakeDaemon]:
    d = FakeDaemon({
        "/containers/json?all=0": (200, CONTAINERS[:1]),
        "/containers/json?all=1": (200, CONTAINERS),
        "/networks": (200, NETWORKS),
        "/containers/web/json": (200, INSPECT),
        "/networks/appnet": (200, NETWORKS[2]),
    })
    yield d
    d.close()


def click_output(sock: str, argv: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(main.cli, ["-H", f"unix://{sock}", *argv])
    return result.exit_code, result.output


CASES = [["ps"], ["ps", "-a"], ["ps", "--all", "--no-trunc"], ["ps", "-aq"], ["ps", "-q", "--no-trunc"],
         ["network", "ls"], ["network", "ls", "-q"], ["network", "ls", "--no-trunc", "--quiet"],
         ["inspect", "web"], ["inspect", "appnet"], ["inspect", "web", "appnet"]]


@pytest.mark.parametrize("argv", CASES, ids=" ".join)
def test_fast_path_prints_what_click_prints(daemon: FakeDaemon, argv: list[str]) -> None:
    text = fast.output(["-H", f"unix://{daemon.path}", *argv])
    assert text is not None, "the fast path gave this command to click"
    assert click_output(daemon.path, argv) == (0, text)


@pytest.mark.parametrize("argv", [
    ["ps", "--format", "{{.ID}}"], ["ps", "-f", "status=exited"], ["ps", "-x"], ["ps", "--help"],
    ["network", "ls", "--filter", "name=a"], ["network", "inspect", "appnet"], ["inspect", "-f", "{{.Id}}", "web"],
    ["inspect", "nope"], ["inspect", "we b"], ["inspect"], ["--explain", "ps"], ["run", "busybox"], [],
    ["-H"], ["ps", "--", "-a"],
], ids=" ".join)
def test_anything_else_goes_to_click(daemon: FakeDaemon, argv: list[str]) -> None:
    assert fast.output(["-H", f"unix://{daemon.path}", *argv] if argv != ["-H"] else argv) is None


def test_errors_go_to_click() -> None:
    assert fast.output(["-H", "unix:///nonexistent/minidock.sock", "ps"]) is None
    assert fast.output(["-H", "tcp://127.0.0.1:1", "ps"]) is None
    broken = FakeDaemon({"/containers/json?all=0": (500, {"message": "boom"}), "/networks": (200, {"odd": 1})})
    try:
        assert fast.output(["-H", f"unix://{broken.path}", "ps"]) is None
        assert fast.output(["-H", f"unix://{broken.path}", "network", "ls"]) is None
    finally:
        broken.close()


def test_host_from_the_environment(daemon: FakeDaemon, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINIDOCK_HOST", f"unix://{daemon.path}")
    assert fast.output(["ps"]) == click_output(daemon.path, ["ps"])[1]
    monkeypatch.setenv("MINIDOCK_EXPLAIN", "1")
    assert fast.output(["ps"]) is None


def click_flags(command: click.Command) -> set[str]:
    return {name for p in command.params if isinstance(p, click.Option) for name in p.opts + p.secondary_opts}


def test_fast_flags_are_a_subset_of_clicks() -> None:
    assert set(fast.PS_FLAGS) <= click_flags(listing.ps)
    assert set(fast.NETWORK_LS_FLAGS) <= click_flags(networks.network_ls)
    assert set(fast.GLOBAL_FLAGS) <= click_flags(main.cli)
    for flags, command in ((fast.PS_FLAGS, listing.ps), (fast.NETWORK_LS_FLAGS, networks.network_ls)):
        for p in command.params:  # each fast flag sets the option click's flag sets
            if isinstance(p, click.Option):
                assert {flags[o] for o in p.opts if o in flags} in ({p.name.replace("show_", "")}, set())


def test_encoder_and_decoder_are_json_s() -> None:
    for obj in (INSPECT, CONTAINERS, NETWORKS, [], {}, [1.0, 1e300, -0.0, "\u0000\x7f\ud7ff"]):
        assert fast.dumps_indent4(obj) == json.dumps(obj, indent=4)
        assert fast.loads(json.dumps(obj)) == obj
    assert fast.dumps_indent4([float("nan"), float("inf")]) == json.dumps([float("nan"), float("inf")], indent=4)
    with pytest.raises(fast.Fallback):
        fast.loads('{"a": 1} x')


def test_format_ports_column_groups_ranges_as_docker() -> None:
    many = [{"PrivatePort": p, "Type": t, "IP": ip, "PublicPort": pub}
            for p, t, ip, pub in ((5000, "tcp", "", 0), (9000, "tcp", "0.0.0.0", 9000), (9002, "tcp", "0.0.0.0", 9002),
                                  (9001, "tcp", "0.0.0.0", 9001), (53, "udp", "::", 53), (80, "tcp", "0.0.0.0", 8080),
                                  (7, "sctp", "", 0), (8, "sctp", "", 0), (10, "sctp", "", 0))]
    assert format.displayable(many) == ("7-8/sctp, 10/sctp, [::]:53->53/udp, 5000/tcp, "
                                        "0.0.0.0:9000-9002->9000-9002/tcp, 0.0.0.0:8080->80/tcp")


def test_command_column_is_json_dumps() -> None:
    for cmd in ("sleep 1", 'echo "x"', "tab\tand é \u2603 and a very long command line"):
        assert format.encode_basestring(format.truncate_command(cmd, False)) == json.dumps(
            format.truncate_command(cmd, False), ensure_ascii=False)


def test_api_version_matches_the_client() -> None:
    assert Client("unix:///x").prefix == f"/v{fast.API_VERSION}"


def test_fast_road_imports_no_click_json_re_or_service() -> None:
    code = ("import sys; from minidock.cli import entry, fast; "
            "print(' '.join(sorted(m for m in sys.modules)))")
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True).stdout.split())
    for banned in ("click", "json", "re", "typing", "http.client", "socket", "asyncio", "netaddr",
                   "minidock.gotemplate", "minidock.client", "minidock.service", "minidock.store"):
        assert banned not in loaded, banned


def test_ps_imports_only_its_own_command_module() -> None:
    code = ("import sys; from minidock.cli import main; main.cli.get_command(None, 'ps'); "
            "print(' '.join(sorted(m for m in sys.modules)))")
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True).stdout.split())
    assert "minidock.cli.listing" in loaded
    for banned in ("minidock.cli.containers", "minidock.cli.networks", "minidock.cli.compose",
                   "minidock.cli.system", "minidock.gotemplate", "netaddr", "asyncio", "minidock.service",
                   "minidock.daemon", "minidock.kernel", "minidock.store", "minidock.steps"):
        assert banned not in loaded, banned

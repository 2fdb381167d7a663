"""The pure parts of issue 20's container fidelity: create-time settings as
moby checks and fills them, Docker's json-file log lines read back, detach
keys as term.ToBytes parses them, /containers/json filters."""

from __future__ import annotations

import io
import json
import struct

import pytest

from minidock.errors import InvalidParameter
from minidock.kernel import launcher
from minidock.model import HostConfig
from minidock.service import escape, listing, logs, settings


def given(hc: dict) -> dict:
    return settings.given_host_config(hc, HostConfig.modelled_keys())


def test_host_config_kept_with_moby_defaults_and_checks() -> None:
    g = given({"Memory": 64 << 20, "PidMode": "host", "LogConfig": {"Type": "", "Config": {"max-file": "3"}},
               "GroupAdd": [1000], "NetworkMode": "bridge"})
    assert g["MemorySwap"] == 128 << 20 and g["ShmSize"] == 64 << 20 and g["GroupAdd"] == ["1000"]
    assert g["LogConfig"] == {"Type": "json-file", "Config": {"max-file": "3"}} and "NetworkMode" not in g
    shown = settings.inspect_host_config(g)
    assert shown["PidMode"] == "host" and shown["IpcMode"] == "private" and shown["CpuShares"] == 0
    cases = [({"LogConfig": {"Type": "asdf"}}, "logger: no log driver named 'asdf' is registered"),
             ({"LogConfig": {"Type": "json-file", "Config": {"nope": "1"}}}, "unknown log opt 'nope'"),
             ({"Memory": 1024}, "Minimum memory limit allowed is 6MB"),
             ({"PidMode": "bogus"}, "invalid PID mode: bogus"),
             ({"RestartPolicy": {"Name": "always", "MaximumRetryCount": 2}}, "only be used with 'on-failure'"),
             ({"AutoRemove": True, "RestartPolicy": {"Name": "always"}}, "can't create 'AutoRemove'"),
             ({"Memory": "lots"}, "cannot unmarshal str into Go struct field HostConfig.Memory"),
             ({"Runtime": "kata"}, "unknown or invalid runtime name: kata")]
    for hc, message in cases:
        with pytest.raises(InvalidParameter, match=message):
            given(hc)


def test_restart_policy_decisions() -> None:
    assert settings.restart_wanted({"Name": "always"}, 0, 5, False)
    assert not settings.restart_wanted({"Name": "always"}, 0, 0, True)  # a stop or kill ends it
    assert settings.restart_wanted({"Name": "on-failure", "MaximumRetryCount": 2}, 1, 1, False)
    assert not settings.restart_wanted({"Name": "on-failure", "MaximumRetryCount": 2}, 1, 2, False)
    assert not settings.restart_wanted({"Name": "on-failure"}, 0, 0, False)


def test_log_lines_round_trip_and_render_as_docker() -> None:
    ns = 1_700_000_000_123_456_789
    data = logs.encode(b"one\ntwo\n\xff", "stderr", ns)
    entries = logs.history(io.BytesIO(data), logs.Selection())
    assert [e.data for e in entries] == [b"one\n", b"two\n", b"\xff"]  # not UTF-8, kept
    assert logs.stamp(ns) == "2023-11-14T22:13:20.123456789Z" and logs.parse_stamp(logs.stamp(ns)) == ns
    sel = logs.Selection(timestamps=True)
    stamped = b"2023-11-14T22:13:20.123456789Z one\n"
    assert sel.render(entries[0], tty=False) == struct.pack(">BxxxL", 2, len(stamped)) + stamped
    assert logs.history(io.BytesIO(data), logs.Selection(frozenset({"stdout"}))) == []
    assert [e.data for e in logs.history(io.BytesIO(data), logs.Selection(tail=1))] == [b"\xff"]
    assert logs.parse_time("1.5", "since") == 1_500_000_000
    # the launcher's copier writes the same lines the daemon reads
    line = launcher.log_entry(b"hi\n", "stdout", ns)
    assert json.loads(line) == {"log": "hi\n", "stream": "stdout", "time": "2023-11-14T22:13:20.123456789Z"}


def test_detach_keys_as_docker_parses_and_matches_them() -> None:
    assert escape.parse_keys("") == b"\x10\x11" and escape.parse_keys("ctrl-x,a") == b"\x18a"
    assert escape.parse_keys("ctrl-@,ctrl-[") == b"\x00\x1b"
    with pytest.raises(InvalidParameter, match=r"Invalid detach keys \(ctrl-1\) provided"):
        escape.parse_keys("ctrl-1")
    esc = escape.Escape(b"\x10\x11")
    assert esc.feed(b"ab\x10") == b"ab" and not esc.detached  # a started sequence is held back
    assert esc.feed(b"c") == b"\x10c"  # and given back when it does not go on
    assert esc.feed(b"\x10\x11tail") == b"" and esc.detached


def test_container_list_filters_are_checked() -> None:
    assert listing.parse_filters('{"name": {"web": true}, "status": ["exited"]}') == {
        "name": ["web"], "status": ["exited"]}
    for raw, message in (('{"bogus": ["1"]}', "invalid filter 'bogus'"),
                         ('{"status": ["sleeping"]}', "invalid filter 'status=sleeping'"),
                         ("[1]", "invalid filter")):
        with pytest.raises(InvalidParameter, match=message):
            listing.parse_filters(raw)


def test_launcher_user_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    files = {"/etc/passwd": "root:x:0:0:root:/root:/bin/sh\npostgres:x:70:70::/var/lib/postgresql:/bin/sh\n",
             "/etc/group": "root:x:0:root\nwheel:x:10:root\naudio:x:18:postgres\n"}
    monkeypatch.setattr(launcher, "_entries", lambda path: [ln.split(":") for ln in files[path].splitlines()])
    assert launcher.lookup_user("", []) == (0, 0, [0, 10], "/root")
    assert launcher.lookup_user("postgres", ["1000", "wheel"]) == (70, 70, [18, 1000, 10], "/var/lib/postgresql")
    assert launcher.lookup_user("1234:5678", []) == (1234, 5678, [], "/")
    with pytest.raises(OSError, match="unable to find user nobody2"):
        launcher.lookup_user("nobody2", [])

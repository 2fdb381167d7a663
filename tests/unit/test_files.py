"""Unit tests for minidock.service.files: /etc/hosts, /etc/resolv.conf, --add-host."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import pytest

from minidock.service import files
from minidock.service.lifecycle import _write

LOCALHOST_LINES = [
    "127.0.0.1\tlocalhost",
    "::1\tlocalhost ip6-localhost ip6-loopback",
    "fe00::0\tip6-localnet",
    "ff00::0\tip6-mcastprefix",
    "ff02::1\tip6-allnodes",
    "ff02::2\tip6-allrouters",
]


def test_hosts_layout_is_dockers() -> None:
    text = files.hosts(own=[("172.17.0.2", "c0ffee123456")],
                       extra=[("db", "10.0.0.5"), ("api web", "172.17.0.9")])
    assert text == "\n".join([
        *LOCALHOST_LINES,
        "10.0.0.5\tdb",
        "172.17.0.9\tapi web",
        "172.17.0.2\tc0ffee123456",
    ]) + "\n"


def test_hosts_lines_are_tab_separated_address_first() -> None:
    text = files.hosts(own=[("172.18.0.3", "web")], extra=[("gw", "172.18.0.1")])
    assert text.endswith("\n")
    for line in text.splitlines():
        address, names = line.split("\t")  # exactly one tab per line
        ipaddress.ip_address(address)
        assert names and names == names.strip()


def test_hosts_without_own_address_has_only_localhost_and_extras() -> None:
    assert files.hosts([], []).splitlines() == LOCALHOST_LINES
    assert files.hosts([], [("h", "1.2.3.4")]).splitlines()[-1] == "1.2.3.4\th"


def test_host_nameservers_reads_only_nameserver_lines() -> None:
    conf = ("# generated\nsearch lan\nnameserver 127.0.0.53\n  nameserver 10.0.0.1  # comment\n"
            "nameserver\noptions edns0\nnameserver fd00::1\n")
    assert files.host_nameservers(conf) == ["127.0.0.53", "10.0.0.1", "fd00::1"]


def test_resolv_conf_drops_loopback_nameservers() -> None:
    text = files.resolv_conf(["127.0.0.53", "10.0.0.1", "127.0.1.1", "::1", "1.1.1.1"])
    assert text == "nameserver 10.0.0.1\nnameserver 1.1.1.1\n"


def test_resolv_conf_search_and_options() -> None:
    assert files.resolv_conf(["9.9.9.9"], search=["corp.example", "lan"], options=["ndots:0"]) == (
        "nameserver 9.9.9.9\nsearch corp.example lan\noptions ndots:0\n")
    assert files.resolv_conf([]) == ""


@pytest.mark.parametrize(("spec", "expected"), [
    ("db:10.0.0.5", ("db", "10.0.0.5")),
    ("db=10.0.0.5", ("db", "10.0.0.5")),
    ("v6host:fd00::5", ("v6host", "fd00::5")),  # only the first ':' separates
    ("v6host=fd00::5", ("v6host", "fd00::5")),
])
def test_parse_extra_host(spec: str, expected: tuple[str, str]) -> None:
    assert files.parse_extra_host(spec, None) == expected


def test_parse_extra_host_substitutes_host_gateway() -> None:
    assert files.parse_extra_host("host.docker.internal:host-gateway", "172.17.0.1") == \
        ("host.docker.internal", "172.17.0.1")
    assert files.parse_extra_host("gw=host-gateway", "10.0.0.1") == ("gw", "10.0.0.1")
    with pytest.raises(ValueError, match="host-gateway"):
        files.parse_extra_host("gw:host-gateway", None)


@pytest.mark.parametrize("spec", ["justaname", "name:", ":1.2.3.4", "=1.2.3.4", ""])
def test_parse_extra_host_bad_format(spec: str) -> None:
    with pytest.raises(ValueError, match="bad format for add-host"):
        files.parse_extra_host(spec, "172.17.0.1")


def test_etc_files_are_written_in_place_truncated_and_0644(tmp_path: Path) -> None:
    """The start's writer of /etc/hosts and the like: the same inode (a running container has
    it bind-mounted), no tail left of a longer text, mode 0644 whatever it was made with."""
    path = tmp_path / "hosts"
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)
    inode = path.stat().st_ino
    _write(str(path), "127.0.0.1\tlocalhost\n172.17.0.2\tc0ffee123456\n")
    assert path.read_text() == "127.0.0.1\tlocalhost\n172.17.0.2\tc0ffee123456\n"
    assert path.stat().st_mode & 0o7777 == 0o644
    _write(str(path), "127.0.0.1\tlocalhost\n")
    assert path.read_text() == "127.0.0.1\tlocalhost\n"
    assert path.stat().st_ino == inode

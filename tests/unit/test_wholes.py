"""The pure parts of a container's whole-container endpoints: the changes walk
of an overlay's upper directory, commit's Dockerfile changes, update's checks
(Docker's words), and the numbers `stats` prints."""

from __future__ import annotations

import os
import stat

import pytest

from minidock.cli.wholes import _human, ram_in_bytes, restart_policy, stats_row
from minidock.errors import Conflict, InvalidParameter
from minidock.model import Container, HostConfig
from minidock.service.containerfs import apply_changes, walk_changes
from minidock.service.resources import _checked_update


def _tree(root: str, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)


def test_changes_walk_reports_added_modified_and_leaves_out_the_launchers_files(tmp_path: object) -> None:
    lower, upper = os.path.join(str(tmp_path), "lower"), os.path.join(str(tmp_path), "upper")
    _tree(lower, {"etc/passwd": "root\n", "bin/sh": "", "var/log/old": "x"})
    _tree(upper, {"made.txt": "new", "etc/hosts": "127.0.0.1 localhost\n", "etc/resolv.conf": "",
                  "var/log/old": "changed", "var/new/f": "x"})
    changes = list(walk_changes(upper, lower))
    assert {"Path": "/made.txt", "Kind": 1} in changes
    assert {"Path": "/var/log/old", "Kind": 0} in changes
    assert {"Path": "/var/new", "Kind": 1} in changes and {"Path": "/var/new/f", "Kind": 1} in changes
    assert not any(c["Path"].startswith("/etc") for c in changes)  # only the launcher's files are there
    assert [c["Path"] for c in changes] == sorted(c["Path"] for c in changes)  # walk order


@pytest.mark.skipif(os.geteuid() != 0, reason="a whiteout is a character device: mknod needs root")
def test_changes_walk_reports_a_whiteout_as_deleted_and_its_directory_changed(tmp_path: object) -> None:
    lower, upper = os.path.join(str(tmp_path), "lower"), os.path.join(str(tmp_path), "upper")
    _tree(lower, {"etc/group": "root:x:0:\n", "etc/passwd": ""})
    os.makedirs(os.path.join(upper, "etc"))
    os.mknod(os.path.join(upper, "etc/group"), stat.S_IFCHR | 0o600, os.makedev(0, 0))
    assert list(walk_changes(upper, lower)) == [{"Path": "/etc", "Kind": 0}, {"Path": "/etc/group", "Kind": 2}]


def test_commit_changes_as_dockerfile_instructions() -> None:
    out = apply_changes({"Cmd": ["sh"], "Env": ["PATH=/bin", "A=1"]},
                        ["EXPOSE 8000 53/udp", 'CMD ["bash"]', "ENV A=2 B=3", "LABEL team=net",
                         "ENTRYPOINT /start", "WORKDIR /srv"])
    assert out["ExposedPorts"] == {"8000/tcp": {}, "53/udp": {}}
    assert out["Cmd"] == ["bash"] and out["Entrypoint"] == ["/bin/sh", "-c", "/start"]
    assert out["Env"] == ["PATH=/bin", "A=2", "B=3"] and out["Labels"] == {"team": "net"}
    assert out["WorkingDir"] == "/srv"
    with pytest.raises(InvalidParameter, match="from is not a valid change command"):
        apply_changes({}, ["FROM busybox"])


def _container(**given: object) -> Container:
    return Container(id="c" * 64, name="u", created=0, image="busybox", image_name="busybox", lower="/",
                     argv=["sh"], config={}, host_config=HostConfig(given=dict(given)))


def test_update_checks_are_dockers() -> None:
    with pytest.raises(InvalidParameter, match="Minimum memory limit allowed is 6MB"):
        _checked_update(_container(), {"Memory": 1 << 20})
    with pytest.raises(InvalidParameter, match="Minimum memoryswap limit should be larger than memory limit"):
        _checked_update(_container(), {"Memory": 64 << 20, "MemorySwap": 32 << 20})
    with pytest.raises(Conflict, match="update the memoryswap at the same time"):
        _checked_update(_container(), {"Memory": 64 << 20})  # no swap limit was set: Docker refuses
    # a create with Memory alone got twice that as swap: a smaller Memory fits
    assert _checked_update(_container(Memory=400 << 20), {"Memory": 300 << 20}) == \
        {"Memory": 300 << 20, "MemorySwap": 800 << 20}
    with pytest.raises(InvalidParameter, match="maximum retry count can only be used with 'on-failure'"):
        _checked_update(_container(), {"RestartPolicy": {"Name": "always", "MaximumRetryCount": 2}})
    with pytest.raises(InvalidParameter, match="unknown policy 'sometimes'"):
        _checked_update(_container(), {"RestartPolicy": {"Name": "sometimes"}})
    assert _checked_update(_container(), {"CpuShares": 3, "RestartPolicy": {"Name": "on-failure",
                                                                             "MaximumRetryCount": 42}}) == \
        {"CpuShares": 3, "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 42}}
    c = _container()
    c.host_config.auto_remove = True
    with pytest.raises(Conflict, match="AutoRemove is enabled"):
        _checked_update(c, {"RestartPolicy": {"Name": "always"}})


def test_stats_row_computes_as_the_docker_cli() -> None:
    prev = {"cpu_stats": {"cpu_usage": {"total_usage": 1_000_000_000}, "system_cpu_usage": 100_000_000_000}}
    now = {"id": "a" * 64, "name": "/web", "read": "2026-01-01T00:00:00.0Z",
           "cpu_stats": {"cpu_usage": {"total_usage": 1_500_000_000}, "system_cpu_usage": 102_000_000_000,
                         "online_cpus": 2},
           "memory_stats": {"usage": 3 << 20, "limit": 1 << 30, "stats": {"inactive_file": 1 << 20}},
           "networks": {"eth0": {"rx_bytes": 1500, "tx_bytes": 648}, "eth1": {"rx_bytes": 500, "tx_bytes": 0}},
           "blkio_stats": {"io_service_bytes_recursive": [{"op": "read", "value": 4096},
                                                          {"op": "write", "value": 16384}]},
           "pids_stats": {"current": 3}}
    row = stats_row(now, prev)
    assert row["CPUPerc"] == "50.00%"  # 0.5 s of CPU over 2 s of both CPUs' time, times 2 CPUs
    assert row["MemUsage"] == "2MiB / 1GiB" and row["MemPerc"] == "0.20%"
    assert row["NetIO"] == "2kB / 648B" and row["BlockIO"] == "4.1kB / 16.4kB" and row["PIDs"] == "3"


def test_sizes_and_flags_as_docker_parses_them() -> None:
    assert ram_in_bytes("300m") == 300 << 20 and ram_in_bytes("1g") == 1 << 30 and ram_in_bytes("512") == 512
    assert _human(1234) == "1.23kB" and _human(1.5 * (1 << 20), True) == "1.5MiB"
    assert restart_policy("on-failure:3") == {"Name": "on-failure", "MaximumRetryCount": 3}

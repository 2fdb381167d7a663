"""`minidock topology` draws what the kernel holds: every veth and address it
names is checked against `ip` in the namespaces themselves."""

from __future__ import annotations

import re
import shutil

import pytest

from tests.sandbox import Sandbox


def test_topology_text_and_dot_match_the_kernel(md: Sandbox, tmp_path: object) -> None:
    md.cli("network", "create", "--subnet", "172.30.0.0/16", "front")
    md.cli("network", "create", "--internal", "--subnet", "172.31.0.0/16", "back")
    try:
        md.cli("run", "-d", "--name", "web", "--network", "front", "-p", "8080:80", "busybox", "sleep", "300")
        md.cli("network", "connect", "back", "web")
        md.cli("run", "-d", "--name", "old", "busybox", "sleep", "300")
        md.cli("run", "-d", "--name", "side", "--network", "container:web", "busybox", "sleep", "300")
        md.cli("run", "-d", "--name", "alone", "--network", "none", "busybox", "sleep", "300")
        out = md.cli("topology").out
        lines = out.splitlines()
        assert lines[0] == "host (the daemon's network namespace)"
        assert re.search(r"^├── minidock0  network bridge  172\.17\.0\.0/16  gateway 172\.17\.0\.1$", out, re.M)
        assert re.search(r"br-[0-9a-f]{12}  network front  172\.30\.0\.0/16  gateway 172\.30\.0\.1$", out, re.M)
        assert re.search(r"network back  172\.31\.0\.0/16  gateway 172\.31\.0\.1  \[internal: no way out\]", out)
        # each veth line names the host end, the container end and its address: all as the kernel has them
        veths = re.findall(r"(veth[0-9a-f]{7}) ═ (eth\d) (\S+)  (\w+)  \[netns (md-\w+)\]", out)
        assert sorted(v[3] for v in veths) == ["old", "web", "web"]
        for veth, ifname, cidr, name, ns in veths:
            assert f"minidock:container {name}" in md.host("ip", "-d", "link", "show", veth).out
            assert f"inet {cidr} " in md.host("ip", "netns", "exec", ns, "ip", "-4", "addr", "show", ifname).out
        assert "published 0.0.0.0:8080/tcp → 80/tcp" in out
        assert "side shares the network namespace of web  [netns md-web]" in out
        assert "network none (loopback only): alone  [netns md-alone]" in out
        assert "  bridge ✕ front" in out and "  back ✕ front" in out
        dot = md.cli("topology", "--format", "dot").out
        assert dot.startswith("digraph minidock {") and dot.rstrip().endswith("}")
        assert '"cluster_minidock0"' in dot and 'color=red' in dot and 'DNAT → 80' in dot
        if shutil.which("dot"):
            png = f"{tmp_path}/net.png"
            md.cli("topology", "--format", "png", "-o", png)
            with open(png, "rb") as f:
                assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        else:
            r = md.cli("topology", "--format", "png", "-o", f"{tmp_path}/net.png", check=False)
            assert r.code == 1 and "Graphviz is not installed" in r.err
    finally:
        md.cli("rm", "-f", "web", "old", "side", "alone", check=False)
        md.cli("network", "rm", "front", "back", check=False)


@pytest.mark.parametrize("fmt", ["text", "dot"])
def test_topology_of_an_empty_host(md: Sandbox, fmt: str) -> None:
    out = md.cli("topology", "--format", fmt).out
    assert "minidock0" in out and "veth" not in out

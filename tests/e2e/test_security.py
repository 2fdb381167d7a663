"""Security: the socket answers root only (by peer credentials, not by file
mode), the DNS stub answers only inside its containers, the state is private.
(A 127.0.0.1-published port unreachable from another host: test_ports.)"""

from __future__ import annotations

import os
import re
import shutil
import sys

import pytest

from tests.sandbox import Sandbox, sh

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
needs_setpriv = pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) is not installed")


@needs_setpriv
def test_the_socket_refuses_a_non_root_peer_even_when_its_mode_allows(md: Sandbox) -> None:
    os.chmod(md.socket, 0o666)
    parent = os.path.dirname(md.socket)
    mode = os.stat(parent).st_mode & 0o777
    os.chmod(parent, 0o755)
    try:
        r = sh(*NOBODY, sys.executable, "-m", "minidock.cli.main", "-H", f"unix://{md.socket}", "network", "ls",
               check=False)
        assert r.code == 1 and r.err.strip() == "Error response from daemon: permission denied: minidock is for root only", r
        assert md.cli("network", "ls").code == 0  # root still gets in
    finally:
        os.chmod(md.socket, 0o600)
        os.chmod(parent, mode)


def test_the_dns_stub_answers_only_inside_its_containers(md: Sandbox) -> None:
    md.cli("network", "create", "dnsnet")
    try:
        md.cli("run", "-d", "--name", "web", "--network", "dnsnet", "busybox", "sleep", "600")
        md.cli("run", "-d", "--name", "peer", "--network", "dnsnet", "busybox", "sleep", "600")
        web_ip = md.inspect("web", '{{(index .NetworkSettings.Networks "dnsnet").IPAddress}}')
        # inside: the stub answers on 127.0.0.11 and nowhere else
        listening = md.host("ip", "netns", "exec", "md-web", "ss", "-Hlnu").out
        assert re.findall(r"(\S+):53\b", listening) == ["127.0.0.11"], listening
        assert "Address: " in md.cli("exec", "peer", "nslookup", "web").out
        # from a neighbour, web's own address is no resolver; nor is the host
        r = md.cli("exec", "peer", "nslookup", "-timeout=1", "peer", web_ip, check=False)
        assert r.code != 0, r
        assert ":53 " not in md.host("ss", "-Hlnu").out
    finally:
        md.cli("rm", "-f", "web", "peer", check=False)
        md.cli("network", "rm", "dnsnet", check=False)


@needs_setpriv
def test_the_state_directory_is_private(md: Sandbox) -> None:
    md.cli("run", "-d", "--name", "secretive", "busybox", "sh", "-c", "echo s3cret; sleep 600")
    try:
        root = os.path.join(md.root, "state")
        assert os.stat(root).st_mode & 0o777 == 0o700
        log = next(os.path.join(d, f) for d, _, fs in os.walk(os.path.join(root, "containers"))
                   for f in fs if f == "container.log")
        for path in (os.path.join(root, "minidock.db"), log):
            if os.path.exists(path):
                assert os.stat(path).st_mode & 0o077 == 0, path
        world_writable = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs
                          if not os.path.islink(os.path.join(d, f))
                          and os.stat(os.path.join(d, f)).st_mode & 0o002]
        assert world_writable == []
        # whatever a file's own mode, another user cannot reach it
        os.chmod(md.root, 0o755)
        r = sh(*NOBODY, "cat", log, check=False)
        assert r.code != 0 and "Permission denied" in r.err and "s3cret" not in r.out
    finally:
        md.cli("rm", "-f", "secretive")

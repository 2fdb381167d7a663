"""Fuzzing: schemathesis sends requests generated from minidock's OpenAPI
description; a hypothesis state machine drives the model (networks,
containers, connect, disconnect, rm) with valid and invalid values. No request
may crash the daemon (no 5xx, the process lives) or leave the store and the
kernel disagreeing."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest

from tests.sandbox import Sandbox

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed (the test extras)")
hypothesis = pytest.importorskip("hypothesis")
requests = pytest.importorskip("requests")

from hypothesis import HealthCheck, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule  # noqa: E402
from requests.adapters import HTTPAdapter  # noqa: E402
from urllib3.connection import HTTPConnection  # noqa: E402
from urllib3.connectionpool import HTTPConnectionPool  # noqa: E402

SPEC = Path(__file__).resolve().parents[2] / "minidock" / "daemon" / "openapi.yaml"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "30"))


class _UnixConnection(HTTPConnection):
    def __init__(self, path: str, **kw: Any) -> None:
        super().__init__("localhost", **kw)
        self.unix_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(self.unix_path)


class _UnixPool(HTTPConnectionPool):
    def __init__(self, path: str) -> None:
        super().__init__("localhost")
        self.unix_path = path

    def _new_conn(self) -> _UnixConnection:
        return _UnixConnection(self.unix_path)


class _UnixAdapter(HTTPAdapter):
    """requests over the daemon's Unix socket."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.pool = _UnixPool(path)

    def get_connection_with_tls_context(self, *args: Any, **kwargs: Any) -> _UnixPool:
        return self.pool

    def get_connection(self, *args: Any, **kwargs: Any) -> _UnixPool:  # older requests
        return self.pool


def unix_session(path: str) -> Any:
    s = requests.Session()
    s.mount("http://minidock/", _UnixAdapter(path))
    return s


schema = schemathesis.openapi.from_path(str(SPEC))


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_generated_requests_never_crash_the_daemon(case: Any, md: Sandbox) -> None:
    response = case.call(base_url="http://minidock", session=unix_session(md.socket), timeout=30)
    assert response.status_code < 500, f"{case.method} {case.formatted_path} {case.body!r}: {response.text}"
    assert md.proc is not None and md.proc.poll() is None, "the daemon died"
    if response.status_code >= 400:  # Docker's error shape
        assert set(response.json()) == {"message"} and response.json()["message"]


def test_after_the_fuzz_store_and_kernel_agree(md: Sandbox) -> None:
    assert md.inconsistencies() == []
    md.cli("network", "prune", "-f")


SUBNETS = st.sampled_from(["172.30.0.0/16", "172.31.0.0/24", "10.99.0.0/16", "10.99.0.0/24", "bogus", "",
                           "172.17.0.0/16", "10.0.0.0/33"])
NAMES = st.sampled_from(["a", "b", "c"])


class Model(RuleBasedStateMachine):
    """Networks and containers through the API; after each example the kernel must match the records."""

    md: Sandbox

    def __init__(self) -> None:
        super().__init__()
        from minidock.client import Client, DaemonError

        self.api, self.error = Client(f"unix://{self.md.socket}"), DaemonError

    def call(self, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None) -> Any:
        try:
            return self.api.call(method, path, query, body)
        except self.error as e:
            assert e.status < 500 and e.status != 0, f"{method} {path} {body}: {e.status} {e.message}"
            return None

    @rule(name=NAMES, subnet=SUBNETS, internal=st.booleans())
    def network_create(self, name: str, subnet: str, internal: bool) -> None:
        ipam = {"Config": [{"Subnet": subnet}]} if subnet else {}
        self.call("POST", "/networks/create", None, {"Name": f"net-{name}", "Internal": internal, "IPAM": ipam})

    @rule(name=NAMES, net=st.sampled_from(["net-a", "net-b", "bridge", "none", "nosuch"]),
          port=st.sampled_from(["", "8080", "8081", "99999"]))
    def run(self, name: str, net: str, port: str) -> None:
        host = {"NetworkMode": net, "PortBindings": {"80/tcp": [{"HostPort": port}]} if port else {}}
        made = self.call("POST", "/containers/create", {"name": f"c-{name}"},
                         {"Image": "busybox", "Cmd": ["sleep", "600"], "HostConfig": host})
        if made:
            self.call("POST", f"/containers/{made['Id']}/start")

    @rule(name=NAMES, net=st.sampled_from(["net-a", "net-b", "bridge", "nosuch"]), connect=st.booleans())
    def connect(self, name: str, net: str, connect: bool) -> None:
        self.call("POST", f"/networks/{net}/{'connect' if connect else 'disconnect'}", None, {"Container": f"c-{name}"})

    @rule(name=NAMES)
    def remove(self, name: str) -> None:
        self.call("DELETE", f"/containers/c-{name}", {"force": True})

    @rule(name=NAMES)
    def stop(self, name: str) -> None:
        self.call("POST", f"/containers/c-{name}/stop", {"t": 0})

    @precondition(lambda self: True)
    @rule(name=NAMES)
    def network_rm(self, name: str) -> None:
        self.call("DELETE", f"/networks/net-{name}")

    @invariant()
    def alive(self) -> None:
        assert self.md.proc is not None and self.md.proc.poll() is None, "the daemon died"

    def teardown(self) -> None:
        problems = self.md.inconsistencies()
        for c in self.api.call("GET", "/containers/json", {"all": True}):
            self.call("DELETE", f"/containers/{c['Id']}", {"force": True})
        self.call("POST", "/networks/prune")
        assert problems == []


def test_the_model_under_random_operations(md: Sandbox) -> None:
    Model.md = md
    Model.TestCase.settings = settings(max_examples=max(EXAMPLES // 3, 5), stateful_step_count=12, deadline=None,
                                       derandomize=True, suppress_health_check=list(HealthCheck))
    Model.TestCase().runTest()

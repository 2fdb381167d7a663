"""Unit tests for the click CLI (minidock.cli.*): the create body and option parsing (no daemon)."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from minidock.cli import common
from minidock.cli import containers as cli_main
from minidock.cli import main as cli_root
from minidock.cli.containers import create_body
from minidock.client import Client


def parsed(*argv: str) -> dict[str, Any]:
    """The options `minidock run ARGV` would hand to create_body, parsed by click itself."""
    ctx = cli_main.run.make_context("run", list(argv))
    return dict(ctx.params)


def test_minimal_body() -> None:
    body = create_body(parsed("alpine"))
    assert body["Image"] == "alpine"
    assert body["Cmd"] is None
    assert body["HostConfig"]["NetworkMode"] == "default"
    assert body["NetworkingConfig"] == {}
    assert "Entrypoint" not in body


def test_command_after_image_is_not_parsed_as_options() -> None:
    body = create_body(parsed("-d", "alpine", "ping", "-c", "1", "-w", "2", "host"))
    assert body["Cmd"] == ["ping", "-c", "1", "-w", "2", "host"]
    assert body["WorkingDir"] == ""
    assert body["AttachStdin"] is False


def test_env_without_value_comes_from_the_environment_or_is_dropped(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MD_TEST_SET", "from-env")
    monkeypatch.delenv("MD_TEST_UNSET", raising=False)
    body = create_body(parsed("-e", "A=1", "-e", "MD_TEST_SET", "-e", "MD_TEST_UNSET",
                              "-e", "EMPTY=", "alpine"))
    assert body["Env"] == ["A=1", "MD_TEST_SET=from-env", "EMPTY="]


def test_ip_goes_to_the_endpoint_config_of_the_chosen_network() -> None:
    body = create_body(parsed("--network", "appnet", "--ip", "10.1.0.50", "alpine"))
    assert body["NetworkingConfig"] == {
        "EndpointsConfig": {"appnet": {"IPAMConfig": {"IPv4Address": "10.1.0.50"}}}}
    assert body["HostConfig"]["NetworkMode"] == "appnet"


def test_ip_on_the_default_network_is_keyed_bridge() -> None:
    body = create_body(parsed("--ip", "172.17.0.50", "alpine"))
    assert list(body["NetworkingConfig"]["EndpointsConfig"]) == ["bridge"]


def test_aliases_go_to_the_endpoint_config() -> None:
    body = create_body(parsed("--net", "appnet", "--network-alias", "db", "--net-alias", "pg",
                              "alpine"))
    assert body["NetworkingConfig"]["EndpointsConfig"]["appnet"] == {"Aliases": ["db", "pg"]}


def test_publish_with_host_network_exits_125(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        create_body(parsed("--network", "host", "-p", "8080:80", "alpine"))
    assert exc.value.code == 125
    assert '"host" network_mode is incompatible with port_bindings' in capsys.readouterr().err


def test_aliases_on_the_default_bridge_exit_125() -> None:
    with pytest.raises(SystemExit) as exc:
        create_body(parsed("--network-alias", "x", "alpine"))
    assert exc.value.code == 125


def test_host_config_lists_labels_and_flags() -> None:
    body = create_body(parsed("-it", "--rm", "--dns", "9.9.9.9", "--add-host", "db:10.0.0.5",
                              "--link", "web:w", "-l", "a=1", "-l", "flag", "-h", "box",
                              "-w", "/srv", "alpine", "sh"))
    hc = body["HostConfig"]
    assert hc["AutoRemove"] is True
    assert hc["Dns"] == ["9.9.9.9"]
    assert hc["ExtraHosts"] == ["db:10.0.0.5"]
    assert hc["Links"] == ["web:w"]
    assert body["Labels"] == {"a": "1", "flag": ""}
    assert body["Hostname"] == "box" and body["WorkingDir"] == "/srv"
    assert body["Tty"] and body["OpenStdin"] and body["StdinOnce"] and body["AttachStdin"]


def test_entrypoint_empty_string_clears_it() -> None:
    assert create_body(parsed("--entrypoint", "", "alpine"))["Entrypoint"] == []
    assert create_body(parsed("--entrypoint", "/bin/sh", "alpine"))["Entrypoint"] == ["/bin/sh"]


# --- through click's runner ---------------------------------------------------------------


def test_run_help() -> None:
    result = CliRunner().invoke(cli_root.cli, ["run", "--help"])
    assert result.exit_code == 0, result.output
    assert "Create and start a container" in result.output
    for opt in ("--network", "--ip", "--add-host", "--publish", "--env"):
        assert opt in result.output


class _Sent(Exception):
    """Raised by the fake Ctx.call to stop the command after its first request."""


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, Any]]:
    recorded: list[tuple[str, str, Any]] = []

    def fake_call(self: common.Ctx, method: str, path: str, query: Any = None,
                  body: Any = None, prefix: str = "", code: int = 1) -> Any:
        recorded.append((method, path, body))
        raise _Sent

    def fake_client_call(self: Client, method: str, path: str, query: Any = None, body: Any = None) -> Any:
        recorded.append((method, path, body))
        raise _Sent

    monkeypatch.setattr(common.Ctx, "call", fake_call)
    monkeypatch.setattr(Client, "call", fake_client_call)  # run's create goes through the client
    return recorded


def test_exec_stops_option_parsing_at_the_container(calls: list[tuple[str, str, Any]]) -> None:
    result = CliRunner().invoke(cli_root.cli, ["exec", "c1", "nc", "-w", "2", "host", "80"])
    assert isinstance(result.exception, _Sent), result.output
    [(method, path, body)] = calls
    assert (method, path) == ("POST", "/containers/c1/exec")
    assert body["Cmd"] == ["nc", "-w", "2", "host", "80"]
    assert body["WorkingDir"] == ""


def test_exec_options_before_the_container_still_apply(calls: list[tuple[str, str, Any]]) -> None:
    result = CliRunner().invoke(cli_root.cli,
                                ["exec", "-w", "/tmp", "-e", "X=1", "-it", "c1", "pwd"])
    assert isinstance(result.exception, _Sent), result.output
    body = calls[0][2]
    assert body["WorkingDir"] == "/tmp" and body["Env"] == ["X=1"]
    assert body["Cmd"] == ["pwd"] and body["Tty"] is True and body["AttachStdin"] is True


def test_exec_needs_a_command(calls: list[tuple[str, str, Any]]) -> None:
    result = CliRunner().invoke(cli_root.cli, ["exec", "c1"])
    assert result.exit_code == 2 and calls == []


def test_run_sends_the_create_body_to_the_daemon(calls: list[tuple[str, str, Any]]) -> None:
    result = CliRunner().invoke(cli_root.cli, ["run", "--name", "web", "--net", "appnet",
                                               "alpine", "nc", "-l", "-p", "80"])
    assert isinstance(result.exception, _Sent), result.output
    [(method, path, body)] = calls
    assert (method, path) == ("POST", "/containers/create")
    assert body["Cmd"] == ["nc", "-l", "-p", "80"]
    assert body["HostConfig"]["PortBindings"] == {}  # -p after the image belongs to nc


def test_lazy_commands_are_listed_and_suggested() -> None:
    result = CliRunner().invoke(cli_root.cli, ["--help"])
    for name in ("ps", "run", "network", "images", "compose", "daemon", "topology"):
        assert f"\n  {name} " in result.output
    result = CliRunner().invoke(cli_root.cli, ["networ"])
    assert result.exit_code == 2 and "Did you mean 'network'?" in result.output

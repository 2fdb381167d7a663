"""Compose files as data: variable substitution and the plan for network_mode."""

from __future__ import annotations

import os

import pytest
import yaml

from minidock.compose import ComposeError, _Loader, dotenv, interpolate, plan


def sub(text: str, env: dict[str, str]) -> tuple[str, list[str]]:
    unset: list[str] = []
    return interpolate(text, env, unset), unset


@pytest.mark.parametrize("text,expected", [
    ("plain", "plain"),
    ("$$HOME and $$$$", "$HOME and $$"),
    ("${PORT}:80", "8080:80"),
    ("$PORT/tcp", "8080/tcp"),
    ("${MISSING:-5000}", "5000"),
    ("${EMPTY:-5000}", "5000"),
    ("${EMPTY-5000}", ""),
    ("${PORT:+set}${MISSING:+no}", "set"),
    ("${MISSING:-${PORT}}", "8080"),
])
def test_substitution_follows_compose(text: str, expected: str) -> None:
    assert sub(text, {"PORT": "8080", "EMPTY": ""})[0] == expected


def test_unset_variables_become_blank_and_are_reported() -> None:
    assert sub("a${NOPE}b$NOPE2", {}) == ("ab", ["NOPE", "NOPE2"])


def test_required_variable_names_itself() -> None:
    with pytest.raises(ComposeError, match="required variable SUBNET is missing a value: set it in .env"):
        sub("${SUBNET:?set it in .env}", {"SUBNET": ""})


def test_dotenv_reads_quotes_comments_and_export(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), ".env")
    with open(path, "w") as f:
        f.write("# course settings\nA=1\nexport B='two words'\nC=\"x\"\n\nnot a line\n")
    assert dotenv(path) == {"A": "1", "B": "two words", "C": "x"}


def load_text(text: str, project: str = "lab") -> object:
    return plan(yaml.load(text, Loader=_Loader), project)  # noqa: S506 - a SafeLoader subclass


SIDECAR = """\
services:
  app:
    network_mode: service:db
  db:
    container_name: the-db
"""


def test_service_network_mode_joins_the_other_container_and_starts_after_it() -> None:
    pj = load_text(SIDECAR)
    order = [s.name for s in pj.services]  # type: ignore[attr-defined]
    assert order == ["db", "app"]
    app = pj.services[1]  # type: ignore[attr-defined]
    assert app.body["HostConfig"]["NetworkMode"] == "container:the-db"
    assert app.networks == {}


@pytest.mark.parametrize("extra,message", [
    ("    hostname: h\n", "services.app.hostname conflicting options: hostname and the network mode (line 4)"),
    ("    dns: [192.0.2.1]\n", "services.app.dns conflicting options: dns and the network mode (line 4)"),
    ("    expose: ['80']\n", "services.app.expose conflicting options: port exposing and the container type "
                             "network mode (line 4)"),
])
def test_what_the_owner_decides_is_refused_with_dockers_words(extra: str, message: str) -> None:
    text = SIDECAR.replace("service:db\n", "service:db\n" + extra)
    with pytest.raises(ComposeError) as e:
        load_text(text)
    assert str(e.value) == message


def test_unknown_service_in_network_mode() -> None:
    with pytest.raises(ComposeError, match='depends on undefined service "nope"'):
        load_text(SIDECAR.replace("service:db", "service:nope"))

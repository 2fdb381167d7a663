"""What every click command module shares: the per-invocation context (the
daemon connection), one-line failures, Docker's tables and `--format`
templates, `-f key=value` filters. gotemplate is imported only when a
template is given.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, NoReturn

import click

from ..client import Client, DaemonError
from .format import default_table, human_duration

CONTEXT = {"help_option_names": ["--help"], "max_content_width": 100}
# like docker, option parsing stops at the image (or container): the rest is the command
COMMAND_CONTEXT = {**CONTEXT, "allow_interspersed_args": False}


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


def daemon_error(e: DaemonError, prefix: str = "") -> str:
    if e.status == 0:
        return prefix + e.message
    return f"{prefix}Error response from daemon: {e.message}"


class Ctx:
    def __init__(self, host: str | None, explain: bool = False) -> None:
        self.host = host
        self.explain = explain
        self._client: Client | None = None

    @property
    def api(self) -> Client:
        if self._client is None:
            try:
                self._client = Client(self.host, self.explain)
            except DaemonError as e:
                fail(e.message)
        return self._client

    def call(self, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None,
             prefix: str = "", code: int = 1) -> Any:
        try:
            return self.api.call(method, path, query, body)
        except DaemonError as e:
            fail(daemon_error(e, prefix), code)


pass_ctx = click.make_pass_decorator(Ctx)


def create_container(api: Client, query: dict[str, Any] | None, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """POST /containers/create, as `docker run` does it: an image the store lacks is
    "pulled" first, then the create is sent again. minidock's pull maps the name onto a
    built-in root filesystem (any name, for our own CLI: scenario G); the note it answers
    is returned, to be told once: the next run finds the tag in the store.
    """
    import json

    try:
        return api.call("POST", "/containers/create", query, body), ""
    except DaemonError as e:
        if e.status != 404 or not e.message.startswith("No such image"):
            raise
    resp = api.stream("POST", "/images/create", {"fromImage": body["Image"], "minidock-any-name": "1"})
    try:
        lines = [json.loads(line) for line in resp.read().splitlines() if line.strip()]
    finally:
        resp.close()
    note = next((line["status"] for line in lines if "not in the local store" in line.get("status", "")), "")
    return api.call("POST", "/containers/create", query, body), note


def render_each(fmt: str, items: list[Any]) -> None:
    from .. import gotemplate

    for item in items:
        try:
            click.echo(gotemplate.render(fmt, item))
        except gotemplate.TemplateError as e:
            fail(str(e))


def table(fmt: str | None, rows: list[dict[str, Any]], default: list[tuple[str, str]]) -> None:
    """Docker's `ls` output: a default table, `table …` templates or plain templates."""
    if fmt and fmt != "table":
        from .. import gotemplate

        headers = {field: title for title, field in default}
        try:
            if fmt.startswith("table"):
                click.echo(gotemplate.render_table(fmt[len("table"):].lstrip(), rows, headers), nl=False)
            else:
                for row in rows:
                    click.echo(gotemplate.render(gotemplate.unescape_format(fmt), row))
        except gotemplate.TemplateError as e:
            fail(str(e))
        return
    click.echo(default_table(rows, default), nl=False)


def ago(ts: float) -> str:
    return human_duration(time.time() - ts) + " ago"


def parse_filters(values: tuple[str, ...]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for v in values:
        if "=" not in v:
            fail(f'invalid argument "{v}" for "-f, --filter" flag: bad format of filter (expected name=value)')
        k, _, val = v.partition("=")
        out.setdefault(k.strip().lower(), []).append(val)
    return out


def emit(objs: list[Any], fmt: str | None) -> None:
    if fmt:
        render_each(fmt, objs)
    else:
        import json

        click.echo(json.dumps(objs, indent=4))


def emit_found(found: list[Any], errors: list[str], fmt: str | None) -> None:
    """What an inspect of several refs found, then each ref's error; exit 1 if any failed
    (as `docker inspect a b`: the found ones are shown all the same)."""
    emit(found, fmt)
    for e in errors:
        click.echo(e, err=True)
    if errors:
        sys.exit(1)


def inspect_each(c: Ctx, paths: list[str], fmt: str | None) -> None:
    """GET each of `paths` (one object each, as `docker volume inspect a b`) and show them."""
    found, errors = [], []
    for path in paths:
        try:
            found.append(c.api.call("GET", path))
        except DaemonError as e:
            errors.append(daemon_error(e))
    emit_found(found, errors, fmt)


def each(c: Ctx, refs: tuple[str, ...], fn: Callable[[str], None]) -> None:
    """Apply `fn` to every ref, echoing each that worked; exit 1 if any failed (as docker rm a b)."""
    failed = False
    for ref in refs:
        try:
            fn(ref)
            click.echo(ref)
        except DaemonError as e:
            click.echo(daemon_error(e), err=True)
            failed = True
    if failed:
        sys.exit(1)

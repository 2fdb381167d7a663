"""`minidock events`, `minidock rename`, and the `container` group's `prune`
and `rename`: the docker CLI's output, line for line.

    2026-12-06T10:00:00.123456789Z container start 3f2a… (image=alpine, name=web)

`--since` / `--until` take what the docker CLI takes (a Go duration before now,
an RFC 3339 time, unix seconds) and are sent as unix seconds.nanoseconds.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from .. import timestamps
from ..client import DaemonError, q
from .common import CONTEXT, Ctx, daemon_error, fail, parse_filters, pass_ctx


def _filters_json(values: tuple[str, ...]) -> str | None:
    flt = parse_filters(values)
    return json.dumps({k: {v: True for v in vals} for k, vals in flt.items()}) if flt else None


def _when(value: str | None, flag: str) -> str | None:
    if not value:
        return None
    try:
        return timestamps.unix_text(timestamps.parse(value))
    except timestamps.TimeError as e:
        fail(f"minidock: invalid value for --{flag}: {e}", 125)


def pretty(ev: dict[str, Any]) -> str:
    """Docker's line: the local time with nanoseconds, type, action, actor, sorted attributes."""
    ns = ev.get("timeNano") or ev.get("time", 0) * 10**9
    line = (timestamps.rfc3339_nano_fixed(ns) + " " if ns else "") + f"{ev['Type']} {ev['Action']} {ev['Actor']['ID']}"
    attrs = ev["Actor"].get("Attributes") or {}
    if attrs:
        line += " (" + ", ".join(f"{k}={attrs[k]}" for k in sorted(attrs)) + ")"
    return line


def _go_fields(ev: dict[str, Any]) -> dict[str, Any]:
    """The event under the names of Docker's Go type (a template says {{.Scope}}, {{.Actor.ID}})."""
    return {"Status": ev.get("status", ""), "ID": ev.get("id", ""), "From": ev.get("from", ""),
            "Type": ev["Type"], "Action": ev["Action"], "Actor": ev["Actor"], "Scope": ev.get("scope", ""),
            "Time": ev.get("time", 0), "TimeNano": ev.get("timeNano", 0)}


@click.command(context_settings=CONTEXT)
@click.option("--since", default=None, help="Show all events created since timestamp")
@click.option("--until", default=None, help="Stream events until this timestamp")
@click.option("-f", "--filter", "filters", multiple=True, help="Filter output based on conditions provided")
@click.option("--format", "fmt", default=None, help="Format output using a Go template, or json")
@pass_ctx
def events(c: Ctx, since: str | None, until: str | None, filters: tuple[str, ...], fmt: str | None) -> None:
    """Get real time events from the server."""
    query = {"since": _when(since, "since"), "until": _when(until, "until"), "filters": _filters_json(filters)}
    try:
        resp = c.api.stream("GET", "/events", {k: v for k, v in query.items() if v is not None})
    except DaemonError as e:
        fail(daemon_error(e), 1)
    render = None
    if fmt and fmt not in ("json", "{{json .}}"):
        from .. import gotemplate

        def render(ev: dict[str, Any]) -> str:
            try:
                return gotemplate.render(fmt, _go_fields(ev))
            except gotemplate.TemplateError as e:
                fail(f"Error parsing format: {e}", 64)
    try:
        for raw in resp:
            if not raw.strip():
                continue
            ev = json.loads(raw)
            if render is not None:
                click.echo(render(ev))
            elif fmt:
                click.echo(json.dumps(ev, separators=(",", ":")))
            else:
                click.echo(pretty(ev))
            sys.stdout.flush()
    finally:
        resp.close()


def _rename(c: Ctx, old: str, new: str) -> None:
    if not old or not new:
        fail("Error: Neither old nor new names may be empty", 1)
    try:
        c.api.call("POST", f"/containers/{q(old)}/rename", {"name": new})
    except DaemonError as e:
        click.echo(daemon_error(e), err=True)
        fail(f"Error: failed to rename container named {old}", 1)


@click.command(context_settings=CONTEXT)
@click.argument("container")
@click.argument("new_name")
@pass_ctx
def rename(c: Ctx, container: str, new_name: str) -> None:
    """Rename a container."""
    _rename(c, container, new_name)


def human_size(size: float) -> str:
    """go-units' HumanSize: decimal units, four significant digits (6B, 1.234kB)."""
    units = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
    i = 0
    while size >= 1000 and i < len(units) - 1:
        size /= 1000
        i += 1
    return f"{size:.4g}{units[i]}"


@click.group(context_settings=CONTEXT)
def container() -> None:
    """Manage containers."""


@container.command("rename", context_settings=CONTEXT)
@click.argument("old")
@click.argument("new_name")
@pass_ctx
def container_rename(c: Ctx, old: str, new_name: str) -> None:
    """Rename a container."""
    _rename(c, old, new_name)


@container.command("prune", context_settings=CONTEXT)
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.option("--filter", "filters", multiple=True, help='Provide filter values (e.g. "until=<timestamp>")')
@pass_ctx
def container_prune(c: Ctx, force: bool, filters: tuple[str, ...]) -> None:
    """Remove all stopped containers."""
    if not force:
        click.echo("WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ",
                   nl=False)
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            fail("container prune has been cancelled", 1)
    flt = _filters_json(filters)
    report = c.call("POST", "/containers/prune", {"filters": flt} if flt else None) or {}
    deleted = report.get("ContainersDeleted") or []
    reclaimed = 0
    if deleted:
        click.echo("Deleted Containers:\n" + "".join(cid + "\n" for cid in deleted))
        reclaimed = report.get("SpaceReclaimed", 0)
    click.echo(f"Total reclaimed space: {human_size(reclaimed)}")

"""Read-only container commands: ps, inspect, port, logs, top. `ps`
and `inspect` have a second, lean implementation in fast.py for their
common forms; the two must print the same bytes.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from ..client import DaemonError, q
from .common import CONTEXT, Ctx, daemon_error, emit_found, fail, parse_filters, pass_ctx, table
from .format import PS_COLUMNS, ps_row
from .tabwriter import tabulate


def ps_match(s: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    import re

    for key, values in filters.items():
        if key == "name" and not any(re.search(v, n.lstrip("/")) for v in values for n in s["Names"]):
            return False
        if key == "id" and not any(s["Id"].startswith(v) for v in values):
            return False
        if key == "status" and s["State"] not in values:
            return False
        if key == "network" and not any(v in s["NetworkSettings"]["Networks"] for v in values):
            return False
        if key == "ancestor" and s["Image"] not in values:
            return False
        if key == "label":
            labels = s.get("Labels") or {}
            for v in values:
                k, has, val = v.partition("=")
                if k not in labels or (has and labels[k] != val):
                    return False
    return True


@click.command(context_settings=CONTEXT)
@click.option("-a", "--all", "show_all", is_flag=True)
@click.option("-q", "--quiet", is_flag=True)
@click.option("--no-trunc", is_flag=True)
@click.option("--format", "fmt", default=None)
@click.option("-f", "--filter", "filters", multiple=True)
@pass_ctx
def ps(c: Ctx, show_all: bool, quiet: bool, no_trunc: bool, fmt: str | None, filters: tuple[str, ...]) -> None:
    """List containers."""
    flt = parse_filters(filters)
    summaries = c.call("GET", "/containers/json", {"all": show_all or "status" in flt})
    now = time.time()
    rows = [ps_row(s, no_trunc, now) for s in summaries if ps_match(s, flt)]
    if quiet:
        for r in rows:
            click.echo(r["ID"])
        return
    table(fmt, rows, PS_COLUMNS)


@click.command(context_settings=CONTEXT)
@click.argument("container")
@click.argument("private", required=False)
@pass_ctx
def port(c: Ctx, container: str, private: str | None) -> None:
    """List port mappings, or the mappings of one PRIVATE[/PROTO] port."""
    from ..ports import parse_key

    info = c.call("GET", f"/containers/{q(container)}/json")
    published = info["NetworkSettings"]["Ports"] or {}
    if private:
        number, _, proto = private.partition("/")
        key = f"{number}/{proto or 'tcp'}"
        bindings = published.get(key) or []
        if not bindings:
            fail(f"Error: No public port '{private}' published for {container}")
        for b in bindings:
            click.echo(f"{_bracket(b['HostIp'])}:{b['HostPort']}")
        return
    for key in sorted(published, key=parse_key):
        for b in published[key] or []:
            click.echo(f"{key} -> {_bracket(b['HostIp'])}:{b['HostPort']}")


def log_time(value: str) -> str:
    """A --since/--until value as the API takes it (Unix seconds), read as Docker's CLI reads
    it: Unix seconds, a duration before now (10s, 5m, 1h30m) or an RFC 3339 date."""
    from .. import timestamps

    try:
        return timestamps.unix_text(timestamps.parse(value))
    except timestamps.TimeError as e:
        raise click.BadParameter(str(e)) from None


@click.command(context_settings=CONTEXT)
@click.option("-f", "--follow", is_flag=True)
@click.option("-n", "--tail", default="all")
@click.option("-t", "--timestamps", is_flag=True, help="Show each line's time")
@click.option("--since", default="", help="Lines since this time (Unix seconds, 10m, or RFC 3339)")
@click.option("--until", default="", help="Lines until this time (Unix seconds, 10m, or RFC 3339)")
@click.argument("container")
@pass_ctx
def logs(c: Ctx, follow: bool, tail: str, timestamps: bool, since: str, until: str, container: str) -> None:
    """Print a container's output."""
    info = c.call("GET", f"/containers/{q(container)}/json")
    query: dict[str, object] = {"follow": follow, "stdout": 1, "stderr": 1, "tail": tail}
    if timestamps:
        query["timestamps"] = 1
    for key, value in (("since", since), ("until", until)):
        if value:
            query[key] = log_time(value)
    try:
        resp = c.api.stream("GET", f"/containers/{q(container)}/logs", query)
    except DaemonError as e:
        fail(daemon_error(e))
    tty = info["Config"]["Tty"]
    buf = bytearray()
    from ..client import demux

    while True:
        data = resp.read1(65536) if hasattr(resp, "read1") else resp.read(65536)
        if not data:
            break
        if tty:
            sys.stdout.buffer.write(data)
        else:
            buf += data
            for stream, chunk in demux(buf):
                (sys.stderr.buffer if stream == 2 else sys.stdout.buffer).write(chunk)
        sys.stdout.buffer.flush()


@click.command(context_settings=CONTEXT)
@click.argument("container")
@click.argument("ps_args", nargs=-1)
@pass_ctx
def top(c: Ctx, container: str, ps_args: tuple[str, ...]) -> None:
    """Show the processes of a container."""
    res = c.call("GET", f"/containers/{q(container)}/top", {"ps_args": " ".join(ps_args)})
    click.echo(tabulate([res["Titles"], *res["Processes"]]), nl=False)


@click.command(context_settings=CONTEXT)
@click.option("-f", "--format", "fmt", default=None)
@click.option("--type", "kind", type=click.Choice(["container", "network", "volume"]), default=None)
@click.argument("names", nargs=-1, required=True)
@pass_ctx
def inspect(c: Ctx, fmt: str | None, kind: str | None, names: tuple[str, ...]) -> None:
    """Low-level information on containers, networks and volumes, as JSON."""
    found, errors = [], []
    for name in names:
        obj = None
        for k, path in (("container", f"/containers/{q(name)}/json"), ("network", f"/networks/{q(name)}"),
                        ("volume", f"/volumes/{q(name)}")):
            if kind not in (None, k):
                continue
            try:
                obj = c.api.call("GET", path)
                break
            except DaemonError as e:
                if e.status != 404:
                    fail(daemon_error(e))
        if obj is None:
            errors.append(f"Error: No such object: {name}")
        else:
            found.append(obj)
    emit_found(found, errors, fmt)


def _bracket(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip

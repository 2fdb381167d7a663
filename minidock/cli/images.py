"""`minidock image …` (and `images`): ls, import, rm of the local image store."""

from __future__ import annotations

import os

import click

from ..client import q
from .common import CONTEXT, Ctx, ago, pass_ctx, table


@click.group(context_settings=CONTEXT)
def image() -> None:
    """Manage the local image store."""


@image.command("ls", context_settings=CONTEXT)
@click.option("-q", "--quiet", is_flag=True)
@pass_ctx
def image_ls(c: Ctx, quiet: bool) -> None:
    """List images (built-in busybox and host, and imported ones)."""
    imgs = c.call("GET", "/images/json")
    rows = []
    for i in imgs:
        repo, _, tag = i["RepoTags"][0].partition(":")
        rows.append({"Repository": repo, "Tag": tag, "ID": i["Id"].removeprefix("sha256:")[:12],
                     "CreatedSince": ago(i["Created"]) if i["Created"] else "built in",
                     "Kind": "built in" if i["Labels"].get("minidock.builtin") == "true" else "imported"})
    if quiet:
        for r in rows:
            click.echo(r["ID"])
        return
    table(None, rows, [("REPOSITORY", "Repository"), ("TAG", "Tag"), ("IMAGE ID", "ID"),
                       ("CREATED", "CreatedSince"), ("KIND", "Kind")])


@image.command("import", context_settings=CONTEXT)
@click.argument("name")
@click.argument("source", type=click.Path(exists=True))
@pass_ctx
def image_import(c: Ctx, name: str, source: str) -> None:
    """Import a root filesystem (a `docker export` tarball or a directory) as NAME."""
    res = c.call("POST", "/images/import", {"repo": name, "fromSrc": os.path.abspath(source)})
    click.echo(res["status"])


@image.command("rm", context_settings=CONTEXT)
@click.argument("names", nargs=-1, required=True)
@pass_ctx
def image_rm(c: Ctx, names: tuple[str, ...]) -> None:
    """Remove imported images."""
    for n in names:
        c.call("DELETE", f"/images/{q(n)}")
        click.echo(f"Deleted: {n}")

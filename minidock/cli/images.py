"""`minidock image …` (and `images`): ls, inspect, tag, import, rm of the local image store."""

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
    """List images (built-in busybox and host, imported ones, and the tags naming them), a row per tag."""
    rows = []
    for i in c.call("GET", "/images/json"):
        kind = "built in" if i["Labels"].get("minidock.builtin") == "true" else "imported"
        for ref in i["RepoTags"] or ["<none>:<none>"]:
            repo, _, tag = ref.rpartition(":")
            rows.append({"Repository": repo, "Tag": tag, "ID": i["Id"].removeprefix("sha256:")[:12],
                         "CreatedSince": ago(i["Created"]) if i["Created"] else "built in", "Kind": kind})
    if quiet:
        for r in rows:
            click.echo(r["ID"])
        return
    table(None, rows, [("REPOSITORY", "Repository"), ("TAG", "Tag"), ("IMAGE ID", "ID"),
                       ("CREATED", "CreatedSince"), ("KIND", "Kind")])


@image.command("inspect", context_settings=CONTEXT)
@click.argument("names", nargs=-1, required=True)
@pass_ctx
def image_inspect(c: Ctx, names: tuple[str, ...]) -> None:
    """Show an image's details (Docker's JSON)."""
    import json

    click.echo(json.dumps([c.call("GET", f"/images/{q(n)}/json") for n in names], indent=4))


@image.command("tag", context_settings=CONTEXT)
@click.argument("source")
@click.argument("target")
@pass_ctx
def image_tag(c: Ctx, source: str, target: str) -> None:
    """Give the image SOURCE another name, TARGET (REPO[:TAG])."""
    repo, tag = target, "latest"
    if ":" in target.rsplit("/", 1)[-1]:
        repo, tag = target.rsplit(":", 1)
    c.call("POST", f"/images/{q(source)}/tag", {"repo": repo, "tag": tag})


@image.command("import", context_settings=CONTEXT)
@click.argument("name")
@click.argument("source", type=click.Path(exists=True))
@pass_ctx
def image_import(c: Ctx, name: str, source: str) -> None:
    """Import a root filesystem (a `docker export` tarball or a directory) as NAME[:TAG]."""
    res = c.call("POST", "/images/import", {"repo": name, "fromSrc": os.path.abspath(source)})
    click.echo(res["status"])


@image.command("rm", context_settings=CONTEXT)
@click.argument("names", nargs=-1, required=True)
@pass_ctx
def image_rm(c: Ctx, names: tuple[str, ...]) -> None:
    """Untag images, and remove imported ones once no tag names them."""
    for n in names:
        for line in c.call("DELETE", f"/images/{q(n)}"):
            for k, v in line.items():
                click.echo(f"{k}: {v}")

"""Whole-host commands: daemon (the daemon's entry point, imported only
when it runs), system check/repair/reset, topology, version.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import click

from .common import CONTEXT, Ctx, fail, pass_ctx


@click.command(context_settings=CONTEXT)
@click.option("--root", default="/var/lib/minidock", show_default=True, help="State directory")
@click.option("--socket", "socket_path", default="/run/minidock/minidock.sock", show_default=True)
@click.option("--dns-upstream", multiple=True, help="Upstream resolver (repeatable); default: host's resolv.conf")
@click.option("--port-maps", is_flag=True,
              help="Published ports as nftables map elements (nft list table ip minidock), not iptables rules")
@click.option("--debug", is_flag=True)
@pass_ctx
def daemon(c: Ctx, root: str, socket_path: str, dns_upstream: tuple[str, ...], port_maps: bool, debug: bool) -> None:
    """Run the daemon in the foreground, in the current network namespace.

    With --explain, what start-up does to the kernel is printed on stdout."""
    from ..daemon.server import run

    run(root, socket_path, list(dns_upstream), debug, c.explain, port_maps)


@click.group(context_settings=CONTEXT)
def system() -> None:
    """Compare the store with the kernel, repair drift, or remove everything."""


@system.command("check", context_settings=CONTEXT)
@pass_ctx
def system_check(c: Ctx) -> None:
    """List what differs between minidock's records and the kernel (exit 1 if anything does)."""
    problems = c.call("POST", "/minidock/system/check")["Problems"]
    for p in problems:
        click.echo(p)
    if problems:
        sys.exit(1)
    click.echo("no drift: the kernel holds what minidock's records say")


@system.command("repair", context_settings=CONTEXT)
@pass_ctx
def system_repair(c: Ctx) -> None:
    """Put the kernel back as minidock's records say."""
    res = c.call("POST", "/minidock/system/repair")
    for p in res["Repaired"]:
        click.echo(f"repaired: {p}")
    for p in res["Remaining"]:
        click.echo(f"still wrong: {p}")
    if res["Remaining"]:
        sys.exit(1)
    if not res["Repaired"]:
        click.echo("nothing to repair")


@system.command("reset", context_settings=CONTEXT)
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@pass_ctx
def system_reset(c: Ctx, force: bool) -> None:
    """Remove every container, network, link, namespace, firewall rule and file minidock made; stop the daemon."""
    if not force:
        click.echo("WARNING! This will remove:\n  - all containers, running or not\n  - all networks, bridges, "
                   "veths and namespaces of minidock\n  - minidock's firewall chains\n  - minidock's state; "
                   "the daemon stops")
        if not click.confirm("Are you sure you want to continue?", default=False):
            return
    for line in c.call("POST", "/minidock/system/reset")["Removed"]:
        click.echo(f"removed {line}")


@click.command(context_settings=CONTEXT)
@click.option("--format", "fmt", type=click.Choice(["text", "dot", "png"]), default="text", show_default=True)
@click.option("-o", "--output", default=None, help="File to write (needed for png)")
@pass_ctx
def topology(c: Ctx, fmt: str, output: str | None) -> None:
    """Draw bridges, namespaces, veths, addresses, published ports and isolation."""
    from .. import topology as topo

    data = c.call("GET", "/minidock/topology")
    if fmt == "text":
        rendered = topo.text(data)
    else:
        rendered = topo.dot(data)
    if fmt == "png":
        if not output:
            fail("minidock: --format png needs -o FILE")
        if shutil.which("dot") is None:
            fail("minidock: Graphviz is not installed (apt-get install graphviz), or use --format dot")
        r = subprocess.run(["dot", "-Tpng", "-o", output], input=rendered.encode(), capture_output=True)
        if r.returncode != 0:
            fail(f"minidock: dot failed: {r.stderr.decode().strip()}")
        return
    if output:
        with open(output, "w") as f:
            f.write(rendered)
    else:
        click.echo(rendered, nl=False)


@click.command(context_settings=CONTEXT)
@pass_ctx
def version(c: Ctx) -> None:
    """Client and daemon versions."""
    from .. import __version__

    click.echo(f"Client: minidock {__version__}")
    v = c.call("GET", "/version")
    click.echo(f"Server: minidock {v['Version']} (API {v['ApiVersion']}, kernel {v['KernelVersion']})")

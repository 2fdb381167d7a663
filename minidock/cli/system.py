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
@click.option("--cluster-store", default="", metavar="etcd://HOST:2379[,…]",
              help="Join the cluster whose state is in this etcd (overlay networks)")
@click.option("--cluster-advertise", default="", metavar="ADDRESS",
              help="This host's underlay address: where the other hosts send VXLAN packets")
@click.option("--cluster-store-opt", multiple=True, metavar="KEY=VALUE",
              help="discovery.ttl=SECONDS: how long a silent host counts as alive (default 20)")
@click.option("--node-name", default="", help="This host's name in the cluster (default: the hostname)")
@click.option("--ipv6", is_flag=True, help="IPv6 on the default bridge too (dual stack)")
@click.option("--fixed-cidr-v6", default="", metavar="CIDR", help="The default bridge's IPv6 subnet (default: a ULA /64)")
@click.option("--debug", is_flag=True)
@pass_ctx
def daemon(c: Ctx, root: str, socket_path: str, dns_upstream: tuple[str, ...], port_maps: bool,
           cluster_store: str, cluster_advertise: str, cluster_store_opt: tuple[str, ...], node_name: str,
           ipv6: bool, fixed_cidr_v6: str, debug: bool) -> None:
    """Run the daemon in the foreground, in the current network namespace.

    With --explain, what start-up does to the kernel is printed on stdout."""
    from ..daemon.server import cluster_config, run

    try:
        cluster = cluster_config(cluster_store, cluster_advertise, cluster_store_opt, node_name)
    except ValueError as e:
        fail(str(e))
    if fixed_cidr_v6 and not ipv6:
        fail("--fixed-cidr-v6 needs --ipv6")
    if fixed_cidr_v6:
        from ..errors import InvalidParameter
        from ..ipam import parse_subnet

        try:
            fixed_cidr_v6 = str(parse_subnet(fixed_cidr_v6, 6))
        except InvalidParameter as e:
            fail(f"--fixed-cidr-v6: {e}")
    run(root, socket_path, list(dns_upstream), debug, c.explain, port_maps, cluster,
        fixed_cidr_v6 if ipv6 else None)


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


@click.group(context_settings=CONTEXT)
def node() -> None:
    """The hosts of this daemon's cluster (daemon --cluster-store)."""


@node.command("ls", context_settings=CONTEXT)
@click.option("-q", "--quiet", is_flag=True, help="Only display names")
@pass_ctx
def node_ls(c: Ctx, quiet: bool) -> None:
    """List the cluster's hosts, their VXLAN endpoints, and whether each is alive."""
    from .tabwriter import tabulate

    nodes = c.call("GET", "/minidock/nodes")
    if quiet:
        click.echo("".join(n["Name"] + "\n" for n in nodes), nl=False)
        return
    rows = [["NAME", "ADDRESS", "STATUS"]]
    rows += [[n["Name"] + (" *" if n["Self"] else ""), n["Address"], "Ready" if n["Alive"] else "Down"]
             for n in nodes]
    click.echo(tabulate(rows), nl=False)

"""`minidock network …`: ls, inspect, create, rm, connect, disconnect,
prune. `network ls` has a lean twin in fast.py for its common forms.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ..client import q
from .common import CONTEXT, Ctx, each, fail, inspect_each, parse_filters, pass_ctx, table
from .format import NETWORK_COLUMNS, network_row


@click.group(context_settings=CONTEXT)
def network() -> None:
    """Manage networks."""


@network.command("ls", context_settings=CONTEXT)
@click.option("-q", "--quiet", is_flag=True)
@click.option("--no-trunc", is_flag=True)
@click.option("--format", "fmt", default=None)
@click.option("-f", "--filter", "filters", multiple=True)
@pass_ctx
def network_ls(c: Ctx, quiet: bool, no_trunc: bool, fmt: str | None, filters: tuple[str, ...]) -> None:
    """List networks."""
    flt = parse_filters(filters)
    # the daemon filters, as Docker's does (name and id are regular expressions, type, label, …)
    nets = c.call("GET", "/networks", {"filters": json.dumps(flt)} if flt else None)
    rows = [network_row(n, no_trunc) for n in sorted(nets, key=lambda n: n["Name"])]
    if quiet:
        for r in rows:
            click.echo(r["ID"])
        return
    table(fmt, rows, NETWORK_COLUMNS)


@network.command("inspect", context_settings=CONTEXT)
@click.option("-f", "--format", "fmt", default=None)
@click.argument("networks", nargs=-1, required=True)
@pass_ctx
def network_inspect(c: Ctx, fmt: str | None, networks: tuple[str, ...]) -> None:
    """Show networks as Docker-shaped JSON."""
    inspect_each(c, [f"/networks/{q(ref)}" for ref in networks], fmt)


def ipam_configs(subnets: tuple[str, ...], ranges: tuple[str, ...], gateways: tuple[str, ...],
                 aux: tuple[str, ...]) -> list[dict[str, object]]:
    """Docker's pairing: each --ip-range, --gateway and --aux-address goes with the --subnet of
    its family (an address with ':' is IPv6)."""
    configs: dict[int, dict[str, object]] = {}
    for s in subnets:
        configs[6 if ":" in s else 4] = {"Subnet": s}

    def of(value: str) -> dict[str, object]:
        return configs.setdefault(6 if ":" in value else 4, {})
    for r in ranges:
        of(r)["IPRange"] = r
    for g in gateways:
        of(g)["Gateway"] = g
    for a in aux:
        key, _, value = a.partition("=")
        of(value).setdefault("AuxiliaryAddresses", {})[key] = value  # type: ignore[union-attr]
    return [configs[v] for v in (4, 6) if v in configs]


@network.command("create", context_settings=CONTEXT)
@click.option("-d", "--driver", default="bridge")
@click.option("--subnet", multiple=True, help="one per family: --subnet 10.1.0.0/24 --subnet fd00:1::/64")
@click.option("--ip-range", multiple=True)
@click.option("--gateway", multiple=True)
@click.option("--aux-address", "aux", multiple=True, help="NAME=IP: an address of the subnet no container gets")
@click.option("--ipv6", is_flag=True, help="dual stack: an IPv6 subnet too (a ULA /64 unless --subnet gives one)")
@click.option("--internal", is_flag=True)
@click.option("--attachable", is_flag=True)
@click.option("--label", "labels", multiple=True)
@click.option("-o", "--opt", "opts", multiple=True)
@click.option("--ipam-driver", default="default")
@click.argument("name")
@pass_ctx
def network_create(c: Ctx, driver: str, subnet: tuple[str, ...], ip_range: tuple[str, ...],
                   gateway: tuple[str, ...], aux: tuple[str, ...], ipv6: bool, internal: bool, attachable: bool,
                   labels: tuple[str, ...], opts: tuple[str, ...], ipam_driver: str, name: str) -> None:
    """Create a network (bridge, overlay, macvlan, ipvlan)."""
    configs = ipam_configs(subnet, ip_range, gateway, aux)
    body = {"Name": name, "Driver": driver, "Internal": internal, "Attachable": attachable, "EnableIPv6": ipv6,
            "Labels": dict(lbl.partition("=")[::2] for lbl in labels),
            "Options": dict(o.partition("=")[::2] for o in opts),
            "IPAM": {"Driver": ipam_driver, "Config": configs}}
    res = c.call("POST", "/networks/create", body=body)
    click.echo(res["Id"])


@network.command("rm", context_settings=CONTEXT)
@click.argument("networks", nargs=-1, required=True)
@pass_ctx
def network_rm(c: Ctx, networks: tuple[str, ...]) -> None:
    """Remove networks (not the predefined ones)."""
    each(c, networks, lambda ref: c.api.call("DELETE", f"/networks/{q(ref)}"))


@network.command("connect", context_settings=CONTEXT)
@click.option("--ip", default="")
@click.option("--ip6", default="")
@click.option("--alias", "aliases", multiple=True)
@click.option("--link", "links", multiple=True, help="NAME[:ALIAS]: ALIAS resolves to container NAME, for this one")
@click.option("--link-local-ip", "link_local", multiple=True, help="an address added to the interface (169.254.x.y)")
@click.option("--driver-opt", "driver_opts", multiple=True, help="KEY=VALUE, kept in the endpoint's DriverOpts")
@click.argument("network_name", metavar="NETWORK")
@click.argument("container")
@pass_ctx
def network_connect(c: Ctx, ip: str, ip6: str, aliases: tuple[str, ...], links: tuple[str, ...],
                    link_local: tuple[str, ...], driver_opts: tuple[str, ...], network_name: str,
                    container: str) -> None:
    """Connect a container to a network (live: a new ethN appears)."""
    ep: dict[str, Any] = {"Aliases": list(aliases), "Links": list(links),
                          "DriverOpts": dict(o.partition("=")[::2] for o in driver_opts)}
    if ip or ip6 or link_local:
        ep["IPAMConfig"] = {k: v for k, v in (("IPv4Address", ip), ("IPv6Address", ip6)) if v}
        if link_local:
            ep["IPAMConfig"]["LinkLocalIPs"] = list(link_local)
    c.call("POST", f"/networks/{q(network_name)}/connect", body={"Container": container, "EndpointConfig": ep})


@network.command("disconnect", context_settings=CONTEXT)
@click.option("-f", "--force", is_flag=True)
@click.argument("network_name", metavar="NETWORK")
@click.argument("container")
@pass_ctx
def network_disconnect(c: Ctx, force: bool, network_name: str, container: str) -> None:
    """Disconnect a container from a network (live: its ethN disappears)."""
    c.call("POST", f"/networks/{q(network_name)}/disconnect", body={"Container": container, "Force": force})


@network.command("prune", context_settings=CONTEXT)
@click.option("-f", "--force", is_flag=True)
@click.option("--filter", "filters", multiple=True, help="label=K[=V], label!=K[=V], until=TIME (10m, an RFC 3339 time)")
@pass_ctx
def network_prune(c: Ctx, force: bool, filters: tuple[str, ...]) -> None:
    """Remove every user network that no container uses (and that the filters match)."""
    if not force:
        if not sys.stdin.isatty():
            fail("refusing to prune without -f when not on a terminal")
        if not click.confirm("WARNING! This will remove all custom networks not used by at least one container.\n"
                             "Are you sure you want to continue?"):
            return
    flt = parse_filters(filters)
    res = c.call("POST", "/networks/prune", {"filters": json.dumps(flt)} if flt else None)
    if res["NetworksDeleted"]:
        click.echo("Deleted Networks:")
        for n in res["NetworksDeleted"]:
            click.echo(n)

"""`minidock`: Docker's command line for minidock's daemon.

Every command speaks HTTP to the daemon (client.py) and prints what Docker
would print. Errors are one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any, NoReturn

import click

from .. import gotemplate
from ..client import Client, DaemonError, q
from ..errors import HOST_MODE_PORTS

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


@click.group(context_settings=CONTEXT)
@click.option("-H", "--host", envvar="MINIDOCK_HOST", help="Daemon socket, unix://PATH")
@click.option("--explain", is_flag=True, envvar="MINIDOCK_EXPLAIN",
              help="Print on stderr the ip/iptables/sysctl commands equal to what each command does")
@click.pass_context
def cli(ctx: click.Context, host: str | None, explain: bool) -> None:
    """minidock: Docker's container networking on real kernel objects, for learning."""
    ctx.obj = Ctx(host, explain)


# ---------------------------------------------------------------- formatting
def render_each(fmt: str, items: list[Any]) -> None:
    for item in items:
        try:
            click.echo(gotemplate.render(fmt, item))
        except gotemplate.TemplateError as e:
            fail(str(e))


def table(fmt: str | None, rows: list[dict[str, Any]], default: list[tuple[str, str]]) -> None:
    """Docker's `ls` output: a default table, `table …` templates or plain templates."""
    headers = {field: title for title, field in default}
    if fmt and fmt != "table":
        try:
            if fmt.startswith("table"):
                click.echo(gotemplate.render_table(fmt[len("table"):].lstrip(), rows, headers), nl=False)
            else:
                for row in rows:
                    click.echo(gotemplate.render(gotemplate.unescape_format(fmt), row))
        except gotemplate.TemplateError as e:
            fail(str(e))
        return
    lines = [[title for title, _ in default]] + [[str(r[f]) for _, f in default] for r in rows]
    click.echo(gotemplate.tabulate(lines), nl=False)


def ago(ts: float) -> str:
    from ..service.views import human_duration

    return human_duration(time.time() - ts) + " ago"


def parse_filters(values: tuple[str, ...]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for v in values:
        if "=" not in v:
            fail(f'invalid argument "{v}" for "-f, --filter" flag: bad format of filter (expected name=value)')
        k, _, val = v.partition("=")
        out.setdefault(k.strip().lower(), []).append(val)
    return out


# ---------------------------------------------------------------- daemon
@cli.command(context_settings=CONTEXT)
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


# ---------------------------------------------------------------- containers
def container_options(f: Callable[..., Any]) -> Callable[..., Any]:
    opts = [
        click.option("-d", "--detach", is_flag=True, help="Run in the background, print the ID"),
        click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open"),
        click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY"),
        click.option("--rm", "auto_remove", is_flag=True, help="Remove the container when it exits"),
        click.option("--name"),
        click.option("--network", "--net", "network", default="", help="bridge (default), host, none or NAME"),
        click.option("--network-alias", "--net-alias", "aliases", multiple=True),
        click.option("--ip", default=""),
        click.option("-h", "--hostname", default=""),
        click.option("--add-host", "add_hosts", multiple=True, help="NAME:IP or NAME:host-gateway"),
        click.option("--dns", multiple=True),
        click.option("-e", "--env", "env", multiple=True),
        click.option("-w", "--workdir", default=""),
        click.option("--entrypoint", default=None),
        click.option("--link", "links", multiple=True),
        click.option("-p", "--publish", "publish", multiple=True, help="[IP:][HOST:]CONTAINER[/PROTO]"),
        click.option("-P", "--publish-all", is_flag=True, help="Publish every exposed port to a free host port"),
        click.option("--expose", multiple=True, help="Expose a port or a range of ports"),
        click.option("-l", "--label", "labels", multiple=True),
    ]
    for opt in reversed(opts):
        f = opt(f)
    f = click.argument("command", nargs=-1, type=click.UNPROCESSED)(f)
    f = click.argument("image")(f)
    return f


def create_body(o: dict[str, Any]) -> dict[str, Any]:
    network = o["network"] or "default"
    if o["publish"] and network == "host":
        fail(f"minidock: Error response from daemon: {HOST_MODE_PORTS}", 125)
    if o["aliases"] and (network in ("default", "bridge", "host", "none") or network.startswith("container:")):
        fail("minidock: network-scoped aliases are only supported for user-defined networks", 125)
    exposed, bindings = port_options(o["publish"], o["expose"])
    env = []
    for e in o["env"]:
        if "=" not in e:
            val = os.environ.get(e)
            if val is None:
                continue
            e = f"{e}={val}"
        env.append(e)
    endpoint: dict[str, Any] = {}
    if o["ip"]:
        endpoint["IPAMConfig"] = {"IPv4Address": o["ip"]}
    if o["aliases"]:
        endpoint["Aliases"] = list(o["aliases"])
    netkey = "bridge" if network == "default" else network
    body: dict[str, Any] = {
        "Image": o["image"],
        "Cmd": list(o["command"]) or None,
        "Hostname": o["hostname"],
        "Env": env,
        "WorkingDir": o["workdir"],
        "Tty": o["tty"],
        "OpenStdin": o["interactive"],
        "StdinOnce": o["interactive"] and not o["detach"],
        "AttachStdin": o["interactive"] and not o["detach"],
        "Labels": dict(lbl.partition("=")[::2] for lbl in o["labels"]),
        "ExposedPorts": exposed,
        "HostConfig": {
            "NetworkMode": network,
            "AutoRemove": o["auto_remove"],
            "Dns": list(o["dns"]),
            "ExtraHosts": list(o["add_hosts"]),
            "Links": list(o["links"]),
            "PortBindings": bindings,
            "PublishAllPorts": o["publish_all"],
        },
        "NetworkingConfig": {"EndpointsConfig": {netkey: endpoint}} if endpoint else {},
    }
    if o["entrypoint"] is not None:
        body["Entrypoint"] = [o["entrypoint"]] if o["entrypoint"] else []
    return body


def port_options(publish: tuple[str, ...], expose: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    """-p and --expose as ExposedPorts and PortBindings, parsed client-side as Docker's CLI does."""
    from ..errors import MinidockError
    from ..ports import from_specs

    try:
        return from_specs(publish, expose)
    except MinidockError as e:
        fail(f"minidock: {e}", 125)


def do_create(c: Ctx, o: dict[str, Any]) -> str:
    res = c.call("POST", "/containers/create", {"name": o["name"]} if o["name"] else None, create_body(o),
                 prefix="minidock: ", code=125)
    for w in res.get("Warnings") or []:
        click.echo(f"minidock: {w}", err=True)
    return res["Id"]


def resizer(c: Ctx, path: str, tty: bool) -> Callable[[], None]:
    """Tell the daemon our terminal's size (at start and on SIGWINCH)."""
    from .terminal import window_size

    def resize() -> None:
        size = window_size()
        if size and tty:
            try:
                c.api.call("POST", path, {"h": size[0], "w": size[1]})
            except DaemonError:
                pass

    return resize


def attach_and_wait(c: Ctx, cid: str, *, tty: bool, stdin: bool, start: bool) -> int:
    from .terminal import relay

    sock = c.api.hijack(f"/containers/{cid}/attach",
                        {"stream": 1, "stdout": 1, "stderr": 1, "stdin": 1 if stdin else 0})
    resize = resizer(c, f"/containers/{cid}/resize", tty)

    if start:
        try:
            c.api.call("POST", f"/containers/{cid}/start")
        except DaemonError as e:
            sock.close()
            code = 127 if "not found" in e.message else 126 if "permission denied" in e.message else 125
            fail(daemon_error(e, "minidock: "), code)
    resize()
    relay(sock, tty=tty, stdin=stdin, on_resize=resize)
    res = c.call("POST", f"/containers/{cid}/wait")
    return int(res.get("StatusCode", 0))


@cli.command(context_settings=COMMAND_CONTEXT)
@container_options
@pass_ctx
def run(c: Ctx, **o: Any) -> None:
    """Create and start a container (new every time)."""
    cid = do_create(c, o)
    if o["detach"]:
        try:
            c.api.call("POST", f"/containers/{cid}/start")
        except DaemonError as e:
            code = 127 if "not found" in e.message else 125
            fail(daemon_error(e, "minidock: "), code)
        click.echo(cid)
        return
    sys.exit(attach_and_wait(c, cid, tty=o["tty"], stdin=o["interactive"], start=True))


@cli.command(context_settings=COMMAND_CONTEXT)
@container_options
@pass_ctx
def create(c: Ctx, **o: Any) -> None:
    """Create a container without starting it."""
    click.echo(do_create(c, o))


def each(c: Ctx, refs: tuple[str, ...], fn: Callable[[str], None]) -> None:
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


@cli.command(context_settings=CONTEXT)
@click.option("-a", "--attach", is_flag=True)
@click.option("-i", "--interactive", is_flag=True)
@click.argument("containers", nargs=-1, required=True)
@pass_ctx
def start(c: Ctx, attach: bool, interactive: bool, containers: tuple[str, ...]) -> None:
    """Start stopped containers (same network settings)."""
    if attach or interactive:
        info = c.call("GET", f"/containers/{q(containers[0])}/json")
        sys.exit(attach_and_wait(c, info["Id"], tty=info["Config"]["Tty"], stdin=interactive, start=True))
    each(c, containers, lambda ref: c.api.call("POST", f"/containers/{q(ref)}/start"))


@cli.command(context_settings=CONTEXT)
@click.option("-t", "--time", "timeout", type=int, default=None, help="Seconds to wait before SIGKILL")
@click.option("-s", "--signal", "sig", default=None)
@click.argument("containers", nargs=-1, required=True)
@pass_ctx
def stop(c: Ctx, timeout: int | None, sig: str | None, containers: tuple[str, ...]) -> None:
    """Stop containers: SIGTERM, then SIGKILL after the grace period."""
    query = {"t": timeout, "signal": sig}
    each(c, containers, lambda ref: c.api.call("POST", f"/containers/{q(ref)}/stop", query))


@cli.command(context_settings=CONTEXT)
@click.option("-t", "--time", "timeout", type=int, default=None)
@click.argument("containers", nargs=-1, required=True)
@pass_ctx
def restart(c: Ctx, timeout: int | None, containers: tuple[str, ...]) -> None:
    """Restart containers."""
    each(c, containers, lambda ref: c.api.call("POST", f"/containers/{q(ref)}/restart", {"t": timeout}))


@cli.command(context_settings=CONTEXT)
@click.option("-s", "--signal", "sig", default="KILL")
@click.argument("containers", nargs=-1, required=True)
@pass_ctx
def kill(c: Ctx, sig: str, containers: tuple[str, ...]) -> None:
    """Send a signal (default KILL) to containers."""
    each(c, containers, lambda ref: c.api.call("POST", f"/containers/{q(ref)}/kill", {"signal": sig}))


@cli.command(context_settings=CONTEXT)
@click.option("-f", "--force", is_flag=True)
@click.argument("containers", nargs=-1, required=True)
@pass_ctx
def rm(c: Ctx, force: bool, containers: tuple[str, ...]) -> None:
    """Remove containers."""
    each(c, containers, lambda ref: c.api.call("DELETE", f"/containers/{q(ref)}", {"force": force}))


@cli.command(context_settings=CONTEXT)
@click.argument("containers", nargs=-1, required=True)
@pass_ctx
def wait(c: Ctx, containers: tuple[str, ...]) -> None:
    """Block until containers stop, print their exit codes."""
    for ref in containers:
        res = c.call("POST", f"/containers/{q(ref)}/wait")
        click.echo(res["StatusCode"])


def ps_row(s: dict[str, Any], no_trunc: bool) -> dict[str, Any]:
    from ..ports import displayable

    cmd = s["Command"]
    if not no_trunc and len(cmd) > 20:
        cmd = cmd[:19] + "…"
    return {
        "ID": s["Id"] if no_trunc else s["Id"][:12],
        "Image": s["Image"],
        "Command": json.dumps(cmd, ensure_ascii=False),
        "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(s["Created"])),
        "RunningFor": ago(s["Created"]),
        "Ports": displayable(s.get("Ports") or []),
        "Status": s["Status"],
        "State": s["State"],
        "Names": ",".join(n.lstrip("/") for n in s["Names"]),
        "Labels": ",".join(f"{k}={v}" for k, v in (s.get("Labels") or {}).items()),
        "Networks": ",".join(s["NetworkSettings"]["Networks"]),
        "Size": "",
        "Mounts": "",
    }


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


@cli.command(context_settings=CONTEXT)
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
    rows = [ps_row(s, no_trunc) for s in summaries if ps_match(s, flt)]
    if quiet:
        for r in rows:
            click.echo(r["ID"])
        return
    table(fmt, rows, [("CONTAINER ID", "ID"), ("IMAGE", "Image"), ("COMMAND", "Command"),
                      ("CREATED", "RunningFor"), ("STATUS", "Status"), ("PORTS", "Ports"), ("NAMES", "Names")])


@cli.command(context_settings=CONTEXT)
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
            click.echo(f"{b['HostIp']}:{b['HostPort']}")
        return
    for key in sorted(published, key=parse_key):
        for b in published[key] or []:
            click.echo(f"{key} -> {b['HostIp']}:{b['HostPort']}")


@cli.command("exec", context_settings=COMMAND_CONTEXT)
@click.option("-i", "--interactive", is_flag=True)
@click.option("-t", "--tty", is_flag=True)
@click.option("-d", "--detach", is_flag=True)
@click.option("-e", "--env", multiple=True)
@click.option("-w", "--workdir", default="")
@click.argument("container")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@pass_ctx
def exec_(c: Ctx, interactive: bool, tty: bool, detach: bool, env: tuple[str, ...], workdir: str,
          container: str, command: tuple[str, ...]) -> None:
    """Run a command in a running container."""
    from .terminal import relay

    body = {"Cmd": list(command), "Tty": tty, "AttachStdin": interactive, "AttachStdout": True,
            "AttachStderr": True, "Env": list(env), "WorkingDir": workdir, "Detach": detach}
    eid = c.call("POST", f"/containers/{q(container)}/exec", body=body)["Id"]
    if detach:
        c.call("POST", f"/exec/{eid}/start", body={"Detach": True})
        return
    sock = c.api.hijack(f"/exec/{eid}/start", body={"Detach": False, "Tty": tty})
    resize = resizer(c, f"/exec/{eid}/resize", tty)

    resize()
    relay(sock, tty=tty, stdin=interactive, on_resize=resize)
    res = c.call("GET", f"/exec/{eid}/json")
    sys.exit(res.get("ExitCode") or 0)


@cli.command(context_settings=CONTEXT)
@click.option("-f", "--follow", is_flag=True)
@click.option("-n", "--tail", default="all")
@click.argument("container")
@pass_ctx
def logs(c: Ctx, follow: bool, tail: str, container: str) -> None:
    """Print a container's output."""
    info = c.call("GET", f"/containers/{q(container)}/json")
    try:
        resp = c.api.stream("GET", f"/containers/{q(container)}/logs",
                            {"follow": follow, "stdout": 1, "stderr": 1, "tail": tail})
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


@cli.command(context_settings=CONTEXT)
@click.argument("container")
@click.argument("ps_args", nargs=-1)
@pass_ctx
def top(c: Ctx, container: str, ps_args: tuple[str, ...]) -> None:
    """Show the processes of a container."""
    res = c.call("GET", f"/containers/{q(container)}/top", {"ps_args": " ".join(ps_args)})
    click.echo(gotemplate.tabulate([res["Titles"], *res["Processes"]]), nl=False)


@cli.command(context_settings=CONTEXT)
@click.option("-f", "--format", "fmt", default=None)
@click.option("--type", "kind", type=click.Choice(["container", "network"]), default=None)
@click.argument("names", nargs=-1, required=True)
@pass_ctx
def inspect(c: Ctx, fmt: str | None, kind: str | None, names: tuple[str, ...]) -> None:
    """Low-level information on containers and networks, as JSON."""
    found, errors = [], []
    for name in names:
        obj = None
        for k, path in (("container", f"/containers/{q(name)}/json"), ("network", f"/networks/{q(name)}")):
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
    emit(found, fmt)
    for e in errors:
        click.echo(e, err=True)
    if errors:
        sys.exit(1)


def emit(objs: list[Any], fmt: str | None) -> None:
    if fmt:
        render_each(fmt, objs)
    else:
        click.echo(json.dumps(objs, indent=4))


@cli.group(context_settings=CONTEXT)
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


@cli.command(context_settings=CONTEXT)
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


@cli.command(context_settings=CONTEXT)
@pass_ctx
def version(c: Ctx) -> None:
    """Client and daemon versions."""
    from .. import __version__

    click.echo(f"Client: minidock {__version__}")
    v = c.call("GET", "/version")
    click.echo(f"Server: minidock {v['Version']} (API {v['ApiVersion']}, kernel {v['KernelVersion']})")


# ---------------------------------------------------------------- networks
@cli.group(context_settings=CONTEXT)
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
    nets = c.call("GET", "/networks")
    rows = []
    for n in sorted(nets, key=lambda n: n["Name"]):
        if "name" in flt and not any(v in n["Name"] for v in flt["name"]):
            continue
        if "driver" in flt and n["Driver"] not in flt["driver"]:
            continue
        if "id" in flt and not any(n["Id"].startswith(v) for v in flt["id"]):
            continue
        rows.append({"ID": n["Id"] if no_trunc else n["Id"][:12], "Name": n["Name"], "Driver": n["Driver"],
                     "Scope": n["Scope"], "IPv6": str(n["EnableIPv6"]).lower(),
                     "Internal": str(n["Internal"]).lower(),
                     "Labels": ",".join(f"{k}={v}" for k, v in n["Labels"].items()),
                     "CreatedAt": n["Created"]})
    if quiet:
        for r in rows:
            click.echo(r["ID"])
        return
    table(fmt, rows, [("NETWORK ID", "ID"), ("NAME", "Name"), ("DRIVER", "Driver"), ("SCOPE", "Scope")])


@network.command("inspect", context_settings=CONTEXT)
@click.option("-f", "--format", "fmt", default=None)
@click.argument("networks", nargs=-1, required=True)
@pass_ctx
def network_inspect(c: Ctx, fmt: str | None, networks: tuple[str, ...]) -> None:
    """Show networks as Docker-shaped JSON."""
    found, errors = [], []
    for ref in networks:
        try:
            found.append(c.api.call("GET", f"/networks/{q(ref)}"))
        except DaemonError as e:
            errors.append(daemon_error(e))
    emit(found, fmt)
    for e in errors:
        click.echo(e, err=True)
    if errors:
        sys.exit(1)


@network.command("create", context_settings=CONTEXT)
@click.option("-d", "--driver", default="bridge")
@click.option("--subnet", default="")
@click.option("--ip-range", default="")
@click.option("--gateway", default="")
@click.option("--internal", is_flag=True)
@click.option("--attachable", is_flag=True)
@click.option("--label", "labels", multiple=True)
@click.option("-o", "--opt", "opts", multiple=True)
@click.option("--ipam-driver", default="default")
@click.argument("name")
@pass_ctx
def network_create(c: Ctx, driver: str, subnet: str, ip_range: str, gateway: str, internal: bool,
                   attachable: bool, labels: tuple[str, ...], opts: tuple[str, ...], ipam_driver: str,
                   name: str) -> None:
    """Create a bridge network."""
    config = {k: v for k, v in (("Subnet", subnet), ("IPRange", ip_range), ("Gateway", gateway)) if v}
    body = {"Name": name, "Driver": driver, "Internal": internal, "Attachable": attachable,
            "Labels": dict(lbl.partition("=")[::2] for lbl in labels),
            "Options": dict(o.partition("=")[::2] for o in opts),
            "IPAM": {"Driver": ipam_driver, "Config": [config] if config else []}}
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
@click.option("--alias", "aliases", multiple=True)
@click.argument("network_name", metavar="NETWORK")
@click.argument("container")
@pass_ctx
def network_connect(c: Ctx, ip: str, aliases: tuple[str, ...], network_name: str, container: str) -> None:
    """Connect a container to a network (live: a new ethN appears)."""
    ep: dict[str, Any] = {"Aliases": list(aliases)}
    if ip:
        ep["IPAMConfig"] = {"IPv4Address": ip}
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
@pass_ctx
def network_prune(c: Ctx, force: bool) -> None:
    """Remove every user network that no container uses."""
    if not force:
        if not sys.stdin.isatty():
            fail("refusing to prune without -f when not on a terminal")
        if not click.confirm("WARNING! This will remove all custom networks not used by at least one container.\n"
                             "Are you sure you want to continue?"):
            return
    res = c.call("POST", "/networks/prune")
    if res["NetworksDeleted"]:
        click.echo("Deleted Networks:")
        for n in res["NetworksDeleted"]:
            click.echo(n)


# ---------------------------------------------------------------- images
@cli.group(context_settings=CONTEXT)
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


cli.add_command(image_ls, "images")


def _register_compose() -> None:
    from .compose import compose

    cli.add_command(compose)


_register_compose()


def main() -> None:
    try:
        rv = cli.main(prog_name="minidock", standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(1)
    except click.ClickException as e:
        # one line, as every other error: no usage block
        where = f" (see '{e.ctx.command_path} --help')" if getattr(e, "ctx", None) is not None else ""
        click.echo(f"minidock: {e.format_message()}{where}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)




if __name__ == "__main__":
    main()

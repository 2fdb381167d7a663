"""Container life-cycle commands: run, create, start, stop, restart, kill,
rm, wait, exec. `run`/`create` build Docker's create body client-side (the
-p parsing included, as Docker's CLI does); attached runs relay the hijacked
stream through terminal.py.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import click

from ..client import DaemonError, q
from ..errors import HOST_MODE_PORTS
from .common import (
    COMMAND_CONTEXT,
    CONTEXT,
    Ctx,
    create_container,
    daemon_error,
    each,
    fail,
    pass_ctx,
)
from .volumes import mount_body, mount_options


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
        click.option("--ip6", default=""),
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
        click.option("--restart", default="", help="no, always, on-failure[:N] or unless-stopped"),
        click.option("--detach-keys", default=None, help="Override the key sequence for detaching"),
    ]
    for opt in reversed(opts):
        f = opt(f)
    f = mount_options(f)
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
    if o["ip"] or o["ip6"]:
        endpoint["IPAMConfig"] = {k: v for k, v in (("IPv4Address", o["ip"]), ("IPv6Address", o["ip6"])) if v}
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
    if o["restart"]:
        from ..compose import restart_policy

        try:
            body["HostConfig"]["RestartPolicy"] = restart_policy(o["restart"])
        except ValueError as e:
            fail(f"minidock: invalid restart policy format: {e}", 125)
    if o["entrypoint"] is not None:
        body["Entrypoint"] = [o["entrypoint"]] if o["entrypoint"] else []
    anonymous, mount_keys = mount_body(o)
    if anonymous:
        body["Volumes"] = anonymous
    body["HostConfig"].update(mount_keys)
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
    try:
        res, note = create_container(c.api, {"name": o["name"]} if o["name"] else None, create_body(o))
    except DaemonError as e:
        fail(daemon_error(e, "minidock: "), 125)
    for w in [note] * bool(note) + (res.get("Warnings") or []):
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


def attach_and_wait(c: Ctx, cid: str, *, tty: bool, stdin: bool, start: bool, detach_keys: str | None = None,
                    detached_error: bool = False) -> int:
    """Attach (then start, for run and start -a), relay, and give the exit code; a detach (the
    daemon ends the stream, the container runs on) is exit 0 for run, Docker's error for attach."""
    from .terminal import relay

    query: dict[str, Any] = {"stream": 1, "stdout": 1, "stderr": 1, "stdin": 1 if stdin else 0}
    if detach_keys is not None:
        query["detachKeys"] = detach_keys
    sock = c.api.hijack(f"/containers/{cid}/attach", query)
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
    # the stream ends when the process does, its exit recorded first; still running: a detach
    try:
        running = c.api.call("GET", f"/containers/{cid}/json")["State"]["Running"]
    except DaemonError:
        running = False  # removed already (--rm): its exit code is the wait's
    if running:
        if detached_error:
            click.echo("read escape sequence", err=True)
            return 1
        return 0
    res = c.call("POST", f"/containers/{cid}/wait")
    return int(res.get("StatusCode", 0))


@click.command(context_settings=CONTEXT)
@click.option("--detach-keys", default=None, help="Override the key sequence for detaching a container")
@click.option("--no-stdin", is_flag=True, help="Do not attach STDIN")
@click.option("--sig-proxy/--no-sig-proxy", default=True, help="Proxy all received signals to the process")
@click.argument("container")
@pass_ctx
def attach(c: Ctx, detach_keys: str | None, no_stdin: bool, sig_proxy: bool, container: str) -> None:
    """Attach this terminal to a running container's (its terminal, or its output and stdin)."""
    info = c.call("GET", f"/containers/{q(container)}/json")
    if not info["State"]["Running"]:
        fail("minidock: You cannot attach to a stopped container, start it first")
    if info["State"].get("Paused"):
        fail("minidock: You cannot attach to a paused container, unpause it first")
    tty = bool(info["Config"]["Tty"])
    if sig_proxy and not tty:  # with a terminal, ctrl-c travels as a byte
        import signal

        def forward(signum: int, _frame: object) -> None:
            try:
                c.api.call("POST", f"/containers/{info['Id']}/kill", {"signal": str(signum)})
            except DaemonError:
                pass

        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, forward)
    sys.exit(attach_and_wait(c, info["Id"], tty=tty, stdin=not no_stdin and bool(info["Config"]["OpenStdin"]),
                             start=False, detach_keys=detach_keys, detached_error=True))


@click.command(context_settings=COMMAND_CONTEXT)
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
    sys.exit(attach_and_wait(c, cid, tty=o["tty"], stdin=o["interactive"], start=True,
                             detach_keys=o["detach_keys"]))


@click.command(context_settings=COMMAND_CONTEXT)
@container_options
@pass_ctx
def create(c: Ctx, **o: Any) -> None:
    """Create a container without starting it."""
    click.echo(do_create(c, o))



@click.command(context_settings=CONTEXT)
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


@click.command(context_settings=CONTEXT)
@click.option("-t", "--time", "timeout", type=int, default=None, help="Seconds to wait before SIGKILL")
@click.option("-s", "--signal", "sig", default=None)
@click.argument("containers", nargs=-1, required=True)
@pass_ctx
def stop(c: Ctx, timeout: int | None, sig: str | None, containers: tuple[str, ...]) -> None:
    """Stop containers: SIGTERM, then SIGKILL after the grace period."""
    query = {"t": timeout, "signal": sig}
    each(c, containers, lambda ref: c.api.call("POST", f"/containers/{q(ref)}/stop", query))


@click.command(context_settings=CONTEXT)
@click.option("-t", "--time", "timeout", type=int, default=None)
@click.argument("containers", nargs=-1, required=True)
@pass_ctx
def restart(c: Ctx, timeout: int | None, containers: tuple[str, ...]) -> None:
    """Restart containers."""
    each(c, containers, lambda ref: c.api.call("POST", f"/containers/{q(ref)}/restart", {"t": timeout}))


@click.command(context_settings=CONTEXT)
@click.option("-s", "--signal", "sig", default="KILL")
@click.argument("containers", nargs=-1, required=True)
@pass_ctx
def kill(c: Ctx, sig: str, containers: tuple[str, ...]) -> None:
    """Send a signal (default KILL) to containers."""
    each(c, containers, lambda ref: c.api.call("POST", f"/containers/{q(ref)}/kill", {"signal": sig}))


@click.command(context_settings=CONTEXT)
@click.option("-f", "--force", is_flag=True)
@click.option("-v", "--volumes", is_flag=True, help="Remove the container's anonymous volumes too")
@click.option("-l", "--link", is_flag=True, help="Remove the specified link")
@click.argument("containers", nargs=-1, required=True)
@pass_ctx
def rm(c: Ctx, force: bool, volumes: bool, link: bool, containers: tuple[str, ...]) -> None:
    """Remove containers."""
    query = {"force": force, **({"v": 1} if volumes else {}), **({"link": True} if link else {})}
    each(c, containers, lambda ref: c.api.call("DELETE", f"/containers/{q(ref.strip('/'))}", query))


@click.command(context_settings=CONTEXT)
@click.argument("containers", nargs=-1, required=True)
@pass_ctx
def wait(c: Ctx, containers: tuple[str, ...]) -> None:
    """Block until containers stop, print their exit codes."""
    for ref in containers:
        res = c.call("POST", f"/containers/{q(ref)}/wait")
        click.echo(res["StatusCode"])


@click.command("exec", context_settings=COMMAND_CONTEXT)
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

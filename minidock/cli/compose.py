"""`minidock compose`: a compose project through the same API as every other
command. The file is read and checked by `minidock.compose` before any
request; `up` undoes what it made if a request fails part-way.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any, NoReturn

import click

from ..client import Client, DaemonError, demux, q
from .common import create_container

CONTEXT = {"help_option_names": ["--help"]}
COLOURS = [36, 33, 32, 35, 34, 96, 93, 92, 95, 94]


class Session:
    def __init__(self, ctx: Any, file: str, project: str | None) -> None:
        self.ctx, self.file, self.project_opt = ctx, file, project

    @property
    def api(self) -> Client:
        return self.ctx.api  # connects on first use: `compose config` needs no daemon

    def load(self) -> Any:
        from ..compose import load

        try:
            pj = load(self.file, self.project_opt)
        except Exception as e:  # noqa: BLE001 - ComposeError and friends: one line
            die(str(e))
        for w in pj.warnings:
            click.echo(f"WARN[0000] {w}", err=True)
        return pj

    @property
    def name(self) -> str:
        from ..compose import project_name

        return self.project_opt or project_name(self.file)

    def call(self, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None) -> Any:
        return self.ctx.call(method, path, query, body)

    def containers(self, project: str) -> list[dict[str, Any]]:
        found = self.call("GET", "/containers/json", {"all": 1})
        return sorted((s for s in found if (s.get("Labels") or {}).get("com.docker.compose.project") == project),
                      key=lambda s: s["Names"][0])


def die(message: str | DaemonError) -> NoReturn:
    from .common import daemon_error, fail

    fail(daemon_error(message) if isinstance(message, DaemonError) else message)


def status(kind: str, name: str, what: str) -> None:
    click.echo(f" \u2714 {kind} {name:<24} {what}", err=True)


@click.group(context_settings=CONTEXT)
@click.option("-f", "--file", "file", default="docker-compose.yml", show_default=True)
@click.option("-p", "--project-name", "project", default=None)
@click.pass_context
def compose(ctx: click.Context, file: str, project: str | None) -> None:
    """Run a docker-compose.yml project's networks and containers."""
    if not os.path.exists(file) and file == "docker-compose.yml" and os.path.exists("compose.yaml"):
        file = "compose.yaml"
    ctx.obj = Session(ctx.obj, file, project)


pass_session = click.make_pass_decorator(Session)


@compose.command(context_settings=CONTEXT)
@click.option("-d", "--detach", is_flag=True)
@pass_session
def up(s: Session, detach: bool) -> None:
    """Create the networks and containers, start them in depends_on order."""
    pj = s.load()
    made: list[tuple[str, str]] = []
    try:
        ids = _create(s, pj, made)
    except DaemonError as e:
        for kind, ref in reversed(made):  # nothing half-made
            try:
                s.api.call("DELETE", f"/{kind}/{q(ref)}", {"force": 1} if kind == "containers" else None)
            except DaemonError:
                pass
        die(e)
    socks = {}
    if not detach:
        click.echo("Attaching to " + ", ".join(sv.container for sv in sorted(pj.services, key=lambda x: x.container)))
        for sv in pj.services:
            socks[sv.container] = s.api.hijack(f"/containers/{ids[sv.container]}/attach",
                                               {"stream": 1, "stdout": 1, "stderr": 1})
    for sv in pj.services:  # start returns once the process runs: depends_on waits for that
        try:
            s.api.call("POST", f"/containers/{ids[sv.container]}/start")
        except DaemonError as e:
            die(e)
        if detach:
            status("Container", sv.container, "Started")
    if detach:
        return
    width = max(len(n) for n in socks)
    threads = [threading.Thread(target=_follow, args=(s, name, sock, width, i), daemon=True)
               for i, (name, sock) in enumerate(socks.items())]
    for t in threads:
        t.start()
    try:
        for t in threads:
            t.join()
    except KeyboardInterrupt:
        click.echo("Gracefully stopping... (press Ctrl+C again to force)", err=True)
        for sv in reversed(pj.services):
            try:
                s.api.call("POST", f"/containers/{ids[sv.container]}/stop")
            except DaemonError:
                pass
        sys.exit(130)


def _create(s: Session, pj: Any, made: list[tuple[str, str]]) -> dict[str, str]:
    existing = {n["Name"]: n for n in s.call("GET", "/networks")}
    for key, req in pj.networks.items():
        if "external" in req:
            if req["external"] not in existing:
                raise DaemonError(404, f"network {req['external']} declared as external, but could not be found")
            continue
        if req["Name"] in existing:
            continue
        unused = key == "default" and not any(f"{pj.name}_default" in sv.networks for sv in pj.services)
        s.api.call("POST", "/networks/create", None, req)
        made.append(("networks", req["Name"]))
        status("Network", req["Name"], "Created" + (" (no service uses it)" if unused else ""))
    _create_volumes(s, pj, made)
    notes = [f"{sv.name} ({sv.image_note})" for sv in pj.services if sv.image_note]
    if notes:  # once for the project, not per container
        click.echo(f"minidock: services {', '.join(notes)} run on the built-in \"host\" root filesystem",
                   err=True)
    ids: dict[str, str] = {}
    have = {c["Names"][0].lstrip("/"): c for c in s.containers(pj.name)}
    warned = set()
    for sv in pj.services:
        if sv.container in have:
            ids[sv.container] = have[sv.container]["Id"]
            status("Container", sv.container, "Running" if have[sv.container]["State"] == "running" else "Created")
            continue
        res, note = create_container(s.api, {"name": sv.container}, sv.body)
        ids[sv.container] = res["Id"]
        made.append(("containers", res["Id"]))
        for w in [note] * bool(note) + (res.get("Warnings") or []):
            if w not in warned:
                warned.add(w)
                click.echo(f"minidock: {w}", err=True)
        status("Container", sv.container, "Created")
    return ids


def _create_volumes(s: Session, pj: Any, made: list[tuple[str, str]]) -> None:
    """The file's named volumes, before the containers that mount them (kept by `down`, gone with `down -v`)."""
    if not pj.volumes:
        return
    existing = {v["Name"] for v in s.call("GET", "/volumes").get("Volumes") or []}
    for req in pj.volumes.values():
        if "external" in req:
            if req["external"] not in existing:
                raise DaemonError(404, f"volume {req['external']} declared as external, but could not be found")
            continue
        if req["Name"] in existing:
            continue
        s.api.call("POST", "/volumes/create", None, req)
        made.append(("volumes", req["Name"]))
        status("Volume", req["Name"], "Created")


def _follow(s: Session, name: str, sock: Any, width: int, index: int) -> None:
    colour = COLOURS[index % len(COLOURS)]
    tty = sys.stdout.isatty()
    prefix = (f"\033[{colour}m{name:<{width}}  |\033[0m " if tty else f"{name:<{width}}  | ")
    buf, pending = bytearray(), b""
    while True:
        data = sock.recv(65536)
        if not data:
            break
        buf += data
        for _, chunk in demux(buf):
            pending = _emit(prefix, pending + chunk)
    sock.close()
    with _print_lock:
        if pending:
            sys.stdout.write(prefix + pending.decode(errors="replace") + "\n")
        try:
            code = s.api.call("POST", f"/containers/{q(name)}/wait")["StatusCode"]
        except DaemonError:
            code = "?"
        sys.stdout.write(f"{name} exited with code {code}\n")
        sys.stdout.flush()


_print_lock = threading.Lock()


def _emit(prefix: str, data: bytes) -> bytes:
    """Print the complete lines of `data` after `prefix`; return the incomplete rest."""
    *lines, rest = data.split(b"\n")
    with _print_lock:
        for line in lines:
            sys.stdout.write(prefix + line.decode(errors="replace").rstrip("\r") + "\n")
        sys.stdout.flush()
    return rest


@compose.command(context_settings=CONTEXT)
@click.option("-v", "--volumes", is_flag=True, help="Remove the file's named volumes and anonymous ones too")
@pass_session
def down(s: Session, volumes: bool) -> None:
    """Remove the project's containers and networks (and volumes, with -v)."""
    project = s.name
    for c in s.containers(project):
        s.call("DELETE", f"/containers/{c['Id']}", {"force": 1, **({"v": 1} if volumes else {})})
        status("Container", c["Names"][0].lstrip("/"), "Removed")
    for n in s.call("GET", "/networks"):
        if (n.get("Labels") or {}).get("com.docker.compose.project") == project:
            s.call("DELETE", f"/networks/{n['Id']}")
            status("Network", n["Name"], "Removed")
    if volumes:
        for v in s.call("GET", "/volumes").get("Volumes") or []:
            if (v.get("Labels") or {}).get("com.docker.compose.project") == project:
                s.call("DELETE", f"/volumes/{q(v['Name'])}")
                status("Volume", v["Name"], "Removed")


@compose.command(context_settings=CONTEXT)
@click.option("-a", "--all", "show_all", is_flag=True)
@pass_session
def ps(s: Session, show_all: bool) -> None:
    """List the project's containers."""
    from .format import displayable
    from .tabwriter import tabulate

    rows = [["NAME", "IMAGE", "COMMAND", "SERVICE", "STATUS", "PORTS"]]
    for c in s.containers(s.name):
        if c["State"] != "running" and not show_all:
            continue
        cmd = c["Command"] if len(c["Command"]) <= 20 else c["Command"][:19] + "\u2026"
        rows.append([c["Names"][0].lstrip("/"), c["Image"], f'"{cmd}"',
                     c["Labels"].get("com.docker.compose.service", ""), c["Status"],
                     displayable(c.get("Ports") or [])])
    click.echo(tabulate(rows), nl=False)


@compose.command(context_settings=CONTEXT)
@click.option("-f", "--follow", is_flag=True)
@click.argument("services", nargs=-1)
@pass_session
def logs(s: Session, follow: bool, services: tuple[str, ...]) -> None:
    """Print the output of the project's containers (of SERVICES only, if given)."""
    chosen = [c for c in s.containers(s.name)
              if not services or c["Labels"].get("com.docker.compose.service") in services]
    width = max((len(c["Names"][0]) - 1 for c in chosen), default=0)

    def one(c: dict[str, Any], index: int) -> None:
        resp = s.api.stream("GET", f"/containers/{c['Id']}/logs", {"follow": follow, "stdout": 1, "stderr": 1})
        name = c["Names"][0].lstrip("/")
        prefix = f"{name:<{width}}  | "
        buf, pending = bytearray(), b""
        while data := (resp.read1(65536) if hasattr(resp, "read1") else resp.read(65536)):
            buf += data
            for _, chunk in demux(buf):
                pending = _emit(prefix, pending + chunk)

    if not follow:
        for i, c in enumerate(chosen):
            one(c, i)
        return
    threads = [threading.Thread(target=one, args=(c, i), daemon=True) for i, c in enumerate(chosen)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


@compose.command(context_settings=CONTEXT)
@pass_session
def config(s: Session) -> None:
    """Print the file as minidock reads it: names and defaults filled in."""
    import yaml

    click.echo(yaml.safe_dump(s.load().normalised, sort_keys=False), nl=False)

"""Commands on a container as a whole: cp, export, commit, diff, stats, pause,
unpause, update. Docker's flags and output; the daemon does the work."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import sys
import tarfile
import time
from typing import Any

import click

from ..client import DaemonError, q
from .common import CONTEXT, Ctx, daemon_error, each, fail, pass_ctx, table

KINDS = {0: "C", 1: "A", 2: "D"}
GO_DIR = 1 << 31


# -- cp
def _split(arg: str) -> tuple[str, str]:
    """'ctr:/path' → ('ctr', '/path'); a local path (also ./a:b) → ('', path)."""
    if arg.startswith(("/", ".")) or ":" not in arg:
        return "", arg
    ref, _, path = arg.partition(":")
    return ref, path


def _human(size: float, binary: bool = False) -> str:
    """go-units: HumanSizeWithPrecision(size, 3) (decimal), or BytesSize (binary, %.4g)."""
    base, units = (1024.0, ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]) if binary else \
        (1000.0, ["B", "kB", "MB", "GB", "TB", "PB"])
    i = 0
    while size >= base and i < len(units) - 1:
        size /= base
        i += 1
    return ("%.4g%s" if binary else "%.3g%s") % (size, units[i])


def _stat(c: Ctx, ref: str, path: str) -> dict[str, Any] | None:
    try:
        headers = c.api.head(f"/containers/{q(ref)}/archive", {"path": path})
    except DaemonError as e:
        if e.status == 404:
            return None
        fail(daemon_error(e))
    return dict(json.loads(base64.b64decode(headers.get("x-docker-container-path-stat", "") or "e30=")))


def _rename_top(name: str, old: str, new: str) -> str:
    if old in ("", "."):
        return os.path.join(new, name) if name != "." else new
    if name == old:
        return new
    return new + name[len(old):] if name.startswith(old + "/") else name


@click.command(context_settings=CONTEXT)
@click.option("-a", "--archive", is_flag=True, help="Archive mode (copy all uid/gid information)")
@click.option("-L", "--follow-link", is_flag=True, help="Always follow symbol link in SRC_PATH")
@click.option("-q", "--quiet", is_flag=True, help="Suppress progress output during copy")
@click.argument("src")
@click.argument("dst")
@pass_ctx
def cp(c: Ctx, archive: bool, follow_link: bool, quiet: bool, src: str, dst: str) -> None:
    """Copy files between a container and the local filesystem (- is a tar on stdin/stdout)."""
    sref, spath = _split(src)
    dref, dpath = _split(dst)
    if bool(sref) == bool(dref):
        fail("copying between containers is not supported" if sref else
             "must specify at least one container source")
    if sref:
        size = _copy_out(c, sref, spath, dpath, follow_link)
        where = dpath
    else:
        size = _copy_in(c, spath, dref, dpath, archive)
        where = dst
    if not quiet and dpath != "-" and spath != "-":
        click.echo(f"Successfully copied {_human(size)} to {where}", err=True)


def _copy_out(c: Ctx, ref: str, path: str, dst: str, follow: bool) -> int:
    if follow:
        st = _stat(c, ref, path)
        if st and st.get("linkTarget"):
            path = st["linkTarget"]
    try:
        resp = c.api.stream("GET", f"/containers/{q(ref)}/archive", {"path": path})
    except DaemonError as e:
        fail(daemon_error(e))
    data = resp.read()
    resp.close()
    if dst == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return len(data)
    st = json.loads(base64.b64decode(resp.getheader("X-Docker-Container-Path-Stat") or "e30="))
    src_is_dir = bool(st.get("mode", 0) & GO_DIR)
    top = st.get("name", os.path.basename(path))
    if os.path.isdir(dst) and not path.endswith("/."):
        into, new = dst, top
    elif os.path.exists(dst) and src_is_dir:
        fail(f'cannot copy a directory to a file: "{dst}"')
    elif dst.endswith("/") and not os.path.exists(dst):
        fail(f"destination directory {dst} must exist: no such file or directory")
    else:
        into, new = os.path.dirname(os.path.abspath(dst)), os.path.basename(os.path.abspath(dst))
        if not os.path.isdir(into):
            fail(f"no such directory: {into}")
    size = 0
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        tar.chown = lambda *a, **k: None  # type: ignore[method-assign]  # the files are the user's, as cp's
        for member in tar:
            member.name = _rename_top(member.name, top, new)
            if member.islnk():
                member.linkname = _rename_top(member.linkname, top, new)
            # nothing outside `into`: the filter's checks, and its name (a leading / stripped)
            member.name = tarfile.tar_filter(member, into).name
            tar.extract(member, into, filter="fully_trusted")
            size += member.size
    return size


def _copy_in(c: Ctx, src: str, ref: str, path: str, archive: bool) -> int:
    if src == "-":
        data = sys.stdin.buffer.read()
        c_put(c, ref, path, data)
        return len(data)
    if not os.path.lexists(src):
        fail(f"lstat {os.path.abspath(src)}: no such file or directory")
    st = _stat(c, ref, path)
    if st is not None and st.get("linkTarget"):  # a link to a directory is copied into, as docker cp does
        target = _stat(c, ref, st["linkTarget"])
        if target is not None and target.get("mode", 0) & GO_DIR:
            st, path = target, st["linkTarget"]
    contents = src.endswith("/.")
    if st is not None and st.get("mode", 0) & GO_DIR:
        into, name = path, "." if contents else os.path.basename(os.path.abspath(src))
    elif st is not None and os.path.isdir(src):
        fail(f'cannot copy a directory to a file: "{ref}:{path}"')
    elif st is None and path.endswith("/"):
        fail(f'Error response from daemon: Could not find the file {path} in container {ref}')
    else:
        into, name = os.path.dirname(path.rstrip("/")) or "/", os.path.basename(path.rstrip("/"))
    buf = io.BytesIO()
    size = 0

    def owner(info: tarfile.TarInfo) -> tarfile.TarInfo:
        nonlocal size
        size += info.size
        info.mtime = int(info.mtime)
        if not archive:  # as docker cp: root owns what it copies in, unless -a
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
        return info

    with tarfile.open(fileobj=buf, mode="w:", format=tarfile.PAX_FORMAT) as tar:
        tar.add(src.removesuffix("/.") or ".", arcname=name, filter=owner)
    c_put(c, ref, into, buf.getvalue())
    return size


def c_put(c: Ctx, ref: str, path: str, data: bytes) -> None:
    try:
        c.api.put_tar(f"/containers/{q(ref)}/archive", {"path": path, "noOverwriteDirNonDir": "true"}, data)
    except DaemonError as e:
        fail(daemon_error(e))


# -- export, commit, diff
@click.command(context_settings=CONTEXT)
@click.option("-o", "--output", default="", help="Write to a file, instead of STDOUT")
@click.argument("container")
@pass_ctx
def export(c: Ctx, output: str, container: str) -> None:
    """Export a container's filesystem as a tar archive."""
    if not output and sys.stdout.isatty():
        fail("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    try:
        resp = c.api.stream("GET", f"/containers/{q(container)}/export")
    except DaemonError as e:
        fail(daemon_error(e))
    out = open(output, "wb") if output else sys.stdout.buffer
    try:
        while chunk := resp.read(1 << 16):
            out.write(chunk)
    finally:
        resp.close()
        if output:
            out.close()
        else:
            out.flush()


@click.command(context_settings=CONTEXT)
@click.option("-a", "--author", default="", help='Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")')
@click.option("-c", "--change", multiple=True, help="Apply Dockerfile instruction to the created image")
@click.option("-m", "--message", default="", help="Commit message")
@click.option("-p", "--pause", type=bool, default=True, help="Pause container during commit (default true)")
@click.argument("container")
@click.argument("repository", required=False, default="")
@pass_ctx
def commit(c: Ctx, author: str, change: tuple[str, ...], message: str, pause: bool, container: str,
           repository: str) -> None:
    """Create a new image from a container's changes."""
    repo, tag = repository, ""
    if repository and ":" in repository.rsplit("/", 1)[-1]:
        repo, tag = repository.rsplit(":", 1)
    query: dict[str, Any] = {"container": container, "repo": repo or None, "tag": tag or None,
                             "author": author or None, "comment": message or None, "pause": pause,
                             "changes": list(change) or None}
    click.echo(c.call("POST", "/commit", query, {})["Id"])


@click.command(context_settings=CONTEXT)
@click.argument("container")
@pass_ctx
def diff(c: Ctx, container: str) -> None:
    """Inspect changes to files or directories on a container's filesystem (A added, C changed, D deleted)."""
    for change in c.call("GET", f"/containers/{q(container)}/changes") or []:
        click.echo(f"{KINDS.get(change['Kind'], '?')} {change['Path']}")


# -- stats
STATS_COLUMNS = [("CONTAINER ID", "ID"), ("NAME", "Name"), ("CPU %", "CPUPerc"), ("MEM USAGE / LIMIT", "MemUsage"),
                 ("MEM %", "MemPerc"), ("NET I/O", "NetIO"), ("BLOCK I/O", "BlockIO"), ("PIDS", "PIDs")]


def stats_row(now: dict[str, Any], prev: dict[str, Any] | None) -> dict[str, Any]:
    """One line of `docker stats`, computed as the Docker CLI does from two readings."""
    cpu, pre = now.get("cpu_stats") or {}, (prev or {}).get("cpu_stats") or now.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (pre.get("cpu_usage") or {}).get("total_usage", 0)
    sys_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    cpu_perc = cpu_delta / sys_delta * (cpu.get("online_cpus") or 1) * 100 if cpu_delta > 0 and sys_delta > 0 else 0.0
    mem = now.get("memory_stats") or {}
    usage = mem.get("usage", 0) - (mem.get("stats") or {}).get("inactive_file", 0)
    limit = mem.get("limit", 0)
    nets = (now.get("networks") or {}).values()
    rx, tx = sum(n["rx_bytes"] for n in nets), sum(n["tx_bytes"] for n in nets)
    blk = (now.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []
    rd = sum(e["value"] for e in blk if e["op"].lower() == "read")
    wr = sum(e["value"] for e in blk if e["op"].lower() == "write")
    running = now.get("read", "").startswith("0001") is False
    return {
        "ID": now["id"][:12], "Container": now["id"][:12], "Name": now.get("name", "").lstrip("/"),
        "CPUPerc": f"{cpu_perc:.2f}%" if running else "--", "MemPerc": f"{usage / limit * 100:.2f}%" if limit else "--",
        "MemUsage": f"{_human(usage, True)} / {_human(limit, True)}" if limit else "-- / --",
        "NetIO": f"{_human(rx)} / {_human(tx)}" if running else "--",
        "BlockIO": f"{_human(rd)} / {_human(wr)}" if running else "--",
        "PIDs": str((now.get("pids_stats") or {}).get("current", 0)) if running else "--",
    }


@click.command(context_settings=CONTEXT)
@click.option("-a", "--all", "all_", is_flag=True, help="Show all containers (default shows just running)")
@click.option("--format", "fmt", default=None, help="Format output using a Go template (table … for a table)")
@click.option("--no-stream", is_flag=True, help="Disable streaming stats and only pull the first result")
@click.option("--no-trunc", is_flag=True, help="Do not truncate output")
@click.argument("containers", nargs=-1)
@pass_ctx
def stats(c: Ctx, all_: bool, fmt: str | None, no_stream: bool, no_trunc: bool, containers: tuple[str, ...]) -> None:
    """Display a live stream of containers' resource usage (NET I/O: every interface but lo)."""
    refs = list(containers) or [s["Id"] for s in c.call("GET", "/containers/json", {"all": all_})]
    prev: dict[str, dict[str, Any]] = {}
    rounds = 0
    while True:
        rows = []
        for ref in refs:
            try:
                now = c.api.call("GET", f"/containers/{q(ref)}/stats", {"stream": False, "one-shot": True})
            except DaemonError as e:
                fail(daemon_error(e))
            row = stats_row(now, prev.get(ref))
            if no_trunc:
                row["ID"] = row["Container"] = now["id"]
            prev[ref] = now
            rows.append(row)
        rounds += 1
        if no_stream and rounds == 1 and any(r["PIDs"] != "--" for r in rows):
            time.sleep(1)  # a second reading: CPU % is a rate
            continue
        if not no_stream and sys.stdout.isatty():
            click.echo("\033[2J\033[H", nl=False)
        table(fmt, rows, STATS_COLUMNS)
        if no_stream:
            return
        time.sleep(1)


# -- pause, unpause, update
@click.command(context_settings=CONTEXT)
@click.argument("containers", nargs=-1, required=True)
@pass_ctx
def pause(c: Ctx, containers: tuple[str, ...]) -> None:
    """Pause all processes within one or more containers (SIGSTOP to each)."""
    each(c, containers, lambda ref: c.api.call("POST", f"/containers/{q(ref)}/pause"))


@click.command(context_settings=CONTEXT)
@click.argument("containers", nargs=-1, required=True)
@pass_ctx
def unpause(c: Ctx, containers: tuple[str, ...]) -> None:
    """Unpause all processes within one or more containers."""
    each(c, containers, lambda ref: c.api.call("POST", f"/containers/{q(ref)}/unpause"))


def ram_in_bytes(value: str) -> int:
    """go-units RAMInBytes: 300m, 1g, 512k, 1.5GiB … (binary units)."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?", value)
    if not m:
        raise click.BadParameter(f"invalid size: '{value}'")
    mult = 1024 ** (" kmgtp".index(m.group(2).lower()) if m.group(2) else 0)
    return int(float(m.group(1)) * mult)


def restart_policy(value: str) -> dict[str, Any]:
    name, _, count = value.partition(":")
    if count and not count.isdigit():
        fail(f"invalid argument \"{value}\" for \"--restart\" flag: maximum retry count must be an integer")
    return {"Name": name, "MaximumRetryCount": int(count or 0)}


@click.command(context_settings=CONTEXT)
@click.option("--blkio-weight", type=int, default=None, help="Block IO (relative weight), between 10 and 1000")
@click.option("--cpu-period", type=int, default=None, help="Limit CPU CFS (Completely Fair Scheduler) period")
@click.option("--cpu-quota", type=int, default=None, help="Limit CPU CFS (Completely Fair Scheduler) quota")
@click.option("--cpu-rt-period", type=int, default=None, help="Limit the CPU real-time period in microseconds")
@click.option("--cpu-rt-runtime", type=int, default=None, help="Limit the CPU real-time runtime in microseconds")
@click.option("-c", "--cpu-shares", type=int, default=None, help="CPU shares (relative weight)")
@click.option("--cpus", type=float, default=None, help="Number of CPUs")
@click.option("--cpuset-cpus", default=None, help="CPUs in which to allow execution (0-3, 0,1)")
@click.option("--cpuset-mems", default=None, help="MEMs in which to allow execution (0-3, 0,1)")
@click.option("-m", "--memory", default=None, help="Memory limit")
@click.option("--memory-reservation", default=None, help="Memory soft limit")
@click.option("--memory-swap", default=None, help="Swap limit equal to memory plus swap: -1 to enable unlimited swap")
@click.option("--pids-limit", type=int, default=None, help="Tune container pids limit (set -1 for unlimited)")
@click.option("--restart", default=None, help="Restart policy to apply when a container exits")
@click.argument("containers", nargs=-1, required=True)
@pass_ctx
def update(c: Ctx, containers: tuple[str, ...], **o: Any) -> None:
    """Update configuration of one or more containers (minidock stores the limits, enforces none)."""
    body: dict[str, Any] = {
        "BlkioWeight": o["blkio_weight"], "CpuPeriod": o["cpu_period"], "CpuQuota": o["cpu_quota"],
        "CpuRealtimePeriod": o["cpu_rt_period"], "CpuRealtimeRuntime": o["cpu_rt_runtime"],
        "CpuShares": o["cpu_shares"], "NanoCpus": int(o["cpus"] * 1e9) if o["cpus"] is not None else None,
        "CpusetCpus": o["cpuset_cpus"], "CpusetMems": o["cpuset_mems"],
        "Memory": ram_in_bytes(o["memory"]) if o["memory"] else None,
        "MemoryReservation": ram_in_bytes(o["memory_reservation"]) if o["memory_reservation"] else None,
        "MemorySwap": (-1 if o["memory_swap"] == "-1" else ram_in_bytes(o["memory_swap"]))
        if o["memory_swap"] else None,
        "PidsLimit": o["pids_limit"],
        "RestartPolicy": restart_policy(o["restart"]) if o["restart"] else None,
    }
    body = {k: v for k, v in body.items() if v is not None}
    if not body:
        fail("you must provide one or more flags when using this command")
    each(c, containers, lambda ref: c.api.call("POST", f"/containers/{q(ref)}/update", None, body))

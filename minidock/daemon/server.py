"""`minidock daemon`: start-up, the Unix socket, signals, shutdown.

The daemon runs in whatever network namespace it was started in: that
namespace is its "host". It is a child subreaper, so containers (orphaned
by their launcher) are its children and it learns their exit codes.
Stopping the daemon leaves containers running; the next start picks them up.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import resource
import signal
import stat
import sys

from .. import steps
from ..explain import Recording, render
from ..kernel import libc
from ..service import files
from ..service.clusterconfig import ClusterConfig
from ..service.engine import Engine
from . import http, routes

log = logging.getLogger("minidock.daemon")


cluster_config = ClusterConfig.parse  # the flags checked before anything starts


def upstreams_from_host(path: str = "/etc/resolv.conf") -> list[str]:
    try:
        with open(path) as f:
            return files.host_nameservers(f.read())
    except OSError:
        return []


async def serve(root: str, socket_path: str, dns_upstream: list[str], explain: bool = False,
                port_maps: bool = False, cluster: ClusterConfig | None = None, ipv6: str | None = None) -> None:
    os.makedirs(root, mode=0o700, exist_ok=True)
    os.chmod(root, 0o700)
    libc.set_child_subreaper()
    # a socket per published port and two (the DNS stub) per container: 1024 is too few
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    engine = Engine(root, dns_upstream or upstreams_from_host(), port_maps, cluster, ipv6)
    recording = Recording() if explain else None
    steps.use_recording(recording)  # start-up: the default bridge, the chains and their jumps
    await engine.open()
    steps.use_recording(None)
    if recording is not None:
        print(render(recording.groups), end="", flush=True)
    # what start-up made lives as long as the daemon: out of the collector's way. (Rarer
    # collections, gc.set_threshold(20_000, …), saved 0.7 ms at the 1000th start but cost
    # 11 MB at 1000 containers: memory is the tighter of issue 9's bars.)
    gc.freeze()
    router = routes.build(engine)
    os.makedirs(os.path.dirname(socket_path) or ".", exist_ok=True)
    if os.path.exists(socket_path) and stat.S_ISSOCK(os.stat(socket_path).st_mode):
        os.unlink(socket_path)
    old_umask = os.umask(0o177)
    try:
        server = await asyncio.start_unix_server(
            lambda r, w: http.serve_connection(router, r, w), path=socket_path)
    finally:
        os.umask(old_umask)
    os.chmod(socket_path, 0o600)
    stop = asyncio.Event()
    engine.shutdown = stop.set  # `minidock system reset` ends the daemon
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("minidock daemon listening on unix://%s (root %s)", socket_path, root)
    # with --explain, stdout is a replayable script: the news goes to stderr
    print(f"minidock daemon ready on unix://{socket_path}", flush=True, file=sys.stderr if explain else sys.stdout)
    try:
        await stop.wait()
    finally:
        server.close()
        try:
            os.unlink(socket_path)
        except FileNotFoundError:
            pass
        await engine.close()
        log.info("minidock daemon stopped; containers keep running")


def run(root: str, socket_path: str, dns_upstream: list[str], debug: bool = False, explain: bool = False,
        port_maps: bool = False, cluster: ClusterConfig | None = None, ipv6: str | None = None) -> None:
    """`ipv6`: the default bridge's IPv6 subnet ("" a ULA /64), or None for IPv4 only."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if os.geteuid() != 0:
        raise SystemExit("minidock daemon must run as root")
    asyncio.run(serve(root, socket_path, dns_upstream, explain, port_maps, cluster, ipv6))

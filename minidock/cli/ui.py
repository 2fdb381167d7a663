"""`minidock ui`: serve the live picture of this host's networking to a web browser.

The server (minidock/ui/server.py, aiohttp) is imported only when the command
runs: every other command starts without it.
"""

from __future__ import annotations

import click

from .common import CONTEXT, Ctx, fail, pass_ctx


@click.command(context_settings=CONTEXT)
@click.option("--listen", default="127.0.0.1:8765", show_default=True, metavar="HOST:PORT",
              help="Where the page is served (port 0: any free port); the URL printed holds the token")
@pass_ctx
def ui(c: Ctx, listen: str) -> None:
    """Show the topology live in a web browser: counters, a container's view, traces (read-only)."""
    try:
        from ..ui import server
    except ImportError as e:
        fail(f"minidock: the ui needs aiohttp ({e}): pip install aiohttp")
    try:
        server.parse_listen(listen)
    except ValueError as e:
        fail(f"minidock: {e}")
    server.main(c.host, listen)

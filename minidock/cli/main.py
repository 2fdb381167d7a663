"""`minidock`: Docker's command line for minidock's daemon, the click side.

Every command speaks HTTP to the daemon (client.py) and prints what Docker
would print. Errors are one line on stderr and a non-zero exit.

This module owns only the top-level group and its error handling; the
commands live in one module per group (containers, listing, networks,
volumes, images, system, compose, events), imported only when one of their commands runs.
The installed `minidock` script starts in entry.py, which tries fast.py's
lean path before coming here.
"""

from __future__ import annotations

import importlib
import sys

import click

from .common import CONTEXT, Ctx

# command name -> (module under minidock.cli, attribute); `images` is `image ls`
COMMANDS: dict[str, tuple[str, str]] = {
    **{name: ("containers", name) for name in
       ("run", "create", "start", "stop", "restart", "kill", "rm", "wait", "attach")},
    "exec": ("containers", "exec_"),
    **{name: ("listing", name) for name in ("ps", "port", "logs", "top", "inspect")},
    "network": ("networks", "network"),
    "volume": ("volumes", "volume"),
    "image": ("images", "image"),
    "images": ("images", "image_ls"),
    **{name: ("system", name) for name in ("daemon", "system", "topology", "version", "node")},
    "compose": ("compose", "compose"),
    **{name: ("events", name) for name in ("events", "rename", "container")},
    **{name: ("wholes", name) for name in ("cp", "export", "commit", "diff", "stats", "pause", "unpause", "update")},
    "trace": ("trace", "trace"),
    "ui": ("ui", "ui"),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use: `minidock ps` loads
    listing.py and nothing of run, network or compose."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name not in COMMANDS:
            return self.commands.get(cmd_name)
        module, attr = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(f"{__package__}.{module}"), attr)
        if not isinstance(command, click.Command):
            raise TypeError(f"minidock.cli.{module}.{attr} is not a click command")
        return command

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None,
                                                                            list[str]]:
        if args and args[0] not in COMMANDS and args[0] not in self.commands:
            # an unknown name: load every command so that click's "Did you mean …?" sees them all
            for name in COMMANDS:
                command = self.get_command(ctx, name)
                if command is not None:
                    self.add_command(command, name)
        return super().resolve_command(ctx, args)


@click.group(cls=LazyGroup, context_settings=CONTEXT)
@click.option("-H", "--host", envvar="MINIDOCK_HOST", help="Daemon socket, unix://PATH")
@click.option("--explain", is_flag=True, envvar="MINIDOCK_EXPLAIN",
              help="Print on stderr the ip/iptables/sysctl commands equal to what each command does")
@click.pass_context
def cli(ctx: click.Context, host: str | None, explain: bool) -> None:
    """minidock: Docker's container networking on real kernel objects, for learning."""
    ctx.obj = Ctx(host, explain)


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
    # `python -m minidock.cli.main` (the tests, the demo) takes the same road as the script
    from .entry import main as entry_main

    entry_main()

"""The ``geolabel`` command: a click group whose subcommands are thin wrappers.

Each subcommand lives in its own module, parses options, calls one library function
and prints a summary. Heavy libraries are imported inside the command bodies, so
``geolabel --help`` is instant.
"""

from __future__ import annotations

import logging
import signal
import sys
import warnings
from typing import Any

import click

from geolabel import __version__
from geolabel.errors import GeolabelError


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that it unwinds like Ctrl-C: the engine's
    cleanup runs (the tile index is written, temporary outputs removed)."""


def _on_sigterm(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: the cleanup itself is not interrupted
    raise Terminated()


class _Group(click.Group):
    """Turns geolabel errors into one-line messages and their exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GeolabelError as exc:
            click.echo(f"geolabel: error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except click.exceptions.Exit:
            raise
        except click.ClickException as exc:  # bad options: same one-line format, exit 2
            message = " ".join(exc.format_message().split())
            click.echo(f"geolabel: error: {message} (see --help)", err=True)
            ctx.exit(2)
        except Terminated:
            click.echo("geolabel: terminated", err=True)
            ctx.exit(143)
        except KeyboardInterrupt:
            click.echo("geolabel: interrupted", err=True)
            ctx.exit(130)


def _show_warning(message: Any, category: Any, filename: Any, lineno: Any, file: Any = None, line: Any = None) -> None:
    if category.__name__ == "NotGeoreferencedWarning":  # said once, as an error or by --allow-no-crs
        return
    click.echo(f"geolabel: warning: {message}", err=True)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="geolabel")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose: int) -> None:
    """geolabel: tile imagery, keep land-cover labels, export training sets."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    warnings.showwarning = _show_warning
    signal.signal(signal.SIGTERM, _on_sigterm)


def _register() -> None:
    from geolabel.cli.check import check
    from geolabel.cli.export import export
    from geolabel.cli.labels import labels
    from geolabel.cli.score import score
    from geolabel.cli.tile import tile

    main.add_command(tile)
    main.add_command(labels)
    main.add_command(export)
    main.add_command(check)
    main.add_command(score)


_register()

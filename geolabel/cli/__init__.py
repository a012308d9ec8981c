"""The ``geolabel`` command: a click group whose subcommands are thin wrappers.

Each subcommand lives in its own module, parses options, calls one library function
and prints a summary. Heavy libraries are imported inside the command bodies, so
``geolabel --help`` is instant.
"""

from __future__ import annotations

import atexit
import gc
import logging
import os
import signal
import sys
import traceback
import warnings
from typing import Any

import click

from geolabel import __version__, garbage
from geolabel.cli.flags import cli_message
from geolabel.errors import GeolabelError, GeolabelWarning
from geolabel.stop import clear_stop, is_deferring, request_stop, stop_requested

#: Exit code of an unexpected exception: a bug in geolabel, not a bad input (sysexits' EX_SOFTWARE).
EXIT_INTERNAL = 70


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that it unwinds like Ctrl-C: the engine's
    cleanup runs (the tile index is written, temporary outputs removed)."""


def _on_signal(signum: int, frame: Any) -> None:
    """Ctrl-C and SIGTERM: recorded for the engine's batch loops (a raise from here can be
    lost, see :mod:`geolabel.stop`), then raised to unwind the command; but not inside a
    :func:`geolabel.stop.deferred` section (delivered again as it ends) nor inside an
    import: Cython modules run code while they are imported, an exception there is
    dropped and makes Python end by killing itself with SIGINT (seen: exit -2 after
    "geolabel: interrupted"), so the signal is delivered again just after the import."""
    request_stop(signum)
    if is_deferring():  # delivered again when the section ends
        return
    if _importing(frame):
        import _thread
        import threading

        threading.Timer(0.05, _thread.interrupt_main, args=(signum,)).start()
        return
    if signum == signal.SIGTERM:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: the cleanup itself is not interrupted
        raise Terminated()
    raise KeyboardInterrupt


def _importing(frame: Any) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


class _Group(click.Group):
    """Turns geolabel errors into one-line messages and their exit codes; loads each
    subcommand's module when it is asked for (:data:`_COMMANDS`)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*_COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in _COMMANDS:
            import importlib

            self.add_command(getattr(importlib.import_module(_COMMANDS[cmd_name]), cmd_name))
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        with warnings.catch_warnings():  # the filters `main` sets last for this command only
            try:
                return super().invoke(ctx)
            except GeolabelError as exc:
                click.echo(f"geolabel: error: {cli_message(str(exc), exc.params)}", err=True)
                ctx.exit(exc.exit_code)
            except click.exceptions.Exit:
                raise
            except click.ClickException as exc:  # bad options: same one-line format, exit 2
                message = " ".join(exc.format_message().split())
                click.echo(f"geolabel: error: {message} (see --help)", err=True)
                ctx.exit(2)
            except KeyboardInterrupt as exc:
                if isinstance(exc, Terminated) or stop_requested() == signal.SIGTERM:
                    click.echo("geolabel: terminated", err=True)
                    ctx.exit(143)
                click.echo("geolabel: interrupted", err=True)
                ctx.exit(130)

    def main(self, args: Any = None, *posargs: Any, **kwargs: Any) -> Any:
        """As a program (no ``args``: the command line is ``sys.argv``), an OSError that is no
        geolabel error (disk full, permissions) is one line too, and an unexpected exception
        is labelled a bug (its traceback kept) with exit code 70. Called from Python with
        ``args`` (tests, click's CliRunner), exceptions propagate as they are."""
        if args is not None:
            return super().main(args, *posargs, **kwargs)
        garbage.keep_from_now()
        try:
            return super().main(args, *posargs, **kwargs)
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"geolabel: error: {where}{exc.strerror or exc}", err=True)
            sys.exit(2)
        except Exception:
            traceback.print_exc()
            click.echo(f"geolabel: error: internal error (a bug in geolabel {__version__}; please report it)", err=True)
            sys.exit(EXIT_INTERNAL)


#: Warnings a user sees: geolabel's own. Library warnings (GDAL's, relayed by pyogrio;
#: deprecations in affine and rasterio) are for developers: shown with -v, as log lines.
_HIDDEN_WARNINGS = ("NotGeoreferencedWarning",)  # said once, as an error or by --allow-no-crs


def _show_warning(message: Any, category: Any, filename: Any, lineno: Any, file: Any = None, line: Any = None) -> None:
    if category.__name__ in _HIDDEN_WARNINGS:
        return
    if issubclass(category, GeolabelWarning):
        click.echo(f"geolabel: warning: {cli_message(str(message), getattr(message, 'params', ()))}", err=True)
    else:
        logging.getLogger("py.warnings").info("%s: %s", category.__name__, message)


def _configure_warnings(verbose: int) -> None:
    warnings.showwarning = _show_warning
    warnings.simplefilter("default" if verbose else "ignore")
    warnings.simplefilter("default", GeolabelWarning)


class _OwnRecords(logging.Filter):
    """Without -v only geolabel's log records are shown: GDAL's warnings reach rasterio's
    and fiona's loggers, and whatever GDAL could not do arrives as an error anyway."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name == "geolabel" or record.name.startswith("geolabel.")


def _configure_logging(verbose: int) -> None:
    if not verbose:  # what GDAL prints itself when no handler of rasterio's or fiona's is installed
        os.environ.setdefault("CPL_LOG", os.devnull)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    if not verbose:
        handler.addFilter(_OwnRecords())
    logging.basicConfig(level=logging.WARNING - 10 * min(verbose, 2), handlers=[handler])


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="geolabel")
@click.option("-v", "--verbose", count=True, help="More log output, library warnings included (-vv for debug).")
def main(verbose: int) -> None:
    """geolabel: tile imagery, keep land-cover labels, export training sets."""
    gc.set_threshold(*garbage.THRESHOLDS)  # for the whole run (see geolabel.garbage)
    # at exit the objects are frozen: the full collection Python runs as it ends would walk
    # them once more (0.4 s after a check of 50,000 labels) only to free what the process
    # gives back anyway; every output is closed by then (each write has its context manager)
    atexit.unregister(gc.freeze)  # registered once, however often the group runs in one process
    atexit.register(gc.freeze)
    _configure_logging(verbose)
    _configure_warnings(verbose)
    clear_stop()
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)


#: Each subcommand and the module it lives in, imported only when the subcommand runs
#: (or ``--help`` lists them): a command pays for its own module, not for all of them.
_COMMANDS = {
    "check": "geolabel.cli.check",
    "export": "geolabel.cli.export",
    "labels": "geolabel.cli.labels",
    "review": "geolabel.cli.tasks",
    "score": "geolabel.cli.score",
    "suggest": "geolabel.cli.suggest",
    "tags": "geolabel.cli.tags",
    "tasks": "geolabel.cli.tasks",
    "team": "geolabel.cli.team",
    "tile": "geolabel.cli.tile",
}

"""Atomic outputs: build under a temporary name, move into place when complete."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from geolabel.errors import OutputExistsError


def check_replaceable(out: Path, *, marker: str, what: str, overwrite: bool) -> None:
    """Refuse to build ``out`` where it would destroy something.

    A new or empty folder is fine. An existing one needs ``overwrite``, and even then only
    a folder geolabel made itself (it holds ``marker``) is replaced: a user who points the
    output at their project folder must not lose it.
    """
    if not out.exists():
        return
    if not out.is_dir():
        raise OutputExistsError(f"{out}: exists and is not a folder; choose a new folder for the {what}")
    if not any(out.iterdir()):
        return
    if not overwrite:
        raise OutputExistsError(f"{out}: already exists; pass --overwrite to replace the {what}")
    if not (out / marker).exists():
        raise OutputExistsError(
            f"{out}: is not a {what} made by geolabel (no {marker}); it is left alone, choose a new or empty folder"
        )


def replace_dir(tmp: Path, out: Path) -> None:
    """Move the finished folder ``tmp`` to ``out``; an old ``out`` is removed only after
    the new one is in place, so a failure never leaves neither."""
    if out.exists():
        old = out.with_name(f".{out.name}.{os.getpid()}.old")
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)

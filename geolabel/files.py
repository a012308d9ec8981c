"""Atomic outputs: build under a temporary name, move into place when complete."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from geolabel.errors import InputError, OutputExistsError

#: Longest file name (bytes) on Linux, macOS and Windows file systems.
NAME_MAX = 255


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


def leads_outside(path: Path, folder: Path) -> bool:
    """Whether ``path`` (a name inside ``folder``) is a symbolic link resolving outside ``folder``."""
    return path.is_symlink() and not path.resolve().is_relative_to(folder.resolve())


def child_path(folder: Path, relative: str) -> Path:
    """``folder / relative`` for a ``/``-separated name made from input data, refused (an
    :class:`InputError`) if it could lead elsewhere: an absolute name, empty, ``.``, ``..``
    or hidden parts, backslashes, NUL bytes, parts longer than a file name, or a folder on
    the way that is a link to outside ``folder``. The last part is not followed, so
    unlinking the result removes a link, never its target.

    >>> str(child_path(Path("out"), "images/train/a_r000_c001.tif"))
    'out/images/train/a_r000_c001.tif'
    >>> child_path(Path("out"), "images/../../x.tif")
    Traceback (most recent call last):
    geolabel.errors.InputError: out: 'images/../../x.tif' is not a name inside this folder
    """
    parts = relative.split("/")
    for part in parts:
        if not part or part.startswith(".") or "\\" in part or "\x00" in part or len(part.encode()) > NAME_MAX:
            raise InputError(f"{folder}: {relative[:80]!r} is not a name inside this folder")
    for k in range(1, len(parts)):
        if leads_outside(folder.joinpath(*parts[:k]), folder):
            raise InputError(f"{folder}: {'/'.join(parts[:k])!r} is a link to outside this folder")
    return folder.joinpath(*parts)

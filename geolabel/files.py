"""Atomic outputs: build under a temporary name, move into place when complete."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from geolabel.errors import InputError, OutputError, OutputExistsError

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
        raise OutputExistsError(
            f"{out}: already exists; pass `overwrite=True` to replace the {what}", params=("overwrite",)
        )
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


def check_output_folder(path: str | os.PathLike[str], *, create_parents: bool = False) -> None:
    """Refuse before any work an output ``path`` whose folder is missing or cannot be written
    (permissions, read-only file system). With ``create_parents`` a missing folder is fine
    if its nearest existing ancestor can be written."""
    out = Path(path)
    parent = out.parent
    if not parent.exists() and not create_parents:
        raise OutputError(f"{out}: folder {out.parent} does not exist")
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"{out}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{out}: cannot write in folder {parent} (permission denied or read-only file system)")


def make_temp_dir(out: Path) -> Path:
    """An empty temporary sibling folder of ``out`` to build it in (see :func:`replace_dir`)."""
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
    except OSError as exc:
        raise OutputError(f"{out}: cannot create the output folder ({exc.strerror or exc})") from None
    return tmp


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) under a temporary name and rename it to ``path`` when complete."""
    out = Path(path)
    check_output_folder(out)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, out)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise OutputError(f"{out}: cannot write ({exc.strerror or exc})") from None

"""Atomic outputs: build under a temporary name, move into place when complete.

Temporary names carry the writer's process id and machine (``.<name>.<pid>-<host>.tmp<suffix>``),
so a run killed with ``kill -9`` leaves names the next run recognises: :func:`sweep_stale`
removes those whose process is gone, and :func:`recover_replaced` puts back a dataset a
killed run had moved aside (``.<name>.<pid>-<host>.old``) but not yet replaced.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import re
import shutil
import socket
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

from geolabel.errors import (
    BusyError,
    GeolabelError,
    InputError,
    MissingFileError,
    OutputError,
    OutputExistsError,
    RecoveredOutputWarning,
)

#: Longest file name (bytes) on Linux, macOS and Windows file systems.
NAME_MAX = 255


#: This machine in temporary names: 8 hex digits of its host name. A folder may be shared
#: (NFS, cluster workers): a sweep judges only the processes of its own machine.
HOST_TAG = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]
#: Temporaries of another machine are swept only when untouched for this long (seconds).
FOREIGN_STALE_SECONDS = 24 * 3600
#: ``<pid>-<host>``, the writer (process and machine) in a temporary name: :func:`writer_tag`.
WRITER = r"(?P<pid>\d+)-(?P<host>[0-9a-f]{8})"


def writer_tag() -> str:
    """``<pid>-<host>`` of this process (matched by :data:`WRITER`, judged by :func:`is_abandoned`)."""
    return f"{os.getpid()}-{HOST_TAG}"  # at call time: pool workers have their own pid


def temp_path(path: Path, suffix: str = "") -> Path:
    """Hidden temporary sibling of ``path`` for write-then-rename:
    ``.<name>.<pid>-<host>.tmp<suffix>``."""
    return path.with_name(f".{path.name}.{writer_tag()}.tmp{suffix}")


#: GDAL settings for writing a GeoPackage under a temporary name (a tile index, a report's
#: findings.gpkg): SQLite neither syncs the file to disk at each commit (about 30 for an
#: empty tile index) nor keeps its rollback journal on disk. 18 ms an empty index here,
#: 8 ms without, and far more on network and spinning disks. The file is renamed into
#: place only once complete, and a half-written one is never read: it is removed as a
#: killed writer's temporary. Chips are not synced either; label stores are.
UNSYNCED_GPKG = {"OGR_SQLITE_SYNCHRONOUS": "OFF", "OGR_SQLITE_JOURNAL": "MEMORY"}


@contextlib.contextmanager
def atomic_file(path: Path, suffix: str = "") -> Iterator[Path]:
    """Write-then-rename: yields the :func:`temp_path` to write; renamed to ``path`` when
    the block ends, removed if it fails or is interrupted (nothing partial is left).

    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_file(out) as tmp:
    ...     _ = tmp.write_text("done")
    >>> out.read_text(), [p.name for p in out.parent.iterdir()]
    ('done', ['a.txt'])
    """
    tmp = temp_path(path, suffix)
    tmp.unlink(missing_ok=True)  # a link planted at the name is removed, never written through
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


def temp_pattern(name_pattern: str, suffix_pattern: str = "") -> re.Pattern[str]:
    """Regex of the :func:`temp_path` names for file names matching ``name_pattern``."""
    return re.compile(rf"\.(?:{name_pattern})\.{WRITER}\.tmp{suffix_pattern}")


def is_abandoned(match: re.Match[str], path: str) -> bool:
    """Whether the writer named in a temporary name (``pid``, ``host``) is gone: a process of
    this machine that ended, or, for another machine, a file untouched for a day."""
    if match.group("host") != HOST_TAG:
        try:
            return time.time() - os.lstat(path).st_mtime > FOREIGN_STALE_SECONDS
        except OSError:
            return False
    return not is_running(int(match.group("pid")))


def is_running(pid: int) -> bool:
    """Whether process ``pid`` exists and has not ended (this process counts as running)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:  # someone else's process
        return True
    try:  # Linux: an ended process nobody has reaped yet (a zombie) still answers kill(0)
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in (b"Z", b"X")


def sweep_stale(folder: Path, pattern: re.Pattern[str]) -> list[Path]:
    """Remove the entries of ``folder`` whose names match ``pattern`` (with a ``pid``
    group) and whose process is gone: what killed runs left. Returns what was removed."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        m = pattern.fullmatch(entry.name)
        if m is None or not is_abandoned(m, entry.path):
            continue
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


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


def _old_path(out: Path) -> Path:
    return out.with_name(f".{out.name}.{writer_tag()}.old")


def _dir_pattern(out: Path) -> re.Pattern[str]:
    """The names :func:`temp_path` and :func:`replace_dir` give to siblings of ``out``."""
    return re.compile(rf"\.{re.escape(out.name)}\.{WRITER}\.(?P<kind>tmp|old)")


def recover_replaced(out: Path) -> Path | None:
    """Tidy what killed runs left next to the folder ``out``; returns a restored folder.

    A run killed between the two renames of :func:`replace_dir` leaves the previous
    ``out`` only as ``.<out>.<pid>.old``: it is moved back (with a warning). Then stale
    temporary folders and old copies of dead processes are removed.
    """
    restored = None
    if not out.exists() and out.parent.is_dir():
        pattern = _dir_pattern(out)
        olds = []
        for entry in os.scandir(out.parent):
            m = pattern.fullmatch(entry.name)
            if m and m.group("kind") == "old" and is_abandoned(m, entry.path):
                olds.append(Path(entry.path))
        if olds:
            restored = max(olds, key=lambda p: p.stat().st_mtime_ns)
            os.replace(restored, out)
            warnings.warn(
                f"{out}: restored the previous version from {restored.name} (a run was killed while replacing it)",
                RecoveredOutputWarning,
                stacklevel=2,
            )
    sweep_stale(out.parent, _dir_pattern(out))
    return restored


def replace_dir(tmp: Path, out: Path) -> None:
    """Move the finished folder ``tmp`` to ``out``; an old ``out`` is removed only after
    the new one is in place, so a failure never leaves neither (and a kill in between
    leaves the old one as ``.<out>.<pid>.old`` for :func:`recover_replaced`)."""
    if out.exists():
        old = _old_path(out)
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


def child_dir(folder: Path, name: str) -> Path:
    """:func:`child_path` for a folder that will be entered (listed, written into): the
    last part must not be a link to outside ``folder`` either.

    >>> str(child_dir(Path("out"), "village"))
    'out/village'
    """
    path = child_path(folder, name)
    if leads_outside(path, folder):
        raise InputError(f"{path}: is a link to outside {folder}; geolabel works only inside its output folder")
    return path


def check_input_file(path: Path, what: str = "file") -> None:
    """Refuse an input ``path`` that is missing, a folder, or no regular file: GDAL and
    SQLite would wait forever on a FIFO and read a device without end."""
    import stat

    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise MissingFileError(f"{path}: no such file") from None
    except OSError as exc:  # a link loop, a folder that cannot be entered
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(mode):
        raise InputError(f"{path}: is a directory, not a {what}")
    if not stat.S_ISREG(mode):
        raise InputError(f"{path}: is not a regular file (a pipe or a device); give a {what}")


def check_output_file(out: str | os.PathLike[str], *, inputs: Sequence[str | os.PathLike[str] | None] = ()) -> None:
    """Refuse, before any work, an output file :func:`write_text_atomic` could not write or
    should not: its folder missing or read-only, a device or pipe in its place (the rename
    would replace ``/dev/full`` with a file), or one of the ``inputs`` (it would be lost)."""
    target = Path(out)
    check_output_folder(target)
    if (target.exists() or target.is_symlink()) and not target.is_file():
        raise InputError(f"{out}: exists and is not a regular file; write to a new file")
    for given in inputs:
        if given is not None and target.exists() and Path(given).exists() and target.samefile(given):
            raise InputError(f"{out}: is one of the inputs ({given}); write to another file")


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


def prepare_output_dir(out: Path, *, marker: str, what: str, overwrite: bool) -> None:
    """Everything checked before a folder output (a dataset, a QA report) is built: what a
    killed run left next to it is tidied (:func:`recover_replaced`), an existing folder is
    replaceable (:func:`check_replaceable`) and its parent can be written."""
    recover_replaced(out)
    check_replaceable(out, marker=marker, what=what, overwrite=overwrite)
    check_output_folder(out, create_parents=True)


@contextlib.contextmanager
def folder_lock(folder: Path, *, shared: bool, busy: str) -> Iterator[None]:
    """Hold ``folder`` while a run writes it (``shared=False``: alone) or reads it (shared
    with other readers): two ``tile`` runs into one folder mixed their grids, and an export
    could link chips a ``tile --overwrite`` was replacing. The lock is taken on the folder
    itself (no lock file), is released when the process ends however it ends, and is not
    waited for: a busy folder is an :class:`OutputError` (exit 2) saying ``busy``.
    A folder that does not exist yet, or a system without ``flock``, is not locked.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except (FileNotFoundError, NotADirectoryError):
        yield
        return
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BusyError(f"{folder}: {busy}") from None
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_dir(out: Path) -> Iterator[Path]:
    """:func:`atomic_file` for a folder: yields an empty temporary sibling to build ``out``
    in; it replaces ``out`` when the block ends (:func:`replace_dir`) or is removed if the
    block fails or is interrupted."""
    tmp = make_temp_dir(out)
    try:
        yield tmp
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def make_temp_dir(out: Path) -> Path:
    """An empty temporary sibling folder of ``out`` to build it in (see :func:`replace_dir`)."""
    tmp = temp_path(out)
    try:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
    except OSError as exc:
        raise OutputError(f"{out}: cannot create the output folder ({exc.strerror or exc})") from None
    return tmp


#: errno values that say an output cannot be written: the disk, not the input, is the problem.
_OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})
#: The same, as GDAL and SQLite word it in the exceptions fiona, rasterio and pyogrio raise.
_OUTPUT_FAILURES = ("No space left on device", "database or disk is full", "Disk quota exceeded", "File too large")


def write_failure(exc: BaseException | str) -> str | None:
    """What ``exc`` (or an error message) says went wrong if it is an output that could not
    be written (a full disk, a quota, a read-only file system), else None.

    >>> write_failure(OSError(errno.ENOSPC, "No space left on device", "/in/chip.tif"))
    'No space left on device'
    >>> write_failure(RuntimeError("sqlite3_exec(CREATE TABLE t (a)) failed: database or disk is full"))
    'database or disk is full'
    >>> write_failure(FileNotFoundError(errno.ENOENT, "No such file or directory")) is None
    True
    """
    if isinstance(exc, OSError) and exc.errno in _OUTPUT_ERRNOS:
        return exc.strerror or str(exc)
    text = str(exc).casefold()
    return next((words for words in _OUTPUT_FAILURES if words.casefold() in text), None)


class _GDALErrors(logging.Handler):
    """The error messages GDAL's Python bindings log (their first one is the cause: after a
    full disk SQLite's last word is "cannot rollback - no transaction is active")."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


#: Free bytes below which a failed write is put down to a full disk: some writers (GDAL's
#: GeoPackage through pyogrio) fail on a full disk with a later symptom ("no such table").
FULL_DISK_BYTES = 256 * 1024


def _disk_full(out: Path) -> str | None:
    """ "No space left on device" when the file system ``out`` is on is (nearly) full."""
    folder = out
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        st = os.statvfs(folder)
    except OSError:
        return None
    return os.strerror(errno.ENOSPC) if st.f_bavail * st.f_frsize < FULL_DISK_BYTES else None


@contextlib.contextmanager
def writing(out: Path, what: str) -> Iterator[None]:
    """Say a failed write inside the block (:func:`write_failure`) as an :class:`OutputError`
    naming ``out``, the output being written: copying a chip onto a full disk fails with
    the name of the chip it reads from, GDAL's with the SQL statement it ran."""
    logged = _GDALErrors()
    loggers = [logging.getLogger(name) for name in ("fiona", "rasterio", "pyogrio")]
    for logger in loggers:
        logger.addHandler(logged)
    try:
        yield
    except GeolabelError:
        raise
    except Exception as exc:
        said: list[BaseException | str] = [exc, exc.__cause__ or exc, *logged.messages]
        reason = next((r for r in map(write_failure, said) if r is not None), None) or _disk_full(out)
        if reason is None:
            raise
        raise OutputError(f"{out}: cannot write the {what} ({reason})") from None
    finally:
        for logger in loggers:
            logger.removeHandler(logged)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) under a temporary name and rename it to ``path`` when complete.

    Only a regular file is replaced: a device (``/dev/full``) or a pipe would be swapped
    for a file by the rename."""
    out = Path(path)
    check_output_file(out)
    try:
        with atomic_file(out) as tmp:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
    except OSError as exc:
        raise OutputError(f"{out}: cannot write ({exc.strerror or exc})") from None


#: File systems on other machines: SQLite's locks (and so a GeoPackage's) are unreliable there.
NETWORK_FILESYSTEMS = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "fuse.sshfs", "9p")


def read_mount_table() -> list[tuple[str, str]]:
    """``(mount point, file system type)`` of this process's mounts, in mount order (Linux's
    ``/proc/self/mountinfo``); empty where there is none (macOS, Windows)."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as fh:
            return parse_mountinfo(fh.read())
    except OSError:
        return []


def parse_mountinfo(text: str) -> list[tuple[str, str]]:
    r"""``(mount point, file system type)`` per line of a ``mountinfo`` table (``\040`` is a space).

    >>> parse_mountinfo("36 25 0:32 / /mnt/team\\040share rw,relatime shared:1 - nfs4 srv:/x rw,vers=4.2")
    [('/mnt/team share', 'nfs4')]
    """
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if sep and len(fields) >= 5 and tail:
            mounts.append((re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4]), tail[0]))
    return mounts


def filesystem_type(path: str | os.PathLike[str]) -> str | None:
    """Type of the file system ``path`` (which need not exist yet) is on: that of the longest
    mount point above it (the last mounted one if several share it); None when unknown (in
    a chroot, whose root is no mount point, for paths on no mount inside it).

    >>> filesystem_type("/proc/self")
    'proc'
    """
    target = os.path.realpath(path)
    best: tuple[int, str] | None = None
    for point, fstype in read_mount_table():
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= best[0]):
            best = (len(point), fstype)
    return best[1] if best else None

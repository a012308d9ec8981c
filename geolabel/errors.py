"""Errors and warnings raised by geolabel.

Every error names the file (or option) and the problem in one line, so the CLI can
print ``geolabel: error: <message>`` and exit with :attr:`GeolabelError.exit_code`.
Like rasterio's ``RasterioIOError(RasterioError, OSError)``, errors also inherit a
builtin base so callers can catch them generically.

Messages name API arguments and functions in backquotes as Python spells them (pass
`overwrite=True`; `min_overlap` must be ...; create one with `create_store()`) and list
them in ``params``; the CLI rewrites exactly those into its flags and commands
(--overwrite, geolabel labels init) with one table, :mod:`geolabel.cli.flags`, and the
QGIS plugin into its parameter names, both through :func:`say_params`.

>>> err = OutputExistsError("out: already exists; pass `overwrite=True`", params=("overwrite",))
>>> str(err), err.params, isinstance(err, FileExistsError)
('out: already exists; pass `overwrite=True`', ('overwrite',), True)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence


class GeolabelError(Exception):
    """Base class of all geolabel errors.

    ``params``: the API arguments (``overwrite``) and functions (``create_store()``) the
    message names, so a front end can say them its own way.
    """

    #: Exit code used by the CLI (2 = unusable input or options).
    exit_code: int = 2

    def __init__(self, *args: object, params: Sequence[str] = ()) -> None:
        super().__init__(*args)
        self.params = tuple(params)


class InputError(GeolabelError, ValueError):
    """An input file or option is unusable (wrong type, corrupt, impossible value)."""


class MissingFileError(InputError, FileNotFoundError):
    """An input file does not exist."""


class CRSError(InputError):
    """A coordinate reference system is missing, unknown or incompatible."""


class OutputError(GeolabelError, OSError):
    """An output cannot be written (permissions, full disk, ...): not the input's fault."""

    #: sysexits' EX_CANTCREAT (2 is for unusable input, 1 for ``check`` finding errors)
    exit_code = 73


class TaskError(GeolabelError):
    """A batch task failed part-way; ``partial_results`` holds what it finished. Raised as
    :class:`TaskInputError` or :class:`TaskOutputError`, so the exit code says which."""

    def __init__(self, message: str, partial_results: object = None) -> None:
        super().__init__(message)
        self.partial_results = partial_results

    def __reduce__(self) -> tuple[object, ...]:  # keep partial results across process pools
        return (type(self), (str(self), self.partial_results))


class TaskInputError(TaskError, InputError):
    """A batch task failed on its input (a corrupt scene block, ...)."""


class TaskOutputError(TaskError, OutputError):
    """A batch task could not write its outputs (a full disk, ...)."""


class OutputExistsError(GeolabelError, FileExistsError):
    """An output exists and would be overwritten or mixed with incompatible content."""


class BusyError(GeolabelError, TimeoutError):
    """Another program holds what this one needs (a folder another run writes, a store)."""


class StoreBusyError(BusyError):
    """Another program held the label store's write lock for longer than the busy timeout."""


class AccessDeniedError(GeolabelError, PermissionError):
    """The database refused: the caller's role may not do this (another team's label, a
    status only a reviewer gives, a project the caller is not a member of)."""

    #: sysexits' EX_NOPERM
    exit_code = 77


class UnreachableError(GeolabelError, ConnectionError):
    """A database server cannot be reached or refused the login: not the input's fault."""

    #: sysexits' EX_UNAVAILABLE
    exit_code = 69


class CancelledError(GeolabelError):
    """The caller's ``is_cancelled`` callback asked to stop."""

    exit_code = 130


class GeolabelWarning(UserWarning):
    """Base class of geolabel warnings; ``params`` as for :class:`GeolabelError`."""

    def __init__(self, *args: object, params: Sequence[str] = ()) -> None:
        super().__init__(*args)
        self.params = tuple(params)


class EdgePolicyWarning(GeolabelWarning):
    """An edge policy could not be applied as asked (e.g. a scene smaller than a chip)."""


class EmptySplitWarning(GeolabelWarning):
    """A split asked for got no chips (too few spatial blocks for the fractions)."""


class EmptyInputWarning(GeolabelWarning):
    """An input holds no features (an empty delivery passes its checks, and says so)."""


class ClassAssumedWarning(GeolabelWarning):
    """Classes were assumed rather than read (e.g. class-less files scored as one class)."""


class RecoveredOutputWarning(GeolabelWarning):
    """An output a killed run had moved aside (``.<name>.<pid>.old``) was put back in place."""


def check_choice(value: str, allowed: tuple[str, ...], what: str | None = None, *, param: str | None = None) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise an error listing them.

    ``param``: the API argument the value came from (the message names it).

    >>> check_choice("acepted", ("draft", "accepted"), param="status")
    Traceback (most recent call last):
    ...
    geolabel.errors.InputError: `status` must be one of draft, accepted; got 'acepted'
    """
    if value not in allowed:
        name = what or f"`{param}`"
        raise InputError(f"{name} must be one of {', '.join(allowed)}; got {value!r}", params=(param,) if param else ())
    return value


def first_line(exc: BaseException, path: object = None) -> str:
    """The first line of an error message (of its cause when it only says "see the previous
    exception"), without the file name GDAL repeats or the SQL it ran; at most 200 characters.

    >>> first_line(RuntimeError("b'sqlite3_exec(CREATE TABLE t (a TEXT)) failed: database or disk is full'"))
    'database or disk is full'
    """
    whole = str(exc)
    sql = re.search(r"sqlite3_\w+\(.*\) failed: ([^'\n]*)", whole, re.DOTALL)  # GDAL quotes the SQL it ran first
    if sql:
        whole = sql.group(1)
    text = (whole.strip().splitlines() or [type(exc).__name__])[0]
    cause = exc.__cause__ or exc.__context__
    if cause is not None and ("previous exception" in text or not str(exc).strip()):
        text = (str(cause).strip().splitlines() or [text])[0]
    if path is not None:
        text = text.replace(f"'{path}' ", "").replace(f"{path}: ", "").replace(str(path), "file")
    text = text.split("; It might help to specify the correct driver")[0]  # GDAL's hint about driver prefixes
    return text[:200]


def say_params(message: str, params: Sequence[str], say: Callable[[str, str | None], str | None]) -> str:
    """``message`` with each API name listed in ``params`` that it quotes in backquotes
    (`name`, `name=True`, `name='value'`) replaced by ``say(name, value)`` (value None for
    the first two); kept as it is where ``say`` returns None. Front ends (the command line,
    QGIS Processing) say the engine's messages in their own words with this one function.

    >>> say_params("pass `overwrite=True`; `edge='drop'`", ("overwrite", "edge"), lambda n, v: n.upper() + (v or ""))
    'pass OVERWRITE; EDGEdrop'
    """
    import re

    for name in params:
        pattern = re.compile(rf"`{re.escape(name)}(?:=True|='([^'`]*)')?`")

        def replace(match: re.Match[str], name: str = name) -> str:
            said = say(name, match.group(1))
            return match.group(0) if said is None else said

        message = pattern.sub(replace, message)
    return message

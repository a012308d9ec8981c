"""Errors and warnings raised by geolabel.

Every error names the file (or option) and the problem in one line, so the CLI can
print ``geolabel: error: <message>`` and exit with :attr:`GeolabelError.exit_code`.
Like rasterio's ``RasterioIOError(RasterioError, OSError)``, errors also inherit a
builtin base so callers can catch them generically.
"""

from __future__ import annotations


class GeolabelError(Exception):
    """Base class of all geolabel errors."""

    #: Exit code used by the CLI (2 = unusable input or options).
    exit_code: int = 2


class InputError(GeolabelError, ValueError):
    """An input file or option is unusable (wrong type, corrupt, impossible value)."""


class MissingFileError(InputError, FileNotFoundError):
    """An input file does not exist."""


class TaskError(InputError):
    """A batch task failed part-way; ``partial_results`` holds what it finished."""

    def __init__(self, message: str, partial_results: object = None) -> None:
        super().__init__(message)
        self.partial_results = partial_results

    def __reduce__(self) -> tuple[object, ...]:  # keep partial results across process pools
        return (type(self), (str(self), self.partial_results))


class CRSError(InputError):
    """A coordinate reference system is missing, unknown or incompatible."""


class OutputError(GeolabelError, OSError):
    """An output cannot be written (permissions, full disk, ...)."""


class OutputExistsError(GeolabelError, FileExistsError):
    """An output exists and would be overwritten or mixed with incompatible content."""


class CancelledError(GeolabelError):
    """The caller's ``is_cancelled`` callback asked to stop."""

    exit_code = 130


class GeolabelWarning(UserWarning):
    """Base class of geolabel warnings."""


class EdgePolicyWarning(GeolabelWarning):
    """An edge policy could not be applied as asked (e.g. a scene smaller than a chip)."""


class RecoveredOutputWarning(GeolabelWarning):
    """An output a killed run had moved aside (``.<name>.<pid>.old``) was put back in place."""


def check_choice(value: str, allowed: tuple[str, ...], what: str) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise an error listing them."""
    if value not in allowed:
        raise InputError(f"{what} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def first_line(exc: BaseException, path: object = None) -> str:
    """The first line of an error message (of its cause when it only says "see the previous
    exception"), without the file name GDAL repeats; at most 200 characters."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    cause = exc.__cause__ or exc.__context__
    if cause is not None and ("previous exception" in text or not str(exc).strip()):
        text = (str(cause).strip().splitlines() or [text])[0]
    if path is not None:
        text = text.replace(f"'{path}' ", "").replace(f"{path}: ", "").replace(str(path), "file")
    return text[:200]

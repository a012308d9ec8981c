"""Scenes behind URLs: ``https://``/``http://`` and ``s3://`` locations.

GDAL reads them through its virtual file systems (``/vsicurl/``, ``/vsis3/``) with range
requests, so a Cloud Optimized GeoTIFF is read header and needed blocks only. The
block-copy fast path fetches the compressed blocks of each chip itself, with HTTP range
requests (:func:`fetch_blocks`), instead of ``os.pread``.

S3 credentials: geolabel signs nothing itself. When the environment holds no AWS
credentials (no ``AWS_ACCESS_KEY_ID``, ``AWS_PROFILE``, web identity or container
credentials, no credentials file) it reads anonymously (GDAL's ``AWS_NO_SIGN_REQUEST``),
else GDAL reads the credentials as it normally does. An ``AWS_NO_SIGN_REQUEST`` the
caller set is kept as it is.

>>> gdal_path("https://example.com/cogs/scene.tif")
'/vsicurl/https://example.com/cogs/scene.tif'
>>> gdal_path("s3://bucket/scenes/a.tif"), scene_name("s3://bucket/scenes/a.tif")
('/vsis3/bucket/scenes/a.tif', 'a')
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from geolabel.errors import InputError

if TYPE_CHECKING:
    from numpy.typing import NDArray

#: ``http(s)://`` or ``s3://`` at the start of a scene location.
_REMOTE = re.compile(r"(https?|s3)://", re.IGNORECASE)

#: Tries of a request that failed transiently (5xx, timeout, reset), and the first pause
#: between them in seconds (doubled after each try): 0.5 + 1 + 2 s before giving up.
HTTP_TRIES = 4
HTTP_RETRY_SECONDS = 0.5
#: Seconds of silence (connecting, or between two reads) before a try counts as failed.
HTTP_TIMEOUT_SECONDS = 10

#: Environment variables (any of them set) that mean "S3 credentials are configured".
_AWS_CREDENTIAL_VARS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


def is_remote(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is an ``http(s)://`` or ``s3://`` URL."""
    return bool(_REMOTE.match(os.fspath(path)))


def is_http(path: str) -> bool:
    return is_remote(path) and not path.lower().startswith("s3://")


def gdal_path(path: str) -> str:
    """The path GDAL opens for ``path``: ``/vsicurl/URL``, ``/vsis3/bucket/key``, or ``path``."""
    if not is_remote(path):
        return path
    if path.lower().startswith("s3://"):
        return "/vsis3/" + path[5:]
    return "/vsicurl/" + path


def scene_name(url: str) -> str:
    """The scene name of a URL: the stem of its path (query and fragment dropped)."""
    from urllib.parse import urlsplit

    from geolabel.grid import safe_name

    return safe_name(PurePosixPath(urlsplit(url).path).stem)


def index_location(path: str) -> str:
    """How the tile index records a scene: a URL or GDAL path as given, a file absolute."""
    return path if is_remote(path) or path.startswith("/vsi") else os.path.abspath(path)


def gdal_options(path: str) -> dict[str, Any]:
    """GDAL settings for reading ``path`` (none for a local file).

    No directory listing on open (a listing of a bucket or a web folder costs requests
    and finds no sidecar worth it), retries of transient HTTP errors, range reads that
    stay in GDAL's download cache, and anonymous S3 reads when no credentials are
    configured.
    """
    if not (is_remote(path) or path.startswith(("/vsicurl/", "/vsis3/"))):
        return {}
    options: dict[str, Any] = {
        "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
        "GDAL_HTTP_MAX_RETRY": HTTP_TRIES - 1,
        "GDAL_HTTP_RETRY_DELAY": HTTP_RETRY_SECONDS,
        # GDAL's default fetches the blocks of each window in parallel requests that bypass
        # its download cache, so blocks shared by neighbouring chips were downloaded again:
        # 2.7x the file for 384 px chips of a 512 px-tiled scene; serial ranges are cached
        # (the file once).
        "GDAL_HTTP_MULTIRANGE": "SERIAL",
    }
    if gdal_path(path).startswith("/vsis3/") and "AWS_NO_SIGN_REQUEST" not in os.environ and not has_s3_credentials():
        options["AWS_NO_SIGN_REQUEST"] = "YES"
    return options


def has_s3_credentials() -> bool:
    """Whether the environment configures AWS credentials GDAL would use."""
    if any(os.environ.get(name) for name in _AWS_CREDENTIAL_VARS):
        return True
    shared = os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or Path.home() / ".aws" / "credentials"
    return Path(shared).is_file()


def gdal_problem(message: str) -> str | None:
    """What a GDAL error about a remote file means, in words, or None if not about HTTP."""
    code = re.search(r"HTTP (?:response )?code:? ?(\d{3})", message)
    status = int(code.group(1)) if code else None
    if status == 404 or (status is None and "does not exist" in message):
        return "not found (HTTP 404)"
    if status == 403 or "Access Denied" in message or "AccessDenied" in message:
        return "access denied (HTTP 403)"
    if status is not None:
        return _status_problem(status)
    if "CURL error" in message or "Could not resolve" in message:
        return f"cannot reach the server ({message.split(':', 1)[-1].strip()})"
    return None


def _status_problem(status: int) -> str:
    if status == 404:
        return "not found (HTTP 404)"
    if status == 403:
        return "access denied (HTTP 403)"
    if status == 401:
        return "authentication required (HTTP 401)"
    if status >= 500:
        return f"the server failed (HTTP {status}), {HTTP_TRIES} tries"
    return f"the server refused the request (HTTP {status})"


def read_range(url: str, start: int, length: int) -> bytes:
    """``length`` bytes of ``url`` from ``start``, by an HTTP range request.

    Transient failures (5xx, read timeouts, connection resets) are retried with backoff;
    a 4xx, a host that cannot be reached (no answer to connect, refused, unknown name) or
    a server that ignores ``Range`` is a one-line :class:`InputError` at once.
    """
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers={"Range": f"bytes={start}-{start + length - 1}"})
    delay = HTTP_RETRY_SECONDS
    for attempt in range(1, HTTP_TRIES + 1):
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as answer:
                if answer.status != 206:
                    raise InputError(
                        f"{url}: the server does not answer byte-range requests (HTTP {answer.status}); "
                        "serve the scene from one that does (nginx, Apache, S3 and most CDNs do) or download it first"
                    )
                data: bytes = answer.read()
            if len(data) != length:
                raise ConnectionResetError(f"short answer ({len(data)} of {length} bytes)")
            return data
        except urllib.error.HTTPError as exc:
            if exc.code < 500 or attempt == HTTP_TRIES:
                raise InputError(f"{url}: {_status_problem(exc.code)}") from None
        except urllib.error.URLError as exc:  # before any answer: no server there
            raise InputError(f"{url}: cannot reach the server ({exc.reason})") from None
        except OSError as exc:  # read timeouts, resets, short answers
            if attempt == HTTP_TRIES:
                raise InputError(f"{url}: the connection failed {HTTP_TRIES} times ({exc})") from None
        time.sleep(delay)
        delay *= 2
    raise AssertionError("unreachable")  # the loop returns or raises


def coalesce(offsets: Sequence[int], sizes: Sequence[int]) -> list[tuple[int, int]]:
    """Byte ranges ``(start, length)`` covering the non-empty blocks, adjacent ones merged.

    >>> coalesce([100, 150, 400, 0], [50, 30, 10, 0])
    [(100, 80), (400, 10)]
    """
    ranges: list[tuple[int, int]] = []
    for off, size in zip(offsets, sizes):
        if not size:
            continue
        if ranges and ranges[-1][0] + ranges[-1][1] == off:
            ranges[-1] = (ranges[-1][0], ranges[-1][1] + size)
        else:
            ranges.append((off, size))
    return ranges


def fetch_blocks(url: str, offsets: NDArray[Any], sizes: NDArray[Any]) -> list[bytes]:
    """The compressed blocks at ``offsets``/``sizes`` (row-major) of a file served over
    HTTP(S): one range request per run of adjacent blocks (a COG stores a chip's row of
    blocks back to back), sliced into blocks. Sparse blocks (size 0) are ``b""``."""
    offs, lens = offsets.ravel().tolist(), sizes.ravel().tolist()
    runs = {start: read_range(url, start, length) for start, length in coalesce(offs, lens)}
    out, run_start = [], 0
    for off, size in zip(offs, lens):
        if not size:
            out.append(b"")
            continue
        if off in runs:
            run_start = off
        begin = off - run_start
        out.append(runs[run_start][begin : begin + size])
    return out

"""GeoPackage geometry blobs and the SQL functions its spatial-index triggers call.

The label store writes through SQLite directly (for real transactions and optimistic
locking), so it encodes geometries as GeoPackage binary (OGC 12-128r18, 2.1.3): a
header ``GP``, version, flags, SRS id and envelope, followed by standard WKB. The R-tree
triggers that GDAL creates call ``ST_IsEmpty`` and ``ST_MinX`` ... ``ST_MaxY``; GDAL
provides them inside its own connections, and :func:`register_functions` provides them
for ours.
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Sequence
from typing import Any

_HEADER = struct.Struct("<2sBBi4d")  # magic, version, flags, srs_id, minx, maxx, miny, maxy
_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}
#: flags: little-endian (bit 0) and envelope [minx, maxx, miny, maxy] (indicator 1, bits 1-3)
_FLAGS_XY = 0b0000_0011
_PLAIN_XY = b"GP" + bytes([0, _FLAGS_XY])  # version 0, those flags: the WKB starts at byte 8 + 32


def to_blobs(geoms: Any, srs_id: int) -> list[bytes]:
    """GeoPackage blobs of an array of (non-empty) shapely geometries."""
    import shapely

    wkbs = shapely.to_wkb(geoms, byte_order=1, flavor="iso", output_dimension=2)  # labels are 2D
    bounds = shapely.bounds(geoms)
    pack = _HEADER.pack
    return [pack(b"GP", 0, _FLAGS_XY, srs_id, b[0], b[2], b[1], b[3]) + w for w, b in zip(wkbs, bounds.tolist())]


def _wkb_of(blob: bytes) -> bytes | None:
    """The WKB of a GeoPackage blob, None when its header flags an empty geometry."""
    if len(blob) < 8 or blob[:2] != b"GP":
        raise ValueError("not a GeoPackage geometry blob")
    flags = blob[3]
    if (flags >> 4) & 1:
        return None
    return blob[8 + _ENVELOPE_BYTES.get((flags >> 1) & 0b111, 0) :]


class BadBlobError(ValueError):
    """A geometry blob that is not GeoPackage binary with readable WKB; ``index`` says which."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(f"geometry {index}: {reason}")
        self.index = index
        self.reason = reason


def from_blobs(blobs: Sequence[bytes | None]) -> Any:
    """Shapely geometries (None for NULL or empty) from GeoPackage blobs; a damaged blob
    raises :class:`BadBlobError` naming the first one.

    >>> from_blobs([b"GP\\x00"])
    Traceback (most recent call last):
    ...
    geolabel.labels.gpkg.BadBlobError: geometry 0: not a GeoPackage geometry blob
    """
    import numpy as np
    import shapely

    def wkb(k: int, b: bytes | None) -> bytes | None:
        try:
            return None if b is None else _wkb_of(b)
        except ValueError as exc:
            raise BadBlobError(k, str(exc)) from None

    # the common blob (little-endian, an [minx, maxx, miny, maxy] envelope) sliced at once
    wkbs = np.array(
        [b[40:] if b is not None and b[:4] == _PLAIN_XY else wkb(k, b) for k, b in enumerate(blobs)], dtype=object
    )
    try:
        return shapely.from_wkb(wkbs)
    except shapely.errors.GEOSException:
        present = np.array([w is not None for w in wkbs], dtype=bool)
        bad = np.flatnonzero(shapely.is_missing(shapely.from_wkb(wkbs, on_invalid="ignore")) & present)
        raise BadBlobError(int(bad[0]) if len(bad) else 0, "unreadable WKB") from None


def _envelope(blob: bytes | None) -> tuple[float, float, float, float] | None:
    """(minx, maxx, miny, maxy) from the header, or computed from the WKB if absent."""
    if blob is None or (blob[3] >> 4) & 1:
        return None
    if (blob[3] >> 1) & 0b111:
        order = "<" if blob[3] & 1 else ">"
        minx, maxx, miny, maxy = struct.unpack_from(f"{order}4d", blob, 8)
        return minx, maxx, miny, maxy
    import shapely

    wkb = _wkb_of(blob)
    g = shapely.from_wkb(wkb) if wkb is not None else None
    if g is None or g.is_empty:
        return None
    b = g.bounds
    return b[0], b[2], b[1], b[3]


def register_functions(conn: sqlite3.Connection) -> None:
    """Provide the spatial functions GeoPackage R-tree triggers call."""

    def is_empty(blob: bytes | None) -> int:
        return int(_envelope(blob) is None)

    def coord(i: int) -> Any:
        def f(blob: bytes | None) -> float | None:
            env = _envelope(blob)
            return None if env is None else env[i]

        return f

    conn.create_function("ST_IsEmpty", 1, is_empty, deterministic=True)
    for i, name in enumerate(("ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY")):
        conn.create_function(name, 1, coord(i), deterministic=True)

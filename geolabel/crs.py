"""Coordinate reference systems: the one place that answers CRS questions (via pyproj).

Rasters carry rasterio CRS objects and vectors carry pyproj CRS objects; both are
converted through WKT here so the rest of the code never guesses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from geolabel.errors import CRSError

if TYPE_CHECKING:
    import pyproj


def parse_crs(value: Any, *, what: str = "CRS") -> pyproj.CRS:
    """Parse ``EPSG:32649``, ``32649``, a PROJ string, WKT or any CRS object into pyproj.

    >>> parse_crs("EPSG:32649").name
    'WGS 84 / UTM zone 49N'
    """
    import pyproj

    if value is None or value == "":
        raise CRSError(f"{what} is missing")
    if hasattr(value, "to_wkt") and not isinstance(value, pyproj.CRS):
        value = value.to_wkt()
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        value = f"EPSG:{int(value)}"
    try:
        return pyproj.CRS.from_user_input(value)
    except pyproj.exceptions.CRSError as exc:
        raise CRSError(f"{what} {str(value)[:80]!r} is not a CRS pyproj understands ({exc})") from None


def to_rasterio_crs(crs: Any) -> Any:
    """The rasterio CRS for any CRS input (through WKT, so custom CRSs survive)."""
    from rasterio.crs import CRS as RioCRS

    return RioCRS.from_wkt(parse_crs(crs).to_wkt())


def crs_label(crs: Any) -> str:
    """Short human name: ``EPSG:32649`` when there is an authority code, else the CRS name."""
    parsed = parse_crs(crs)
    auth = parsed.to_authority(min_confidence=90)
    if auth:
        return f"{auth[0]}:{auth[1]}"
    return parsed.name or parsed.to_wkt()[:60]


def same_crs(a: Any, b: Any) -> bool:
    """True when two CRSs describe the same coordinate system (ignoring naming differences)."""
    return bool(parse_crs(a).equals(parse_crs(b), ignore_axis_order=True))


def compact_crs(crs: Any) -> str:
    """``EPSG:xxxx`` when that code describes ``crs`` exactly, else its WKT; '' for None.

    Uses GDAL's CRS matching through rasterio, which the tiler has loaded anyway (importing
    pyproj would cost more than the whole no-decode tiling of a small scene).
    """
    if crs is None or crs == "":
        return ""
    from rasterio.crs import CRS as RioCRS

    try:
        rio = RioCRS.from_user_input(crs.to_wkt() if hasattr(crs, "to_wkt") else crs)
    except Exception as exc:
        raise CRSError(f"{str(crs)[:80]!r} is not a CRS GDAL understands ({exc})") from None
    code = rio.to_epsg(confidence_threshold=100)
    return f"EPSG:{code}" if code else str(rio.to_wkt())


def reproject_geometries(geoms: Any, src: Any, dst: Any) -> Any:
    """Reproject an array of shapely geometries from ``src`` to ``dst`` (x/y order)."""
    import numpy as np
    import pyproj
    import shapely

    transformer = pyproj.Transformer.from_crs(parse_crs(src), parse_crs(dst), always_xy=True)

    def apply(xy: Any) -> Any:
        x, y = transformer.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geoms, apply)

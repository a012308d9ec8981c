"""Coordinate reference systems: the one place that answers CRS questions (via pyproj).

Rasters carry rasterio CRS objects and vectors carry pyproj CRS objects; both are
converted through WKT here so the rest of the code never guesses.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any

from geolabel.errors import CRSError

if TYPE_CHECKING:
    import pyproj


def parse_crs(value: Any, *, what: str = "CRS", param: str | None = None) -> pyproj.CRS:
    """Parse ``EPSG:32649``, ``32649``, a PROJ string, WKT, any CRS object, or a file
    (``.prj``/``.wkt``, a raster or a vector file) whose CRS to take, into pyproj.
    ``param``: the API argument the value came from (error messages name it).

    >>> parse_crs("EPSG:32649").name
    'WGS 84 / UTM zone 49N'
    >>> parse_crs("foo", param="crs")
    Traceback (most recent call last):
    ...
    geolabel.errors.CRSError: `crs` 'foo' is not a CRS: PROJ only guessed 'Amersfoort' (EPSG:4289) from part ...
    """
    import pyproj

    if param is not None:
        what = f"`{param}`"
    params = (param,) if param else ()
    if value is None or value == "":
        raise CRSError(f"{what} is missing", params=params)
    if isinstance(value, str) and _looks_like_path(value):
        value = _crs_of_file(value, what)
    if hasattr(value, "to_wkt") and not isinstance(value, pyproj.CRS):
        value = value.to_wkt()
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        value = f"EPSG:{int(value)}"
    try:
        crs = _crs_from_text(value) if isinstance(value, str) else pyproj.CRS.from_user_input(value)
    except pyproj.exceptions.CRSError as exc:
        raise CRSError(f"{what} {str(value)[:80]!r} is not a CRS pyproj understands ({exc})", params=params) from None
    if isinstance(value, str) and _is_partial_name(value, crs.name):
        epsg = crs.to_epsg()
        raise CRSError(
            f"{what} {value[:80]!r} is not a CRS: PROJ only guessed {crs.name!r}{f' (EPSG:{epsg})' if epsg else ''} "
            "from part of its name; give an EPSG code or the full name",
            params=params,
        )
    return crs


#: How geolabel writes a CRS into the files it makes (label store, tile index): an EPSG code
#: or WKT. Anything else read from such a file was not written by geolabel.
_STORED_CRS = re.compile(r"EPSG:\d{1,9}|[A-Z][A-Z0-9_]*\[.*\]", re.DOTALL)
#: Files a CRS can make PROJ open: grids and init files (WKT PARAMETERFILE, PROJ keys).
_FILE_REFERENCE = re.compile(
    r'PARAMETERFILE\[\s*"[^"]*"\s*,\s*"(?P<wkt>[^"]*)"|\+(?:init|nadgrids|geoidgrids|grids|file)\s*=\s*@?(?P<key>[^\s"\],]+)',
    re.IGNORECASE,
)


def stored_crs_problem(text: str) -> str | None:
    """Why ``text``, a CRS read from a file that travels between sites (a label store, a
    tile index), is not one geolabel wrote (None when it is one): it must be an EPSG code
    or WKT, and any grid or init file it names must be a bare name PROJ looks up in its
    own data folders, not a path (PROJ opens whatever file a CRS names: a FIFO hangs it).

    >>> stored_crs_problem("EPSG:32649") is None
    True
    >>> stored_crs_problem("/home/x/scene.tif")
    "'/home/x/scene.tif' is not an EPSG code or WKT"
    >>> stored_crs_problem('BOUNDCRS[PARAMETERFILE["Latitude and longitude difference file","/dev/zero"]]')
    "names the file '/dev/zero' (PROJ would open it)"
    """
    if not _STORED_CRS.fullmatch(text.strip()):
        return f"{text[:60]!r} is not an EPSG code or WKT"
    for m in _FILE_REFERENCE.finditer(text):
        name = m.group("wkt") if m.group("wkt") is not None else m.group("key")
        if "/" in name or "\\" in name or name.startswith("~"):
            return f"names the file {name[:60]!r} (PROJ would open it)"
    return None


def parse_stored_crs(text: Any, *, what: str) -> pyproj.CRS:
    """The CRS geolabel wrote into a file (:func:`stored_crs_problem`), refused with a
    :class:`CRSError` naming ``what`` when it is not one geolabel would write."""
    problem = stored_crs_problem(text) if isinstance(text, str) else f"{text!r} is not text"
    if problem is not None:
        raise CRSError(f"{what} {problem}")
    return parse_crs(text, what=what)


def _is_partial_name(text: str, name: str) -> bool:
    """Whether PROJ resolved ``text`` as a fragment of a longer CRS name ('foo' -> 'Amersfoort').
    Full names and aliases ('WGS84', 'CGCS2000') are not fragments of the name found."""

    def squash(s: str) -> str:
        return "".join(ch for ch in s.casefold() if ch.isalnum())

    short, full = squash(text), squash(name)
    return bool(short) and short != full and short in full


@functools.lru_cache(maxsize=256)
def _crs_from_text(text: str) -> pyproj.CRS:
    """pyproj.CRS from text, cached: building one costs ~1 ms of PROJ database lookups, and
    per-tile code asks for the same few CRSs again and again."""
    import pyproj

    return pyproj.CRS.from_user_input(text)


def as_crs(value: Any) -> pyproj.CRS:
    """A CRS the engine already holds (a pyproj CRS, or the WKT/EPSG text it stores), as
    pyproj, without :func:`parse_crs`'s user-input work: text is parsed once (cached) and
    never looked up as a file. Anything else, or text pyproj refuses, goes through
    :func:`parse_crs` (and its one-line errors).

    >>> as_crs("EPSG:32649") is as_crs("EPSG:32649")
    True
    """
    import pyproj

    if isinstance(value, pyproj.CRS):
        return value
    if isinstance(value, str) and _STORED_CRS.fullmatch(value.strip()):  # what geolabel writes, not user text
        try:
            return _crs_from_text(value)
        except pyproj.exceptions.CRSError:
            pass
    return parse_crs(value)


def _looks_like_path(value: str) -> bool:
    import os

    return "\n" not in value and len(value) < 4096 and os.path.isfile(value)


def _crs_of_file(path: str, what: str) -> Any:
    """The CRS stored in a .prj/.wkt file, a raster or a vector file ("take the CRS from X")."""
    from pathlib import Path

    p = Path(path)
    if p.suffix.lower() in (".prj", ".wkt"):
        return p.read_text(encoding="utf-8", errors="replace").strip()
    try:
        import rasterio

        with rasterio.open(p) as src:
            if src.crs is not None:
                return src.crs.to_wkt()
    except Exception:
        pass
    try:
        import pyogrio

        crs = pyogrio.read_info(p).get("crs")
        if crs:
            return crs
    except Exception:
        pass
    raise CRSError(f"{what}: {p} has no CRS to take")


def to_rasterio_crs(crs: Any) -> Any:
    """The rasterio CRS for any CRS input (through WKT, so custom CRSs survive)."""
    from rasterio.crs import CRS as RioCRS

    return RioCRS.from_wkt(as_crs(crs).to_wkt())


def crs_label(crs: Any) -> str:
    """Short human name: ``EPSG:32649`` when there is an authority code, else the CRS name."""
    parsed = as_crs(crs)
    auth = parsed.to_authority(min_confidence=90)
    if auth:
        return f"{auth[0]}:{auth[1]}"
    return parsed.name or parsed.to_wkt()[:60]


def same_crs(a: Any, b: Any) -> bool:
    """True when two CRSs describe the same coordinate system (ignoring naming differences)."""
    return bool(as_crs(a).equals(as_crs(b), ignore_axis_order=True))


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


def epsg_or_wkt(crs: Any) -> str:
    """As :func:`compact_crs`, matched by PROJ through pyproj: for work that has pyproj
    loaded and not rasterio (a check's findings.gpkg, written by a forked process, where
    importing rasterio took 0.15 s of 1.35 s).

    >>> epsg_or_wkt("EPSG:32649")
    'EPSG:32649'
    """
    parsed = as_crs(crs)
    code = parsed.to_epsg(min_confidence=100)
    return f"EPSG:{code}" if code else str(parsed.to_wkt())


def _key(crs: Any) -> str:
    return crs if isinstance(crs, str) else as_crs(crs).to_wkt()


@functools.lru_cache(maxsize=64)
def _transformer(src: str, dst: str) -> Any:
    import pyproj

    return pyproj.Transformer.from_crs(as_crs(src), as_crs(dst), always_xy=True)


def reproject_geometries(geoms: Any, src: Any, dst: Any, *, densify: float | str | None = None) -> Any:
    """Reproject an array of shapely geometries from ``src`` to ``dst`` (x/y order).

    ``densify``: first add vertices so no edge is longer than this (in ``src`` units), so
    straight edges follow the projection's curves; "auto" = 1/1000 of the extent.
    """
    import shapely

    if densify == "auto":
        densify = edge_step(geoms)
    if densify:
        geoms = shapely.segmentize(geoms, densify)

    return shapely.transform(geoms, lambda xy: transform_coords(xy, src, dst))


#: Degrees around a CRS's area of use within which data may still be reprojected into it.
AREA_OF_USE_MARGIN_DEG = 3.0


def outside_area_of_use(geoms: Any, src: Any, dst: Any) -> str | None:
    """Why ``geoms`` (in ``src``) must not be reprojected into ``dst``: they lie wholly
    beyond ``dst``'s area of use (plus :data:`AREA_OF_USE_MARGIN_DEG`), where a projected
    CRS distorts areas by far more than a labeler's error (North Dakota in UTM zone 49N:
    +13 %); None when they reach it or ``dst`` states no area of use.

    >>> import numpy as np, shapely
    >>> pond = np.array([shapely.box(-99.0, 47.0, -98.9, 47.1)])
    >>> outside_area_of_use(pond, "EPSG:4326", "EPSG:26914") is None
    True
    >>> outside_area_of_use(pond, "EPSG:4326", "EPSG:32649")[:46]
    'the data (lon -99.00..-98.90, lat 47.00..47.10'
    """
    import numpy as np
    import shapely

    area = as_crs(dst).area_of_use
    bounds = shapely.total_bounds(geoms) if len(geoms) else np.full(4, np.nan)
    if area is None or not np.isfinite(bounds).all():
        return None
    box = shapely.box(*bounds)  # its outline in lon/lat, edges followed
    outline = shapely.get_coordinates(shapely.segmentize(box, max(box.length, 1e-9) / 256))
    lon, lat = transform_coords(outline, src, "EPSG:4326").T
    m = AREA_OF_USE_MARGIN_DEG
    w, s, e, n = area.west - m, area.south - m, area.east + m, area.north + m
    if lon.max() >= w and lon.min() <= e and lat.max() >= s and lat.min() <= n:
        return None
    return (
        f"the data (lon {lon.min():.2f}..{lon.max():.2f}, lat {lat.min():.2f}..{lat.max():.2f}) lies outside the area "
        f"of use of {crs_label(dst)} (lon {area.west:.1f}..{area.east:.1f}, lat {area.south:.1f}..{area.north:.1f})"
    )


def transform_coords(xy: Any, src: Any, dst: Any) -> Any:
    """An (n, 2) array of x/y coordinates from ``src`` to ``dst`` (the transformer is cached
    per CRS pair: building one costs PROJ database lookups).

    >>> import numpy as np
    >>> transform_coords(np.array([[500000.0, 0.0]]), "EPSG:32649", "EPSG:4326").round(6).tolist()
    [[111.0, 0.0]]
    """
    import numpy as np

    x, y = _transformer(_key(src), _key(dst)).transform(xy[:, 0], xy[:, 1])
    return np.column_stack([x, y])


#: Grid (metres) of the snap-rounded overlays that QA and scoring run in a metric CRS.
#: GEOS's floating-point overlay can misjudge a vertex lying on a neighbour's edge (off by
#: 1e-16) and return a whole polygon as their intersection; overlay on a fixed grid is
#: exact, and 0.1 µm moves no vertex measurably (coordinates up to 1e8 m stay exact).
OVERLAY_GRID_M = 1e-7

#: Two labels whose vertices all stay farther than this (m) from each other's boundary
#: are overlaid in floating point (3-4x faster than on the grid above): GEOS misjudges
#: only vertices at rounding distance (~1e-9 m at UTM coordinates) from an edge. A
#: vertex closer than this, or exactly on an edge (snapped or cut labels), takes the grid.
FLOATING_CLEARANCE_M = 1e-6

#: Square metres per mu (亩): 1 mu = 10000/15 m² (15 mu = 1 ha).
M2_PER_MU = 10000.0 / 15.0
AREA_UNITS = {"m2": 1.0, "ha": 10000.0, "mu": M2_PER_MU}


def area_m2(geoms: Any, crs: Any, *, ellipsoidal: bool = False) -> Any:
    """Areas of polygons in square metres.

    Projected CRSs: planar area, converted from the CRS's linear unit to metres.
    Geographic CRSs (and ``ellipsoidal=True``): geodesic area on the CRS's ellipsoid
    (pyproj.Geod), the area on the Earth's surface.

    >>> import shapely
    >>> float(area_m2([shapely.box(0, 0, 100, 50)], "EPSG:32649")[0])
    5000.0
    """
    import numpy as np
    import pyproj
    import shapely

    parsed = as_crs(crs)
    arr = np.asarray(geoms, dtype=object)
    if not parsed.is_geographic and not ellipsoidal:
        unit = parsed.axis_info[0].unit_conversion_factor if parsed.axis_info else 1.0
        return shapely.area(arr) * unit * unit
    if not parsed.is_geographic:
        geographic = parsed.geodetic_crs
        if geographic is None:
            raise CRSError(f"{parsed.name}: has no geodetic CRS to compute ellipsoidal areas on")
        arr = reproject_geometries(arr, parsed, geographic, densify="auto")  # geodesic areas follow map edges
        parsed = geographic
    ellipsoid = parsed.ellipsoid
    if ellipsoid is None:
        raise CRSError(f"{parsed.name}: has no ellipsoid to compute geodesic areas on")
    geod = pyproj.Geod(a=ellipsoid.semi_major_metre, rf=ellipsoid.inverse_flattening or 0.0)
    # pyproj wants lon/lat; parse_crs CRSs may be lat/lon ordered, reproject_geometries uses x/y = lon/lat
    out = np.zeros(len(arr))
    for i, g in enumerate(arr):
        if g is None or g.is_empty:
            continue
        out[i] = abs(geod.geometry_area_perimeter(g)[0])
    return out


def edge_step(geoms: Any) -> float:
    """A densification step for reprojecting ``geoms``: 1/1000 of their extent."""
    import shapely

    bounds = shapely.total_bounds(geoms)
    span = max(bounds[2] - bounds[0], bounds[3] - bounds[1])
    return float(span / 1000.0) if span == span and span > 0 else 1.0


def metric_crs_for(crs: Any, bounds: tuple[float, float, float, float]) -> Any:
    """A CRS with metre units for measuring: ``crs`` itself when it is projected in metres,
    else the UTM zone of the data's centre (for geographic or foot-based CRSs).

    ``bounds`` are (minx, miny, maxx, maxy) in ``crs``.
    """
    import pyproj
    from pyproj.aoi import AreaOfInterest
    from pyproj.database import query_utm_crs_info

    parsed = as_crs(crs)
    if not parsed.is_geographic and parsed.axis_info and parsed.axis_info[0].unit_conversion_factor == 1.0:
        return parsed
    to_lonlat = pyproj.Transformer.from_crs(parsed, "EPSG:4326", always_xy=True)
    lon, lat = to_lonlat.transform((bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2)
    zones = query_utm_crs_info(datum_name="WGS 84", area_of_interest=AreaOfInterest(lon, lat, lon, lat))
    if not zones:
        raise CRSError(f"no UTM zone covers longitude {lon:.3f}, latitude {lat:.3f}")
    return pyproj.CRS.from_epsg(int(zones[0].code))

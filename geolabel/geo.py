"""Georeferencing as one value: :class:`GeoGrid` (CRS, geotransform, size in pixels).

A grid is immutable: cutting a window out of it, or deriving the grid of the same area
in another CRS or at another resolution, returns a new grid (as odc-geo's ``GeoBox``).
Axis order is explicit in every name: ``col``/``row`` are pixels, ``x``/``y`` map units.
The CRS is kept as text (WKT, or ``EPSG:xxxx``; ``None`` for a raster without one), so
grids pickle small and travel to worker processes as they are.

>>> g = GeoGrid("EPSG:32617", (10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0), 1000, 600)
>>> g.bounds
(500000.0, 3994000.0, 510000.0, 4000000.0)
>>> sub = g.window(col_off=512, row_off=0, width=512, height=512)
>>> sub.origin, sub.shape
((505120.0, 4000000.0), (512, 512))
>>> g.xy(col=512, row=0), g.pixel(x=505120.0, y=4000000.0)
((505120.0, 4000000.0), (512.0, 0.0))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from affine import Affine


@dataclass(frozen=True)
class GeoGrid:
    """A georeferenced pixel grid: ``width`` x ``height`` pixels placed by ``transform``
    (a, b, c, d, e, f: x = a*col + b*row + c, y = d*col + e*row + f) in ``crs``."""

    crs: str | None
    transform: tuple[float, ...]
    width: int
    height: int

    @property
    def affine(self) -> Affine:
        from affine import Affine

        return Affine(*self.transform[:6])

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width): rows first, as numpy arrays of the grid."""
        return (self.height, self.width)

    @property
    def origin(self) -> tuple[float, float]:
        """Map (x, y) of the top-left corner of pixel (0, 0)."""
        return (self.transform[2], self.transform[5])

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in map units (as rasterio's ``array_bounds``)."""
        a, b, c, d, e, f = self.transform[:6]
        if b == d == 0:
            return (c, f + e * self.height, c + a * self.width, f)
        corners = [(c, f)] + [
            self.xy(col=col, row=row) for col, row in ((0, self.height), (self.width, self.height), (self.width, 0))
        ]
        xs, ys = zip(*corners)
        return (min(xs), min(ys), max(xs), max(ys))

    def corners(self) -> list[tuple[float, float]]:
        """Map (x, y) of the four corners, clockwise from the top-left."""
        from geolabel.grid import pixel_corners

        return pixel_corners(self.transform, self.width, self.height)

    def footprint(self) -> Any:
        """The grid's outline as a shapely polygon in its CRS."""
        import shapely

        return shapely.Polygon(self.corners())

    def xy(self, *, col: float, row: float) -> tuple[float, float]:
        """Map (x, y) of a pixel position (``col``, ``row``; integers are pixel corners)."""
        a, b, c, d, e, f = self.transform[:6]
        return (col * a + row * b + c, col * d + row * e + f)  # affine's order: bit-equal to rasterio

    def pixel(self, *, x: float, y: float) -> tuple[float, float]:
        """Pixel position (col, row) of a map point (fractional; floor it for the pixel)."""
        col, row = ~self.affine * (x, y)
        return (col, row)

    def window(self, *, col_off: int, row_off: int, width: int, height: int) -> GeoGrid:
        """The sub-grid of a pixel window (the same arithmetic as rasterio's
        ``windows.transform``, so chip transforms match GDAL's to the last bit)."""
        from affine import Affine

        t = self.affine
        x, y = t * (float(col_off), float(row_off))
        shifted = Affine.translation(x - t.c, y - t.f) * t
        return GeoGrid(self.crs, tuple(shifted)[:6], width, height)

    def to_crs(self, crs: Any, *, resolution: float | None = None) -> GeoGrid:
        """The grid GDAL would choose for this area in ``crs`` (a rasterio CRS or anything
        it accepts); with ``resolution`` (in units of ``crs``), pixels of that size aligned
        to multiples of it. ``self.crs`` must not be None."""
        from rasterio.crs import CRS as RioCRS
        from rasterio.warp import aligned_target, calculate_default_transform

        if self.crs is None:
            raise ValueError("a grid without CRS cannot be reprojected")
        src = RioCRS.from_wkt(self.crs) if not _is_code(self.crs) else RioCRS.from_user_input(self.crs)
        dst = crs if isinstance(crs, RioCRS) else RioCRS.from_user_input(crs)
        left, bottom, right, top = self.bounds
        transform, width, height = calculate_default_transform(
            src, dst, self.width, self.height, left=left, bottom=bottom, right=right, top=top, resolution=resolution
        )
        if resolution is not None:
            transform, width, height = aligned_target(transform, width, height, resolution)
        return GeoGrid(dst.to_wkt(), tuple(transform)[:6], int(width), int(height))


def _is_code(crs: str) -> bool:
    """``EPSG:4326``-like text (an authority code), as opposed to WKT."""
    return ":" in crs and "[" not in crs

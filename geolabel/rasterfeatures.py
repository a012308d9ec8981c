"""``rasterio.features`` calls, one at a time across threads.

For every call that builds an in-memory raster (rasterize, shapes, sieve, geometry_mask),
rasterio silences a NotGeoreferencedWarning with ``warnings.catch_warnings``. That swaps
the process's warning filters, so two threads doing it at once let the warning through:
QGIS, which runs exports, tiling and suggestions on threads, logged it. geolabel's calls
take turns through one lock (uncontended in worker processes; these calls are a small
part of each task).
"""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()


def rasterize(shapes: Any, **options: Any) -> Any:
    """``rasterio.features.rasterize``."""
    from rasterio.features import rasterize as _rasterize

    with _lock:
        return _rasterize(shapes, **options)


def rasterize_pixels(shapes: Any, **options: Any) -> Any:
    """``rasterio.features.rasterize`` of shapes in pixel coordinates (the identity
    transform, meant: rasterio's warning about it is not shown)."""
    import warnings

    from rasterio.errors import NotGeoreferencedWarning
    from rasterio.features import rasterize as _rasterize

    with _lock, warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        return _rasterize(shapes, **options)


def geometry_mask(geometries: Any, **options: Any) -> Any:
    """``rasterio.features.geometry_mask``."""
    from rasterio.features import geometry_mask as _geometry_mask

    with _lock:
        return _geometry_mask(geometries, **options)


def shapes(source: Any, **options: Any) -> list[tuple[Any, Any]]:
    """``rasterio.features.shapes``, as a list (the raster lives while it is read)."""
    from rasterio.features import shapes as _shapes

    with _lock:
        return list(_shapes(source, **options))


def sieve(source: Any, **options: Any) -> Any:
    """``rasterio.features.sieve``."""
    from rasterio.features import sieve as _sieve

    with _lock:
        return _sieve(source, **options)

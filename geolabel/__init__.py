"""geolabel: geospatial imagery labeling engine.

Tile scenes into georeferenced chips, keep land-cover labels in a real CRS, check and
score deliveries, export training sets. The public API is re-exported here lazily so
``import geolabel`` stays fast::

    import geolabel
    result = geolabel.tile_raster("sample_data/village.tif", "out/chips", size=512)
"""

from __future__ import annotations

import logging
from importlib import import_module
from typing import Any

__version__ = "0.1.0"

__all__ = [
    "CRSError",
    "GeolabelError",
    "InputError",
    "TileGrid",
    "TilingResult",
    "read_tiles",
    "tile_raster",
]

_LAZY = {
    "GeolabelError": "geolabel.errors",
    "InputError": "geolabel.errors",
    "CRSError": "geolabel.errors",
    "TileGrid": "geolabel.grid",
    "TilingResult": "geolabel.tiling",
    "tile_raster": "geolabel.tiling",
    "read_tiles": "geolabel.tileindex",
}

logging.getLogger(__name__).addHandler(logging.NullHandler())


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'geolabel' has no attribute {name!r}")
    return getattr(import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""Cut scenes into georeferenced chips: :func:`tile_raster`.

Planning (which chips, which path, which encoding) happens in the calling process from
the scene headers; the pixel work is split into small tasks (a few chips of one scene
each) that open the scene themselves, so they run the same way serially, on a local
process pool or on a Dask cluster. Each task streams window by window: memory holds a
handful of chips, whatever the scene size.

Modules, in the order a run uses them: :mod:`~geolabel.tiling.options` (what the chips
look like), :mod:`~geolabel.tiling.resume` (what an earlier run left),
:mod:`~geolabel.tiling.plan` (scenes, chip grids, tasks), :mod:`~geolabel.tiling.worker`
(writing chips) and :mod:`~geolabel.tiling.run` (:func:`tile_raster` itself);
:mod:`~geolabel.tiling.stac` reads the scenes of a STAC catalog.
"""

from geolabel.tiling.options import (
    MAX_CHIP_SIZE,
    MAX_CHIPS_PER_SCENE,
    MAX_CHIPS_PER_TASK,
    MAX_GRID_PIXELS,
    MIN_CHIPS_PER_TASK,
    RESAMPLING_METHODS,
    TileOptions,
)
from geolabel.tiling.plan import ChipTask, NamedScene, SceneSummary, WarpSpec
from geolabel.tiling.run import TilingResult, tile_raster
from geolabel.tiling.stac import read_stac
from geolabel.tiling.worker import process_chips

__all__ = [
    "MAX_CHIPS_PER_SCENE",
    "MAX_CHIPS_PER_TASK",
    "MAX_CHIP_SIZE",
    "MAX_GRID_PIXELS",
    "MIN_CHIPS_PER_TASK",
    "RESAMPLING_METHODS",
    "ChipTask",
    "NamedScene",
    "SceneSummary",
    "TileOptions",
    "TilingResult",
    "WarpSpec",
    "process_chips",
    "read_stac",
    "tile_raster",
]

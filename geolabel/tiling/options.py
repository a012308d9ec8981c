"""What the chips look like: :class:`TileOptions`, their limits and their validation."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from geolabel import vocabulary as v
from geolabel.errors import InputError, check_choice
from geolabel.grid import TileGrid

RESAMPLING_METHODS = v.RESAMPLINGS

#: Chips per task, bounds: few enough tasks that opening the scene once per task stays
#: negligible, small enough at the end of the queue that the workers finish together.
MIN_CHIPS_PER_TASK = 4
#: Sanity limits: a grid this large is almost always a unit mistake (e.g. --resolution).
MAX_CHIPS_PER_SCENE = 2_000_000
MAX_GRID_PIXELS = 10**12
#: A chip is read into memory whole: larger ones are a typo (or a job for another tool).
MAX_CHIP_SIZE = v.MAX_CHIP_SIZE
MAX_CHIPS_PER_TASK = 32


@dataclass(frozen=True)
class TileOptions:
    """Everything that decides what the chips look like (stored in the index)."""

    size: int = v.CHIP_SIZE
    overlap: int = 0
    edge: v.Edge = v.EDGES[0]
    max_nodata: float = v.MAX_NODATA
    bands: tuple[int, ...] | None = None
    format: v.ChipFormat = v.CHIP_FORMATS[0]
    compress: v.Compression | None = None
    dst_crs: str | None = None
    resolution: float | None = None
    resampling: v.Resampling = v.RESAMPLINGS[0]
    allow_no_crs: bool = False

    def validate(self) -> None:
        if not self.size >= v.MIN_CHIP_SIZE:
            raise InputError(f"`size` must be a positive number of pixels; got {self.size}", params=("size",))
        if not 0 <= self.overlap < self.size:
            raise InputError(
                f"`overlap` must be 0 or more pixels and smaller than `size` ({self.size}); got {self.overlap}",
                params=("overlap", "size"),
            )
        TileGrid(width=self.size, height=self.size, size=self.size, overlap=self.overlap, edge=self.edge)
        if self.size > MAX_CHIP_SIZE:
            raise InputError(
                f"`size` must be at most {MAX_CHIP_SIZE} px (a chip is read into memory whole); got {self.size}",
                params=("size",),
            )
        if not 0.0 <= self.max_nodata <= 1.0:
            raise InputError(
                f"`max_nodata` must be a fraction between 0 and 1; got {self.max_nodata}", params=("max_nodata",)
            )
        check_choice(self.format, v.CHIP_FORMATS, param="format")
        if self.compress is not None:
            check_choice(self.compress, v.COMPRESSIONS, param="compress")
        check_choice(self.resampling, RESAMPLING_METHODS, param="resampling")
        if self.resolution is not None and not 0 < self.resolution < float("inf"):
            raise InputError(
                f"`resolution` must be a positive number of CRS units; got {self.resolution}", params=("resolution",)
            )
        if self.bands is not None and not self.bands:
            raise InputError("`bands` must name at least one band (numbered from 1)", params=("bands",))
        if self.bands is not None and min(self.bands) < 1:
            raise InputError(f"`bands` are numbered from 1; got {list(self.bands)}", params=("bands",))

    def params(self) -> dict[str, Any]:
        """The options as stored in the tile index (what a resumed run must match)."""
        from geolabel.crs import compact_crs

        out = asdict(self)
        out["bands"] = list(self.bands) if self.bands else None
        out["dst_crs"] = compact_crs(self.dst_crs) if self.dst_crs else None  # EPSG code: stable across PROJ versions
        out.pop("allow_no_crs")
        return out

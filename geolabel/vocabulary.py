"""One vocabulary for every front end: the choices, defaults and limits of the engine's
options. The engine checks against them, the CLI (click) and the QGIS algorithms
(Processing) offer exactly these, so a user sees the same words, defaults and limits
whichever door they use.

Choices are ``Literal`` types; their values as tuples come from the types themselves:

>>> EDGES
('pad', 'shift', 'drop')
>>> parse_list(" accepted, reviewed ,")
['accepted', 'reviewed']
"""

from __future__ import annotations

from typing import Literal, get_args

# -- tiling -------------------------------------------------------------------------------

Edge = Literal["pad", "shift", "drop"]
EDGES: tuple[Edge, ...] = get_args(Edge)
ChipFormat = Literal["gtiff", "cog"]
CHIP_FORMATS: tuple[ChipFormat, ...] = get_args(ChipFormat)
Compression = Literal["deflate", "zstd", "lzw", "none"]
COMPRESSIONS: tuple[Compression, ...] = get_args(Compression)
Resampling = Literal["nearest", "bilinear", "cubic", "cubic_spline", "lanczos", "average", "mode"]
RESAMPLINGS: tuple[Resampling, ...] = get_args(Resampling)
CHIP_SIZE = 512
MIN_CHIP_SIZE = 1
MAX_CHIP_SIZE = 32768  # a chip is read into memory whole: larger is a typo
MAX_NODATA = 1.0

# -- labels -------------------------------------------------------------------------------

Status = Literal["draft", "submitted", "reviewed", "accepted", "rejected"]
STATUSES: tuple[Status, ...] = get_args(Status)
TileStatus = Literal["todo", "in_progress", "done"]
TILE_STATUSES: tuple[TileStatus, ...] = get_args(TileStatus)
SameClass = Literal["merge", "flag"]
SAME_CLASS_RULES: tuple[SameClass, ...] = get_args(SameClass)
AreaUnit = Literal["m2", "ha", "mu"]
AREA_UNITS: tuple[AreaUnit, ...] = get_args(AreaUnit)
RESOLVE_MIN_AREA_M2 = 1.0

# -- tile tags (whole-image labels) ---------------------------------------------------------

#: ``multi``: a tile may carry several tags ("paddy" and "pond"); ``single``: one tag per
#: tile and labeler (a scene-classification project).
TagMode = Literal["multi", "single"]
TAG_MODES: tuple[TagMode, ...] = get_args(TagMode)
TagListFormat = Literal["table", "csv", "json"]
TAG_LIST_FORMATS: tuple[TagListFormat, ...] = get_args(TagListFormat)
#: The labeler name of tags derived from the polygons (`geolabel tags suggest`).
TAG_SUGGEST_LABELER = "suggest"

# -- tasks and review ---------------------------------------------------------------------

#: A task's life: assigned -> in_progress -> submitted -> accepted, or rejected (back to
#: its labeler, who submits again).
TaskStatus = Literal["assigned", "in_progress", "submitted", "accepted", "rejected"]
TASK_STATUSES: tuple[TaskStatus, ...] = get_args(TaskStatus)
#: Statuses from which a labeler may (re)submit a task.
OPEN_TASK_STATUSES: tuple[TaskStatus, ...] = ("assigned", "in_progress", "rejected")
ReviewDecision = Literal["submitted", "accepted", "rejected", "reopened"]
REVIEW_DECISIONS: tuple[ReviewDecision, ...] = get_args(ReviewDecision)
OVERLAP_FRACTION = 0.0
#: Consensus tiles whose two copies agree less than this (Cohen's kappa by area) are reviewed first.
LOW_KAPPA = 0.6
RESOLVE_MIN_WIDTH_M = 0.0

# -- quality and scoring ------------------------------------------------------------------

CHECK_MIN_AREA_M2 = 1.0
CHECK_MIN_WIDTH_M = 0.5
CHECK_SPIKE_ANGLE_DEG = 5.0
SCORE_IOU = 0.5
SCORE_TOLERANCE_M = 1.0

# -- suggestions from the imagery -----------------------------------------------------------

#: Normalised-difference water indexes: NDWI (green, NIR; McFeeters 1996), MNDWI (green,
#: SWIR; Xu 2006).
WaterIndex = Literal["ndwi", "mndwi"]
WATER_INDEXES: tuple[WaterIndex, ...] = get_args(WaterIndex)
#: Band roles a suggestion command reads.
BandRole = Literal["green", "nir", "swir"]
BAND_ROLES: tuple[BandRole, ...] = get_args(BandRole)
WATER_THRESHOLD = "otsu"
SUGGEST_MIN_AREA_M2 = 100.0
SUGGEST_WATER_CLASS = "water"
#: Smallest class polygon suggested, m²: below the village's smallest house (8 x 8 m).
SUGGEST_CLASSES_MIN_AREA_M2 = 25.0
#: Window side (pixels) suggest commands read at a time: 1024 x 1024 x 2 bands of float32 is 8 MB.
SUGGEST_WINDOW = 1024

# -- export -------------------------------------------------------------------------------

ExportFormat = Literal["geojson", "coco", "masks", "stac", "tags"]
ALL_EXPORT_FORMATS: tuple[ExportFormat, ...] = get_args(ExportFormat)
#: What an export writes when no format is named: the polygon formats. ``tags`` (the tile
#: tags as an image-classification set) needs a tag schema, so it is asked for by name.
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("geojson", "coco", "masks", "stac")
SPLIT = "0.8,0.1,0.1"
SEED = 0


def parse_list(value: str) -> list[str]:
    """A comma-separated option ("accepted,reviewed") as its non-empty items."""
    return [item.strip() for item in value.split(",") if item.strip()]


#: What a member of a PostGIS project may do (`geolabel team add --role`).
ROLES = ("labeler", "reviewer", "admin")

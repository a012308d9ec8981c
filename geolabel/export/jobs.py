"""The values passed between the export driver and the format writers.

A :class:`ChunkJob` (plain, picklable values: a few chips and the labels that may fall on
them) goes to a worker; the worker clips the labels to each chip, makes each chip's
:class:`TileJob` and :class:`TileData`, each requested format's tile writer adds its files
and counts to the :class:`TileResult`, and the chunk's results come back. After the last tile, the dataset-level writers
(COCO, STAC) get a :class:`DatasetParts`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geolabel.export import layout
from geolabel.tileindex import ChipInfo

if TYPE_CHECKING:
    from geolabel.export.tags import ExportTags
    from geolabel.labels.schema import ClassSchema


@dataclass(frozen=True)
class LabelTable:
    """Labels in one CRS with what the tile writers need of them, row by row."""

    geoms: Any  # shapely polygons in the chips' CRS
    codes: Any  # int64 array: class code per row
    label_ids: Sequence[str]
    priority_of: Mapping[int, int]  # class code -> priority
    name_of: Mapping[int, str]  # class code -> class name
    tree: Any = None  # an STRtree over ``geoms``, built once when the table is shared


@dataclass(frozen=True)
class InlineLabels:
    """A chunk's labels carried in the task itself (for executors that share no memory)."""

    wkb: tuple[bytes, ...]  # the labels whose polygons touch a chip, in the chips' CRS
    codes: tuple[int, ...]
    label_ids: tuple[str, ...]
    priority_of: Mapping[int, int]
    name_of: Mapping[int, str]

    def table(self) -> LabelTable:
        import shapely

        geoms = shapely.from_wkb(np.array(self.wkb, dtype=object)) if self.wkb else np.zeros(0, dtype=object)
        codes = np.array(self.codes, dtype=np.int64)
        return LabelTable(geoms, codes, self.label_ids, self.priority_of, self.name_of)


@dataclass(frozen=True)
class SharedLabels:
    """A chunk's labels as the key of a :class:`LabelTable` published for the whole export
    (:mod:`geolabel.shared`): nothing per task to serialise or parse."""

    key: str

    def table(self) -> LabelTable:
        from geolabel.shared import lookup

        table: LabelTable = lookup(self.key)
        return table


@dataclass(frozen=True)
class ChunkJob:
    """A few chips and the labels that may fall on them: a worker clips and writes them, so
    the clipping runs on every worker instead of in the process that deals out the work."""

    chips: tuple[ChipInfo, ...]  # paths absolute: workers may run in other folders (a cluster)
    splits: tuple[str, ...]  # per chip
    image_ids: tuple[int, ...]  # per chip (COCO)
    out_dir: str
    formats: tuple[str, ...]
    min_overlap: float
    skip_empty: bool
    labels: InlineLabels | SharedLabels
    image_checksums: tuple[tuple[str, int] | None, ...] = ()  # per chip, when already hashed


@dataclass(frozen=True)
class TileJob:
    """One tile of a :class:`ChunkJob`: the chip and its clipped objects' attributes."""

    tile_id: str
    split: str
    chip_path: str
    crs: str  # the chip's CRS: EPSG:xxxx when GDAL identifies it exactly, else WKT
    transform: tuple[float, ...]
    width: int
    height: int
    nodata_fraction: float
    out_dir: str
    formats: tuple[str, ...]
    codes: tuple[int, ...]
    priorities: tuple[int, ...]
    label_ids: tuple[str, ...]
    class_names: tuple[str, ...]
    truncated: tuple[bool, ...]
    area_m2: tuple[float, ...]
    image_id: int
    link_images: bool = True
    skip_empty: bool = False
    image_checksum: tuple[str, int] | None = None  # the chip's sha256 and size, when already hashed


@dataclass
class TileResult:
    """What a worker wrote for one tile, and the counts the summary and COCO need."""

    tile_id: str
    split: str
    files: list[str] = field(default_factory=list)  # relative to the dataset folder
    pixel_counts: dict[int, int] = field(
        default_factory=dict
    )  # class code -> mask pixels (255 = unlabelled/nodata); masks only
    area_px: dict[int, float] = field(default_factory=dict)  # class code -> area of the objects in pixels
    object_counts: dict[int, int] = field(default_factory=dict)
    coco_image: dict[str, Any] | None = None
    coco_annotations: list[dict[str, Any]] = field(default_factory=list)
    checksums: dict[str, tuple[str, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class TileData:
    """One tile's job with its objects as geometries in the tile CRS and in chip pixels,
    shared by all formats."""

    job: TileJob
    out: Path  # the dataset folder being built
    geoms: Any
    pixel_geoms: Any
    codes: Any

    @classmethod
    def of(cls, job: TileJob, geoms: Any) -> TileData:
        """``job`` with its clipped objects ``geoms`` (an object array in the tile CRS)."""
        from geolabel.geom import to_pixels

        pixel_geoms = to_pixels(geoms, job.transform) if len(geoms) else geoms
        return cls(job, Path(job.out_dir), geoms, pixel_geoms, np.asarray(job.codes, dtype=np.int64))

    @property
    def image(self) -> str:
        """The chip's image, relative to the dataset folder."""
        return layout.image(self.job.split, self.job.tile_id)


@dataclass(frozen=True)
class DatasetParts:
    """What the dataset-level writers get once every tile is written."""

    folder: Path  # the dataset folder being built
    title: str
    formats: tuple[str, ...]
    schema: ClassSchema
    tiles: Sequence[TileResult]  # sorted by tile id
    chips: Mapping[str, Any]  # tile id -> ChipInfo
    tags: ExportTags | None = None  # the tiles' tags (format "tags")

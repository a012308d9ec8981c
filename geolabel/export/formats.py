"""The output formats of a training-set export, in one table.

Each format is a :class:`Format`: a tile writer that runs in the workers, once per tile
(``write_tile(tile, result)``: write the tile's files, add them and their counts to
``result``), and/or a dataset writer that runs once after the last tile
(``write_dataset(parts)``: write the files made from all tiles, return their paths).
A new format is a module with these functions and a row here.

>>> FORMATS
('geojson', 'coco', 'masks', 'stac', 'tags')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from geolabel.export import coco, geojson, masks, stac, tags
from geolabel.export.jobs import DatasetParts, TileData, TileResult

TileWriter = Callable[[TileData, TileResult], None]
DatasetWriter = Callable[[DatasetParts], list[str]]


@dataclass(frozen=True)
class Format:
    """One output format: what it writes per tile and once per dataset."""

    name: str
    write_tile: TileWriter | None = None
    write_dataset: DatasetWriter | None = None


#: Every format, in the order its files are written.
WRITERS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("geojson", write_tile=geojson.write_tile_geojson),
        Format("coco", write_tile=coco.add_tile_annotations, write_dataset=coco.write_coco),
        Format("masks", write_tile=masks.write_tile_mask),
        Format("stac", write_dataset=stac.write_catalog),
        Format("tags", write_dataset=tags.write_tags),
    )
}
FORMATS = tuple(WRITERS)


def write_dataset_files(parts: DatasetParts) -> list[str]:
    """Run the dataset writers of the formats asked for; returns the files they wrote."""
    written: list[str] = []
    for fmt in WRITERS.values():
        if fmt.write_dataset is not None and fmt.name in parts.formats:
            written += fmt.write_dataset(parts)
    return written

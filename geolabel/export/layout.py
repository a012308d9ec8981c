"""Where each file of an exported dataset goes: the one place that names the paths.

Dataset layout (paths relative to the dataset folder)::

    images/<split>/<tile_id>.tif                 the chips (hard links, else copies)
    labels/geojson/<split>/<tile_id>.geojson     RFC 7946 (WGS 84 lon/lat)
    labels/geojson_px/<split>/<tile_id>.geojson  same objects in chip pixels
    labels/masks/<split>/<tile_id>.tif           uint8 class codes, 255 = unlabelled/nodata
    coco/<split>.json                            COCO instance segmentation
    stac/catalog.json                            STAC catalog with the label extension
    tags/<split>.csv                             the tiles' tags (format ``tags``)
    tags/classes.csv                             the tag schema: index, code, name, colour
    tags/geojson/<split>/<tile_id>.geojson       the tile's footprint with its tags (STAC asset)
    images_by_tag/<split>/<tag>/<tile_id>.tif    single-label tags: ImageFolder links to images/
    summary.json                                 per split and class: tiles, objects, mask pixels, area
    manifest.json                                sha256 and size of every file

>>> image("train", "village_r000_c001"), coco("val")
('images/train/village_r000_c001.tif', 'coco/val.json')
"""

from __future__ import annotations

from pathlib import Path

#: Written last: its presence marks a complete dataset.
MANIFEST = "manifest.json"
SUMMARY = "summary.json"
#: The STAC catalog's folder (``stac/catalog.json`` and its items).
STAC = "stac"


def image(split: str, tile_id: str) -> str:
    """The chip's image."""
    return f"images/{split}/{tile_id}.tif"


def geojson(split: str, tile_id: str) -> str:
    """The chip's objects in RFC 7946 GeoJSON (longitude/latitude)."""
    return f"labels/geojson/{split}/{tile_id}.geojson"


def geojson_px(split: str, tile_id: str) -> str:
    """The chip's objects in GeoJSON with chip pixel coordinates."""
    return f"labels/geojson_px/{split}/{tile_id}.geojson"


def mask(split: str, tile_id: str) -> str:
    """The chip's class mask."""
    return f"labels/masks/{split}/{tile_id}.tif"


def coco(split: str) -> str:
    """The split's COCO annotations."""
    return f"coco/{split}.json"


def tags_csv(split: str) -> str:
    """The split's tile tags (one row per tagged chip)."""
    return f"tags/{split}.csv"


#: The tag schema of a ``tags`` export, one row per tag in schema order.
TAG_CLASSES = "tags/classes.csv"


def tags_geojson(split: str, tile_id: str) -> str:
    """The chip's footprint with its tags: one GeoJSON Feature (the STAC label asset)."""
    return f"tags/geojson/{split}/{tile_id}.geojson"


def image_by_tag(split: str, tag: str, tile_id: str) -> str:
    """The chip in an ImageFolder layout (single-label tags): a link to :func:`image`."""
    return f"images_by_tag/{split}/{tag}/{tile_id}.tif"


def target(out: Path, rel: str) -> Path:
    """``out / rel`` with its folder created; refused if ``rel`` could lead outside ``out``
    (tile ids are checked where the index is read; this is the second line of defence)."""
    from geolabel.files import child_path

    path = child_path(out, rel)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path

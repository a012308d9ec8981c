"""A static STAC catalog of the dataset, with the label extension.

Layout (self-contained, relative links)::

    stac/catalog.json
    stac/images/collection.json         one item per chip: the image asset
    stac/images/<tile_id>/<tile_id>.json
    stac/labels/collection.json         one item per chip: label extension, GeoJSON and mask assets
    stac/labels/<tile_id>/<tile_id>.json
    stac/tags/collection.json           one item per tagged chip (format ``tags``: see
    stac/tags/<tile_id>/<tile_id>.json  :mod:`geolabel.export.stac_tags`)

Each label item links to its image item (``rel: source`` with ``label:assets``), carries
``label:type`` = vector, ``label:properties`` = ["class_name"], ``label:classes`` from the
schema, ``label:tasks`` = segmentation and classification, the object counts per class as
``label:overviews``, and the tile's split as the ``split`` property. The labels collection
is written with format ``stac``, the tags collection with format ``tags``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geolabel.export import layout
from geolabel.export.jobs import DatasetParts

if TYPE_CHECKING:
    from geolabel.export.tags import ExportTags
    from geolabel.labels.schema import ClassSchema

LABEL_EXTENSION = "https://stac-extensions.github.io/label/v1.0.1/schema.json"
PROJECTION_EXTENSION = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"


def write_catalog(parts: DatasetParts) -> list[str]:
    """Format ``stac``: the catalog of the dataset's tiles; returns the written files."""
    from geolabel.crs import reproject_geometries

    tiles = []
    for r in parts.tiles:
        chip = parts.chips[r.tile_id]
        geojson = layout.geojson(r.split, r.tile_id)
        tiles.append(
            {
                "tile_id": r.tile_id,
                "split": r.split,
                "crs": chip.crs,
                "transform": chip.transform,
                "width": chip.width,
                "height": chip.height,
                "footprint": reproject_geometries(chip.footprint, chip.crs, "EPSG:4326", densify=chip.edge_step),
                "image": layout.image(r.split, r.tile_id),
                "geojson": geojson if geojson in r.files else None,
                "mask": layout.mask(r.split, r.tile_id),
                "object_counts": r.object_counts,
            }
        )
    return write_stac(
        parts.folder, tiles, schema=parts.schema, formats=parts.formats, title=parts.title, tags=parts.tags
    )


def write_stac(
    out_dir: Path,
    tiles: Sequence[dict[str, Any]],
    *,
    schema: ClassSchema,
    formats: Sequence[str],
    title: str,
    tags: ExportTags | None = None,
) -> list[str]:
    """Write the catalog under ``out_dir/stac``; returns the written files (relative)."""
    import pystac

    from geolabel.export.stac_tags import tag_item, tags_collection

    now = datetime.now(timezone.utc)
    catalog = pystac.Catalog(id="geolabel-dataset", description=f"{title}: chips and land-cover labels")
    images = pystac.Collection(
        id="images",
        description="Image chips",
        extent=_extent(tiles, now),
        license="other",
    )
    labels = _labels_collection(tiles, now, schema) if "stac" in formats else None
    tagged = tags_collection(tags, _extent(tiles, now)) if tags is not None else None
    for tile in tiles:
        shape = _geometry(tile)
        image_item = _image_item(tile, shape, now)
        images.add_item(image_item)
        if labels is not None:
            labels.add_item(_label_item(tile, shape, image_item, now, schema=schema, formats=formats))
        if tagged is not None and tags is not None and tile["tile_id"] in tags.tiles:
            tagged.add_item(tag_item(tile, shape, image_item, now, tags))
    for child in (images, labels, tagged):
        if child is not None:
            catalog.add_child(child)
    root = out_dir / layout.STAC
    catalog.normalize_hrefs(str(root))
    catalog.make_all_asset_hrefs_relative()
    catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return sorted(str(p.relative_to(out_dir)) for p in root.rglob("*.json"))


def _labels_collection(tiles: Sequence[dict[str, Any]], now: datetime, schema: ClassSchema) -> Any:
    """The collection of the polygon label items (format ``stac``)."""
    import pystac

    labels = pystac.Collection(
        id="labels",
        description="Land-cover labels clipped to the chips",
        extent=_extent(tiles, now),
        license="other",
        stac_extensions=[LABEL_EXTENSION],
    )
    labels.summaries.add("label:classes", [{"name": "class_name", "classes": [c.name for c in schema]}])
    return labels


def _geometry(tile: Mapping[str, Any]) -> tuple[dict[str, Any], list[float]]:
    """The item geometry and bbox of a tile (its footprint in longitude/latitude)."""
    from geolabel.export.geojson import geometry_dict

    footprint = tile["footprint"]
    return geometry_dict(footprint, 10, rfc7946=True), list(footprint.bounds)


def image_link(image_item: Any) -> Any:
    """A label item's ``source`` link to its image item (the chip is its ``image`` asset)."""
    import pystac

    return pystac.Link(
        rel="source", target=image_item, media_type=pystac.MediaType.JSON, extra_fields={"label:assets": ["image"]}
    )


def _image_item(tile: Mapping[str, Any], shape: tuple[dict[str, Any], list[float]], now: datetime) -> Any:
    """The image item of a tile (``shape``: its geometry and bbox): projection properties
    and the chip as its asset."""
    import pystac

    geometry, bbox = shape
    code = tile["crs"] if tile["crs"].startswith("EPSG:") else None
    item = pystac.Item(
        id=tile["tile_id"],
        geometry=geometry,
        bbox=bbox,
        datetime=now,
        properties={
            "split": tile["split"],
            "proj:code": code or None,
            "proj:shape": [tile["height"], tile["width"]],
            "proj:transform": list(tile["transform"]),
        },
        stac_extensions=[PROJECTION_EXTENSION],
    )
    item.add_asset(
        "image",
        pystac.Asset(href=f"../../../{tile['image']}", media_type=pystac.MediaType.GEOTIFF, roles=["data"]),
    )
    return item


def _label_item(
    tile: Mapping[str, Any],
    shape: tuple[dict[str, Any], list[float]],
    image_item: Any,
    now: datetime,
    *,
    schema: ClassSchema,
    formats: Sequence[str],
) -> Any:
    """The label item of a tile: label extension properties, GeoJSON and mask assets, and
    a ``source`` link to its image item."""
    import pystac

    geometry, bbox = shape
    item = pystac.Item(
        id=tile["tile_id"],
        geometry=geometry,
        bbox=bbox,
        datetime=now,
        properties=_label_properties(tile, schema),
        stac_extensions=[LABEL_EXTENSION],
    )
    if "geojson" in formats and tile.get("geojson"):
        item.add_asset(
            "labels",
            pystac.Asset(href=f"../../../{tile['geojson']}", media_type=pystac.MediaType.GEOJSON, roles=["labels"]),
        )
    if "masks" in formats:
        item.add_asset(
            "mask",
            pystac.Asset(
                href=f"../../../{tile['mask']}",
                media_type=pystac.MediaType.GEOTIFF,
                roles=["labels", "labels-raster"],
                extra_fields={"description": "class codes; 255 = unlabelled or nodata"},
            ),
        )
    item.add_link(image_link(image_item))
    return item


def _label_properties(tile: Mapping[str, Any], schema: ClassSchema) -> dict[str, Any]:
    """The label extension's properties of a tile, with its object counts per class."""
    class_names = [c.name for c in schema]
    counts = tile["object_counts"]
    return {
        "split": tile["split"],
        "label:type": "vector",
        "label:properties": ["class_name"],
        "label:description": "land-cover polygons clipped to the chip",
        "label:classes": [{"name": "class_name", "classes": class_names}],
        "label:tasks": ["segmentation", "classification"],
        "label:methods": ["manual"],
        "label:overviews": [
            {
                "property_key": "class_name",
                "counts": [{"name": schema.get(c).name, "count": int(n)} for c, n in sorted(counts.items())],
            }
        ],
    }


def _extent(tiles: Sequence[dict[str, Any]], now: datetime) -> Any:
    import pystac

    boxes = [t["footprint"].bounds for t in tiles]
    minx = min(b[0] for b in boxes) if boxes else -180.0
    miny = min(b[1] for b in boxes) if boxes else -90.0
    maxx = max(b[2] for b in boxes) if boxes else 180.0
    maxy = max(b[3] for b in boxes) if boxes else 90.0
    return pystac.Extent(pystac.SpatialExtent([[minx, miny, maxx, maxy]]), pystac.TemporalExtent([[now, None]]))

"""A static STAC catalog of the dataset, with the label extension.

Layout (self-contained, relative links)::

    stac/catalog.json
    stac/images/collection.json         one item per chip: the image asset
    stac/images/<tile_id>/<tile_id>.json
    stac/labels/collection.json         one item per chip: label extension, GeoJSON and mask assets
    stac/labels/<tile_id>/<tile_id>.json

Each label item links to its image item (``rel: source`` with ``label:assets``), carries
``label:type`` = vector, ``label:properties`` = ["class_name"], ``label:classes`` from the
schema, ``label:tasks`` = segmentation and classification, the object counts per class as
``label:overviews``, and the tile's split as the ``split`` property.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

LABEL_EXTENSION = "https://stac-extensions.github.io/label/v1.0.1/schema.json"
PROJECTION_EXTENSION = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"


def write_stac(
    out_dir: Path,
    tiles: Sequence[dict[str, Any]],
    *,
    schema: Any,
    formats: Sequence[str],
    title: str,
) -> list[str]:
    """Write the catalog under ``out_dir/stac``; returns the written files (relative)."""
    import pystac

    from geolabel.export.writers import geometry_dict

    now = datetime.now(timezone.utc)
    catalog = pystac.Catalog(id="geolabel-dataset", description=f"{title}: chips and land-cover labels")
    class_names = [c.name for c in schema]
    images = pystac.Collection(
        id="images",
        description="Image chips",
        extent=_extent(tiles, now),
        license="other",
    )
    labels = pystac.Collection(
        id="labels",
        description="Land-cover labels clipped to the chips",
        extent=_extent(tiles, now),
        license="other",
        stac_extensions=[LABEL_EXTENSION],
    )
    labels.summaries.add("label:classes", [{"name": "class_name", "classes": class_names}])
    for tile in tiles:
        footprint = tile["footprint"]
        geometry = geometry_dict(footprint, 10, rfc7946=True)
        bbox = list(footprint.bounds)
        code = tile["crs"] if tile["crs"].startswith("EPSG:") else None
        image_item = pystac.Item(
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
        image_item.add_asset(
            "image",
            pystac.Asset(href=f"../../../{tile['image']}", media_type=pystac.MediaType.GEOTIFF, roles=["data"]),
        )
        images.add_item(image_item)
        counts = tile["object_counts"]
        props = {
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
        label_item = pystac.Item(
            id=tile["tile_id"],
            geometry=geometry,
            bbox=bbox,
            datetime=now,
            properties=props,
            stac_extensions=[LABEL_EXTENSION],
        )
        if "geojson" in formats and tile.get("geojson"):
            label_item.add_asset(
                "labels",
                pystac.Asset(href=f"../../../{tile['geojson']}", media_type=pystac.MediaType.GEOJSON, roles=["labels"]),
            )
        if "masks" in formats:
            label_item.add_asset(
                "mask",
                pystac.Asset(
                    href=f"../../../{tile['mask']}",
                    media_type=pystac.MediaType.GEOTIFF,
                    roles=["labels", "labels-raster"],
                    extra_fields={"description": "class codes; 255 = unlabelled or nodata"},
                ),
            )
        link = pystac.Link(
            rel="source", target=image_item, media_type=pystac.MediaType.JSON, extra_fields={"label:assets": ["image"]}
        )
        label_item.add_link(link)
        labels.add_item(label_item)
    catalog.add_child(images)
    catalog.add_child(labels)
    root = out_dir / "stac"
    catalog.normalize_hrefs(str(root))
    catalog.make_all_asset_hrefs_relative()
    catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return sorted(str(p.relative_to(out_dir)) for p in root.rglob("*.json"))


def _extent(tiles: Sequence[dict[str, Any]], now: datetime) -> Any:
    import pystac

    boxes = [t["footprint"].bounds for t in tiles]
    minx = min(b[0] for b in boxes) if boxes else -180.0
    miny = min(b[1] for b in boxes) if boxes else -90.0
    maxx = max(b[2] for b in boxes) if boxes else 180.0
    maxy = max(b[3] for b in boxes) if boxes else 90.0
    return pystac.Extent(pystac.SpatialExtent([[minx, miny, maxx, maxy]]), pystac.TemporalExtent([[now, None]]))

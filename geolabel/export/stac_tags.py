"""The STAC label items of the tiles' tags (format ``tags``): tile classification.

The label extension describes tile classification as a vector label whose asset is a
GeoJSON FeatureCollection of one Feature, the tile's footprint, with the class as a
property (``tags/geojson/<split>/<tile_id>.geojson``). So each tagged chip's item has
``label:type`` = vector, ``label:tasks`` = [classification], ``label:properties`` =
[``tags``] (a list of tag names; single-label projects: [``tag``], one name),
``label:classes`` = the tag schema's names, ``label:methods`` = manual (automated for tags
derived from polygons), one count per tag as ``label:overviews``, the tile's tags and split
as properties, and a ``source`` link to its image item.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from geolabel import vocabulary
from geolabel.export import layout
from geolabel.export.stac import LABEL_EXTENSION, image_link
from geolabel.export.tags import ExportTags, tag_properties


def _property(tags: ExportTags) -> str:
    """The Feature property that holds the class: ``tag`` (single-label) or ``tags``."""
    return "tag" if tags.schema.is_single else "tags"


def _classes(tags: ExportTags) -> list[dict[str, Any]]:
    return [{"name": _property(tags), "classes": [t.name for t in tags.schema]}]


def tags_collection(tags: ExportTags, extent: Any) -> Any:
    """The ``tags`` collection (its items: :func:`tag_item`)."""
    import pystac

    collection = pystac.Collection(
        id="tags",
        description=f"Tags of whole chips ({tags.schema.mode}-label classification)",
        extent=extent,
        license="other",
        stac_extensions=[LABEL_EXTENSION],
    )
    collection.summaries.add("label:classes", _classes(tags))
    collection.summaries.add("label:tasks", ["classification"])
    return collection


def tag_item(
    tile: Mapping[str, Any], shape: tuple[dict[str, Any], list[float]], image_item: Any, now: datetime, tags: ExportTags
) -> Any:
    """The label item of a tagged tile (``shape``: its geometry and bbox in longitude/latitude)."""
    import pystac

    geometry, bbox = shape
    tile_id = tile["tile_id"]
    names = tags.names(tile_id)
    automated = tags.tiles[tile_id].labelers == (vocabulary.TAG_SUGGEST_LABELER,)
    properties = {
        "split": tile["split"],
        **tag_properties(tags, tile_id),
        "label:type": "vector",
        "label:properties": [_property(tags)],
        "label:description": "tags of the whole chip (scene classification)",
        "label:classes": _classes(tags),
        "label:tasks": ["classification"],
        "label:methods": ["automated" if automated else "manual"],
        "label:overviews": [{"property_key": _property(tags), "counts": [{"name": n, "count": 1} for n in names]}],
    }
    item = pystac.Item(
        id=tile_id, geometry=geometry, bbox=bbox, datetime=now, properties=properties, stac_extensions=[LABEL_EXTENSION]
    )
    href = f"../../../{layout.tags_geojson(tile['split'], tile_id)}"
    item.add_asset("labels", pystac.Asset(href=href, media_type=pystac.MediaType.GEOJSON, roles=["labels"]))
    item.add_link(image_link(image_item))
    return item

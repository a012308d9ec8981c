"""Land-cover labels: class schema, label store, import, geometry rules and statistics;
tile tags (whole-image labels)."""

from __future__ import annotations

from geolabel.labels.copy import copy_store
from geolabel.labels.gpkg_store import GeoPackageStore
from geolabel.labels.history import label_history, restore_label
from geolabel.labels.schema import ClassSchema, LandCoverClass, default_schema, load_schema
from geolabel.labels.store import (
    LABEL_FIELDS,
    SOURCES,
    STATUSES,
    ConflictError,
    LabelStore,
    create_store,
    open_store,
)
from geolabel.labels.tag_rules import suggest_tags
from geolabel.labels.tags import import_tags, list_tile_tags, set_tag_schema, set_tile_tags
from geolabel.labels.tagschema import Tag, TagSchema, TileTag, load_tag_schema

__all__ = [
    "LABEL_FIELDS",
    "SOURCES",
    "STATUSES",
    "ClassSchema",
    "ConflictError",
    "GeoPackageStore",
    "LabelStore",
    "LandCoverClass",
    "Tag",
    "TagSchema",
    "TileTag",
    "copy_store",
    "create_store",
    "default_schema",
    "import_tags",
    "label_history",
    "list_tile_tags",
    "load_schema",
    "load_tag_schema",
    "open_store",
    "restore_label",
    "set_tag_schema",
    "set_tile_tags",
    "suggest_tags",
]

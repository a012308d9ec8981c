"""Land-cover labels: class schema, label store, import, geometry rules and statistics."""

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

__all__ = [
    "LABEL_FIELDS",
    "SOURCES",
    "STATUSES",
    "ClassSchema",
    "ConflictError",
    "GeoPackageStore",
    "LabelStore",
    "LandCoverClass",
    "copy_store",
    "create_store",
    "default_schema",
    "label_history",
    "load_schema",
    "open_store",
    "restore_label",
]

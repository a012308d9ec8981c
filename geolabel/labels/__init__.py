"""Land-cover labels: class schema, label store, import, geometry rules and statistics."""

from __future__ import annotations

from geolabel.labels.gpkg_store import GeoPackageStore
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
    "create_store",
    "default_schema",
    "load_schema",
    "open_store",
]

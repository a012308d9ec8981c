"""Training-set export: GeoJSON per tile, COCO, class masks, STAC, spatial splits."""

from __future__ import annotations

from geolabel.export.dataset import (
    FORMATS,
    ExportResult,
    export_coco,
    export_dataset,
    export_geojson,
    export_masks,
    export_stac,
)

__all__ = [
    "FORMATS",
    "ExportResult",
    "export_coco",
    "export_dataset",
    "export_geojson",
    "export_masks",
    "export_stac",
]

"""Suggestions from the imagery: polygons a labeler accepts or edits, and one-click regions.

Every suggest command makes polygons in the scene's CRS and hands them to one writer,
:func:`write_suggestions`: a new GeoPackage, or a label store where they arrive as
``source="suggested"``, ``status="draft"``. :class:`SmartRegion` grows the region around
a click over superpixels of one chip. :func:`suggest_classes` learns land-cover classes
from the labels already made and suggests them on the tiles still to do. scikit-image and scikit-learn are an extra
(``pip install 'geolabel[suggest]'``) imported only by these functions.
"""

from __future__ import annotations

from geolabel.errors import InputError
from geolabel.suggest.bands import band_roles, index_bands, parse_band_roles
from geolabel.suggest.classes import ClassSuggestion, HoldOut, suggest_classes
from geolabel.suggest.output import SuggestionsWritten, write_suggestions
from geolabel.suggest.region import SmartRegion, Snapped, chip_window_at, snap_to_labels
from geolabel.suggest.water import WaterSuggestion, otsu_water_threshold, suggest_water

__all__ = [
    "ClassSuggestion",
    "HoldOut",
    "SmartRegion",
    "Snapped",
    "SuggestionsWritten",
    "WaterSuggestion",
    "band_roles",
    "chip_window_at",
    "index_bands",
    "otsu_water_threshold",
    "parse_band_roles",
    "require_extra",
    "snap_to_labels",
    "suggest_classes",
    "suggest_water",
    "write_suggestions",
]


def require_extra() -> None:
    """Raise a one-line error naming the pip line when scikit-image or scikit-learn is missing."""
    import importlib.util

    missing = [name for name in ("skimage", "sklearn") if importlib.util.find_spec(name) is None]
    if missing:
        packages = " and ".join({"skimage": "scikit-image", "sklearn": "scikit-learn"}[m] for m in missing)
        raise InputError(f"suggestions need {packages}: pip install 'geolabel[suggest]'")

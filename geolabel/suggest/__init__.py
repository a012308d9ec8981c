"""Assisted labeling: regions and suggestions computed from the imagery on a CPU.

Needs the ``suggest`` extra (scikit-image, scikit-learn), imported only inside these
code paths so ``import geolabel`` and the CLI stay fast without it.
"""

from __future__ import annotations

from geolabel.errors import InputError
from geolabel.suggest.region import SmartRegion, Snapped, chip_window_at, snap_to_labels

__all__ = ["SmartRegion", "Snapped", "chip_window_at", "require_suggest", "snap_to_labels"]


def require_suggest() -> None:
    """Raise a one-line error naming the ``pip install`` line when scikit-image is missing."""
    try:
        import skimage  # noqa: F401
    except ImportError:
        raise InputError("assisted labeling needs scikit-image: pip install 'geolabel[suggest]'") from None

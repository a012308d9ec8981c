"""Quality control of label deliveries: every check a service center runs, the same way.

:func:`load_delivery` (:mod:`geolabel.labels.delivery`) reads a label store or any
delivered vector file as it is (invalid geometries included); :func:`check_labels` runs
the checks and returns :class:`Finding` records, never raising for a finding.
Measurements are made in metres: in the data's CRS when it is projected in metres, else
in the UTM zone of the data.

One module per check family, composed by :mod:`~geolabel.qa.check`: ``attributes`` (no
features, CRS, classes, required attributes), ``validity`` (geometry types, invalid
polygons, the repaired polygons in metres), ``overlaps`` (duplicates and overlaps),
``shape`` (below_mmu, sliver, small_hole, spike), ``coverage`` (outside, gaps and
completeness against an AOI or a tile index), ``summaries`` (per class, team, labeler),
``tags`` (untagged done tiles, tag disagreements); ``findings`` holds :class:`Finding`,
:class:`QAResult` and the finding types.

Finding types (severity):

=====================  ========  =====================================================
``empty``              error     feature without geometry
``non_polygon``        error     point or line where a polygon is expected
``invalid``            error     invalid polygon, with GEOS's reason and location
``unknown_class``      error     class value not in the schema
``missing_attribute``  error     a required attribute (labeler, team, ...) is empty
``missing_crs``        error     the file declares no CRS
``unexpected_crs``     error     the CRS differs from the expected one
``duplicate``          error     two features with the same geometry
``overlap``            error     overlap within a class or across classes (area in m²)
``gap``                error     unlabelled area inside the AOI / done tiles (warning if
                                 smaller than the minimum mapping unit)
``outside``            error     feature entirely outside the AOI / imagery (warning if
                                 partly outside)
``no_features``        warning   the delivery holds no features at all
``untagged_tile``      error     a store with a tag schema: a done tile nobody tagged
``tag_disagreement``   warning   a store with a tag schema: labelers tagged a tile
                                 differently (the message gives each one's tags)
``below_mmu``          warning   polygon smaller than the minimum mapping unit
``sliver``             warning   thin polygon: mean width below ``min_width``
``small_hole``         warning   hole smaller than the minimum mapping unit
``spike``              warning   vertex with an angle below ``spike_angle`` degrees
=====================  ========  =====================================================
"""

from __future__ import annotations

from geolabel.labels.delivery import Delivery, load_delivery
from geolabel.qa.check import check_labels
from geolabel.qa.findings import ERROR, FINDING_TYPES, WARNING, Finding, QAResult
from geolabel.qa.incremental import CheckState, check_changed

__all__ = [
    "ERROR",
    "FINDING_TYPES",
    "WARNING",
    "CheckState",
    "Delivery",
    "Finding",
    "QAResult",
    "check_changed",
    "check_labels",
    "load_delivery",
]

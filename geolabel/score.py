"""Scoring a labeler's polygons against a reference (and agreement between two labelers).

Area metrics, per class and overall, in square metres:

- TP = area labelled with the class in both; FP = submission's area of the class minus
  TP; FN = reference's area of the class minus TP;
- correctness (precision) = TP / (TP + FP), completeness (recall) = TP / (TP + FN),
  quality = TP / (TP + FP + FN) (the IoU of the class regions), F1;
- a confusion matrix by area (submission class x reference class, with "unlabelled").

Object metrics, per class: one-to-one matching of polygons at an IoU threshold, best IoU
first (the SpaceNet rule): TP/FP/FN counts, precision, recall, F1.

Boundary F-score: the share of the submission's class boundaries within ``tolerance``
metres of the reference's (precision) and the other way round (recall).

Both sides are measured in a metric CRS (the reference's when projected in metres, else
its UTM zone), the submission is reprojected to the reference, an AOI clips both, and
invalid polygons are repaired (and counted) first.

>>> import shapely
>>> from geolabel.labels.schema import default_schema
>>> ref = ([shapely.box(0, 0, 10, 10)], [2])
>>> sub = ([shapely.box(2, 0, 12, 10)], [2])
>>> s = score_polygons(sub, ref, default_schema())
>>> round(s.overall["quality"], 4), round(s.overall["correctness"], 2)
(0.6667, 0.8)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from geolabel.crs import OVERLAY_GRID_M

if TYPE_CHECKING:
    from geolabel.labels.schema import ClassSchema

UNLABELLED = "unlabelled"


def _ratios(tp: float, fp: float, fn: float) -> dict[str, float]:
    def div(a: float, b: float) -> float:
        return a / b if b > 0 else 0.0

    p = div(tp, tp + fp)
    r = div(tp, tp + fn)
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "correctness": p,
        "completeness": r,
        "quality": div(tp, tp + fp + fn),
        "f1": div(2 * p * r, p + r),
    }


@dataclass
class Score:
    """Everything :func:`score_polygons` measured."""

    classes: list[str]
    area: dict[str, dict[str, float]]  # class -> tp/fp/fn (m²) and ratios
    overall: dict[str, float]
    confusion: dict[str, dict[str, float]]  # submission class -> reference class -> m²
    objects: dict[str, dict[str, float]]  # class -> tp/fp/fn counts and ratios
    objects_overall: dict[str, float]
    boundary: dict[str, dict[str, float]]  # class -> precision/recall/f (and overall)
    kappa: float
    repaired: dict[str, int] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "classes": self.classes,
            "overall": self.overall,
            "area": self.area,
            "confusion_m2": self.confusion,
            "objects": self.objects,
            "objects_overall": self.objects_overall,
            "boundary": self.boundary,
            "kappa": self.kappa,
            "repaired": self.repaired,
            "settings": self.settings,
        }


def _dissolve(geoms: Any, codes: Any, code: int) -> Any:
    import shapely

    sel = geoms[codes == code]
    return shapely.union_all(sel, grid_size=OVERLAY_GRID_M) if len(sel) else shapely.Polygon()


def match_objects(sub: Any, ref: Any, *, iou: float) -> tuple[int, int, int, list[tuple[int, int, float]]]:
    """One-to-one matching at ``iou``, best IoU first (ties: lower submission, then reference
    index). Returns (TP, FP, FN, matched pairs)."""
    import shapely

    if not len(sub) or not len(ref):
        return 0, len(sub), len(ref), []
    tree = shapely.STRtree(ref)
    s_idx, r_idx = tree.query(sub, predicate="intersects")
    if len(s_idx):
        inter = shapely.area(shapely.intersection(sub[s_idx], ref[r_idx], grid_size=OVERLAY_GRID_M))
        union = shapely.area(sub[s_idx]) + shapely.area(ref[r_idx]) - inter
        ious = np.where(union > 0, inter / np.maximum(union, 1e-300), 0.0)
    else:
        ious = np.zeros(0)
    order = np.lexsort((r_idx, s_idx, -ious))
    used_s, used_r = set(), set()
    pairs = []
    for k in order.tolist():
        if ious[k] < iou:
            break
        a, b = int(s_idx[k]), int(r_idx[k])
        if a in used_s or b in used_r:
            continue
        used_s.add(a)
        used_r.add(b)
        pairs.append((a, b, float(ious[k])))
    tp = len(pairs)
    return tp, len(sub) - tp, len(ref) - tp, pairs


def _boundary_f(sub_region: Any, ref_region: Any, tolerance: float) -> dict[str, float]:
    import shapely

    sb = shapely.boundary(sub_region) if not sub_region.is_empty else shapely.LineString()
    rb = shapely.boundary(ref_region) if not ref_region.is_empty else shapely.LineString()
    ls, lr = sb.length, rb.length
    p = sb.intersection(rb.buffer(tolerance)).length / ls if ls > 0 else 0.0
    r = rb.intersection(sb.buffer(tolerance)).length / lr if lr > 0 else 0.0
    return {"precision": p, "recall": r, "f": 2 * p * r / (p + r) if p + r > 0 else 0.0}


def score_polygons(
    submission: tuple[Sequence[Any], Sequence[int]],
    reference: tuple[Sequence[Any], Sequence[int]],
    schema: ClassSchema,
    *,
    classes: Sequence[int] | None = None,
    iou: float = 0.5,
    tolerance: float = 1.0,
) -> Score:
    """Score (geometries, class codes) pairs already in one metric CRS (units: metres)."""
    import shapely

    check_score_options(iou=iou, tolerance=tolerance)
    sub_g = np.asarray(submission[0], dtype=object)
    sub_c = np.asarray(submission[1], dtype=np.int64)
    ref_g = np.asarray(reference[0], dtype=object)
    ref_c = np.asarray(reference[1], dtype=np.int64)
    codes = sorted(set(classes) if classes is not None else set(sub_c.tolist()) | set(ref_c.tolist()))
    if classes is not None:
        sub_g, sub_c = sub_g[np.isin(sub_c, codes)], sub_c[np.isin(sub_c, codes)]
        ref_g, ref_c = ref_g[np.isin(ref_c, codes)], ref_c[np.isin(ref_c, codes)]
    name = {c: (schema.get(c).name if c in schema else str(c)) for c in codes}
    sub_regions = {c: _dissolve(sub_g, sub_c, c) for c in codes}
    ref_regions = {c: _dissolve(ref_g, ref_c, c) for c in codes}
    sub_all = shapely.union_all(list(sub_regions.values()), grid_size=OVERLAY_GRID_M) if codes else shapely.Polygon()
    ref_all = shapely.union_all(list(ref_regions.values()), grid_size=OVERLAY_GRID_M) if codes else shapely.Polygon()

    area: dict[str, dict[str, float]] = {}
    totals = [0.0, 0.0, 0.0]
    confusion: dict[str, dict[str, float]] = {}
    for cs in codes:
        row = confusion.setdefault(name[cs], {})
        for cr in codes:
            row[name[cr]] = float(sub_regions[cs].intersection(ref_regions[cr], grid_size=OVERLAY_GRID_M).area)
        row[UNLABELLED] = float(sub_regions[cs].difference(ref_all, grid_size=OVERLAY_GRID_M).area)
    confusion[UNLABELLED] = {
        name[cr]: float(ref_regions[cr].difference(sub_all, grid_size=OVERLAY_GRID_M).area) for cr in codes
    }
    confusion[UNLABELLED][UNLABELLED] = 0.0
    for c in codes:
        tp = confusion[name[c]][name[c]]
        fp = sub_regions[c].area - tp
        fn = ref_regions[c].area - tp
        area[name[c]] = _ratios(tp, max(fp, 0.0), max(fn, 0.0))
        totals[0] += tp
        totals[1] += max(fp, 0.0)
        totals[2] += max(fn, 0.0)
    overall = _ratios(*totals)

    objects: dict[str, dict[str, float]] = {}
    otot = [0, 0, 0]
    for c in codes:
        tp, fp, fn, _pairs = match_objects(sub_g[sub_c == c], ref_g[ref_c == c], iou=iou)
        objects[name[c]] = _ratios(tp, fp, fn)
        otot = [otot[0] + tp, otot[1] + fp, otot[2] + fn]
    objects_overall = _ratios(*otot)
    for d in (*objects.values(), objects_overall):
        d["precision"], d["recall"] = d.pop("correctness"), d.pop("completeness")
        d.pop("quality")

    boundary = {name[c]: _boundary_f(sub_regions[c], ref_regions[c], tolerance) for c in codes}
    sub_lines = shapely.union_all(
        [shapely.boundary(g) for g in sub_regions.values() if not g.is_empty] or [shapely.LineString()]
    )
    ref_lines = shapely.union_all(
        [shapely.boundary(g) for g in ref_regions.values() if not g.is_empty] or [shapely.LineString()]
    )
    ls, lr = sub_lines.length, ref_lines.length
    bp = sub_lines.intersection(ref_lines.buffer(tolerance)).length / ls if ls else 0.0
    br = ref_lines.intersection(sub_lines.buffer(tolerance)).length / lr if lr else 0.0
    boundary["overall"] = {"precision": bp, "recall": br, "f": 2 * bp * br / (bp + br) if bp + br else 0.0}

    # Cohen's kappa on the area confusion matrix (agreement beyond chance), labelled area only
    labels = [name[c] for c in codes]
    m = np.array([[confusion[a][b] for b in labels] for a in labels]) if labels else np.zeros((0, 0))
    kappa = cohen_kappa(m)
    return Score(
        classes=labels,
        area=area,
        overall=overall,
        confusion=confusion,
        objects=objects,
        objects_overall=objects_overall,
        boundary=boundary,
        kappa=kappa,
        settings={"iou": iou, "tolerance_m": tolerance},
    )


def cohen_kappa(matrix: Any) -> float:
    """Cohen's kappa of a square confusion matrix (areas or counts): agreement beyond chance,
    1 when everything agrees, 0 when as often as chance would (0 for an empty matrix).

    >>> round(cohen_kappa([[50, 0], [25, 25]]), 4)
    0.5
    """
    m = np.asarray(matrix, dtype=float)
    total = m.sum()
    if total <= 0:
        return 0.0
    po = np.trace(m) / total
    pe = float((m.sum(axis=1) * m.sum(axis=0)).sum() / total**2)
    return float((po - pe) / (1 - pe)) if pe < 1 else 1.0


#: Largest boundary tolerance: boundaries 100 m apart are no match at any resolution labels
#: are drawn at (3 Landsat pixels), the cost of the boundary buffers grows steeply with it
#: (100 m: minutes on the village), and at 1e300 m GEOS fails (a TopologyException).
MAX_TOLERANCE_M = 100.0


def check_score_options(*, iou: float, tolerance: float) -> None:
    """Refuse an object-matching threshold or boundary tolerance no score can use."""
    from geolabel.errors import InputError

    if not 0 < iou <= 1:
        raise InputError(f"`iou` must be more than 0 and at most 1; got {iou}", params=("iou",))
    if not 0 < tolerance <= MAX_TOLERANCE_M:
        raise InputError(
            f"`tolerance` must be more than 0 m and at most {MAX_TOLERANCE_M:g} m; got {tolerance}",
            params=("tolerance",),
        )


#: The class every feature gets when neither file has classes.
ONE_CLASS = "object"


@dataclass
class _Side:
    """One side of a comparison: repaired polygons, their class codes, CRS, repairs."""

    geoms: Any
    codes: Any
    crs: Any
    repaired: int


def _load_side(
    path: Any, *, schema: ClassSchema, class_field: str | None, layer: str | None, single_class: str | None = None
) -> _Side:
    """The polygons of a store or vector file with their classes, repaired."""
    import shapely

    from geolabel.errors import CRSError
    from geolabel.labels.delivery import load_delivery
    from geolabel.labels.repair import repair

    d = load_delivery(path, schema=schema, class_field=class_field, layer=layer, single_class=single_class)
    if d.crs is None:
        raise CRSError(f"{path}: {d.crs_problem}; scores in metres need a CRS")
    geoms = d.geoms
    poly = np.isin(shapely.get_type_id(geoms), (3, 6)) & ~shapely.is_empty(geoms)
    known = (d.codes >= 0) & poly
    fixed, changed, _ = repair(shapely.force_2d(geoms[known]))
    ok = ~shapely.is_missing(fixed)
    return _Side(fixed[ok], d.codes[known][ok], d.crs, int(changed.sum()))


def _load_sides(
    submission: Any,
    reference: Any,
    *,
    schema: ClassSchema,
    class_field: str | None,
    reference_class_field: str | None,
    single_class: str | None,
    layer: str | None,
    reference_layer: str | None,
) -> tuple[_Side, _Side, Any]:
    """(submission, reference, schema). When neither file has a class field (and none is
    named), every feature is one class, with a warning saying so."""
    import warnings

    from geolabel.errors import ClassAssumedWarning
    from geolabel.labels.importer import NoClassFieldError
    from geolabel.labels.schema import ClassSchema, LandCoverClass

    sides: dict[str, _Side | NoClassFieldError] = {}
    for key, path, field_name, lyr in (
        ("ref", reference, reference_class_field, reference_layer),
        ("sub", submission, class_field, layer),
    ):
        try:
            sides[key] = _load_side(path, schema=schema, class_field=field_name, layer=lyr, single_class=single_class)
        except NoClassFieldError as exc:  # only raised when no class is named for this side
            sides[key] = exc
    sub, ref = sides["sub"], sides["ref"]
    if isinstance(sub, _Side) and isinstance(ref, _Side):
        return sub, ref, schema
    if not (isinstance(sub, NoClassFieldError) and isinstance(ref, NoClassFieldError)):
        raise sub if isinstance(sub, NoClassFieldError) else ref  # type: ignore[misc]
    one = ClassSchema([LandCoverClass(1, ONE_CLASS, "#808080", 1)], name=ONE_CLASS)
    ref = _load_side(reference, schema=one, class_field=None, layer=reference_layer, single_class=ONE_CLASS)
    sub = _load_side(submission, schema=one, class_field=None, layer=layer, single_class=ONE_CLASS)
    warnings.warn(
        ClassAssumedWarning(
            f"{submission} and {reference}: neither has a class field; every feature is scored as one class "
            f"{ONE_CLASS!r} (name a class with `single_class`)",
            params=("single_class",),
        ),
        stacklevel=3,
    )
    return sub, ref, one


def _metric_crs(sub: _Side, ref: _Side, names: tuple[Any, Any]) -> Any:
    """The CRS both sides are measured in: the reference's when in metres, else the UTM zone
    of the reference (of the submission when the reference is empty)."""
    import shapely

    from geolabel.crs import metric_crs_for, reproject_geometries, same_crs
    from geolabel.errors import InputError

    if len(ref.geoms):
        bounds = shapely.total_bounds(ref.geoms)
    elif len(sub.geoms):
        geoms = sub.geoms if same_crs(sub.crs, ref.crs) else reproject_geometries(sub.geoms, sub.crs, ref.crs)
        bounds = shapely.total_bounds(geoms)
    else:
        raise InputError(f"{names[1]}: nothing to score: neither it nor {names[0]} holds a polygon")
    return metric_crs_for(ref.crs, tuple(bounds))


def score_files(
    submission: Any,
    reference: Any,
    *,
    schema: ClassSchema | None = None,
    classes: Sequence[Any] | None = None,
    iou: float = 0.5,
    tolerance: float = 1.0,
    aoi: Any = None,
    class_field: str | None = None,
    reference_class_field: str | None = None,
    single_class: str | None = None,
    layer: str | None = None,
    reference_layer: str | None = None,
) -> Score:
    """Score a submission file/store against a reference file/store (see module docstring);
    ``layer``/``reference_layer`` pick one layer of a multi-layer file.

    ``single_class`` gives every feature of both sides that class (single-class labels
    such as building footprints). When neither file has a class field and none is named,
    every feature is one class (a :class:`~geolabel.errors.ClassAssumedWarning` says so).
    """
    from geolabel.crs import crs_label, reproject_geometries, same_crs
    from geolabel.labels.delivery import read_region
    from geolabel.labels.importer import source_label
    from geolabel.labels.pg_location import shown_location
    from geolabel.labels.schema import default_schema

    check_score_options(iou=iou, tolerance=tolerance)
    if classes is not None and not list(classes):
        from geolabel.errors import InputError

        raise InputError("`classes` must name at least one class", params=("classes",))
    sub, ref, schema = _load_sides(
        submission,
        reference,
        schema=schema or default_schema(),
        class_field=class_field,
        reference_class_field=reference_class_field,
        single_class=single_class,
        layer=layer,
        reference_layer=reference_layer,
    )
    metric = _metric_crs(sub, ref, (shown_location(submission), shown_location(reference)))
    for side in (ref, sub):
        if not same_crs(side.crs, metric):
            side.geoms = reproject_geometries(side.geoms, side.crs, metric)
    if aoi is not None:
        region = read_region(aoi, metric)
        for side in (ref, sub):
            _clip_side(side, region)
    codes = [_class_code(schema, c) for c in classes] if classes is not None else None
    result = score_polygons(
        (sub.geoms, sub.codes), (ref.geoms, ref.codes), schema, classes=codes, iou=iou, tolerance=tolerance
    )
    result.repaired = {"submission": sub.repaired, "reference": ref.repaired}
    result.settings.update(
        submission=shown_location(submission),
        reference=shown_location(reference),
        crs=crs_label(metric),
        aoi=source_label(aoi) if aoi else None,
    )
    return result


def _clip_side(side: _Side, region: Any) -> None:
    """Keep the parts of a side's polygons inside ``region``."""
    import shapely

    geoms = shapely.intersection(side.geoms, region)
    keep = shapely.area(geoms) > 0
    side.geoms, side.codes = geoms[keep], side.codes[keep]


def _class_code(schema: ClassSchema, value: Any) -> int:
    from geolabel.errors import InputError

    try:
        return int(schema.resolve(value).code)
    except InputError as exc:
        raise InputError(f"`classes`: {exc}", params=("classes",)) from None

"""Geometry rules for land-cover labels: resolve overlaps by class priority, slivers, spikes.

The headline rule: where polygons of different classes overlap, the class with the higher
priority keeps the area and is cut out of the lower one (a pond drawn on a field is cut
out of the field). Everything is vectorised with shapely 2 over arrays of geometries,
with an STRtree to find candidate pairs, so tens of thousands of polygons resolve in
seconds.

>>> import shapely
>>> from geolabel.labels.schema import default_schema
>>> field, pond = shapely.box(0, 0, 100, 100), shapely.box(40, 40, 60, 60)
>>> result = resolve_overlaps([field, pond], [2, 1], default_schema())
>>> [round(g.area) for g in result.geometries], result.report.cut
([9600, 400], 1)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from geolabel.geom import components, groups, intersecting_pairs, polygonal_parts, threaded
from geolabel.labels.repair import repair
from geolabel.labels.schema import ClassSchema

if TYPE_CHECKING:
    from geolabel.labels.store import LabelStore

#: Overlaps smaller than this (m², or CRS units²) count as touching, not overlapping.
OVERLAP_TOLERANCE = 1e-4
SAME_CLASS_POLICIES = ("merge", "flag")
#: Same-class labels merge when their overlap covers at least this fraction of the smaller
#: one (duplicates, a polygon drawn inside another); smaller overlaps are border errors
#: between neighbours and are cut, so neighbouring parcels stay separate labels.
MERGE_FRACTION = 0.5
#: Victims with more cutters than this get one difference with the cutters' union.
_ROUNDS = 8


@dataclass
class ResolveReport:
    """What :func:`resolve_overlaps` changed (areas in CRS units², metres for metric CRSs)."""

    labels_in: int = 0
    labels_out: int = 0
    repaired: int = 0
    cut: int = 0  # labels that lost area to a higher-priority class
    swallowed: int = 0  # labels entirely covered by higher-priority labels (removed)
    split: int = 0  # extra labels created because a cut split a label in parts
    merged: int = 0  # same-class labels merged into another one
    same_class_overlaps: int = 0  # same-class overlapping pairs found
    slivers_merged: int = 0
    slivers_removed: int = 0
    spikes_removed: int = 0
    overlap_area: float = 0.0  # area that was covered twice before resolving
    removed_area: float = 0.0  # area no label covers any more (isolated slivers)
    no_polygon: int = 0  # labels without a polygon (empty, points, lines, beyond repair): removed

    def lines(self) -> list[str]:
        return [
            f"labels: {self.labels_in} -> {self.labels_out}",
            f"repaired invalid geometries: {self.repaired}",
            f"labels without a polygon removed: {self.no_polygon} (empty, points or lines, or beyond repair)",
            f"cut by a higher-priority class: {self.cut} ({self.overlap_area:.2f} m² of overlap resolved)",
            f"covered entirely and removed: {self.swallowed}",
            f"split into several labels: {self.split} new labels",
            f"same-class overlaps: {self.same_class_overlaps} pairs, {self.merged} labels merged",
            f"slivers merged into a neighbour: {self.slivers_merged}",
            f"slivers/spikes removed (no neighbour): {self.slivers_removed + self.spikes_removed} "
            f"({self.removed_area:.2f} m²)",
        ]


@dataclass
class Resolved:
    """The resolved label set: one Polygon per output label.

    ``source[k]`` is the input index the k-th output polygon comes from; an input keeps
    its identity in its largest output part (``primary[k]`` True), further parts are new
    labels. ``removed`` lists inputs that no longer exist (merged or swallowed).
    """

    geometries: Any
    codes: Any
    source: Any
    primary: Any
    removed: list[int] = field(default_factory=list)
    merged_into: dict[int, int] = field(default_factory=dict)
    report: ResolveReport = field(default_factory=ResolveReport)


@dataclass
class _Labels:
    """The labels while they are resolved: one geometry per input label (emptied when it
    goes), and the bookkeeping the steps share."""

    geoms: Any
    codes: Any
    report: ResolveReport
    removed: set[int] = field(default_factory=set)
    merged_into: dict[int, int] = field(default_factory=dict)


@dataclass
class _Parts:
    """The labels cut into polygons: ``parent[k]`` is the input label of ``parts[k]``."""

    parts: Any
    parent: Any
    is_spike: Any


def resolve_overlaps(
    geoms: Sequence[Any] | Any,
    codes: Sequence[int] | Any,
    schema: ClassSchema,
    *,
    min_area: float = 0.0,
    min_width: float = 0.0,
    same_class: str = "merge",
    precision: float = 0.0,
) -> Resolved:
    """Resolve overlaps by class priority; merge same-class overlaps; clean slivers.

    Steps: repair invalid polygons; snap to a ``precision`` grid (0 = off); merge
    same-class labels that overlap by at least half of the smaller one (duplicates,
    nested polygons; ``same_class="flag"`` leaves all same-class overlaps as they are);
    cut every label by the labels of higher priority overlapping it (same class or equal
    priority: the earlier label keeps the overlap, so neighbouring parcels whose borders
    overlap stay separate); split multi-part results into one label per part; move
    slivers (parts smaller than ``min_area``) and spikes (parts narrower than
    ``min_width``) into the neighbour that shares the longest edge with them, or drop
    them when they touch no other label.

    The union of all labels is unchanged except for dropped isolated slivers, whose area
    is reported in ``report.removed_area``.
    """
    check_resolve_options(min_area=min_area, min_width=min_width, same_class=same_class, precision=precision)
    labels = _repaired(geoms, codes, precision=precision)
    left, right = intersecting_pairs(labels.geoms, interiors=True)  # candidate pairs, once
    left, right = _merge_same_class(labels, left, right, merge=same_class == "merge")
    if same_class == "flag" and len(left):
        differ = labels.codes[left] != labels.codes[right]
        left, right = left[differ], right[differ]
    _cut_by_priority(labels, left, right, schema)
    parts = _split_spikes(labels.geoms, min_width=min_width)
    body, body_parent = _move_slivers(labels, parts, min_area=min_area)
    final, final_parent = _valid_polygons(body, body_parent)
    return _with_identities(labels, final, final_parent)


def _repaired(geoms: Any, codes: Any, *, precision: float) -> _Labels:
    """Step 1: repair; labels without a polygon become empty (removed); snap to ``precision``."""
    import shapely

    arr = np.asarray(geoms, dtype=object)
    labels = _Labels(geoms=arr, codes=np.asarray(codes, dtype=np.int64), report=ResolveReport(labels_in=len(arr)))
    work, changed, _ = repair(arr)
    # nothing to keep: no geometry, an empty one, beyond repair, a point or a line
    missing = shapely.is_missing(work) | shapely.is_empty(work) | ~np.isin(shapely.get_type_id(work), (3, 6, 7))
    labels.report.repaired = int((changed & ~missing).sum())
    labels.report.no_polygon = int(missing.sum())
    labels.removed |= set(np.flatnonzero(missing).tolist())
    work[missing] = shapely.Polygon()
    if precision > 0:
        work = shapely.set_precision(work, precision)
        newly_empty = shapely.is_empty(work) & ~missing
        labels.removed |= set(np.flatnonzero(newly_empty).tolist())
        labels.report.slivers_removed += int(newly_empty.sum())
    labels.geoms = work
    return labels


def _merge_same_class(labels: _Labels, left: Any, right: Any, *, merge: bool) -> tuple[Any, Any]:
    """Step 2: same-class overlaps, measured once; duplicates and nested labels (overlap of
    at least MERGE_FRACTION of the smaller one) merge into the earliest label (``merge``).
    Returns the candidate pairs, updated for the merged labels."""
    import shapely

    work = labels.geoms
    cand = np.flatnonzero(labels.codes[left] == labels.codes[right])
    inter_area = shapely.area(threaded(shapely.intersection, work[left[cand]], work[right[cand]]))
    real_same = inter_area > OVERLAP_TOLERANCE
    labels.report.same_class_overlaps = int(real_same.sum())
    if not (merge and real_same.any()):
        return left, right
    smaller = np.minimum(shapely.area(work[left[cand]]), shapely.area(work[right[cand]]))
    nested = cand[real_same & (inter_area >= MERGE_FRACTION * smaller)]
    keepers = []
    for group in components(len(work), left[nested], right[nested]):
        keep = group[0]
        work[keep] = shapely.union_all(work[group])
        for other in group[1:]:
            labels.merged_into[other] = keep
            labels.removed.add(other)
            work[other] = shapely.Polygon()
        labels.report.merged += len(group) - 1
        keepers.append(keep)
    if not keepers:
        return left, right
    # pairs of merged labels change: drop them and find the grown keepers' pairs again
    touched = np.zeros(len(work), dtype=bool)
    touched[keepers] = True
    touched[list(labels.merged_into)] = True
    stay = ~(touched[left] | touched[right])
    new_left, new_right = intersecting_pairs(work, interiors=True, of=keepers)
    return np.concatenate([left[stay], new_left]), np.concatenate([right[stay], new_right])


def _cut_by_priority(labels: _Labels, left: Any, right: Any, schema: ClassSchema) -> None:
    """Step 3: cut lower priority by higher priority (same class or equal priority: the
    earlier label keeps the overlap)."""
    import shapely

    if not len(left):
        return
    codes, n = labels.codes, len(labels.geoms)
    prio = np.array([schema.priority(int(c)) if int(c) in schema else -1 for c in codes], dtype=np.int64)
    rank = -np.arange(n)
    left_wins = (prio[left] > prio[right]) | ((prio[left] == prio[right]) & (rank[left] > rank[right]))
    victims = np.where(left_wins, right, left)
    cutters = np.where(left_wins, left, right)
    snapshot = labels.geoms.copy()
    work = _subtract_many(labels.geoms, victims, cutters, snapshot)
    hit = np.unique(victims)
    lost = shapely.area(snapshot[hit]) - shapely.area(work[hit])
    # pairs that only touch (float noise below the tolerance) are left as they were,
    # so resolving twice changes nothing
    noise = lost <= OVERLAP_TOLERANCE
    work[hit[noise]] = snapshot[hit[noise]]
    hit = hit[~noise]
    labels.report.overlap_area += float(lost[~noise].sum())
    labels.report.cut = len(hit)
    swallowed = hit[shapely.is_empty(work[hit])]
    labels.report.swallowed = len(swallowed)
    labels.removed |= set(swallowed.tolist())
    labels.geoms = work


def _subtract_many(geoms: Any, victims: Any, cutters: Any, cutter_geoms: Any) -> Any:
    """geoms[v] -= union of cutter_geoms[c] over pairs (v, c).

    Vectorised rounds (round r subtracts every victim's r-th cutter); a victim with many
    cutters (a forest full of houses) instead gets one difference with their union.
    """
    import shapely

    out = geoms.copy()
    if not len(victims):
        return out
    order = np.argsort(victims, kind="stable")
    victims, cutters = victims[order], cutters[order]
    starts, counts, rank = groups(victims)
    many = counts > _ROUNDS
    if many.any():
        heavy = victims[starts[many]]
        unions = [shapely.union_all(cutter_geoms[cutters[s : s + c]]) for s, c in zip(starts[many], counts[many])]
        out[heavy] = threaded(shapely.difference, out[heavy], np.array(unions, dtype=object))
        light = ~np.repeat(many, counts)
        victims, cutters = victims[light], cutters[light]
        if not len(victims):
            return out
        starts, counts, rank = groups(victims)
    for r in range(int(rank.max()) + 1):
        sel = rank == r
        v = victims[sel]
        out[v] = threaded(shapely.difference, out[v], cutter_geoms[cutters[sel]])
    return out


def _split_spikes(work: Any, *, min_width: float) -> _Parts:
    """Steps 4 and 5: one polygon per label part; parts with narrow protrusions (spikes,
    narrower than ``min_width``) are cut into their body and the spikes."""
    import shapely

    parts, parent = polygonal_parts(work)
    no_spikes = _Parts(parts, parent, np.zeros(len(parts), dtype=bool))
    if not (min_width > 0 and len(parts)):
        return no_spikes
    half = min_width / 2
    opened = shapely.buffer(shapely.buffer(parts, -half, join_style="mitre"), half, join_style="mitre")
    opened = shapely.make_valid(shapely.intersection(opened, parts))
    spikes = shapely.difference(parts, opened)
    has_spike = shapely.area(spikes) > OVERLAP_TOLERANCE
    if not has_spike.any():
        return no_spikes
    spike_parts, spike_parent = polygonal_parts(spikes[has_spike])
    body_parts, body_parent = polygonal_parts(opened[has_spike])
    owner = np.flatnonzero(has_spike)
    keep_rest = ~has_spike
    return _Parts(
        parts=np.concatenate([parts[keep_rest], body_parts, spike_parts]),
        parent=np.concatenate([parent[keep_rest], parent[owner[body_parent]], parent[owner[spike_parent]]]),
        is_spike=np.r_[np.zeros(keep_rest.sum() + len(body_parts), bool), np.ones(len(spike_parts), bool)],
    )


def _move_slivers(labels: _Labels, cut: _Parts, *, min_area: float) -> tuple[Any, Any]:
    """Step 6: slivers (parts below ``min_area``) and spikes go to the neighbour with the
    longest shared edge, or are dropped when they touch no other label. Returns the
    remaining parts and their input labels."""
    import shapely

    areas = shapely.area(cut.parts)
    small = (areas < min_area) | cut.is_spike
    # a label's only part is never a sliver of itself unless it is below min_area
    pieces, piece_parent = cut.parts[small], cut.parent[small]
    body, body_parent = cut.parts[~small], cut.parent[~small]
    best = _best_neighbours(pieces, piece_parent, body, body_parent)
    assigned = best >= 0
    body = _absorb(body, pieces[assigned], best[assigned])
    report, spike = labels.report, cut.is_spike[small]
    report.slivers_merged = int((assigned & ~spike).sum())
    dropped = ~assigned
    report.slivers_removed += int((dropped & ~spike).sum())
    report.spikes_removed += int((dropped & spike).sum())
    report.removed_area = float(shapely.area(pieces[dropped]).sum())
    labels.removed |= set(np.unique(cut.parent).tolist()) - set(np.unique(body_parent).tolist())
    return body, body_parent


def _best_neighbours(pieces: Any, parents: Any, geoms: Any, owners_of: Any) -> Any:
    """For each piece, the index (into geoms) of the neighbour sharing the longest edge, or -1.

    ``owners_of[k]`` is the input label of ``geoms[k]``; a piece never goes back to a part of
    the label it was cut from (``parents``).
    """
    import shapely

    best = np.full(len(pieces), -1)
    if not len(pieces) or not len(geoms):
        return best
    tree = shapely.STRtree(geoms)
    p_idx, g_idx = tree.query(pieces, predicate="intersects")
    keep = owners_of[g_idx] != parents[p_idx]
    p_idx, g_idx = p_idx[keep], g_idx[keep]
    if not len(p_idx):
        return best
    shared = shapely.length(shapely.intersection(shapely.boundary(pieces[p_idx]), shapely.boundary(geoms[g_idx])))
    has_edge = shared > 0
    p_idx, g_idx, shared = p_idx[has_edge], g_idx[has_edge], shared[has_edge]
    order = np.lexsort((-shared, p_idx))  # by piece, longest shared edge first
    p_sorted = p_idx[order]
    first = np.r_[True, p_sorted[1:] != p_sorted[:-1]] if len(p_sorted) else np.array([], dtype=bool)
    best[p_sorted[first]] = g_idx[order][first]
    return best


def _absorb(geoms: Any, pieces: Any, owners: Any) -> Any:
    """geoms[o] |= pieces assigned to owner o (vectorised rounds, like _subtract_many)."""
    import shapely

    out = geoms.copy()
    if not len(owners):
        return out
    order = np.argsort(owners, kind="stable")
    owners, pieces = owners[order], pieces[order]
    _, _, rank = groups(owners)
    for r in range(int(rank.max()) + 1):
        sel = rank == r
        o = owners[sel]
        out[o] = threaded(shapely.union, out[o], pieces[sel])
    return out


def _valid_polygons(body: Any, body_parent: Any) -> tuple[Any, Any]:
    """Step 7: absorbing can leave MultiPolygons when pieces touch only at a vertex (or
    invalid polygons): explode again, repair, explode."""
    import shapely

    final, idx = polygonal_parts(body)
    final_parent = body_parent[idx]
    invalid = ~shapely.is_valid(final)
    if invalid.any():
        final[invalid] = shapely.make_valid(final[invalid])
    final, idx2 = polygonal_parts(final)
    return final, final_parent[idx2]


def _with_identities(labels: _Labels, final: Any, final_parent: Any) -> Resolved:
    """Step 8: the largest part of each input keeps its id; further parts are new labels."""
    import shapely

    areas = shapely.area(final)
    order = np.lexsort((-areas, final_parent))
    primary = np.zeros(len(final), dtype=bool)
    sorted_parent = final_parent[order]
    first = np.r_[True, sorted_parent[1:] != sorted_parent[:-1]] if len(order) else np.array([], dtype=bool)
    primary[order[first]] = True
    labels.report.split = int((~primary).sum())
    labels.report.labels_out = len(final)
    return Resolved(
        geometries=final,
        codes=labels.codes[final_parent],
        source=final_parent,
        primary=primary,
        removed=sorted(labels.removed - set(final_parent.tolist())),
        merged_into=labels.merged_into,
        report=labels.report,
    )


def check_resolve_options(*, min_area: float, min_width: float, same_class: str, precision: float) -> None:
    """Refuse options no resolve can use (negative areas, widths or grids)."""
    from geolabel.errors import InputError, check_choice

    check_choice(same_class, SAME_CLASS_POLICIES, "same-class policy", param="same_class")
    limits = (("min_area", min_area, " m²"), ("min_width", min_width, " m"), ("precision", precision, ""))
    for name, value, unit in limits:
        if not 0 <= value < float("inf"):
            raise InputError(f"`{name}` must be 0{unit} or more; got {value}", params=(name,))


def resolve_store(
    store: LabelStore,
    *,
    min_area: float = 0.0,
    min_width: float = 0.0,
    same_class: str = "merge",
    precision: float = 0.0,
    dry_run: bool = False,
) -> ResolveReport:
    """Resolve a label store in place, in one transaction (``dry_run``: report only).

    The labels are read inside the write transaction, so an edit another program (QGIS)
    commits while resolve computes cannot be overwritten by a result made without it.
    """
    import contextlib

    check_resolve_options(min_area=min_area, min_width=min_width, same_class=same_class, precision=precision)
    with contextlib.nullcontext() if dry_run else store.transaction():
        frame = store.query()
        if not len(frame):
            return ResolveReport()
        _check_resolvable(frame, store)
        result = resolve_overlaps(
            frame.geometry.values.to_numpy(),
            frame["class_code"].to_numpy(dtype=np.int64),
            store.schema,
            min_area=min_area,
            min_width=min_width,
            same_class=same_class,
            precision=precision,
        )
        if not dry_run:
            _write_resolved(store, frame, result)
    return result.report


def _check_resolvable(frame: Any, store: LabelStore) -> None:
    """Resolve rewrites labels by id and cuts them by class priority: refuse labels without
    an id of their own or without a class of the store's schema (written by a tool that
    bypassed the store's triggers)."""
    from geolabel.errors import InputError
    from geolabel.labels.store import DamagedStoreError

    ids = frame["label_id"]
    if ids.isna().any():
        raise DamagedStoreError(
            f"{store.uri}: {int(ids.isna().sum())} labels have no label_id; give them one (e.g. uuid() in QGIS's "
            "field calculator) before resolving"
        )
    twice = ids[ids.duplicated()]
    if len(twice):
        raise DamagedStoreError(
            f"{store.uri}: label id {twice.iloc[0]} is used by {int((ids == twice.iloc[0]).sum())} labels; "
            "give each its own id before resolving"
        )
    for label_id, code in zip(ids, frame["class_code"]):
        if code != code or code is None:  # NaN: no class code
            raise InputError(f"{store.uri}: label {label_id} has no class code; set its class before resolving")
        if int(code) not in store.schema:
            raise InputError(
                f"{store.uri}: label {label_id} has class code {int(code)}, which is not in the store's schema; "
                "set its class before resolving"
            )


def _write_resolved(store: LabelStore, frame: Any, result: Resolved) -> None:
    """Write a resolve result over the labels it was computed from (``frame``)."""
    import geopandas as gpd
    import shapely

    geoms = frame.geometry.values.to_numpy()
    ids = frame["label_id"].tolist()
    primary = np.flatnonzero(result.primary)
    unchanged = shapely.equals(result.geometries[primary], geoms[result.source[primary]])
    changes = [(ids[int(result.source[k])], result.geometries[k]) for k in primary[~unchanged]]
    extra = np.flatnonzero(~result.primary)
    new_rows = None
    if len(extra):
        src = result.source[extra]
        keep_cols = [
            c for c in frame.columns if c not in (frame.geometry.name, "label_id", "created", "modified", "version")
        ]
        new_rows = frame.iloc[src][keep_cols].reset_index(drop=True)
        notes = [f"split from {ids[int(i)]} by resolve" for i in src]
        old_comments = new_rows["comment"].tolist()
        new_rows["comment"] = [f"{c}; {n}" if c else n for c, n in zip(old_comments, notes)]
    removed = [ids[i] for i in result.removed]
    with store.transaction():
        store.delete(removed)
        store.replace_geometries(changes)
        if new_rows is not None:
            store.add(gpd.GeoDataFrame(new_rows, geometry=list(result.geometries[extra]), crs=store.crs))

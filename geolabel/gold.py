"""Gold tiles: hidden quality control. The checking center marks some assigned tiles gold
and keeps their reference labels where labelers cannot read them; every submission of a
gold tile is scored against that reference with :mod:`geolabel.score`'s metrics, and the
scores make a leaderboard of labelers and teams (:func:`quality`).

Design, in plain words:

- **The reference is clipped to the tile.** Only the part of each reference polygon inside
  a gold tile is kept, so nothing of the reference outside the gold tiles is stored, and the
  labeler's labels are clipped to the same tile before scoring: both sides cover the same area.
- **Secrecy is the database's.** On PostGIS the tables ``geolabel_gold``,
  ``geolabel_reference`` and ``geolabel_gold_scores`` are granted to the admin group only;
  a labeler or reviewer cannot list the gold tiles, read a reference or a score, and the
  tasks table has no column that tells a gold tile apart. A GeoPackage has no roles: its gold
  tables sit in the file, readable by whoever opens it (gold secrecy needs PostGIS).
- **Scoring happens where the reference can be read.** A submission is scored as it is
  submitted when the connection may read the reference (a GeoPackage; the admin on
  PostGIS). A labeler's connection cannot, and cannot even tell the tile is gold, so nothing
  happens then; :func:`quality` (run by the admin) scores every submitted or accepted gold
  task not scored yet, from the tile's labels as they are at that moment.
- **One score per submission** (task and submission time): a rejected tile submitted again
  is scored again; the leaderboard counts each task's latest score, the charts all of them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from geolabel.errors import CRSError, InputError
from geolabel.labels.store import GoldScore, StoreLike, Task, now_iso, opened_store

if TYPE_CHECKING:
    from geolabel.labels.store import LabelStore
    from geolabel.score import Score

#: Task statuses whose submission is scored (a rejected one is scored when submitted again).
SCORED_STATUSES = ("submitted", "accepted")
#: The leaderboard's headline metric: mean IoU over the classes of tile and submission.
HEADLINE = "iou"
METRICS = ("iou", "f1", "correctness", "completeness", "boundary_f")

# -- marking ------------------------------------------------------------------------------


@dataclass(frozen=True)
class GoldResult:
    """What :func:`mark_gold` stored: tiles and reference polygons (clipped) per tile."""

    polygons: dict[str, int]

    def line(self) -> str:
        total = sum(self.polygons.values())
        return f"marked {len(self.polygons)} gold tiles with {total} reference polygons"


def mark_gold(
    store: StoreLike,
    tile_ids: Sequence[str],
    reference: str | os.PathLike[str],
    *,
    class_field: str | None = None,
    layer: str | None = None,
) -> GoldResult:
    """Mark assigned tiles gold with the polygons of ``reference`` (a vector file or label
    store) clipped to each tile as their reference; marking a tile again replaces it.

    Every tile must be assigned already (its bounds are its task's) and hold some reference."""
    ids = list(dict.fromkeys(t.strip() for t in tile_ids if t.strip()))
    if not ids:
        raise InputError("give at least one gold tile id", params=("tile_ids",))
    with opened_store(store) as st:
        boxes = _tile_boxes(st, ids)
        geoms, codes = _reference_polygons(st, reference, class_field=class_field, layer=layer)
        rows = _clip_to_tiles(geoms, codes, boxes, os.fspath(reference))
        st.set_gold(ids, rows, source=os.path.basename(os.fspath(reference)))
    return GoldResult({t: sum(1 for r in rows if r[0] == t) for t in ids})


def _tile_boxes(store: LabelStore, ids: list[str]) -> dict[str, Any]:
    import shapely

    bounds = {t.tile_id: t.bounds for t in store.tasks(tile_ids=ids)}
    for tile_id in ids:
        if tile_id not in bounds:
            raise InputError(
                f"{store.uri}: no task for tile {tile_id}: assign it first (gold tiles are assigned like any other)"
            )
    return {t: shapely.box(*bounds[t]) for t in ids}


def _reference_polygons(
    store: LabelStore, reference: str | os.PathLike[str], *, class_field: str | None, layer: str | None
) -> tuple[Any, Any]:
    """The reference's polygons in the store CRS, repaired, with class codes (-1: unknown)."""
    import numpy as np
    import shapely

    from geolabel.crs import reproject_geometries, same_crs
    from geolabel.labels.delivery import load_delivery
    from geolabel.labels.repair import repair

    d = load_delivery(os.fspath(reference), schema=store.schema, class_field=class_field, layer=layer)
    if d.crs is None:
        raise CRSError(f"{os.fspath(reference)}: {d.crs_problem}; a reference needs a CRS")
    keep = np.isin(shapely.get_type_id(d.geoms), (3, 6)) & ~shapely.is_empty(d.geoms)
    geoms, _, _ = repair(shapely.force_2d(d.geoms[keep]))
    codes = np.asarray(d.codes)[keep]
    ok = ~shapely.is_missing(geoms)
    geoms, codes = geoms[ok], codes[ok]
    if not same_crs(d.crs, store.crs):
        geoms = reproject_geometries(geoms, d.crs, store.crs, densify="auto")
    return geoms, codes


def _clip_to_tiles(geoms: Any, codes: Any, boxes: dict[str, Any], source: str) -> list[tuple[str, Any, int]]:
    """(tile, polygon, class code) rows of the reference inside each tile."""
    rows: list[tuple[str, Any, int]] = []
    for tile_id, box in boxes.items():
        parts, part_codes = _polygons_in(geoms, codes, box)
        if (part_codes < 0).any():
            raise InputError(f"{source}: some reference polygons in tile {tile_id} have no class of the store's schema")
        if not len(parts):
            raise InputError(f"{source}: the reference holds no polygon in tile {tile_id}; a gold tile needs one")
        rows += [(tile_id, g, int(c)) for g, c in zip(parts, part_codes)]
    return rows


def _polygons_in(geoms: Any, codes: Any, box: Any) -> tuple[Any, Any]:
    """The polygonal parts of ``geoms`` inside ``box``, with their codes."""
    import numpy as np
    import shapely

    hits = shapely.intersects(geoms, box) & ~shapely.touches(geoms, box)
    clipped = shapely.intersection(geoms[hits], box)
    parts, index = shapely.get_parts(clipped, return_index=True)
    keep = (shapely.get_type_id(parts) == 3) & (shapely.area(parts) > 0)
    return parts[keep], np.asarray(codes)[hits][index[keep]]


# -- scoring ------------------------------------------------------------------------------


def score_task(store: LabelStore, task: Task) -> GoldScore:
    """Score the labels of ``task``'s labeler in its gold tile against the tile's reference
    and record the score (for the task's current submission)."""
    from geolabel.score import score_polygons

    sub, ref, _crs = _sides(store, task)
    result = score_polygons(sub, ref, store.schema)
    metrics = {**summary(result), "score": result.to_dict()}
    score = GoldScore(task.task_id, task.tile_id, task.labeler, task.team, task.submitted_at, now_iso(),
                      json.dumps(metrics, ensure_ascii=False))  # fmt: skip
    store.add_gold_score(score)
    return score


def _sides(store: LabelStore, task: Task) -> tuple[tuple[Any, Any], tuple[Any, Any], Any]:
    """(submission, reference) as (polygons, codes) in a metric CRS, and that CRS."""
    import numpy as np

    from geolabel.crs import metric_crs_for, reproject_geometries, same_crs

    sub_g, sub_c = labeler_polygons(store, task)
    ref_g, ref_c = store.reference(task.tile_id)
    metric = metric_crs_for(store.crs, task.bounds)
    if not same_crs(store.crs, metric):
        sub_g = reproject_geometries(sub_g, store.crs, metric) if len(sub_g) else sub_g
        ref_g = reproject_geometries(ref_g, store.crs, metric)
    return (sub_g, sub_c), (ref_g, np.asarray(ref_c, dtype=np.int64)), metric


def labeler_polygons(store: LabelStore, task: Task) -> tuple[Any, Any]:
    """The polygons ``task``'s labeler drew in its tile, repaired and clipped to the tile,
    with their class codes (store CRS): their work on that task."""
    import numpy as np
    import shapely

    from geolabel.labels.repair import repair

    arrays = store.read(bbox=task.bounds, labeler=task.labeler, fields=["class_code"])
    fixed, _, _ = repair(shapely.force_2d(arrays.geoms))
    known = ~shapely.is_missing(fixed) & np.array([c is not None for c in arrays.columns["class_code"]], dtype=bool)
    codes = np.array([int(c) for c in np.asarray(arrays.columns["class_code"], dtype=object)[known]], dtype=np.int64)
    return _polygons_in(fixed[known], codes, shapely.box(*task.bounds))


def summary(score: Score) -> dict[str, Any]:
    """The leaderboard's numbers of a score: mean IoU over classes (the headline), object F1,
    correctness, completeness and boundary F overall, and the IoU of each class."""
    ious = {name: score.area[name]["quality"] for name in score.classes}
    return {
        "iou": sum(ious.values()) / len(ious) if ious else 0.0,
        "f1": score.objects_overall["f1"],
        "correctness": score.overall["correctness"],
        "completeness": score.overall["completeness"],
        "boundary_f": score.boundary["overall"]["f"],
        "iou_per_class": ious,
    }


def score_submitted(store: LabelStore, task: Task) -> GoldScore | None:
    """Score a task just submitted when it is gold and this connection may read the
    reference (else nothing happens, and nothing tells the labeler the tile was gold)."""
    if not store.may_read_gold() or task.tile_id not in store.gold_tiles():
        return None
    return score_task(store, task)


def score_pending(store: LabelStore) -> list[GoldScore]:
    """Score every submitted or accepted gold task whose submission has no score yet."""
    gold = store.gold_tiles()
    if not gold:
        return []
    done = {(s.task_id, s.submitted_at) for s in store.gold_scores()}
    tasks = store.tasks(tile_ids=gold, status=SCORED_STATUSES)
    return [score_task(store, t) for t in tasks if t.submitted_at and (t.task_id, t.submitted_at) not in done]


# -- the leaderboard ----------------------------------------------------------------------


@dataclass(frozen=True)
class Standing:
    """One labeler's (or, with ``labeler`` None, one team's) mean metrics over their gold
    tasks (each task's latest score)."""

    rank: int
    team: str
    labeler: str | None
    tiles: int
    means: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "team": self.team, "labeler": self.labeler, "gold_tiles": self.tiles,
                **self.means}  # fmt: skip


@dataclass(frozen=True)
class Quality:
    """The leaderboards (best first by :data:`HEADLINE`) and each labeler's scores over time
    ((submission time, metrics) in time order)."""

    labelers: list[Standing]
    teams: list[Standing]
    series: dict[str, list[tuple[str, dict[str, float]]]] = field(default_factory=dict)
    scored_now: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"headline": HEADLINE, "scored_now": self.scored_now,
                "labelers": [s.to_dict() for s in self.labelers], "teams": [s.to_dict() for s in self.teams],
                "series": {k: [{"submitted_at": t, **m} for t, m in v] for k, v in self.series.items()}}  # fmt: skip


def quality(store: StoreLike) -> Quality:
    """Score the gold submissions not scored yet, then rank labelers and teams by the mean of
    their gold scores (the admin's view on PostGIS: labelers and reviewers are refused)."""
    with opened_store(store) as st:
        new = score_pending(st)
        scores = st.gold_scores()
    latest = {s.task_id: s for s in scores}  # oldest first: the last one of a task wins
    numbers = {s.task_id: _numbers(s) for s in scores}
    by_labeler: dict[tuple[str, str | None], list[dict[str, float]]] = {}
    by_team: dict[tuple[str, str | None], list[dict[str, float]]] = {}
    for s in latest.values():
        by_labeler.setdefault((s.team, s.labeler), []).append(numbers[s.task_id])
        by_team.setdefault((s.team, None), []).append(numbers[s.task_id])
    series: dict[str, list[tuple[str, dict[str, float]]]] = {}
    for s in scores:
        series.setdefault(s.labeler or "?", []).append((str(s.submitted_at), _numbers(s)))
    return Quality(_ranked(by_labeler), _ranked(by_team), series, len(new))


def _numbers(score: GoldScore) -> dict[str, float]:
    metrics = json.loads(score.metrics)
    return {k: float(metrics[k]) for k in METRICS}


def _ranked(groups: dict[tuple[str, str | None], list[dict[str, float]]]) -> list[Standing]:
    rows = [
        (team, labeler, len(items), {k: sum(i[k] for i in items) / len(items) for k in METRICS})
        for (team, labeler), items in groups.items()
    ]
    rows.sort(key=lambda r: (-r[3][HEADLINE], -r[2], r[0], r[1] or ""))
    return [Standing(k, team, labeler, n, means) for k, (team, labeler, n, means) in enumerate(rows, start=1)]

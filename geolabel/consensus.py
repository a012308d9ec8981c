"""Consensus tiles: a tile labelled twice (task copies 1 and 2, by two labelers of one team),
the agreement of the two copies, and a review queue that puts disagreement first.

The rules, in plain words:

- **A label belongs to the copy whose labeler drew it.** Both labelers draw in the same
  store, so on a consensus tile their labels lie on top of each other; a copy's labels are
  the ones in the tile whose ``labeler`` is the copy's labeler. Labels by anybody else
  (pre-labels, imports) belong to neither copy: leave consensus tiles without them.
- **Each copy is checked alone.** Submitting a copy runs the tile's checks on its labeler's
  labels only (:func:`copy_labeler`), so the other copy is never reported as an overlap.
- **One copy goes out.** A whole-store ``check`` and ``export`` leave out the labels of one
  copy (:func:`other_copy_ids`): copy 2's, unless copy 2 was accepted and copy 1 was not.
  A label is on a tile when its ``tile_id`` says so (the QGIS dock fills it in), else when
  its representative point lies in the tile.
- **Agreement is measured by area over the tile** with :func:`geolabel.score.score_polygons`
  (copy 2 as the submission, copy 1 as the reference, both clipped to the tile, in metres):
  the IoU of each class's regions and Cohen's kappa of the area confusion matrix, where the
  tile's area nobody labelled is one more category ("unlabelled").

>>> from geolabel.score import cohen_kappa
>>> # copy 1: left half farmland, right half water; copy 2 calls a quarter of the water grassland
>>> round(cohen_kappa([[5000, 0, 0], [0, 3750, 0], [0, 1250, 0]]), 4)
0.7778
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from geolabel import vocabulary
from geolabel.errors import InputError
from geolabel.labels.store import StoreLike, Task, opened_store
from geolabel.score import UNLABELLED, cohen_kappa

if TYPE_CHECKING:
    from geolabel.labels.store import LabelStore

LOW_KAPPA = vocabulary.LOW_KAPPA
#: Statuses of a copy whose labels are finished: agreement is measured once both copies are.
FINISHED = ("submitted", "accepted")


def consensus_copies(tasks: Iterable[Task]) -> dict[str, dict[int, Task]]:
    """The copies of every consensus tile (a tile with a copy 2): tile -> copy -> task."""
    tiles: dict[str, dict[int, Task]] = {}
    for task in tasks:
        tiles.setdefault(task.tile_id, {})[task.copy] = task
    return {tile: copies for tile, copies in tiles.items() if 2 in copies}


def copy_labeler(store: LabelStore, task: Task, labeler: str | None = None) -> str | None:
    """Whose labels are ``task``'s work: its labeler's (``labeler`` when the task has none
    yet) on a consensus tile; None (everybody's) on any other tile."""
    if task.copy == 2 or any(t.copy == 2 for t in store.tasks(tile_ids=[task.tile_id])):
        return task.labeler or labeler
    return None


# -- one copy goes out --------------------------------------------------------------------


def other_copy_ids(store: LabelStore) -> set[str]:
    """The labels of the copy of each consensus tile that is left out of a whole-store check
    or export: copy 2's, unless copy 2 was accepted and copy 1 was not."""
    left_out: set[str] = set()
    for tile_id, copies in consensus_copies(store.tasks()).items():
        dropped = _dropped_copy(copies)
        kept = copies.get(3 - dropped.copy) if dropped else None
        if dropped is None or not dropped.labeler or (kept is not None and kept.labeler == dropped.labeler):
            continue
        left_out |= _labels_on_tile(store, dropped, tile_id)
    return left_out


def _dropped_copy(copies: dict[int, Task]) -> Task | None:
    first, second = copies.get(1), copies.get(2)
    if second is not None and second.status == "accepted" and (first is None or first.status != "accepted"):
        return first
    return second


def task_label_ids(store: LabelStore, task: Task) -> set[str]:
    """The labels that are ``task``'s work: of its team on its tile, and on a consensus tile
    only its labeler's (see :func:`copy_labeler`)."""
    labeler = copy_labeler(store, task)
    return _labels_on_tile(store, task, task.tile_id, labeler=labeler, team=task.team)


def _labels_on_tile(
    store: LabelStore, task: Task, tile_id: str, *, labeler: str | None = "", team: str | None = None
) -> set[str]:
    """The ids of the labels on the tile (by ``tile_id``, else by their representative
    point) of ``labeler`` (default: ``task``'s; None: anybody's) and ``team`` (None: any)."""
    import shapely

    who = task.labeler if labeler == "" else labeler
    arrays = store.read(bbox=task.bounds, labeler=who, team=team, fields=["label_id", "tile_id"])
    tiles = [str(t or "") for t in arrays.columns["tile_id"]]
    inside = shapely.covers(shapely.box(*task.bounds), shapely.point_on_surface(arrays.geoms))
    return {
        str(label_id)
        for label_id, tile, point_in in zip(arrays.columns["label_id"], tiles, inside.tolist())
        if tile == tile_id or (not tile and point_in)
    }


# -- agreement ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Agreement:
    """How far two copies agree: over one tile, or pooled over the tiles of one pair of
    labelers. ``confusion`` is in m² (rows: copy 2's classes, columns: copy 1's, with
    "unlabelled"); ``iou`` is per class present in either copy."""

    team: str
    labelers: tuple[str, str]
    tiles: tuple[str, ...]
    kappa: float
    iou: dict[str, float]
    confusion: dict[str, dict[str, float]]

    @property
    def mean_iou(self) -> float:
        return sum(self.iou.values()) / len(self.iou) if self.iou else 1.0

    def is_low(self, threshold: float = LOW_KAPPA) -> bool:
        return self.kappa < threshold

    def to_dict(self) -> dict[str, Any]:
        return {"team": self.team, "labelers": list(self.labelers), "tiles": list(self.tiles), "kappa": self.kappa,
                "mean_iou": self.mean_iou, "iou": self.iou, "confusion_m2": self.confusion}  # fmt: skip


def tile_agreement(store: LabelStore, first: Task, second: Task) -> Agreement:
    """The agreement of two copies of one tile (see the module docstring)."""
    import shapely

    from geolabel.crs import metric_crs_for, reproject_geometries, same_crs
    from geolabel.gold import labeler_polygons
    from geolabel.score import score_polygons

    sides = [labeler_polygons(store, task) for task in (second, first)]
    tile = np.array([shapely.box(*first.bounds)], dtype=object)
    metric = metric_crs_for(store.crs, first.bounds)
    if not same_crs(store.crs, metric):
        sides = [(reproject_geometries(g, store.crs, metric) if len(g) else g, c) for g, c in sides]
        tile = reproject_geometries(tile, store.crs, metric)
    score = score_polygons(sides[0], sides[1], store.schema)
    confusion = {row: dict(cols) for row, cols in score.confusion.items()}
    labelled = sum(sum(cols.values()) for cols in confusion.values())
    confusion[UNLABELLED][UNLABELLED] = max(float(shapely.area(tile[0])) - labelled, 0.0)
    return _agreement(first.team, (str(first.labeler), str(second.labeler)), (first.tile_id,), confusion)


def _agreement(
    team: str, labelers: tuple[str, str], tiles: tuple[str, ...], confusion: dict[str, dict[str, float]]
) -> Agreement:
    """Kappa and per-class IoU of an area confusion matrix."""
    names = list(confusion)
    m = np.array([[confusion[a].get(b, 0.0) for b in names] for a in names])
    iou = {}
    for k, name in enumerate(names):
        union = m[k, :].sum() + m[:, k].sum() - m[k, k]
        if name != UNLABELLED and union > 0:
            iou[name] = float(m[k, k] / union)
    return Agreement(team, labelers, tiles, cohen_kappa(m), iou, confusion)


def pooled(agreements: Sequence[Agreement]) -> Agreement:
    """One pair's agreement over all its tiles: their confusion matrices added up (each
    turned to the pair's labeler order), then kappa and IoU of the sum."""
    first = agreements[0]
    total: dict[str, dict[str, float]] = {}
    for a in agreements:
        flip = a.labelers != first.labelers
        for row, cols in a.confusion.items():
            for col, area in cols.items():
                r, c = (col, row) if flip else (row, col)
                total.setdefault(r, {}).setdefault(c, 0.0)
                total[r][c] += area
    names = sorted(total.keys() | {c for cols in total.values() for c in cols}, key=lambda n: (n == UNLABELLED, n))
    square = {r: {c: total.get(r, {}).get(c, 0.0) for c in names} for r in names}
    return _agreement(first.team, first.labelers, tuple(t for a in agreements for t in a.tiles), square)


@dataclass(frozen=True)
class AgreementReport:
    """Agreement of every consensus tile whose two copies are finished, and per pair of
    labelers (pooled over their tiles); tiles below ``threshold`` are low."""

    tiles: list[Agreement]
    pairs: list[Agreement]
    threshold: float

    @property
    def low(self) -> list[Agreement]:
        return [a for a in self.tiles if a.is_low(self.threshold)]

    def to_dict(self) -> dict[str, Any]:
        return {"threshold_kappa": self.threshold, "pairs": [p.to_dict() for p in self.pairs],
                "tiles": [{**t.to_dict(), "low": t.is_low(self.threshold)} for t in self.tiles]}  # fmt: skip


def check_threshold(threshold: float) -> float:
    if not -1 <= threshold <= 1:
        raise InputError(f"`threshold` is a kappa, from -1 to 1; got {threshold}", params=("threshold",))
    return threshold


def agreement(store: StoreLike, *, team: str | None = None, threshold: float = LOW_KAPPA) -> AgreementReport:
    """The agreement of the consensus tiles (of ``team``) whose copies are both submitted or
    accepted, per tile (in task order) and per pair of labelers (by team and names)."""
    check_threshold(threshold)
    with opened_store(store) as st:
        tiles = [tile_agreement(st, c[1], c[2]) for c in _finished_pairs(st, team)]
    groups: dict[tuple[str, tuple[str, ...]], list[Agreement]] = {}
    for a in tiles:
        groups.setdefault((a.team, tuple(sorted(a.labelers))), []).append(a)
    return AgreementReport(tiles, [pooled(groups[k]) for k in sorted(groups)], threshold)


def _finished_pairs(store: LabelStore, team: str | None) -> list[dict[int, Task]]:
    copies = consensus_copies(store.tasks(team=team))
    return [c for c in copies.values() if 1 in c and all(t.status in FINISHED and t.labeler for t in c.values())]


# -- the review queue ---------------------------------------------------------------------


@dataclass(frozen=True)
class QueueItem:
    """A submitted task waiting for review, with its tile's kappa when it is a consensus
    tile whose copies are both finished (else None)."""

    task: Task
    kappa: float | None
    low: bool

    def to_dict(self) -> dict[str, Any]:
        return {"tile_id": self.task.tile_id, "copy": self.task.copy, "team": self.task.team,
                "labeler": self.task.labeler, "submitted_at": self.task.submitted_at, "kappa": self.kappa,
                "low_agreement": self.low}  # fmt: skip


def review_queue(store: StoreLike, *, team: str | None = None, threshold: float = LOW_KAPPA) -> list[QueueItem]:
    """The submitted tasks (of ``team``) in the order to review them: those on consensus
    tiles with low agreement first (lowest kappa first), then the rest in submission order."""
    report = agreement(store, team=team, threshold=threshold)
    kappas = {a.tiles[0]: a.kappa for a in report.tiles}
    with opened_store(store) as st:
        waiting = st.tasks(team=team, status=["submitted"])
    items = [QueueItem(t, kappas.get(t.tile_id), t.tile_id in kappas and kappas[t.tile_id] < threshold)
             for t in waiting]  # fmt: skip
    return sorted(items, key=_queue_order)


def _queue_order(item: QueueItem) -> tuple[bool, float, str, int]:
    kappa = item.kappa if item.low and item.kappa is not None else 0.0
    return (not item.low, kappa, str(item.task.submitted_at or ""), item.task.task_id)

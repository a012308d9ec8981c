"""The checking center's workflow: tiles assigned to teams and labelers, submitted after the
checks pass, accepted or rejected by a reviewer, every decision recorded.

A task is one tile given to a team (any of its labelers may take it) or to one labeler;
a consensus tile is given twice (copy 2 to another labeler of the team). Its status goes
``assigned`` -> ``in_progress`` -> ``submitted`` -> ``accepted``, or ``rejected`` back to its
labeler with the reviewer's comment and the tile's findings, who submits it again.

Everything here uses the store's task primitives (:meth:`LabelStore.add_tasks`, ``tasks``,
``update_task``, ``add_review``, ``reviews``), so it works alike on both backends; on PostGIS
the database's row-level security decides who may do what, and the names of labeler and
reviewer default to the database role.

>>> parse_where("scene = 'village' and row in (0, 1)")
[('scene', '=', ['village']), ('row', 'in', [0, 1])]
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from geolabel import vocabulary
from geolabel.errors import InputError
from geolabel.gold import score_submitted
from geolabel.labels.store import StoreLike, Task, now_iso, opened_store

if TYPE_CHECKING:
    import geopandas as gpd

    from geolabel.labels.store import LabelStore
    from geolabel.qa.findings import Finding

# -- choosing tiles -----------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<op><=|>=|==|!=|<>|=|<|>)"
    r"|(?P<punct>[(),])|(?P<name>[A-Za-z_]\w*))"
)
_OPS = ("=", "==", "!=", "<>", "<", "<=", ">", ">=", "in")
Condition = tuple[str, str, list[Any]]


def parse_where(text: str) -> list[Condition]:
    """A tile filter as conditions joined by ``and``: ``field = 'value'`` (also ``!=``, ``<``,
    ``<=``, ``>``, ``>=`` with numbers) and ``field in ('a', 'b')``. Only this little language
    is understood (nothing is evaluated or sent to a database)."""
    tokens = _tokens(text)
    conditions: list[Condition] = []
    while True:
        name = _take(tokens, "name", text)
        op = _take(tokens, "op", text) if tokens and tokens[0][0] == "op" else _take(tokens, "name", text).lower()
        if op not in _OPS:
            raise _bad_where(text, f"unknown operator {op!r}")
        if op == "in":
            values = _value_list(tokens, text)
        else:
            values = [_value(tokens, text)]
        conditions.append((name, "=" if op == "==" else "!=" if op == "<>" else op, values))
        if not tokens:
            return conditions
        if _take(tokens, "name", text).lower() != "and":
            raise _bad_where(text, "conditions are joined by `and`")


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(text.rstrip()):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise _bad_where(text, f"cannot read {text[pos:].strip()[:20]!r}")
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    return tokens


def _take(tokens: list[tuple[str, str]], kind: str, text: str) -> str:
    if not tokens or tokens[0][0] != kind:
        got = repr(tokens[0][1]) if tokens else "the end"
        raise _bad_where(text, f"expected a {'field name' if kind == 'name' else kind}, got {got}")
    return tokens.pop(0)[1]


def _value(tokens: list[tuple[str, str]], text: str) -> Any:
    if tokens and tokens[0][0] == "str":
        return tokens.pop(0)[1][1:-1].replace("''", "'")
    number = _take(tokens, "num", text)
    return float(number) if "." in number else int(number)


def _value_list(tokens: list[tuple[str, str]], text: str) -> list[Any]:
    if _take(tokens, "punct", text) != "(":
        raise _bad_where(text, "`in` takes a list in parentheses")
    values = [_value(tokens, text)]
    while (sep := _take(tokens, "punct", text)) == ",":
        values.append(_value(tokens, text))
    if sep != ")":
        raise _bad_where(text, "the list after `in` ends with )")
    return values


def _bad_where(text: str, problem: str) -> InputError:
    return InputError(f"`where` {text!r}: {problem}; write e.g. scene='village' and row in (0, 1)", params=("where",))


def where_mask(frame: Any, text: str) -> Any:
    """The rows of a tile-index frame matching :func:`parse_where`'s filter."""
    import numpy as np
    import pandas as pd

    fields = [c for c in frame.columns if c != frame.geometry.name]
    mask = np.ones(len(frame), dtype=bool)
    for name, op, values in parse_where(text):
        if name not in fields:
            raise _bad_where(text, f"the tile index has no field {name!r} (fields: {', '.join(fields)})")
        numeric = all(isinstance(v, (int, float)) for v in values)
        column = pd.to_numeric(frame[name], errors="coerce") if numeric else frame[name].astype(str)
        if op in ("<", "<=", ">", ">=") and not numeric:
            raise _bad_where(text, f"{op} compares numbers")
        mask &= _compare(column, op, values).to_numpy(dtype=bool)
    return mask


def _compare(column: Any, op: str, values: list[Any]) -> Any:
    if op in ("=", "in"):
        return column.isin(values)
    if op == "!=":
        return ~column.isin(values)
    value = values[0]
    return {"<": column < value, "<=": column <= value, ">": column > value, ">=": column >= value}[op]


def choose_tiles(
    tiles: gpd.GeoDataFrame,
    taken: set[str],
    *,
    where: str | None = None,
    aoi: Any = None,
    count: int | None = None,
) -> gpd.GeoDataFrame:
    """The tiles of an index not in ``taken``, in index order, matching the ``where`` filter,
    intersecting the ``aoi`` (a vector file) and at most ``count`` of them."""
    import numpy as np
    import shapely

    mask = ~tiles["tile_id"].isin(taken).to_numpy()
    if where:
        mask &= where_mask(tiles, where)
    if aoi is not None:
        from geolabel.labels.delivery import read_region

        region = read_region(aoi, tiles.crs)
        geoms = tiles.geometry.values.to_numpy()
        mask &= np.asarray(shapely.intersects(geoms, region) & ~shapely.touches(geoms, region))
    chosen = tiles[mask]
    return chosen.iloc[:count] if count is not None else chosen


# -- assigning ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AssignResult:
    """What one assignment gave out."""

    team: str
    labeler: str | None
    tiles: int
    consensus: int

    def line(self) -> str:
        who = f" ({self.labeler})" if self.labeler else ""
        copies = f"{self.consensus} consensus cop{'y' if self.consensus == 1 else 'ies'}"
        return f"assigned {self.tiles} tiles to team {self.team}{who}: {copies}"


def assign_tiles(
    store: StoreLike,
    tiles: str | os.PathLike[str],
    *,
    team: str,
    labeler: str | None = None,
    where: str | None = None,
    aoi: Any = None,
    count: int | None = None,
    overlap_fraction: float = vocabulary.OVERLAP_FRACTION,
) -> AssignResult:
    """Give the unassigned tiles of the tile index ``tiles`` that match ``where``/``aoi``
    (at most ``count``, in index order) to ``team`` (or one ``labeler`` of it).

    ``overlap_fraction`` of them are consensus tiles: also given as copy 2 to the team, for
    a labeler other than the one who takes copy 1. No tile is given out twice."""
    from geolabel.tileindex import read_tiles

    team = _name(team, "team")
    _check_assign_limits(count, overlap_fraction)
    frame = read_tiles(tiles)
    with opened_store(store) as st:
        taken = {t.tile_id for t in st.tasks() if t.copy == 1}
        chosen = choose_tiles(frame, taken, where=where, aoi=aoi, count=count)
        if not len(chosen):
            raise InputError(
                f"{os.fspath(tiles)}: no unassigned tile matches ({len(taken & set(frame['tile_id']))} of "
                f"{len(frame)} tiles are assigned already)"
            )
        rows = _task_rows(st, chosen, team=team, labeler=labeler, fraction=overlap_fraction)
        st.add_tasks(rows)
    return AssignResult(team, labeler, len(chosen), sum(1 for r in rows if r["copy"] == 2))


def _check_assign_limits(count: int | None, overlap_fraction: float) -> None:
    if count is not None and count < 1:
        raise InputError(f"`count` must be 1 or more; got {count}", params=("count",))
    if not 0 <= overlap_fraction <= 1:
        raise InputError(
            f"`overlap_fraction` must be from 0 to 1; got {overlap_fraction}", params=("overlap_fraction",)
        )


def _name(value: str | None, what: str) -> str:
    text = (value or "").strip()
    if not text:
        raise InputError(f"a `{what}` is needed", params=(what,))
    return text


def _task_rows(
    store: LabelStore, chosen: gpd.GeoDataFrame, *, team: str, labeler: str | None, fraction: float
) -> list[dict[str, Any]]:
    """Task rows for the chosen tiles (bounds in the store's CRS), consensus copies last."""
    import shapely

    from geolabel.crs import reproject_geometries, same_crs

    geoms = chosen.geometry.values.to_numpy()
    if chosen.crs is not None and not same_crs(chosen.crs, store.crs):
        geoms = reproject_geometries(geoms, chosen.crs, store.crs, densify="auto")
    bounds = shapely.bounds(geoms).tolist()
    now = now_iso()
    base = {"team": team, "status": "assigned", "assigned_at": now, "task_id": None}
    rows = [
        {**base, "tile_id": tile_id, "scene": scene, "labeler": labeler, "copy": 1,
         "minx": b[0], "miny": b[1], "maxx": b[2], "maxy": b[3]}
        for tile_id, scene, b in zip(chosen["tile_id"], chosen["scene"], bounds)
    ]  # fmt: skip
    n = len(rows)
    k = round(fraction * n)
    picks = sorted({int(i * n / k) for i in range(k)}) if k else []
    return rows + [{**rows[i], "copy": 2, "labeler": None} for i in picks]


# -- working on a tile --------------------------------------------------------------------


def who(store: LabelStore, name: str | None, what: str) -> str:
    """The labeler or reviewer acting: ``name``, else the database role (PostGIS)."""
    text = (name or "").strip() or store.member_name()
    if not text:
        raise InputError(
            f"{store.uri}: a GeoPackage store does not know who you are; give your name as `{what}`", params=(what,)
        )
    return text


def labeler_task(store: LabelStore, tile_id: str, labeler: str) -> Task:
    """The task of ``tile_id`` that ``labeler`` works on: theirs, else one open to the team
    (never both copies of a consensus tile)."""
    tasks = store.tasks(tile_ids=[tile_id])
    if not tasks:
        raise InputError(f"{store.uri}: no task for tile {tile_id} (unknown tile, or not your team's)")
    own = [t for t in tasks if t.labeler == labeler]
    if own:
        return own[0]
    open_ = [t for t in tasks if t.labeler is None]
    if open_:
        return open_[0]
    holders = ", ".join(sorted({str(t.labeler) for t in tasks}))
    raise InputError(f"{store.uri}: tile {tile_id} is assigned to {holders}, not {labeler}")


def start_tile(store: StoreLike, tile_id: str, *, labeler: str | None = None) -> Task:
    """Mark ``labeler``'s task of ``tile_id`` in progress (taking it if it is the team's)."""
    with opened_store(store) as st:
        name = who(st, labeler, "labeler")
        task = labeler_task(st, tile_id, name)
        if task.status != "assigned":
            raise InputError(f"{st.uri}: tile {tile_id} is {task.status}, not assigned; nothing to start")
        st.update_task(
            task.task_id, expected_status="assigned", status="in_progress", labeler=name, started_at=now_iso()
        )
        return _reread(st, task)


def tile_findings(store: LabelStore, task: Task, *, labeler: str | None = None) -> list[Finding]:
    """What ``geolabel check`` finds among the labels of a task's tile, where it lies in the
    tile (labels reaching out of it would enclose gaps that are only the neighbours' labels
    missing from this read). On a consensus tile only the labels of the task's labeler
    (``labeler`` when it has none yet) are checked: the other copy's are not its work."""
    import shapely

    from geolabel.consensus import copy_labeler
    from geolabel.crs import reproject_geometries, same_crs
    from geolabel.labels.delivery import store_delivery
    from geolabel.qa import check_labels

    own = copy_labeler(store, task, labeler)
    result = check_labels(store_delivery(store, bbox=task.bounds, labeler=own))
    tile = shapely.box(*task.bounds)
    if result.crs is not None and not same_crs(result.crs, store.crs):
        tile = reproject_geometries([tile], store.crs, result.crs, densify="auto")[0]
    shapely.prepare(tile)
    return [f for f in result.findings if f.geometry is None or f.geometry.is_empty or tile.intersects(f.geometry)]


@dataclass(frozen=True)
class SubmitResult:
    """A submission: the task, and the errors that refused it (none: it was submitted)."""

    task: Task
    errors: list[Finding]

    @property
    def submitted(self) -> bool:
        return not self.errors


def submit_tile(store: StoreLike, tile_id: str, *, labeler: str | None = None) -> SubmitResult:
    """Submit ``labeler``'s work on ``tile_id`` for review: the checks run on the tile's
    labels first, and while they find errors nothing is submitted (they are returned)."""
    with opened_store(store) as st:
        name = who(st, labeler, "labeler")
        task = labeler_task(st, tile_id, name)
        if task.status not in vocabulary.OPEN_TASK_STATUSES:
            raise InputError(f"{st.uri}: tile {tile_id} is {task.status} already; nothing to submit")
        errors = [f for f in tile_findings(st, task, labeler=name) if f.severity == "error"]
        if errors:
            return SubmitResult(task, errors)
        now = now_iso()
        with st.transaction():
            st.update_task(task.task_id, expected_status=task.status, status="submitted", labeler=name,
                           submitted_at=now)  # fmt: skip
            st.add_review(_review_row(task, "submitted", labeler=name, at=now))
            mark_labels(st, _reread(st, task), "submitted")
            st.set_tile_tag_status(task.tile_id, name, "submitted")
        done = _reread(st, task)
        score_submitted(st, done)  # a gold tile, where the reference can be read (see geolabel.gold)
        return SubmitResult(done, [])


def _reread(store: LabelStore, task: Task) -> Task:
    return next(t for t in store.tasks(tile_ids=[task.tile_id]) if t.task_id == task.task_id)


def _review_row(task: Task, decision: str, *, at: str, **fields: Any) -> dict[str, Any]:
    row = {"review_id": None, "task_id": task.task_id, "tile_id": task.tile_id, "team": task.team,
           "labeler": task.labeler, "reviewer": None, "decision": decision, "comment": None, "at": at,
           "findings": None}  # fmt: skip
    row.update(fields)
    return row


# -- review -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewResult:
    """One decision made: the task as it is now and how many findings went back with it."""

    task: Task
    decision: str
    findings: int


def review_tiles(
    store: StoreLike,
    tile_ids: Sequence[str],
    *,
    accept: bool,
    comment: str | None = None,
    reviewer: str | None = None,
) -> list[ReviewResult]:
    """Accept or reject the submitted work on ``tile_ids`` (every submitted copy), all in one
    transaction. A rejection needs a ``comment``; it returns the tile to its labeler with the
    comment and the tile's current findings (recorded as JSON with the decision)."""
    comment = (comment or "").strip() or None
    if not accept and comment is None:
        raise InputError("a rejection needs a `comment` saying what to fix", params=("comment",))
    if not tile_ids:
        raise InputError("no tiles to review")
    with opened_store(store) as st:
        name = who(st, reviewer, "reviewer")
        tasks = _submitted_tasks(st, tile_ids)
        decision = "accepted" if accept else "rejected"
        results = []
        with st.transaction():
            for task in tasks:
                results.append(_decide(st, task, decision, name, comment))
        return results


def _submitted_tasks(store: LabelStore, tile_ids: Sequence[str]) -> list[Task]:
    """The submitted tasks of every tile; a tile with none is refused (nothing is reviewed)."""
    tasks = store.tasks(tile_ids=tile_ids)
    chosen = []
    for tile_id in dict.fromkeys(tile_ids):
        found = [t for t in tasks if t.tile_id == tile_id]
        if not found:
            raise InputError(f"{store.uri}: no task for tile {tile_id} (unknown tile, or not your team's)")
        submitted = [t for t in found if t.status == "submitted"]
        if not submitted:
            said = ", ".join(sorted({t.status for t in found}))
            raise InputError(f"{store.uri}: tile {tile_id} is {said}, not submitted; only submitted work is reviewed")
        chosen += submitted
    return chosen


def _decide(store: LabelStore, task: Task, decision: str, reviewer: str, comment: str | None) -> ReviewResult:
    from geolabel.qa.findings import finding_dicts

    now = now_iso()
    findings = tile_findings(store, task) if decision == "rejected" else []
    fields: dict[str, Any] = {"status": decision, "reviewer": reviewer, "reviewed_at": now}
    if comment is not None:
        fields["comment"] = comment
    store.update_task(task.task_id, expected_status="submitted", **fields)
    found = json.dumps(finding_dicts(findings), ensure_ascii=False) if decision == "rejected" else None
    store.add_review(_review_row(task, decision, at=now, reviewer=reviewer, comment=comment, findings=found))
    mark_labels(store, task, decision)
    if task.labeler:
        store.set_tile_tag_status(task.tile_id, task.labeler, decision)  # the tile's tags go with its labels
    return ReviewResult(_reread(store, task), decision, len(findings))


def mark_labels(store: LabelStore, task: Task, status: str) -> int:
    """Give the labels that are ``task``'s work the task's new status (submitted, accepted,
    rejected), so that exports of accepted labels take exactly the accepted tiles."""
    from geolabel.consensus import task_label_ids

    ids = sorted(task_label_ids(store, task))
    for label_id in ids:
        store.update(label_id, status=status)
    return len(ids)


def submitted_tiles(store: StoreLike, *, team: str) -> list[str]:
    """Tiles of ``team`` waiting for review, in task order: a whole delivery."""
    with opened_store(store) as st:
        return list(dict.fromkeys(t.tile_id for t in st.tasks(team=team, status=["submitted"])))


# -- progress -----------------------------------------------------------------------------

#: Label of tasks given to a whole team (any labeler may take them).
OPEN = "(team)"


@dataclass(frozen=True)
class Progress:
    """Tasks of one labeler (or of the team as a whole: :data:`OPEN`) by status, with the
    pace so far: tiles submitted per hour and hours until the rest is submitted too;
    ``assisted``: the labeler's labels that are accepted suggestions
    (:func:`geolabel.suggest.review.assisted_counts`)."""

    team: str
    labeler: str
    counts: dict[str, int]
    tiles_per_hour: float | None
    hours_left: float | None
    assisted: int = 0

    @property
    def remaining(self) -> int:
        return sum(self.counts[s] for s in vocabulary.OPEN_TASK_STATUSES)

    def to_dict(self) -> dict[str, Any]:
        return {"team": self.team, "labeler": self.labeler, **self.counts, "tiles_per_hour": self.tiles_per_hour,
                "hours_left": self.hours_left, "assisted": self.assisted}  # fmt: skip


def task_progress(store: StoreLike) -> list[Progress]:
    """Progress per team and labeler, sorted by team and labeler (the team's open tasks first)."""
    from dataclasses import replace

    from geolabel.suggest.review import assisted_counts

    with opened_store(store) as st:
        tasks = st.tasks()
        assisted = assisted_counts(st)
    groups: dict[tuple[str, str], list[Task]] = {}
    for task in tasks:
        groups.setdefault((task.team, task.labeler or OPEN), []).append(task)
    return [
        replace(_progress(team, labeler, group), assisted=assisted.get(labeler, 0) if labeler != OPEN else 0)
        for (team, labeler), group in sorted(groups.items(), key=_order)
    ]


def _order(item: tuple[tuple[str, str], list[Task]]) -> tuple[str, bool, str]:
    (team, labeler), _ = item
    return (team, labeler != OPEN, labeler)


def _progress(team: str, labeler: str, tasks: list[Task]) -> Progress:
    counts: dict[str, int] = {s: sum(1 for t in tasks if t.status == s) for s in vocabulary.TASK_STATUSES}
    done = [_time(t.submitted_at) for t in tasks if t.submitted_at]
    starts = [_time(t.started_at or t.assigned_at) for t in tasks if t.started_at or t.assigned_at]
    rate = None
    if done and starts:
        hours = (max(done) - min(starts)).total_seconds() / 3600
        rate = len(done) / hours if hours > 0 else None
    remaining = sum(counts[s] for s in vocabulary.OPEN_TASK_STATUSES)
    left = remaining / rate if rate else (0.0 if remaining == 0 else None)
    return Progress(team, labeler, counts, rate, left)


def _time(text: str | None) -> datetime:
    return datetime.fromisoformat(str(text).replace("Z", "+00:00"))

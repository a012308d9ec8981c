"""Reviewing suggestions in a label store: list the pending ones, accept, reject, count.

A suggestion arrives in the store as ``source="suggested"``, ``status="draft"``, version 1
(:func:`geolabel.suggest.write_suggestions`). How pending and accepted are told apart:

- **pending**: ``source="suggested"`` and version 1, i.e. nobody changed it since the engine
  wrote it. The labeler is not the sign: a PostGIS store names the member who ran
  ``suggest`` as its labeler on insert, a GeoPackage store leaves it empty.
- **accepted**: ``source="suggested"`` and a later version: accepted in the dock
  (:func:`accept_suggestions` names the labeler, status draft), or edited by a labeler,
  which accepts it too. The source stays ``suggested``, so history and
  :func:`assisted_counts` show the label was assisted.
- **rejected**: deleted (:func:`reject_suggestions`); the store's history keeps it.

All of it goes through the :class:`~geolabel.labels.store.LabelStore` API, so both
backends behave the same.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from geolabel.suggest.output import SOURCE, STATUS

if TYPE_CHECKING:
    from geolabel.labels.store import StoreLike

#: The version a label has as first written: a suggestion still pending review.
PENDING_VERSION = 1
#: The key under which accepted suggestions without a labeler are counted.
NO_LABELER = "(none)"


def pending_suggestions(store: StoreLike, bbox: tuple[float, float, float, float] | None = None) -> Any:
    """The pending suggestions (GeoDataFrame of the store's label fields) touching ``bbox``
    (store CRS; None: all), biggest first."""
    from geolabel.labels.store import opened_store

    with opened_store(store) as st:
        frame = st.query(bbox=bbox)
    pending = frame[(frame["source"] == SOURCE) & (frame["version"].astype("int64") == PENDING_VERSION)]
    return pending.iloc[(-pending.geometry.area).argsort(kind="stable")]


def accept_suggestions(store: StoreLike, label_ids: Iterable[str], *, labeler: str | None) -> int:
    """Make the pending suggestions ``label_ids`` the labeler's labels (status draft, source
    kept ``suggested``), in one transaction; returns how many were accepted (ids that are
    not pending suggestions are left alone)."""
    from geolabel.labels.store import opened_store

    with opened_store(store) as st:
        ids = _pending_ids(st, label_ids)
        with st.transaction():
            for label_id in ids:
                st.update(label_id, labeler=labeler or None, status=STATUS)
    return len(ids)


def reject_suggestions(store: StoreLike, label_ids: Iterable[str]) -> int:
    """Delete the pending suggestions ``label_ids`` (the history keeps them); returns how many."""
    from geolabel.labels.store import opened_store

    with opened_store(store) as st:
        ids = _pending_ids(st, label_ids)
        with st.transaction():
            return st.delete(ids) if ids else 0


def assisted_counts(store: StoreLike) -> dict[str, int]:
    """Accepted suggestions per labeler (:data:`NO_LABELER` for labels without one)."""
    from geolabel.labels.store import opened_store

    with opened_store(store) as st:
        arrays = st.read(fields=("labeler", "source", "version"))
    columns = arrays.columns
    rows = zip(columns["labeler"], columns["source"], columns["version"])
    return dict(Counter(lab or NO_LABELER for lab, src, ver in rows if src == SOURCE and _later(ver)))


def _pending_ids(st: Any, label_ids: Iterable[str]) -> list[str]:
    wanted = [str(i) for i in label_ids]
    if not wanted:
        return []
    arrays = st.read(label_ids=wanted, fields=("label_id", "source", "version"))
    columns = arrays.columns
    rows = zip(columns["label_id"], columns["source"], columns["version"])
    return [str(i) for i, src, ver in rows if src == SOURCE and not _later(ver)]


def _later(version: Any) -> bool:
    return version is not None and int(version) > PENDING_VERSION

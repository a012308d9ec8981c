"""A label store's change history: reading it, and bringing an old version of a label back.

Both backends record every insert, update and delete in ``geolabel_history`` (triggers in
the database, whoever makes the change), with the label as it was before an update or a
delete. :func:`label_history` reads it; :func:`restore_label` makes an old version the
label's newest one (a new version: nothing in the history is rewritten).

>>> import tempfile, shapely
>>> from geolabel.labels.store import create_store
>>> store = create_store(f"{tempfile.mkdtemp()}/labels.gpkg", crs="EPSG:32649")
>>> [label] = store.add_geometries([shapely.box(0, 0, 10, 10)], class_codes=[2], labeler="li")
>>> store.update(label, class_code=1, geometry=shapely.box(0, 0, 5, 5))
2
>>> restore_label(store, label, 1)
3
>>> row = store.read(label_ids=[label])
>>> row.columns["class_name"], row.geoms[0].area, [e.action for e in label_history(store, label_id=label)]
(['farmland'], 100.0, ['insert', 'update', 'update'])
>>> store.close()
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from geolabel.errors import InputError
from geolabel.labels.store import LABEL_FIELDS, HistoryEntry, LabelStore, StoreLike, now_iso, opened_store

#: The fields a restore gives back (the rest is the store's bookkeeping: id, times, version).
RESTORED_FIELDS = ("class_code", "labeler", "team", "status", "source", "tile_id", "comment")


def parse_since(value: str | datetime) -> str:
    """An ISO date or time as the stores compare it: UTC text (a time without a zone is UTC).

    >>> parse_since("2024-05-01"), parse_since("2024-05-01T08:30+08:00")
    ('2024-05-01T00:00:00.000Z', '2024-05-01T00:30:00.000Z')
    """
    try:
        when = value if isinstance(value, datetime) else datetime.fromisoformat(value.strip())
    except ValueError:
        raise InputError(
            f"`since`: {value!r} is not an ISO date or time (e.g. 2024-05-01 or 2024-05-01T08:00+08:00)",
            params=("since",),
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def label_history(
    store: StoreLike,
    *,
    label_id: str | None = None,
    labeler: str | None = None,
    since: str | datetime | None = None,
) -> list[HistoryEntry]:
    """The recorded changes matching every given filter, oldest first; ``since`` is an ISO
    date or time (UTC unless it names a zone) or a datetime."""
    when = parse_since(since) if since is not None else None
    with opened_store(store) as st:
        return st.history(label_id=label_id, labeler=labeler, since=when)


def restore_label(store: StoreLike, label_id: str, version: int) -> int:
    """Bring back ``version`` of label ``label_id`` (geometry and fields) as its newest
    version, and return that version. A label at ``version`` already is left as it is
    (``version`` is returned); a deleted label comes back with its id and the version after
    its last one. One transaction; an unknown label or version raises InputError."""
    with opened_store(store) as st, st.transaction():
        current = st.read(label_ids=[label_id])
        entries = st.history(label_id=label_id)
        if not len(current) and not entries:
            raise InputError(f"{st.uri}: no label with id {label_id}, and none in the history")
        now = int(current.columns["version"][0]) if len(current) else None
        if now == version:
            return version
        geom, fields = _recorded_version(st, label_id, version, entries, now)
        if now is not None:
            restored = {k: fields.get(k) for k in RESTORED_FIELDS}
            if restored["class_code"] is None:
                del restored["class_code"]  # a label that had no class keeps its present one
            return st.update(label_id, expected_version=now, geometry=geom, **restored)
        return _reinsert(st, label_id, geom, fields, _last_version(entries) + 1)


def _recorded_version(
    st: LabelStore, label_id: str, version: int, entries: list[HistoryEntry], now: int | None
) -> tuple[Any, dict[str, Any]]:
    """Geometry and fields of ``version`` as the history kept them (the latest record of it)."""
    found = [e for e in entries if e.old_version == version and e.old_geom is not None]
    if not found:
        known = sorted({e.old_version for e in entries if e.old_version is not None} | ({now} if now else set()))
        raise InputError(
            f"{st.uri}: label {label_id} has no recorded version {version}; "
            f"recorded versions: {', '.join(map(str, known)) or 'none'}"
        )
    entry = found[-1]
    return entry.old_geom, dict(entry.old_fields or {})


def _last_version(entries: list[HistoryEntry]) -> int:
    return max(v for e in entries for v in (e.old_version, e.new_version) if v is not None)


def _reinsert(st: LabelStore, label_id: str, geom: Any, fields: dict[str, Any], version: int) -> int:
    """Insert a deleted label again, as it was but for its version and modification time."""
    import numpy as np

    row = {name: fields.get(name) for name in LABEL_FIELDS}
    row.update(label_id=label_id, version=version, modified=now_iso(), created=fields.get("created") or now_iso())
    row["status"] = row["status"] or "draft"
    row["source"] = row["source"] or "manual"
    st.insert_rows(np.array([geom], dtype=object), [row])
    return version

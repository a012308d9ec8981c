"""Deliveries from offline sites: a team's submitted work packaged as a label store file.

A site that cannot reach the central database runs :func:`deliver`: the team's submitted
and accepted tiles, their tasks and the labels in them go into a new GeoPackage label store
(``check``, ``stats`` and QGIS open it like any other), with one row of provenance in the
table ``geolabel_delivery``: a delivery id, the site, the team, its labelers, the time, the
tiles, the label count, the geolabel version and a SHA-256 checksum of the labels
(:func:`label_checksum`). :func:`read_delivery` reads a delivery back and refuses one whose
labels no longer match their checksum (edited after it was made);
:func:`geolabel.merge.merge_deliveries` merges deliveries into the central store.

A label belongs to a delivery when a point inside it (``point_on_surface``) lies in one of
the delivered tiles and its team is the delivering team or none: labels of another team on
the same site store are that team's to deliver.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geolabel.errors import InputError
from geolabel.labels.store import LABEL_FIELDS, LabelArrays, StoreLike, Task, now_iso, opened_store

if TYPE_CHECKING:
    import pyproj

    from geolabel.labels.schema import ClassSchema
    from geolabel.labels.store import LabelStore

DELIVERY_TABLE = "geolabel_delivery"
#: Columns of ``geolabel_delivery`` (lists are JSON text), in table order.
DELIVERY_FIELDS = ("delivery_id", "site", "team", "labelers", "created", "tile_ids", "labels", "checksum",
                   "geolabel_version")  # fmt: skip
#: Task statuses whose tiles a delivery carries.
DELIVERED_STATUSES = ("submitted", "accepted")
_DELIVERY_SQL = f"""CREATE TABLE {DELIVERY_TABLE} (delivery_id TEXT PRIMARY KEY NOT NULL, site TEXT NOT NULL,
  team TEXT NOT NULL, labelers TEXT NOT NULL, created DATETIME NOT NULL, tile_ids TEXT NOT NULL,
  labels INTEGER NOT NULL, checksum TEXT NOT NULL, geolabel_version TEXT NOT NULL)"""


class TamperedDeliveryError(InputError):
    """A delivery's labels do not match the checksum it was made with."""


@dataclass(frozen=True)
class SiteDelivery:
    """A delivery as read (checksum verified): provenance, tasks and labels in ``crs``."""

    path: str
    delivery_id: str
    site: str
    team: str
    labelers: list[str]
    created: str
    tile_ids: list[str]
    checksum: str
    geolabel_version: str
    crs: pyproj.CRS
    tasks: list[Task]
    labels: LabelArrays

    def line(self) -> str:
        return (
            f"delivery {self.delivery_id} ({self.path}): site {self.site}, team {self.team}, "
            f"{len(self.tile_ids)} tiles, {len(self.labels)} labels"
        )


def label_checksum(labels: LabelArrays) -> str:
    """SHA-256 (hex) of labels in a canonical form: by label id, each label's LABEL_FIELDS
    as JSON and its geometry as little-endian 2D WKB, every part length-prefixed."""
    import shapely

    ids = [str(i) for i in labels.columns["label_id"]]
    wkbs = shapely.to_wkb(labels.geoms, byte_order=1, output_dimension=2)
    digest = hashlib.sha256()
    for i in sorted(range(len(ids)), key=ids.__getitem__):
        fields = [labels.columns[f][i] for f in LABEL_FIELDS]
        for part in (json.dumps(fields, ensure_ascii=False, separators=(",", ":"), default=str).encode(), wkbs[i]):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
    return digest.hexdigest()


@dataclass(frozen=True)
class DeliverResult:
    """What :func:`deliver` wrote."""

    path: str
    delivery_id: str
    site: str
    team: str
    tiles: int
    labels: int
    checksum: str

    def line(self) -> str:
        return (
            f"delivered {self.labels} labels on {self.tiles} tiles of team {self.team} (site {self.site}) "
            f"to {self.path}: delivery {self.delivery_id}, sha256 {self.checksum[:12]}"
        )


def deliver(
    store: StoreLike, *, team: str, out: str | os.PathLike[str], site: str | None = None, overwrite: bool = False
) -> DeliverResult:
    """Package ``team``'s submitted and accepted tiles of ``store`` with their tasks and
    labels into a new label store file ``out`` (``.gpkg``), written under a temporary name
    and renamed when complete. ``site`` defaults to this computer's name."""
    site = (site or socket.gethostname()).strip()
    if not site:
        raise InputError("give the site's name (`site`)", params=("site",))
    with opened_store(store) as st:
        tasks = _delivered_tasks(st, team)
        labels = _tile_labels(st, tasks, team)
        crs, schema = st.crs, st.schema
    target = _check_output(out, overwrite=overwrite)
    delivery_id = str(uuid.uuid4())
    checksum = _write(target, crs, schema, tasks, labels, _provenance(delivery_id, site, team, tasks, labels))
    return DeliverResult(str(target), delivery_id, site, team, len({t.tile_id for t in tasks}), len(labels), checksum)


def _delivered_tasks(store: LabelStore, team: str) -> list[Task]:
    tasks = store.tasks(team=team, status=DELIVERED_STATUSES)
    if not tasks:
        raise InputError(f"{store.uri}: team {team} has no submitted or accepted tiles to deliver")
    return tasks


def _tile_labels(store: LabelStore, tasks: Sequence[Task], team: str) -> LabelArrays:
    """The labels of the delivered tiles: a point inside each lies in one of them, and the
    label's team is ``team`` or none."""
    import numpy as np
    import shapely

    boxes = shapely.box(*np.array([t.bounds for t in tasks], dtype=float).T)
    bounds = shapely.total_bounds(boxes)
    labels = store.read(bbox=(float(bounds[0]), float(bounds[1]), float(bounds[2]), float(bounds[3])))
    inside, _ = shapely.STRtree(boxes).query(shapely.point_on_surface(labels.geoms), predicate="intersects")
    mine = np.array([labels.columns["team"][i] in (team, None) for i in range(len(labels))], dtype=bool)
    keep = np.zeros(len(labels), dtype=bool)
    keep[np.unique(inside)] = True
    return labels.take(keep & mine)


def _provenance(delivery_id: str, site: str, team: str, tasks: Sequence[Task], labels: LabelArrays) -> dict[str, Any]:
    from geolabel import __version__

    labelers = {t.labeler for t in tasks} | set(labels.columns["labeler"])
    return {
        "delivery_id": delivery_id,
        "site": site,
        "team": team,
        "labelers": json.dumps(sorted(n for n in labelers if n), ensure_ascii=False),
        "created": now_iso(),
        "tile_ids": json.dumps(list(dict.fromkeys(t.tile_id for t in tasks)), ensure_ascii=False),
        "labels": len(labels),
        "checksum": "",
        "geolabel_version": __version__,
    }


def _check_output(out: str | os.PathLike[str], *, overwrite: bool) -> Path:
    from geolabel.files import check_output_folder
    from geolabel.labels.gpkg_file import check_local_folder, check_replaceable_store

    target = Path(out)
    if target.suffix.lower() != ".gpkg":
        raise InputError(f"{target}: a delivery is a GeoPackage; give `out` the .gpkg extension", params=("out",))
    check_replaceable_store(target, overwrite=overwrite)
    check_output_folder(target)
    check_local_folder(target)
    return target


def _write(
    target: Path,
    crs: pyproj.CRS,
    schema: ClassSchema,
    tasks: Sequence[Task],
    labels: LabelArrays,
    provenance: dict[str, Any],
) -> str:
    """Build the delivery under a temporary name: a label store with the tasks and labels,
    then the provenance row with the checksum of the labels as read back from the file."""
    from geolabel.files import atomic_file
    from geolabel.labels.store import create_store

    rows = [{f: labels.columns[f][i] for f in LABEL_FIELDS} for i in range(len(labels))]
    with atomic_file(target, ".gpkg") as tmp:
        with create_store(tmp, crs=crs, schema=schema) as store:
            store.load_copy(labels.geoms, rows, [], [], tasks=tasks)
            checksum = label_checksum(store.read())
        _write_provenance(Path(tmp), {**provenance, "checksum": checksum})
    return checksum


def _write_provenance(path: Path, row: dict[str, Any]) -> None:
    from geolabel.labels.gpkg_file import connect, register_attributes_table

    conn = connect(path, 10.0)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(_DELIVERY_SQL)
        register_attributes_table(conn, DELIVERY_TABLE, "provenance of this delivery from an offline site")
        marks = ", ".join("?" * len(DELIVERY_FIELDS))
        conn.execute(f"INSERT INTO {DELIVERY_TABLE} VALUES ({marks})", [row[f] for f in DELIVERY_FIELDS])
        conn.execute("COMMIT")
    finally:
        conn.close()


def read_delivery(path: str | os.PathLike[str]) -> SiteDelivery:
    """Read a delivery made by :func:`deliver`; raises :class:`TamperedDeliveryError` when
    its labels no longer match their checksum."""
    from geolabel.labels.gpkg_store import GeoPackageStore

    p = Path(path)
    with GeoPackageStore(p) as store:
        row = _read_provenance(p)
        labels, tasks, crs = store.read(), store.tasks(), store.crs
    found = label_checksum(labels)
    if found != row["checksum"] or len(labels) != row["labels"]:
        raise TamperedDeliveryError(
            f"{p}: checksum mismatch: the labels were changed after delivery {row['delivery_id']} was made; "
            "ask the site for a new delivery"
        )
    return SiteDelivery(
        str(p), row["delivery_id"], row["site"], row["team"], json.loads(row["labelers"]), row["created"],
        json.loads(row["tile_ids"]), row["checksum"], row["geolabel_version"], crs, tasks, labels,
    )  # fmt: skip


def _read_provenance(p: Path) -> dict[str, Any]:
    """The one row of ``geolabel_delivery`` (read on a connection of its own)."""
    from geolabel.labels.gpkg_file import connect, table_names

    conn = connect(p, 10.0)
    try:
        if DELIVERY_TABLE not in table_names(conn):
            raise InputError(f"{p}: a label store but not a delivery (no {DELIVERY_TABLE} table); make one with "
                             "`geolabel labels deliver`")  # fmt: skip
        rows = conn.execute(f"SELECT {', '.join(DELIVERY_FIELDS)} FROM {DELIVERY_TABLE}").fetchall()
    finally:
        conn.close()
    if len(rows) != 1:
        raise TamperedDeliveryError(f"{p}: {DELIVERY_TABLE} must hold one row, holds {len(rows)}")
    return dict(zip(DELIVERY_FIELDS, rows[0]))

"""Merge deliveries from offline sites (:mod:`geolabel.deliveries`) into the central store.

In plain words:

- **All or nothing.** Every delivery is read and verified first (checksum; ``check``
  errors refuse it unless ``accept_errors``), then all are merged in one transaction.
- **Idempotent.** Each merged delivery id is recorded in ``geolabel_merged_deliveries``;
  merging it again writes nothing and says "already merged". Label by label: an id the
  central store lacks is inserted, one it holds at an older version is replaced by the
  delivered label (id, version and times as delivered, so merging the same label again
  skips it), one it holds at the same or a newer version is skipped.
- **Conflicts are not written** (:func:`geolabel.conflicts.find_conflicts`): labels
  reaching into tiles of another team, or overlapping accepted labels of another team or site.
- **Provenance**: every label written gets a row in ``geolabel_provenance`` (label id,
  delivery id, site, time); the labels table is unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from geolabel.errors import GeolabelError
from geolabel.labels.store import LABEL_FIELDS, StoreLike, now_iso, opened_store

if TYPE_CHECKING:
    from geolabel.conflicts import Conflict
    from geolabel.deliveries import SiteDelivery
    from geolabel.labels.store import LabelStore


class DeliveryCheckError(GeolabelError):
    """A delivery's check found errors and ``accept_errors`` was not given."""

    exit_code = 1


@dataclass
class MergeResult:
    """What merging one delivery did (``already``: it had been merged before; nothing written)."""

    delivery_id: str
    source: str
    site: str
    team: str
    already: bool = False
    merged: int = 0
    updated: int = 0
    skipped: int = 0
    conflicts: list[Conflict] = field(default_factory=list)

    def lines(self) -> list[str]:
        head = f"{self.source}: delivery {self.delivery_id} (site {self.site}, team {self.team})"
        if self.already:
            return [f"{head}: already merged; nothing written"]
        counts = (f"merged {self.merged} labels, updated {self.updated}, skipped {self.skipped}, "
                  f"conflicts {len(self.conflicts)}")  # fmt: skip
        return [f"{head}: {counts}"] + [f"  conflict {c.line()}" for c in self.conflicts]


def merge_deliveries(
    central: StoreLike, deliveries: Sequence[str | os.PathLike[str]], *, accept_errors: bool = False
) -> list[MergeResult]:
    """Merge ``deliveries`` (files made by :func:`geolabel.deliveries.deliver`) into
    ``central`` in one transaction; returns what happened to each, in order."""
    from geolabel.deliveries import read_delivery

    packages = [read_delivery(p) for p in deliveries]
    for package in packages:
        _check_quality(package, accept_errors=accept_errors)
    with opened_store(central) as st:
        done = {row["delivery_id"] for row in st.merged_deliveries()}
        results = []
        with st.transaction():
            for package in packages:
                if package.delivery_id in done:
                    results.append(_result(package, already=True))
                    continue
                results.append(_merge_one(st, package))
                done.add(package.delivery_id)
    return results


def _result(package: SiteDelivery, **counts: Any) -> MergeResult:
    return MergeResult(package.delivery_id, package.path, package.site, package.team, **counts)


def _check_quality(package: SiteDelivery, *, accept_errors: bool) -> None:
    """Refuse a delivery whose own check finds errors, unless they are accepted."""
    from geolabel.labels.delivery import load_delivery
    from geolabel.qa import check_labels

    if accept_errors:
        return
    result = check_labels(load_delivery(package.path))
    if result.errors:
        raise DeliveryCheckError(
            f"{package.path}: fails its check with {result.errors} errors (see `geolabel check {package.path}`); "
            "merge it anyway with --accept-errors"
        )


def _merge_one(store: LabelStore, package: SiteDelivery) -> MergeResult:
    from geolabel.conflicts import delivered_geometries, find_conflicts

    geoms = delivered_geometries(store, package)
    conflicts = find_conflicts(store, package, geoms)
    new, newer, skipped = _sort_labels(store, package, {c.label_id for c in conflicts})
    write = new + newer
    labels = package.labels
    store.delete([labels.columns["label_id"][i] for i in newer])
    store.insert_rows(geoms[write], [{f: labels.columns[f][i] for f in LABEL_FIELDS} for i in write])
    now = now_iso()
    store.record_merge(
        {"delivery_id": package.delivery_id, "site": package.site, "team": package.team, "merged_at": now,
         "labels": len(write), "checksum": package.checksum},
        [{"label_id": labels.columns["label_id"][i], "delivery_id": package.delivery_id, "site": package.site,
          "merged_at": now} for i in write],
    )  # fmt: skip
    return _result(package, merged=len(new), updated=len(newer), skipped=skipped, conflicts=conflicts)


def _sort_labels(store: LabelStore, package: SiteDelivery, conflicting: set[str]) -> tuple[list[int], list[int], int]:
    """Indices of delivered labels new to the store and newer than the store's, and how many
    are skipped (the store holds them at the same or a newer version); conflicts are neither."""
    ids = [str(i) for i in package.labels.columns["label_id"]]
    held = store.read(label_ids=ids, fields=["label_id", "version"])
    versions = dict(zip(held.columns["label_id"], held.columns["version"]))
    new, newer, skipped = [], [], 0
    for i, (lid, version) in enumerate(zip(ids, package.labels.columns["version"])):
        if lid in conflicting:
            continue
        if lid not in versions:
            new.append(i)
        elif int(version) > int(versions[lid]):
            newer.append(i)
        else:
            skipped += 1
    return new, newer, skipped

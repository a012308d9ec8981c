"""What stands between a site's delivery and the central store: labels reaching into tiles
assigned to another team, and labels overlapping another team's or site's accepted labels.

:func:`find_conflicts` is what :func:`geolabel.merge.merge_deliveries` leaves unwritten;
:func:`central_findings` says the same (plus delivered tiles the team was never given) as QA
findings, for ``geolabel check DELIVERY --store CENTRAL``. Overlap means shared area
(interiors intersect): labels that only touch along a tile border are not in conflict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from geolabel.geom import interiors_intersect

if TYPE_CHECKING:
    from geolabel.deliveries import SiteDelivery
    from geolabel.labels.store import LabelStore, Task
    from geolabel.qa.findings import Finding, QAResult

#: Reasons, named as the QA finding types that report them.
UNASSIGNED_TILE = "unassigned_tile"
CROSS_SITE_OVERLAP = "cross_site_overlap"


@dataclass(frozen=True)
class Conflict:
    """A delivered label not written: why (``reason``), and what it ran into (``other``: a
    tile id or a central label id). ``geometry``: the shared area, in the central CRS."""

    label_id: str
    reason: str
    other: str
    message: str
    geometry: Any = None

    def line(self) -> str:
        return f"{self.label_id}: {self.reason}: {self.message}"


def delivered_geometries(central: LabelStore, delivery: SiteDelivery) -> Any:
    """The delivered labels' polygons in the central store's CRS."""
    from geolabel.crs import reproject_geometries, same_crs

    if same_crs(delivery.crs, central.crs):
        return delivery.labels.geoms
    return reproject_geometries(delivery.labels.geoms, delivery.crs, central.crs, densify="auto")


def find_conflicts(central: LabelStore, delivery: SiteDelivery, geoms: Any) -> list[Conflict]:
    """Conflicts of the delivered labels (``geoms``: in the central CRS) with the central
    store: tiles of other teams, then accepted labels of other teams or sites."""
    ids = [str(i) for i in delivery.labels.columns["label_id"]]
    return _other_teams_tiles(central.tasks(), delivery.team, ids, geoms) + _overlaps(central, delivery, ids, geoms)


def _other_teams_tiles(tasks: list[Task], team: str, ids: list[str], geoms: Any) -> list[Conflict]:
    import shapely

    mine = {t.tile_id for t in tasks if t.team == team}
    others = list({t.tile_id: t for t in tasks if t.team != team and t.tile_id not in mine}.values())
    if not others or not len(geoms):
        return []
    boxes = shapely.box(*np.array([t.bounds for t in others], dtype=float).T)
    labels, tiles = shapely.STRtree(boxes).query(geoms, predicate="intersects")
    inner = interiors_intersect(geoms[labels], boxes[tiles])
    return [
        Conflict(ids[i], UNASSIGNED_TILE, others[k].tile_id,
                 f"reaches into tile {others[k].tile_id}, assigned to team {others[k].team}",
                 shapely.intersection(geoms[i], boxes[k]))
        for i, k in zip(labels[inner].tolist(), tiles[inner].tolist())
    ]  # fmt: skip


def _overlaps(central: LabelStore, delivery: SiteDelivery, ids: list[str], geoms: Any) -> list[Conflict]:
    """Delivered labels sharing area with accepted central labels of another team, or of
    the same team merged from another site."""
    import shapely

    if not len(geoms):
        return []
    b = shapely.total_bounds(geoms)
    found = central.read(bbox=(float(b[0]), float(b[1]), float(b[2]), float(b[3])), status=["accepted"])
    sites = {row["label_id"]: row["site"] for row in central.provenance(label_ids=found.columns["label_id"])}
    delivered = set(ids)
    foreign = np.array(
        [lid not in delivered and (team != delivery.team or sites.get(lid, delivery.site) != delivery.site)
         for lid, team in zip(found.columns["label_id"], found.columns["team"])],
        dtype=bool,
    )  # fmt: skip
    theirs = found.take(foreign)
    if not len(theirs):
        return []
    mine, other = shapely.STRtree(theirs.geoms).query(geoms, predicate="intersects")
    inner = interiors_intersect(geoms[mine], theirs.geoms[other])
    out = []
    for i, k in zip(mine[inner].tolist(), other[inner].tolist()):
        lid, team = theirs.columns["label_id"][k], theirs.columns["team"][k]
        where = f"team {team}" if team != delivery.team else f"site {sites.get(lid)}"
        message = f"overlaps accepted label {lid} of {where}"
        out.append(Conflict(ids[i], CROSS_SITE_OVERLAP, lid, message, shapely.intersection(geoms[i], theirs.geoms[k])))
    return out


def central_findings(central: LabelStore, delivery: SiteDelivery, result: QAResult) -> list[Finding]:
    """The delivery's conflicts with ``central`` and its tiles not assigned to its team, as
    error findings in ``result``'s CRS (to add to the delivery's own check)."""
    geoms = delivered_geometries(central, delivery)
    conflicts = find_conflicts(central, delivery, geoms)
    findings = [_finding(c, central, result, delivery) for c in conflicts]
    return findings + _unassigned_tiles(central, delivery, result)


def _finding(conflict: Conflict, central: LabelStore, result: QAResult, delivery: SiteDelivery) -> Finding:
    from geolabel.qa.findings import ERROR, Finding

    geometry, area = _measured(conflict.geometry, central, result)
    i = [str(x) for x in delivery.labels.columns["label_id"]].index(conflict.label_id)
    name = delivery.labels.columns["class_name"][i]
    ids = [conflict.label_id] + ([conflict.other] if conflict.reason == CROSS_SITE_OVERLAP else [])
    message = f"label {conflict.label_id} {conflict.message}"
    return Finding(conflict.reason, ERROR, ids, message, geometry=geometry, area_m2=area, class_name=name)


def _unassigned_tiles(central: LabelStore, delivery: SiteDelivery, result: QAResult) -> list[Finding]:
    """Delivered tiles for which the central store has no task of the delivering team."""
    import shapely

    from geolabel.qa.findings import ERROR, Finding

    assigned = {t.tile_id for t in central.tasks(team=delivery.team)}
    out = []
    for task in {t.tile_id: t for t in delivery.tasks if t.tile_id not in assigned}.values():
        box = shapely.box(*task.bounds)
        geometry, area = _measured(box, central, result, crs=delivery.crs)
        message = f"tile {task.tile_id} is not assigned to team {delivery.team} in the central store"
        out.append(Finding(UNASSIGNED_TILE, ERROR, [task.tile_id], message, geometry=geometry, area_m2=area))
    return out


def _measured(geometry: Any, central: LabelStore, result: QAResult, *, crs: Any = None) -> tuple[Any, float]:
    """``geometry`` (in ``crs``, default the central CRS) in the findings' CRS, and its area."""
    from geolabel.crs import reproject_geometries, same_crs

    source = crs or central.crs
    if result.crs is not None and not same_crs(source, result.crs):
        geometry = reproject_geometries(np.array([geometry]), source, result.crs, densify="auto")[0]
    return geometry, float(geometry.area)

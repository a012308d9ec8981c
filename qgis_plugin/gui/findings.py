"""Findings in a labeler's words: what, which classes, how big, on which tile, whose label.

The engine's messages name labels by their ids (exact, for reports and scripts); a labeler
acts on "my water polygon overlaps Wang's farmland by 0.1 ha on this tile". Nothing here
imports QGIS: the dock passes what it read from the labels layer.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Finding types (geolabel.qa.FINDING_TYPES) as a list shows them.
TITLES = {
    "empty": "Empty geometry",
    "non_polygon": "Not a polygon",
    "invalid": "Invalid geometry",
    "unknown_class": "Unknown class",
    "missing_attribute": "Missing attribute",
    "missing_crs": "No CRS",
    "unexpected_crs": "Wrong CRS",
    "duplicate": "Drawn twice",
    "overlap": "Overlap",
    "gap": "Unlabelled gap",
    "outside": "Outside the imagery",
    "no_features": "No labels",
    "unassigned_tile": "Tile of another team",
    "cross_site_overlap": "Overlaps another site",
    "untagged_tile": "Done tile without tags",
    "tag_disagreement": "Labelers' tags differ",
    "below_mmu": "Too small",
    "sliver": "Sliver",
    "small_hole": "Small hole",
    "spike": "Spike",
}


@dataclass(frozen=True)
class LabelInfo:
    """What the list says about one label of a finding (read from the labels layer)."""

    class_name: str | None
    labeler: str | None
    modified: str  # ISO text, sortable; "" when unknown
    tile_id: str | None


@dataclass(frozen=True)
class Shown:
    """One finding as the list shows it."""

    index: int  # position in the check's findings (for zooming)
    text: str
    tooltip: str
    mine: bool
    new: bool


def area_text(m2: float | None) -> str:
    """Square metres below one hectare, hectares above.

    >>> area_text(1078.371), area_text(25400.0), area_text(None)
    ('1,078 m²', '2.54 ha', '')
    """
    if m2 is None:
        return ""
    return f"{m2:,.0f} m²" if m2 < 10_000 else f"{m2 / 10_000:,.2f} ha"


def finding_key(finding) -> tuple:
    """What identifies a finding across two checks (same kind, same labels, same place)."""
    where = finding.geometry.representative_point().coords[0] if finding.geometry is not None else None
    rounded = None if where is None else (round(where[0]), round(where[1]))
    return (finding.type, tuple(sorted(finding.feature_ids)), rounded)


def _whose(info: LabelInfo | None, me: str, newest: bool) -> str:
    """'yours, newest', 'li', ... for one label of a finding."""
    if info is None:
        return ""
    owner = "yours" if me and info.labeler == me else info.labeler or ""
    return ", ".join(p for p in (owner, "newest" if newest else "") if p)


def _classes(finding, infos: list[LabelInfo | None], me: str) -> str:
    """'water (yours, newest) / farmland (kim)'; the finding's own class name without labels."""
    if not infos:
        return finding.class_name or ""
    times = [info.modified if info else "" for info in infos]
    latest = max(times)
    newest = times.index(latest) if len(infos) > 1 and latest and times.count(latest) == 1 else -1
    parts = []
    for k, info in enumerate(infos):
        name = (info.class_name if info else None) or "?"
        whose = _whose(info, me, k == newest)
        parts.append(f"{name} ({whose})" if whose else name)
    return " / ".join(parts)


def describe(index: int, finding, labels: dict[str, LabelInfo], me: str, new: bool, tile: str | None) -> Shown:
    """The list entry of one finding: two short lines, the ids only in the tooltip."""
    infos = [labels.get(i) for i in finding.feature_ids]
    tiles = sorted({i.tile_id for i in infos if i and i.tile_id}) or ([tile] if tile else [])
    title = TITLES.get(finding.type, finding.type)
    first = " · ".join(p for p in (title, _classes(finding, infos, me), area_text(finding.area_m2)) if p)
    second = " · ".join(p for p in ((f"tile {', '.join(tiles)}" if tiles else ""), "new" if new else "") if p)
    text = f"{first}\n{second}" if second else first
    if not finding.feature_ids:  # a file-level finding: the engine's words are the only ones
        text = f"{first}\n{finding.message}" if finding.geometry is None else text
    ids = "\n".join(f"label {i}" for i in finding.feature_ids)
    tooltip = f"{finding.severity}: {finding.message}" + (f"\n{ids}" if ids else "") + "\nDouble-click to zoom to it"
    mine = bool(me) and any(i is not None and i.labeler == me for i in infos)
    return Shown(index, text, tooltip, mine, new)


def ordered(shown: list[Shown]) -> list[Shown]:
    """The labeler's own new findings first, then their other ones, then new ones, then the
    rest, each in the engine's order (errors first, then by type and area)."""
    return sorted(shown, key=lambda s: (not (s.mine and s.new), not s.mine, not s.new, s.index))

"""Tile tags derived from the polygons: ``water>=0.2`` tags every tile whose area is at
least 20 % covered by water labels with the tag ``water`` (status draft, labeler
``suggest``), for a labeler to confirm.

Shares are areas in square metres (:func:`geolabel.crs.area_m2` in the store's CRS) of the
union of a class's labels inside the tile footprint (from the tile index) over the
footprint's area: overlapping labels of one class count once.

>>> rule = parse_rule("water>=20%")
>>> rule.class_name, rule.min_share
('water', 0.2)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geolabel import vocabulary
from geolabel.errors import InputError
from geolabel.labels.store import StoreLike, now_iso, opened_store
from geolabel.labels.tagschema import TileTag

_RULE = re.compile(r"^\s*([^\s<>=]+)\s*>=\s*([0-9]*\.?[0-9]+)\s*(%?)\s*$")


@dataclass(frozen=True)
class TagRule:
    """A tile gets ``tag`` when labels of ``class_name`` cover at least ``min_share`` of it."""

    class_name: str
    min_share: float
    tag: str

    @property
    def text(self) -> str:
        return f"{self.class_name}>={self.min_share:g}"


def parse_rule(text: str, *, tag: str | None = None) -> TagRule:
    """``CLASS>=SHARE`` (a fraction, or a percentage with ``%``); the tag is ``tag``, else
    the tag named like the class."""
    match = _RULE.match(text)
    if match is None:
        raise InputError(f"`rules`: {text!r} must read CLASS>=SHARE, e.g. water>=0.2 or water>=20%", params=("rules",))
    share = float(match.group(2)) / (100.0 if match.group(3) else 1.0)
    if not 0.0 < share <= 1.0:
        raise InputError(f"`rules`: {text!r}: the share must be above 0 and at most 1 (100%)", params=("rules",))
    return TagRule(match.group(1), share, tag or match.group(1))


@dataclass(frozen=True)
class SuggestResult:
    """What `suggest_tags` found: per rule, the tiles it tagged; per tile, each rule class's share."""

    rules: list[TagRule]
    tagged: dict[str, list[str]]  # rule text -> tile ids
    shares: dict[str, dict[str, float]]  # tile id -> class name -> share of the tile's area
    tiles: int

    def lines(self) -> list[str]:
        return [
            f"{r.text}: {len(self.tagged[r.text])} of {self.tiles} tiles tagged {r.tag} "
            f"(draft, labeler {vocabulary.TAG_SUGGEST_LABELER})"
            for r in self.rules
        ]


def suggest_tags(
    store: StoreLike, tiles: str | Path, rules: Sequence[str], *, tag: str | None = None, dry_run: bool = False
) -> SuggestResult:
    """Tag the index's tiles by the share of their area the store's labels of each rule's
    class cover. The labeler ``suggest``'s earlier tags of the rules' tags on these tiles are
    replaced (all its tags of these tiles in a single-label project, where a tile holds one)."""
    from geolabel.labels.tags import require_tag_schema, tag_codes

    if tag is not None and len(rules) != 1:
        raise InputError("`tag` names the tag of one rule; give one rule with it", params=("tag", "rules"))
    parsed = [parse_rule(text, tag=tag) for text in rules]
    if not parsed:
        raise InputError("`rules`: give at least one rule, e.g. water>=0.2", params=("rules",))
    with opened_store(store) as st:
        schema = require_tag_schema(st)
        classes = {r.class_name: st.schema.resolve(r.class_name).code for r in parsed}
        codes = {r.text: tag_codes(schema, [r.tag], f"{st.uri}: rule {r.text}")[0] for r in parsed}
        tile_ids, footprints = tile_footprints(tiles, st.crs)
        shares = class_shares(st, footprints, classes)
        tagged = {r.text: [t for i, t in enumerate(tile_ids) if shares[i][r.class_name] >= r.min_share] for r in parsed}
        rows = _rows(tagged, codes, schema.is_single)
        if not dry_run:
            scope = [(t, vocabulary.TAG_SUGGEST_LABELER) for t in tile_ids]
            st.replace_tile_tags(scope, rows, codes=None if schema.is_single else sorted(set(codes.values())))
    by_tile = {t: shares[i] for i, t in enumerate(tile_ids)}
    return SuggestResult(parsed, tagged, by_tile, len(tile_ids))


def _rows(tagged: dict[str, list[str]], codes: dict[str, int], single: bool) -> list[TileTag]:
    now = now_iso()
    given: dict[tuple[str, int], TileTag] = {}
    for rule, tile_ids in tagged.items():
        for tile_id in tile_ids:
            given[tile_id, codes[rule]] = TileTag(tile_id, codes[rule], vocabulary.TAG_SUGGEST_LABELER, "draft", now)
    if single:
        per_tile: dict[str, int] = {}
        for tile_id, code in given:
            if per_tile.setdefault(tile_id, code) != code:
                raise InputError(
                    f"tile {tile_id}: the rules give it two tags, but this is a single-label project; "
                    "give rules that exclude each other"
                )
    return list(given.values())


def tile_footprints(tiles: str | Path, crs: Any) -> tuple[list[str], Any]:
    """The tile ids of a tile index and their footprints in ``crs`` (the index is read as
    untrusted input: :func:`geolabel.tileindex.load_chips`)."""
    import numpy as np

    from geolabel.crs import reproject_geometries, same_crs
    from geolabel.files import folder_lock
    from geolabel.tileindex import CHIPS_BUSY, load_chips

    index = Path(tiles)
    with folder_lock(index.parent, shared=True, busy=CHIPS_BUSY):
        chips = load_chips(index)
    out = np.empty(len(chips), dtype=object)
    for i, chip in enumerate(chips):
        fp = chip.footprint
        out[i] = fp if same_crs(chip.crs, crs) else reproject_geometries([fp], chip.crs, crs, densify=chip.edge_step)[0]
    return [c.tile_id for c in chips], out


def class_shares(store: Any, footprints: Any, classes: dict[str, int]) -> list[dict[str, float]]:
    """Per footprint, the share of its area (m²) covered by the union of each class's labels."""
    import numpy as np
    import shapely

    from geolabel.crs import area_m2

    shares = [dict.fromkeys(classes, 0.0) for _ in range(len(footprints))]
    tile_area = area_m2(footprints, store.crs)
    for name, code in classes.items():
        labels = store.read(classes=[code], bbox=tuple(shapely.total_bounds(footprints)), fields=["class_code"]).geoms
        if not len(labels):
            continue
        tile_idx, label_idx = shapely.STRtree(labels).query(footprints, predicate="intersects")
        order = np.argsort(tile_idx, kind="stable")
        tile_idx, label_idx = tile_idx[order], label_idx[order]
        pieces = shapely.intersection(labels[label_idx], footprints[tile_idx])
        starts = np.flatnonzero(np.r_[True, np.diff(tile_idx) != 0])
        # overlapping labels of one class count once: the union of a tile's pieces
        covered = area_m2([shapely.union_all(group) for group in np.split(pieces, starts[1:])], store.crs)
        for t, area in zip(tile_idx[starts].tolist(), covered.tolist()):
            shares[t][name] = area / tile_area[t] if tile_area[t] > 0 else 0.0
    return shares

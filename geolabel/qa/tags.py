"""Tile tag checks of a whole label store with a tag schema (:mod:`geolabel.labels.tags`).

- ``untagged_tile`` (error): a tile marked done that no labeler tagged. Done means its
  work is finished, and in a project with tags that work includes the whole-image label:
  the delivery is incomplete, as with a gap in a done tile.
- ``tag_disagreement`` (warning): labelers gave one tile different tags. Tiles labelled
  twice disagree by design now and then; a reviewer settles it, nothing is broken.

Suggestions (labeler ``suggest``) are not a labeler's tags (:mod:`geolabel.labels.tag_sets`).
With a tile index the findings lie on the tile's footprint, else they are file-level.
Tags are few and cheap to read, so an incremental check computes these again each time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from geolabel.labels.delivery import Delivery
from geolabel.labels.tag_sets import tag_names, tags_by_tile
from geolabel.qa.findings import ERROR, WARNING, Finding


def check_tags(delivery: Delivery, *, tiles: str | Path | None = None, crs: Any = None) -> list[Finding]:
    """The ``untagged_tile`` and ``tag_disagreement`` findings of ``delivery`` (none
    without a tag schema), located at the footprints of ``tiles`` in ``crs`` when given."""
    schema = delivery.tag_schema
    if schema is None:
        return []
    given = tags_by_tile(delivery.tile_tags)
    names = {t.code: t.name for t in schema}
    found = [
        (tile, Finding("untagged_tile", ERROR, [], f"tile {tile} is done but has no tags"))
        for tile in sorted(delivery.done_tiles or [])
        if tile not in given
    ]
    for tile, by_labeler in given.items():
        if len(set(by_labeler.values())) > 1:
            said = "; ".join(f"{who}: {tag_names(codes, names)}" for who, codes in by_labeler.items())
            found.append((tile, Finding("tag_disagreement", WARNING, [], f"tile {tile}: labelers disagree ({said})")))
    if found and tiles is not None and crs is not None:
        from geolabel.labels.tag_rules import tile_footprints

        ids, footprints = tile_footprints(tiles, crs)
        where = dict(zip(ids, footprints))
        for tile, f in found:
            f.geometry = where.get(tile)  # a tile the index lacks stays file-level
    return [f for _, f in found]

"""Tile tags grouped as QA and scoring read them: per tile, each labeler's set of tag codes.

The tags of the labeler ``suggest`` (derived from the polygons by `geolabel tags suggest`)
are drafts for a labeler to confirm, nobody's judgement: they count only when asked for
by name, so a done tile with nothing but suggestions is untagged and a suggestion never
disagrees with a labeler.

>>> from geolabel.labels.tagschema import TileTag
>>> rows = [TileTag("t1", 1, "li", "draft", ""), TileTag("t1", 2, "li", "draft", ""),
...         TileTag("t1", 2, "wang", "draft", ""), TileTag("t2", 1, "suggest", "draft", "")]
>>> {t: {who: sorted(c) for who, c in by.items()} for t, by in tags_by_tile(rows).items()}
{'t1': {'li': [1, 2], 'wang': [2]}}
>>> tags_by_tile(rows, labeler="suggest")
{'t2': {'suggest': frozenset({1})}}
"""

from __future__ import annotations

from collections.abc import Iterable

from geolabel import vocabulary
from geolabel.labels.tagschema import TileTag


def tags_by_tile(rows: Iterable[TileTag], *, labeler: str | None = None) -> dict[str, dict[str, frozenset[int]]]:
    """tile -> labeler -> tag codes, of ``labeler`` only when given (else of everybody but
    ``suggest``); tiles and labelers in sorted order."""
    grouped: dict[str, dict[str, set[int]]] = {}
    for r in rows:
        if r.labeler == labeler if labeler is not None else r.labeler != vocabulary.TAG_SUGGEST_LABELER:
            grouped.setdefault(r.tile_id, {}).setdefault(r.labeler, set()).add(r.tag_code)
    return {t: {who: frozenset(grouped[t][who]) for who in sorted(grouped[t])} for t in sorted(grouped)}


def tag_names(codes: Iterable[int], names: dict[int, str]) -> str:
    """'paddy, water': the tags' names (codes the schema lacks as numbers), by name; '(none)'."""
    shown = sorted(names.get(c, str(c)) for c in codes)
    return ", ".join(shown) if shown else "(none)"

"""Scoring tile tags (whole-image labels) against a reference, and two labelers' agreement.

Each tile is one sample; a side's tags of a tile are a set (one tag or none in a
single-label project). Over the tiles compared:

- per tag: TP = tiles both sides gave the tag, FP = only the submission, FN = only the
  reference; precision TP/(TP+FP), recall TP/(TP+FN), F1 (0 where undefined), and Cohen's
  kappa of the 2 x 2 table (has the tag or not, on each side);
- overall: exact match (the share of tiles whose tag sets are equal), Hamming accuracy
  (multi-label: the share of (tile, tag) decisions that agree), macro F1 (the mean F1 of
  the tags either side used); single-label: the tiles' confusion matrix (``(none)``: a
  tile the submission left untagged) and its Cohen's kappa.

The tiles compared are the reference's tagged tiles (a tile the submission left untagged
counts as no tags: it misses them); with ``agreement`` only the tiles both sides tagged (a
tile the second labeler has not reached is no disagreement). A kappa no table can give
(both sides always say the same one thing) is None.

>>> from geolabel.labels.tagschema import TagSchema
>>> schema = TagSchema.from_dict({"tags": [{"code": 1, "name": "water"}, {"code": 2, "name": "paddy"}]})
>>> s = score_tag_sets({"a": {1}, "b": {1, 2}}, {"a": {1}, "b": {2}}, schema)
>>> s.overall["exact_match"], s.overall["hamming_accuracy"], s.per_tag["water"]["precision"]
(0.5, 0.75, 0.5)
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from geolabel.errors import InputError
from geolabel.labels.tagschema import TagSchema
from geolabel.score import cohen_kappa

NONE = "(none)"


@dataclass
class TagScore:
    """Everything :func:`score_tag_sets` measured (see the module docstring)."""

    mode: str
    tags: list[str]
    per_tag: dict[str, dict[str, float | None]]  # tag -> tp/fp/fn/precision/recall/f1/kappa
    overall: dict[str, float | None]  # exact_match, hamming_accuracy (multi), macro_f1, kappa (single)
    tiles: dict[str, int]  # compared, untagged (in the reference, not the submission), extra
    confusion: dict[str, dict[str, int]] | None = None  # single: submission tag -> reference tag -> tiles
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode, "tags": self.tags, "tiles": self.tiles, "overall": self.overall,
            "per_tag": self.per_tag, "confusion_tiles": self.confusion, "settings": self.settings,
        }  # fmt: skip


def score_tag_sets(
    submission: Mapping[str, Collection[int]],
    reference: Mapping[str, Collection[int]],
    schema: TagSchema,
    *,
    agreement: bool = False,
) -> TagScore:
    """Score tile -> tag codes maps (see the module docstring); tags named by ``schema``."""
    ref_tiles = sorted(t for t, codes in reference.items() if codes)
    sub_tiles = {t for t, codes in submission.items() if codes}
    tiles = [t for t in ref_tiles if t in sub_tiles] if agreement else ref_tiles
    codes = schema.codes
    sub = _indicators([submission.get(t, ()) for t in tiles], codes)
    ref = _indicators([reference.get(t, ()) for t in tiles], codes)
    names = [schema.get(c).name for c in codes]
    per_tag = {name: _tag_numbers(sub[:, k], ref[:, k]) for k, name in enumerate(names)}
    used = [name for k, name in enumerate(names) if sub[:, k].any() or ref[:, k].any()]
    n = len(tiles)
    overall: dict[str, float | None] = {
        "exact_match": float(np.all(sub == ref, axis=1).mean()) if n else 0.0,
        "hamming_accuracy": float((sub == ref).mean()) if n and not schema.is_single else None,
        "macro_f1": float(np.mean([per_tag[name]["f1"] or 0.0 for name in used])) if used else 0.0,
        "kappa": None,
    }
    confusion = None
    if schema.is_single:
        confusion, overall["kappa"] = _single_confusion(sub, ref, names)
    counts = {
        "compared": n,
        "untagged": sum(t not in sub_tiles for t in tiles),
        "extra": len(sub_tiles - set(ref_tiles)),
    }
    return TagScore(schema.mode, names, per_tag, overall, counts, confusion)


def _indicators(sets: list[Collection[int]], codes: list[int]) -> Any:
    """A (tiles x tags) boolean matrix: does the tile carry the tag."""
    column = {c: k for k, c in enumerate(codes)}
    out = np.zeros((len(sets), len(codes)), dtype=bool)
    for i, given in enumerate(sets):
        out[i, [column[c] for c in given]] = True
    return out


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else 0.0


def _tag_numbers(sub: Any, ref: Any) -> dict[str, float | None]:
    """TP/FP/FN, precision, recall, F1 and kappa of one tag (a column of each side)."""
    tp, fp, fn = int(np.sum(sub & ref)), int(np.sum(sub & ~ref)), int(np.sum(~sub & ref))
    tn = len(sub) - tp - fp - fn
    p, r = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return {
        "tp": tp, "fp": fp, "fn": fn, "precision": p, "recall": r, "f1": _ratio(2 * p * r, p + r),
        "kappa": kappa([[tp, fp], [fn, tn]]),
    }  # fmt: skip


def _single_confusion(sub: Any, ref: Any, names: list[str]) -> tuple[dict[str, dict[str, int]], float | None]:
    """The tiles' confusion matrix (submission rows, reference columns, ``(none)`` last) and its kappa."""
    labels = [*names, NONE]

    def category(m: Any) -> Any:  # the tag's column, or ``(none)`` for a tile without one
        return np.where(m.any(axis=1), m.argmax(axis=1), len(names))

    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(matrix, (category(sub), category(ref)), 1)
    table = {a: {b: int(matrix[i, j]) for j, b in enumerate(labels)} for i, a in enumerate(labels)}
    return table, kappa(matrix)


def kappa(matrix: Any) -> float | None:
    """Cohen's kappa of a confusion matrix (:func:`geolabel.score.cohen_kappa`); None when
    chance agreement is total (one category on both sides), where kappa is 0/0.

    >>> kappa([[3, 1], [0, 4]]), kappa([[0, 0], [0, 5]])
    (0.75, None)
    """
    m = np.asarray(matrix, dtype=float)
    if np.count_nonzero(m) == 1 and np.count_nonzero(np.diag(m)) == 1:
        return None
    return cohen_kappa(m)


# -- stores ------------------------------------------------------------------------------


def score_tags(
    submission: Any,
    reference: Any,
    *,
    labeler: str | None = None,
    reference_labeler: str | None = None,
    agreement: bool = False,
) -> TagScore:
    """Score the tile tags of the ``submission`` store against the ``reference`` store's,
    by tag name, in the reference's tag schema and mode. ``labeler``/``reference_labeler``:
    whose tags on each side (default: each tile's one labeler, suggestions left out);
    ``agreement``: compare only the tiles both sides tagged.

    Two labelers of one store: the same store on both sides with both labelers named
    (with ``agreement``, a store whose tags come from exactly two labelers needs none).
    """
    from geolabel.labels.pg_location import shown_location
    from geolabel.labels.store import open_store

    with open_store(reference) as ref_store, open_store(submission) as sub_store:
        ref_schema, sub_schema = _schema(ref_store), _schema(sub_store)
        if agreement and labeler is None and reference_labeler is None and ref_store.uri == sub_store.uri:
            reference_labeler, labeler = _two_labelers(ref_store)
        ref = side_tags(ref_store, labeler=reference_labeler, param="reference_labeler")
        sub = side_tags(sub_store, labeler=labeler, param="labeler")
    sub = {tile: _recode(codes, sub_schema, ref_schema, f"{sub_store.uri}: tile {tile}") for tile, codes in sub.items()}
    result = score_tag_sets(sub, ref, ref_schema, agreement=agreement)
    result.settings = {
        "submission": shown_location(submission), "reference": shown_location(reference), "labeler": labeler,
        "reference_labeler": reference_labeler, "agreement": agreement,
    }  # fmt: skip
    return result


def _schema(store: Any) -> TagSchema:
    from geolabel.labels.tags import require_tag_schema

    return require_tag_schema(store)


def side_tags(store: Any, *, labeler: str | None, param: str) -> dict[str, frozenset[int]]:
    """tile -> tag codes of ``labeler`` in ``store`` (default: of each tile's one labeler,
    suggestions left out); a tile two labelers tagged needs one named (``param``)."""
    from geolabel.labels.tag_sets import tags_by_tile

    out: dict[str, frozenset[int]] = {}
    for tile, by_labeler in tags_by_tile(store.tile_tags(labeler=labeler), labeler=labeler).items():
        if len(by_labeler) > 1:
            raise InputError(
                f"{store.uri}: tile {tile} is tagged by {', '.join(by_labeler)}; name whose tags to score (`{param}`)",
                params=(param,),
            )
        (out[tile],) = by_labeler.values()
    return out


def _two_labelers(store: Any) -> tuple[str, str]:
    """The two labelers who tagged tiles of ``store`` (suggestions left out), sorted."""
    from geolabel.labels.tag_sets import tags_by_tile

    who = sorted({w for by in tags_by_tile(store.tile_tags()).values() for w in by})
    if len(who) != 2:
        raise InputError(
            f"{store.uri}: agreement needs two labelers; tags come from {len(who)} ({', '.join(who) or 'none'}): "
            "name them (`labeler`, `reference_labeler`)",
            params=("labeler", "reference_labeler"),
        )
    return who[0], who[1]


def _recode(codes: frozenset[int], sub: TagSchema, ref: TagSchema, where: str) -> frozenset[int]:
    """The submission's tag codes as the reference's tags of the same names."""
    out = set()
    for c in codes:
        name = sub.get(c).name if c in sub else str(c)
        tag = ref.find(name)
        if tag is None:
            raise InputError(f"{where}: tag {name!r} is not in the reference's tag schema")
        out.add(tag.code)
    if ref.is_single and len(out) > 1:
        raise InputError(f"{where}: a tile holds {len(out)} tags, but the reference is a single-label project")
    return frozenset(out)

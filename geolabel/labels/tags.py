"""Tile tags (whole-image labels): set a project's tag schema, give tiles their tags, import
a CSV of them, list them. The same on both store backends; the store only keeps rows.

Each (tile, labeler) holds a set of tags: giving a tile its tags replaces what that labeler
gave it before, so two labelers' tags on a tile stay apart (for agreement and QA). A
single-label project takes one tag per tile and labeler.

>>> import tempfile
>>> from geolabel.labels.store import create_store
>>> from geolabel.labels.tagschema import TagSchema
>>> schema = TagSchema.from_dict({"tags": [{"code": 1, "name": "water"}, {"code": 2, "name": "paddy"}]})
>>> store = create_store(f"{tempfile.mkdtemp()}/labels.gpkg", crs="EPSG:32649", tag_schema=schema)
>>> [t.tag_code for t in set_tile_tags(store, "v_r0_c0", ["paddy", "water"], labeler="li")]
[1, 2]
>>> [tag_name(store, t) for t in store.tile_tags(tile_id="v_r0_c0")]
['water', 'paddy']
>>> store.close()
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geolabel import vocabulary
from geolabel.errors import InputError, check_choice
from geolabel.labels.store import LabelStore, StoreLike, now_iso, opened_store
from geolabel.labels.tagschema import TagSchema, TileTag

#: Columns of a tags CSV (`geolabel tags import`); the first two are required.
CSV_COLUMNS = ("tile_id", "tags", "labeler", "status")


def require_tag_schema(store: LabelStore) -> TagSchema:
    """The store's tag schema; a store without one is told how to get one."""
    schema = store.read_tag_schema()
    if schema is None:
        raise InputError(
            f"{store.uri}: the store has no tag schema; set one with `set_tag_schema()`", params=("set_tag_schema()",)
        )
    return schema


def set_tag_schema(store: StoreLike, schema: TagSchema) -> None:
    """Make ``schema`` the store's tag schema. Refused when a tag given to a tile would be
    lost (its code is gone) or a single-label project would hold two tags of one labeler."""
    with opened_store(store) as st, st.transaction():
        rows = st.tile_tags()
        used = sorted({r.tag_code for r in rows} - set(schema.codes))
        if used:
            old = st.read_tag_schema()
            name = old.get(used[0]).name if old is not None and used[0] in old else str(used[0])
            n = sum(r.tag_code == used[0] for r in rows)
            raise InputError(f"{st.uri}: tag {name!r} (code {used[0]}) is given to {n} tile(s); it cannot be removed")
        if schema.is_single:
            _check_single(rows, f"{st.uri}: a single-label tag schema")
        st.write_tag_schema(schema)


def _check_single(rows: Sequence[TileTag], what: str) -> None:
    seen: dict[tuple[str, str], int] = {}
    for r in rows:
        key = (r.tile_id, r.labeler)
        if key in seen and seen[key] != r.tag_code:
            raise InputError(f"{what} allows one tag per tile, but {r.labeler} gave tile {r.tile_id} two")
        seen[key] = r.tag_code


def tag_codes(schema: TagSchema, names: Iterable[str], where: str) -> list[int]:
    """The codes of the tags named (any language, or codes), without repeats; an unknown
    tag, or more than one in a single-label project, is refused with ``where`` in front."""
    codes: list[int] = []
    for name in names:
        tag = schema.find(name)
        if tag is None:
            raise InputError(f"{where}: unknown tag {name!r}; known tags: {', '.join(t.name for t in schema)}")
        if tag.code not in codes:
            codes.append(tag.code)
    if schema.is_single and len(codes) > 1:
        shown = ", ".join(schema.get(c).name for c in codes)
        raise InputError(f"{where}: this is a single-label project, one tag per tile ({shown} given)")
    return sorted(codes)


def known_tiles(store: LabelStore) -> set[str]:
    """The tiles the store knows (given out as tasks, or with recorded progress); empty
    when it knows none, and then any tile id is taken."""
    from geolabel.labels.store import NotAStoreError

    try:
        tasks = {t.tile_id for t in store.tasks()}
    except NotAStoreError:  # a PostGIS project made before tasks existed
        tasks = set()
    return tasks | set(store.tile_statuses())


def _check_tile(tile_id: str, known: set[str], where: str) -> None:
    if not tile_id:
        raise InputError(f"{where}: no tile id")
    if known and tile_id not in known:
        raise InputError(f"{where}: tile {tile_id!r} is not one of the store's {len(known)} tiles (tasks and progress)")


def set_tile_tags(
    store: StoreLike,
    tile_id: str,
    tags: Sequence[str],
    *,
    labeler: str | None = None,
    status: str = "draft",
    start: bool = False,
) -> list[TileTag]:
    """Give ``tile_id`` exactly ``tags`` (names or codes) from ``labeler`` (default on
    PostGIS: the database role), replacing what that labeler gave it; returns the rows.

    No tags clears the labeler's tags of the tile. ``start``: a tile the store does not
    know yet (the dock's tile from its index) is recorded ``in_progress`` with the tags,
    in one transaction, instead of being refused."""
    from geolabel.tasks import who

    check_choice(status, vocabulary.STATUSES, "status", param="status")
    with opened_store(store) as st:
        schema = require_tag_schema(st)
        name = who(st, labeler, "labeler")
        where = f"{st.uri}: tile {tile_id}"
        codes = tag_codes(schema, tags, where)
        known = known_tiles(st)
        now = now_iso()
        rows = [TileTag(tile_id, code, name, status, now) for code in codes]
        with st.transaction():
            if start and tile_id not in known:
                st.set_tile_status(tile_id, "in_progress", labeler=name)
            else:
                _check_tile(tile_id, known, str(st.uri))
            st.replace_tile_tags([(tile_id, name)], rows)
        return rows


@dataclass(frozen=True)
class TagImport:
    """What an import of a tags CSV wrote."""

    rows: int
    tiles: int
    tags: int

    def line(self) -> str:
        return f"{self.rows} rows: {self.tags} tags on {self.tiles} tiles"


def import_tags(store: StoreLike, path: str | Path, *, labeler: str | None = None, status: str = "draft") -> TagImport:
    """Import a CSV of tile tags (columns tile_id, tags, and optionally labeler and status;
    tags separated by commas or semicolons). Every row is checked first; one bad row
    (named by its line) refuses the whole file, and all rows are written in one transaction.

    ``labeler`` and ``status`` apply to rows that give none."""
    with opened_store(store) as st:
        schema = require_tag_schema(st)
        known = known_tiles(st)
        default_labeler = (labeler or "").strip() or st.member_name()
        rows: list[TileTag] = []
        seen: dict[tuple[str, str], int] = {}
        now = now_iso()
        for line, record in read_tags_csv(path):
            where = f"{path}: line {line}"
            tile_id = record.get("tile_id", "")
            _check_tile(tile_id, known, where)
            name = record.get("labeler") or default_labeler
            if not name:
                raise InputError(f"{where}: no labeler (give a labeler column or `labeler`)", params=("labeler",))
            row_status = record.get("status") or status
            check_choice(row_status, vocabulary.STATUSES, f"{where}: status")
            if (tile_id, name) in seen:
                raise InputError(f"{where}: tile {tile_id} of {name} is given in line {seen[tile_id, name]} already")
            seen[tile_id, name] = line
            codes = tag_codes(schema, split_tags(record.get("tags", "")), where)
            rows += [TileTag(tile_id, code, name, row_status, now) for code in codes]
        st.replace_tile_tags(list(seen), rows)
        return TagImport(len(seen), len({t for t, _ in seen}), len(rows))


def split_tags(text: str) -> list[str]:
    """Tags of a CSV cell: separated by commas or semicolons."""
    return [part.strip() for part in re.split(r"[,;]", text) if part.strip()]


def read_tags_csv(path: str | Path) -> list[tuple[int, dict[str, str]]]:
    """The rows of a tags CSV as (line number, {column: stripped text}); the header must
    name tile_id and tags and nothing but :data:`CSV_COLUMNS`."""
    import csv

    from geolabel.files import check_input_file

    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such tags file")
    check_input_file(p, "tags file")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{p}: is not UTF-8 text (byte offset {exc.start}); save it as UTF-8") from None
    reader = csv.reader(text.splitlines())
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise InputError(f"{p}: is empty; expected a header {','.join(CSV_COLUMNS)}") from None
    except csv.Error as exc:
        raise InputError(f"{p}: line 1: {exc}") from None
    _check_header(p, header)
    out: list[tuple[int, dict[str, str]]] = []
    try:
        for values in reader:
            line = reader.line_num
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(header):
                raise InputError(f"{p}: line {line}: {len(values)} values for {len(header)} columns")
            out.append((line, {k: v.strip() for k, v in zip(header, values)}))
    except csv.Error as exc:
        raise InputError(f"{p}: line {reader.line_num}: {exc}") from None
    return out


def _check_header(p: Path, header: list[str]) -> None:
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if unknown:
        raise InputError(f"{p}: unknown column {unknown[0]!r} (columns: {', '.join(CSV_COLUMNS)})")
    for needed in CSV_COLUMNS[:2]:
        if needed not in header:
            raise InputError(f"{p}: no {needed!r} column (columns: {', '.join(CSV_COLUMNS)})")
    if len(set(header)) != len(header):
        raise InputError(f"{p}: a column is named twice ({', '.join(header)})")


def list_tile_tags(
    store: StoreLike, *, tile_id: str | None = None, tag: str | None = None, labeler: str | None = None
) -> list[dict[str, Any]]:
    """The tags given to tiles, as dicts (tile_id, tag, tag_code, labeler, status, modified),
    filtered by tile, tag (name or code) and labeler."""
    with opened_store(store) as st:
        schema = require_tag_schema(st)
        code = None if tag is None else tag_codes(schema, [tag], str(st.uri))[0]
        rows = st.tile_tags(tile_id=tile_id, tag_code=code, labeler=labeler)
        return [
            {"tile_id": r.tile_id, "tag": _name(schema, r.tag_code), "tag_code": r.tag_code, "labeler": r.labeler,
             "status": r.status, "modified": r.modified}
            for r in rows
        ]  # fmt: skip


def _name(schema: TagSchema, code: int) -> str:
    return schema.get(code).name if code in schema else str(code)


def tag_name(store: LabelStore, row: TileTag) -> str:
    """The name of a row's tag (its code when the schema no longer has it)."""
    schema = store.read_tag_schema()
    return _name(schema, row.tag_code) if schema is not None else str(row.tag_code)

"""Tile tags in a GeoPackage store: the tag schema's table and the tiles' tags (attribute
tables QGIS shows), added with the first write of tags, so older stores open as they are."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from geolabel.labels.gpkg_file import ensure_tables, table_names
from geolabel.labels.store import META_TABLE, TAG_SCHEMA_TABLE, TILE_TAG_FIELDS, TILE_TAGS_TABLE
from geolabel.labels.tagschema import TagSchema, TileTag

TAG_TABLES_SQL = {
    TAG_SCHEMA_TABLE: (
        f"""CREATE TABLE IF NOT EXISTS {TAG_SCHEMA_TABLE} (code INTEGER PRIMARY KEY NOT NULL, name TEXT NOT NULL,
  color TEXT NOT NULL, names TEXT)""",
        "tile tags of this store (the tag schema)",
    ),
    TILE_TAGS_TABLE: (
        f"""CREATE TABLE IF NOT EXISTS {TILE_TAGS_TABLE} (tile_id TEXT NOT NULL, tag_code INTEGER NOT NULL,
  labeler TEXT NOT NULL, status TEXT NOT NULL, modified DATETIME NOT NULL, PRIMARY KEY (tile_id, tag_code, labeler))""",
        "tags given to whole tiles: one row per tile, tag and labeler",
    ),
}


def ensure_tag_tables(conn: sqlite3.Connection) -> None:
    ensure_tables(conn, TAG_TABLES_SQL)


def read_tag_schema(conn: sqlite3.Connection) -> TagSchema | None:
    row = conn.execute(f"SELECT value FROM {META_TABLE} WHERE key = 'tag_schema'").fetchone()
    return None if row is None else TagSchema.from_json(row[0])


def write_tag_schema(conn: sqlite3.Connection, schema: TagSchema) -> None:
    """The schema as geolabel_meta's ``tag_schema`` and as rows of the tag table (inside
    the caller's transaction)."""
    ensure_tag_tables(conn)
    conn.execute(f"INSERT OR REPLACE INTO {META_TABLE} VALUES ('tag_schema', ?)", (schema.to_json(),))
    conn.execute(f"DELETE FROM {TAG_SCHEMA_TABLE}")
    conn.executemany(
        f"INSERT INTO {TAG_SCHEMA_TABLE} VALUES (?, ?, ?, ?)",
        [(t.code, t.name, t.color, json.dumps(dict(t.names), ensure_ascii=False)) for t in schema],
    )


def tile_tags(conn: sqlite3.Connection, filters: dict[str, Any]) -> list[TileTag]:
    """Rows matching every filter that is not None (column -> value)."""
    if TILE_TAGS_TABLE not in table_names(conn):
        return []
    given = {k: v for k, v in filters.items() if v is not None}
    where = " AND ".join(f"{k} = ?" for k in given)
    sql = f"SELECT {', '.join(TILE_TAG_FIELDS)} FROM {TILE_TAGS_TABLE}" + (f" WHERE {where}" if where else "")
    rows = conn.execute(sql + " ORDER BY tile_id, tag_code, labeler", list(given.values())).fetchall()
    return [TileTag(str(r[0]), int(r[1]), str(r[2]), str(r[3]), str(r[4])) for r in rows]


def replace_tile_tags(
    conn: sqlite3.Connection, scope: Sequence[tuple[str, str]], rows: Sequence[TileTag], codes: Sequence[int] | None
) -> None:
    """See :meth:`geolabel.labels.store.LabelStore.replace_tile_tags` (inside the caller's transaction)."""
    ensure_tag_tables(conn)
    sql = f"DELETE FROM {TILE_TAGS_TABLE} WHERE tile_id = ? AND labeler = ?"
    if codes is not None:
        sql += f" AND tag_code IN ({', '.join(str(int(c)) for c in codes) or 'NULL'})"
    conn.executemany(sql, list(scope))
    conn.executemany(
        f"INSERT OR REPLACE INTO {TILE_TAGS_TABLE} ({', '.join(TILE_TAG_FIELDS)}) VALUES (?, ?, ?, ?, ?)",
        [(r.tile_id, r.tag_code, r.labeler, r.status, r.modified) for r in rows],
    )


def set_tile_tag_status(conn: sqlite3.Connection, tile_id: str, labeler: str, status: str) -> int:
    """See :meth:`geolabel.labels.store.LabelStore.set_tile_tag_status` (inside the caller's
    transaction; a store without tag tables has no tags to change)."""
    if TILE_TAGS_TABLE not in table_names(conn):
        return 0
    cursor = conn.execute(
        f"UPDATE {TILE_TAGS_TABLE} SET status = ? WHERE tile_id = ? AND labeler = ?", (status, tile_id, labeler)
    )
    return int(cursor.rowcount)

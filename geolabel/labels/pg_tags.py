"""Tile tags in a PostGIS store (tables and rights in :func:`geolabel.labels.pg_sql.tag_sql`):
the part of :class:`~geolabel.labels.pg_store.PostGISStore` that reads and writes them."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from geolabel.errors import AccessDeniedError, InputError
from geolabel.labels.pg_sql import tag_sql, time_text
from geolabel.labels.store import TILE_TAG_FIELDS, DamagedStoreError
from geolabel.labels.tagschema import TagSchema, TileTag

#: What the database lets each role do with tile tags (said when it refuses).
TAG_RULES = (
    "labelers give and take back only their own tags, as draft or submitted; reviewers change their status; "
    "the admin sets the tag schema and may do everything"
)


class PostGISTags:
    """Tile tags on PostGIS; mixed into PostGISStore, whose connection and helpers it uses."""

    uri: str
    groups: dict[str, str]

    @property
    def s(self) -> str:
        raise NotImplementedError

    def _execute(self, sql: Any, args: Any = None) -> Any:
        raise NotImplementedError

    def _executemany(self, sql: str, rows: Any) -> None:
        raise NotImplementedError

    def transaction(self) -> Any:
        raise NotImplementedError

    def _has_tag_tables(self) -> bool:
        row = self._execute("SELECT to_regclass(%s) IS NOT NULL", (f"{self.s}.geolabel_tile_tags",)).fetchone()
        return bool(row and row[0])

    def _ensure_tag_tables(self) -> None:
        """Add the tag tables to a project made before they existed (the schema's owner may)."""
        if self._has_tag_tables():
            return
        try:
            for sql in tag_sql(self.s, self.groups):
                self._execute(sql)
        except AccessDeniedError:
            raise AccessDeniedError(
                f"{self.uri}: project {self.s} was made before tile tags existed; its owner adds them by "
                "setting the tag schema once (`geolabel tags schema`)"
            ) from None

    def read_tag_schema(self) -> TagSchema | None:
        row = self._execute(
            f"SELECT value FROM {self.s}.geolabel_meta WHERE key = 'tag_schema'"
        ).fetchone()  # fmt: skip
        if row is None:
            return None
        try:
            return TagSchema.from_json(row[0])
        except (ValueError, InputError) as exc:
            raise DamagedStoreError(f"{self.uri}: the store's tag schema is damaged ({exc})") from None

    def write_tag_schema(self, schema: TagSchema) -> None:
        try:
            with self.transaction():
                self._ensure_tag_tables()
                self._execute(
                    f"INSERT INTO {self.s}.geolabel_meta VALUES ('tag_schema', %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (schema.to_json(),),
                )
                self._execute(f"DELETE FROM {self.s}.geolabel_tag_schema")
                self._executemany(
                    f"INSERT INTO {self.s}.geolabel_tag_schema VALUES (%s, %s, %s, %s)",
                    [(t.code, t.name, t.color, json.dumps(dict(t.names), ensure_ascii=False)) for t in schema],
                )
        except AccessDeniedError as exc:
            if "made before" in str(exc):
                raise
            raise AccessDeniedError(f"{self.uri}: only the project's admin sets the tag schema") from None

    def tile_tags(
        self, *, tile_id: str | None = None, tag_code: int | None = None, labeler: str | None = None
    ) -> list[TileTag]:
        if not self._has_tag_tables():
            return []
        given = {k: v for k, v in (("tile_id", tile_id), ("tag_code", tag_code), ("labeler", labeler)) if v is not None}
        where = " AND ".join(f"{k} = %s" for k in given)
        columns = ", ".join(time_text(f) if f == "modified" else f for f in TILE_TAG_FIELDS)
        sql = f"SELECT {columns} FROM {self.s}.geolabel_tile_tags" + (f" WHERE {where}" if where else "")
        rows = self._execute(sql + " ORDER BY tile_id, tag_code, labeler", list(given.values())).fetchall()
        return [TileTag(str(r[0]), int(r[1]), str(r[2]), str(r[3]), str(r[4])) for r in rows]

    def replace_tile_tags(
        self, scope: Sequence[tuple[str, str]], rows: Sequence[TileTag], *, codes: Sequence[int] | None = None
    ) -> None:
        delete = f"DELETE FROM {self.s}.geolabel_tile_tags WHERE tile_id = %s AND labeler = %s"
        if codes is not None:
            delete += " AND tag_code = ANY(%s)"
        insert = (
            f"INSERT INTO {self.s}.geolabel_tile_tags ({', '.join(TILE_TAG_FIELDS)}) VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (tile_id, tag_code, labeler) DO UPDATE SET status = excluded.status, "
            "modified = excluded.modified"
        )
        try:
            with self.transaction():
                self._ensure_tag_tables()
                if scope:
                    self._executemany(delete, list(_scoped(scope, codes)))
                if rows:
                    self._executemany(insert, [(r.tile_id, r.tag_code, r.labeler, r.status, r.modified) for r in rows])
        except AccessDeniedError as exc:
            if "made before" in str(exc):
                raise
            raise AccessDeniedError(f"{self.uri}: your role may not write these tags ({TAG_RULES})") from None

    def set_tile_tag_status(self, tile_id: str, labeler: str, status: str) -> int:
        """Only the status column: a reviewer may update that and nothing else."""
        if not self._has_tag_tables():
            return 0
        sql = f"UPDATE {self.s}.geolabel_tile_tags SET status = %s WHERE tile_id = %s AND labeler = %s"
        with self.transaction():
            return int(self._execute(sql, (status, tile_id, labeler)).rowcount)


def _scoped(scope: Sequence[tuple[str, str]], codes: Sequence[int] | None) -> Iterator[tuple[Any, ...]]:
    for tile_id, labeler in scope:
        yield (tile_id, labeler) if codes is None else (tile_id, labeler, [int(c) for c in codes])

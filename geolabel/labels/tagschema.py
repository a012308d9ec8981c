"""Tile tags: what a whole tile shows ("water", "paddy", "crossroads"), beside the polygons.

A :class:`TagSchema` is the project's list of tags (code, name, colour, names in other
languages) and its mode: ``multi`` (a tile may carry several tags) or ``single`` (one tag
per tile and labeler, as image classification wants). It is written like a class schema,
in TOML or JSON::

    # tags.toml
    name = "village scenes"
    mode = "multi"               # or "single"

    [[tags]]
    code = 1
    name = "water"
    color = "#2b7bd6"
    names = { zh = "水体" }

>>> tags = TagSchema.from_dict({"mode": "single", "tags": [
...     {"code": 1, "name": "water", "names": {"zh": "水体"}}, {"code": 2, "name": "paddy"}]})
>>> tags.resolve("水体").name, tags.resolve("PADDY").code, tags.is_single
('water', 2, True)
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geolabel import vocabulary
from geolabel.errors import InputError
from geolabel.labels.schema import MAX_CODE, SchemaError, check_color, check_name, check_names, read_schema_file

#: Keys of a tag table in a tag schema file.
TAG_KEYS = ("code", "name", "color", "colour", "names", "description")


@dataclass(frozen=True)
class Tag:
    """One tag of a tag schema."""

    code: int
    name: str
    color: str
    names: Mapping[str, str] = field(default_factory=dict)
    description: str = ""

    def label(self, lang: str | None = None) -> str:
        """The tag's name in ``lang`` when known (``zh``), else the English name."""
        return self.names.get(lang, self.name) if lang else self.name

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "name": self.name, "color": self.color}
        if self.names:
            out["names"] = dict(self.names)
        if self.description:
            out["description"] = self.description
        return out


@dataclass(frozen=True)
class TileTag:
    """One tag given to one tile by one labeler, with its review status (one of
    :data:`geolabel.vocabulary.STATUSES`) and when it was given (UTC ISO text)."""

    tile_id: str
    tag_code: int
    labeler: str
    status: str
    modified: str


class TagSchema:
    """An ordered set of tags looked up by code or by (any) name, and the project's mode."""

    def __init__(self, tags: Iterable[Tag], *, mode: str = "multi", name: str = "custom") -> None:
        from geolabel.errors import check_choice

        self.mode = check_choice(mode, vocabulary.TAG_MODES, "tag schema mode")
        self.name = name
        self._by_code: dict[int, Tag] = {}
        self._by_name: dict[str, Tag] = {}
        for tag in tags:
            if tag.code in self._by_code:
                raise SchemaError(f"tag code {tag.code} is used twice ({self._by_code[tag.code].name}, {tag.name})")
            self._by_code[tag.code] = tag
            for key in (tag.name, *tag.names.values()):
                other = self._by_name.get(key.casefold())
                if other is not None and other.code != tag.code:
                    raise SchemaError(f"tag name {key!r} is used by codes {other.code} and {tag.code}")
                self._by_name[key.casefold()] = tag
        if not self._by_code:
            raise SchemaError("a tag schema needs at least one tag")

    def __iter__(self) -> Iterator[Tag]:
        return iter(sorted(self._by_code.values(), key=lambda t: t.code))

    def __len__(self) -> int:
        return len(self._by_code)

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TagSchema) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"TagSchema({self.name!r}, {self.mode}, {[t.name for t in self]})"

    @property
    def is_single(self) -> bool:
        """One tag per tile and labeler (image classification)."""
        return self.mode == "single"

    @property
    def codes(self) -> list[int]:
        return sorted(self._by_code)

    def get(self, code: int) -> Tag:
        try:
            return self._by_code[int(code)]
        except (KeyError, ValueError, TypeError):
            raise InputError(f"unknown tag code {code!r}; known: {self.codes}") from None

    def find(self, value: Any) -> Tag | None:
        """The tag whose code or name (any language, any case) is ``value``, else None."""
        text = str(value).strip()
        if re.fullmatch(r"\d+", text):
            return self._by_code.get(int(text))
        return self._by_name.get(text.casefold()) or self._by_name.get(text.casefold().replace(" ", "_"))

    def resolve(self, value: Any) -> Tag:
        """Like :meth:`find` but raises an error listing the known tags."""
        tag = self.find(value)
        if tag is None:
            raise InputError(f"unknown tag {value!r}; known tags: {', '.join(t.name for t in self)}")
        return tag

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "mode": self.mode, "tags": [t.to_dict() for t in self]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "tag schema") -> TagSchema:
        """Build a tag schema from parsed TOML/JSON, checking every key (errors name the key)."""
        if not isinstance(data, Mapping):
            raise SchemaError(f"{source}: expected a table with a 'tags' list")
        unknown = set(data) - {"name", "mode", "tags"}
        if unknown:
            raise SchemaError(f"{source}: unknown key {sorted(unknown)[0]!r} (allowed: name, mode, tags)")
        mode = data.get("mode", "multi")
        if mode not in vocabulary.TAG_MODES:
            raise SchemaError(f"{source}: mode = {mode!r}; must be one of {', '.join(vocabulary.TAG_MODES)}")
        raw = data.get("tags")
        if not isinstance(raw, list) or not raw:
            raise SchemaError(f"{source}: 'tags' must be a non-empty list of tag tables")
        parsed = [_parse_tag(item, f"{source}: tags[{i}]") for i, item in enumerate(raw)]
        seen: dict[int, int] = {}
        for i, tag in enumerate(parsed):
            if tag.code in seen:
                first = seen[tag.code]
                raise SchemaError(f"{source}: tags[{i}].code: tag code {tag.code} is used twice (tags[{first}])")
            seen[tag.code] = i
        try:
            return cls(parsed, mode=str(mode), name=str(data.get("name", "custom")))
        except SchemaError as exc:
            raise SchemaError(f"{source}: {exc}") from None

    @classmethod
    def from_json(cls, text: str) -> TagSchema:
        return cls.from_dict(json.loads(text))


def _parse_tag(item: Any, where: str) -> Tag:
    if not isinstance(item, Mapping):
        raise SchemaError(f"{where}: expected a table with code, name, color")
    extra = set(item) - set(TAG_KEYS)
    if extra:
        raise SchemaError(f"{where}.{sorted(extra)[0]}: unknown key (allowed: {', '.join(sorted(TAG_KEYS))})")
    for key in ("code", "name"):
        if key not in item:
            raise SchemaError(f"{where}: missing key {key!r}")
    code = item["code"]
    if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code <= MAX_CODE:
        raise SchemaError(f"{where}.code: {code!r} must be an integer from 0 to {MAX_CODE}")
    return Tag(
        code,
        check_name(item["name"], f"{where}.name"),
        check_color(item.get("color", item.get("colour", "#808080")), f"{where}.color"),
        check_names(item.get("names", {}), f"{where}.names"),
        str(item.get("description", "")),
    )


def load_tag_schema(path: str | Path) -> TagSchema:
    """A tag schema read from a ``.toml`` or ``.json`` file."""
    return TagSchema.from_dict(read_schema_file(path, "tag schema"), source=str(path))

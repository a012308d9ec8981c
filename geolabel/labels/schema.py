"""Land-cover classes: code, name, colour, overlap priority and localized names.

One :class:`ClassSchema` object is used everywhere (label store, QA, export, plugin
styling). The default schema covers the classes of a village land-cover job; a TOML or
JSON file replaces or extends it::

    # myschema.toml
    extends = "default"          # omit to replace the default classes entirely

    [[classes]]
    code = 8
    name = "greenhouse"
    color = "#d9d9d9"
    priority = 65                # higher priority is cut out of lower where they overlap
    names = { zh = "大棚" }

>>> schema = default_schema()
>>> schema.resolve("Water").code, schema.resolve(2).name, schema.resolve("耕地").name
(1, 'farmland', 'farmland')
>>> schema.priority(1) > schema.priority(3) > schema.priority(4) > schema.priority(2)
True
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geolabel.errors import InputError

_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

#: Codes 0..254 are usable; 255 marks nodata/unlabelled pixels in class masks.
MAX_CODE = 254


class SchemaError(InputError):
    """A class schema file or definition is wrong; the message names the file and key."""


@dataclass(frozen=True)
class LandCoverClass:
    """One land-cover class."""

    code: int
    name: str
    color: str
    priority: int
    names: Mapping[str, str] = field(default_factory=dict)
    description: str = ""

    def label(self, lang: str | None = None) -> str:
        """The class name in ``lang`` when known (``zh``), else the English name."""
        return self.names.get(lang, self.name) if lang else self.name

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "name": self.name, "color": self.color, "priority": self.priority}
        if self.names:
            out["names"] = dict(self.names)
        if self.description:
            out["description"] = self.description
        return out


_DEFAULT = [
    LandCoverClass(1, "water", "#2b7bd6", 80, {"zh": "水体"}, "rivers, ponds, lakes, reservoirs, canals"),
    LandCoverClass(3, "building", "#d62728", 70, {"zh": "房屋建筑"}, "houses, sheds, greenhouses with roofs"),
    LandCoverClass(4, "road", "#7f7f7f", 60, {"zh": "道路"}, "paved and unpaved roads, lanes, farm tracks"),
    LandCoverClass(2, "farmland", "#f2d43d", 50, {"zh": "耕地"}, "paddy, dry land, vegetable plots, fallow fields"),
    LandCoverClass(5, "forest", "#1a6b2f", 40, {"zh": "林地"}, "woodland, orchards, tree rows wider than the MMU"),
    LandCoverClass(6, "grassland", "#9ee07a", 30, {"zh": "草地"}, "grass, meadows, mixed low vegetation"),
    LandCoverClass(7, "bare_land", "#c8a27a", 20, {"zh": "裸地"}, "bare soil, sand, construction sites"),
    LandCoverClass(0, "unclassified", "#000000", 0, {"zh": "未分类"}, "not yet classified"),
]


class ClassSchema:
    """An ordered set of land-cover classes, looked up by code or by (any) name."""

    def __init__(self, classes: Iterable[LandCoverClass], *, name: str = "custom") -> None:
        self.name = name
        self._by_code: dict[int, LandCoverClass] = {}
        self._by_name: dict[str, LandCoverClass] = {}
        for cls in classes:
            if cls.code in self._by_code:
                raise SchemaError(f"class code {cls.code} is used twice ({self._by_code[cls.code].name}, {cls.name})")
            self._by_code[cls.code] = cls
            for key in (cls.name, *cls.names.values()):
                other = self._by_name.get(key.casefold())
                if other is not None and other.code != cls.code:
                    raise SchemaError(f"class name {key!r} is used by codes {other.code} and {cls.code}")
                self._by_name[key.casefold()] = cls
        if not self._by_code:
            raise SchemaError("a schema needs at least one class")

    def __iter__(self) -> Iterator[LandCoverClass]:
        return iter(sorted(self._by_code.values(), key=lambda c: c.code))

    def __len__(self) -> int:
        return len(self._by_code)

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ClassSchema) and self.to_dict()["classes"] == other.to_dict()["classes"]

    def __repr__(self) -> str:
        return f"ClassSchema({self.name!r}, {[c.name for c in self]})"

    @property
    def codes(self) -> list[int]:
        return sorted(self._by_code)

    def get(self, code: int) -> LandCoverClass:
        try:
            return self._by_code[int(code)]
        except (KeyError, ValueError, TypeError):
            raise InputError(f"unknown class code {code!r}; known: {self.codes}") from None

    def find(self, value: Any) -> LandCoverClass | None:
        """The class whose code or name (any language, any case) is ``value``, else None."""
        if value is None:
            return None
        if isinstance(value, (int,)) or (isinstance(value, float) and value.is_integer()):
            return self._by_code.get(int(value))
        text = str(value).strip()
        if re.fullmatch(r"[+-]?\d+", text):
            return self._by_code.get(int(text))
        return self._by_name.get(text.casefold()) or self._by_name.get(text.casefold().replace(" ", "_"))

    def resolve(self, value: Any) -> LandCoverClass:
        """Like :meth:`find` but raises a clear error for unknown classes."""
        cls = self.find(value)
        if cls is None:
            names = ", ".join(f"{c.code}={c.name}" for c in self)
            raise InputError(f"unknown class {value!r}; known classes: {names}")
        return cls

    def priority(self, code: int) -> int:
        return self.get(code).priority

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "classes": [c.to_dict() for c in self]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "schema") -> ClassSchema:
        """Build a schema from parsed TOML/JSON, checking every key (errors name the key)."""
        if not isinstance(data, Mapping):
            raise SchemaError(f"{source}: expected a table with a 'classes' list")
        unknown = set(data) - {"name", "extends", "classes"}
        if unknown:
            raise SchemaError(f"{source}: unknown key {sorted(unknown)[0]!r} (allowed: name, extends, classes)")
        extends = data.get("extends")
        if extends not in (None, "default"):
            raise SchemaError(f"{source}: extends = {extends!r}; only 'default' can be extended")
        raw = data.get("classes")
        if not isinstance(raw, list) or not raw:
            raise SchemaError(f"{source}: 'classes' must be a non-empty list of class tables")
        parsed = [_parse_class(item, f"{source}: classes[{i}]") for i, item in enumerate(raw)]
        seen: dict[int, int] = {}
        for i, c in enumerate(parsed):
            if c.code in seen:
                raise SchemaError(
                    f"{source}: classes[{i}].code: class code {c.code} is used twice (classes[{seen[c.code]}])"
                )
            seen[c.code] = i
        classes: dict[int, LandCoverClass] = {}
        if extends == "default":
            classes = {c.code: c for c in _DEFAULT}
        for c in parsed:
            classes[c.code] = c  # a class with a default code replaces that default class
        return cls(classes.values(), name=str(data.get("name", "custom")))

    @classmethod
    def from_json(cls, text: str) -> ClassSchema:
        return cls.from_dict(json.loads(text))


def _parse_class(item: Any, where: str) -> LandCoverClass:
    if not isinstance(item, Mapping):
        raise SchemaError(f"{where}: expected a table with code, name, color, priority")
    allowed = {"code", "name", "color", "colour", "priority", "names", "description"}
    extra = set(item) - allowed
    if extra:
        raise SchemaError(f"{where}.{sorted(extra)[0]}: unknown key (allowed: {', '.join(sorted(allowed))})")
    for key in ("code", "name"):
        if key not in item:
            raise SchemaError(f"{where}: missing key {key!r}")
    code = item["code"]
    if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code <= MAX_CODE:
        raise SchemaError(f"{where}.code: {code!r} must be an integer from 0 to {MAX_CODE} (255 marks nodata)")
    name = check_name(item["name"], f"{where}.name")
    color = check_color(item.get("color", item.get("colour", "#808080")), f"{where}.color")
    priority = item.get("priority", 10)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise SchemaError(f"{where}.priority: {priority!r} must be an integer (higher wins in overlaps)")
    names = check_names(item.get("names", {}), f"{where}.names")
    return LandCoverClass(code, name, color, priority, names, str(item.get("description", "")))


def check_name(name: Any, where: str) -> str:
    """A class or tag name: lower-case letters, digits and ``_``."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise SchemaError(f"{where}: {name!r} must be lower-case letters, digits and _ (e.g. 'bare_land')")
    return name


def check_color(color: Any, where: str) -> str:
    """A ``#rrggbb`` colour, lower-cased."""
    if not isinstance(color, str) or not _COLOR.match(color):
        raise SchemaError(f"{where}: {color!r} must be '#rrggbb'")
    return color.lower()


def check_names(names: Any, where: str) -> dict[str, str]:
    """Names in other languages: a table of language code -> name."""
    if not isinstance(names, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in names.items()):
        raise SchemaError(f"{where}: must map language codes to names, e.g. {{ zh = '水体' }}")
    return dict(names)


def default_schema() -> ClassSchema:
    """The built-in land-cover schema (water, building, road, farmland, forest, ...)."""
    return ClassSchema(_DEFAULT, name="default")


def load_schema(path: str | Path | None) -> ClassSchema:
    """The default schema (``path`` None) or one read from a ``.toml`` or ``.json`` file."""
    if path is None:
        return default_schema()
    return ClassSchema.from_dict(read_schema_file(path), source=str(path))


def read_schema_file(path: str | Path, what: str = "schema") -> Any:
    """The parsed content of a ``.toml`` or ``.json`` schema file (errors name the file)."""
    from geolabel.files import check_input_file

    p = Path(path)
    if not p.exists():
        raise SchemaError(f"{p}: no such {what} file")
    check_input_file(p, f"{what} file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SchemaError(
            f"{p}: is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); save it as UTF-8"
        ) from None
    if p.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise SchemaError(f"{p}: line {exc.lineno}: {exc.msg}") from None
    if p.suffix.lower() == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover
            import tomli as tomllib
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SchemaError(f"{p}: {exc}") from None
    raise SchemaError(f"{p}: {what} files must be .toml or .json")

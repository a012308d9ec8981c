"""Import land-cover polygons from GeoJSON, Shapefile, GeoPackage or FlatGeobuf into a store.

Each source is read, its CRS established (never assumed), classes mapped to the store's
schema, geometries repaired and exploded into one polygon per label, and reprojected to
the store CRS. Features that cannot become labels are rejected with a reason. All sources
of one import are written in a single transaction: if anything fails, the store is left
as it was.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from geolabel.errors import CRSError, InputError, check_choice, first_line

if TYPE_CHECKING:
    from geolabel.labels.schema import ClassSchema
    from geolabel.labels.store import LabelStore

#: How many class values an import report spells out.
MAX_CLASS_VALUES_SHOWN = 12

#: Field names tried, in order, when no class field is named (the first one holding values wins).
CLASS_FIELD_CANDIDATES = (
    "class_code",
    "class_name",
    "class",
    "classname",
    "label",
    "landcover",
    "land_cover",
    "landuse",
    "lulc",
    "category",
)
#: Names of the non-polygon shapely geometry types (by type id).
TYPE_NAMES = {0: "Point", 1: "LineString", 2: "LinearRing", 4: "MultiPoint", 5: "MultiLineString", 7: "collection"}


@dataclass
class ImportReport:
    """Per-source counts of what happened to its features."""

    source: str
    features: int = 0
    imported: int = 0  # labels written (after exploding)
    repaired: int = 0
    exploded: int = 0  # multi-part features that became several labels
    rejected: Counter[str] = field(default_factory=Counter)
    repairs: Counter[str] = field(default_factory=Counter)
    #: Source class value -> the class it became and how: "water (by code)", "forest (by class map)"
    classes: dict[str, str] = field(default_factory=dict)

    @property
    def n_rejected(self) -> int:
        return sum(self.rejected.values())

    def line(self) -> str:
        text = (
            f"{self.source}: {self.features} features -> {self.imported} labels "
            f"({self.repaired} repaired, {self.exploded} multi-part exploded), {self.n_rejected} rejected"
        )
        if self.rejected:
            text += ": " + "; ".join(f"{n} {reason}" for reason, n in self.rejected.most_common())
        return text

    def class_line(self) -> str:
        """Which class each source value became, and by what rule (code, name, class map)."""
        items = [f"{value} -> {how}" for value, how in self.classes.items()]
        more = len(items) - MAX_CLASS_VALUES_SHOWN
        if more > 0:
            items = [*items[:MAX_CLASS_VALUES_SHOWN], f"... {more} more"]
        return ", ".join(items)


class NoClassFieldError(InputError):
    """A vector file has no field holding classes (and none was named)."""


def parse_class_map(text: str | Mapping[str, Any] | None) -> dict[str, str]:
    """``'wood=forest,meadow=grassland,5=1'`` -> {'wood': 'forest', ...} (keys case-folded)."""
    if text is None:
        return {}
    if isinstance(text, Mapping):
        return {str(k).strip().casefold(): str(v).strip() for k, v in text.items()}
    out: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        key, _, value = item.rpartition("=")  # source values may contain "=" (OSM tags)
        key, value = key.strip().casefold(), value.strip()
        if not key or not value:
            raise InputError(
                f"`class_map` entry {item!r} must look like source_value=class (e.g. wood=forest)",
                params=("class_map",),
            )
        if out.get(key, value) != value:
            raise InputError(
                f"`class_map` maps {key!r} twice ({out[key]!r} and {value!r}); keep one", params=("class_map",)
            )
        out[key] = value
    return out


def check_class_map(mapping: Mapping[str, str], schema: ClassSchema) -> None:
    """Refuse a class map whose target is no class of ``schema`` (a typo would reject every
    feature it was meant to save)."""
    for key, target in mapping.items():
        if schema.find(target) is None:
            names = ", ".join(f"{c.code}={c.name}" for c in schema)
            raise InputError(
                f"`class_map`: {key}={target}: {target!r} is no class of the schema (classes: {names})",
                params=("class_map",),
            )


def _geojson_declares_crs(path: Path) -> bool:
    """Whether a GeoJSON file has a (pre-RFC 7946) ``crs`` member."""
    with open(path, "rb") as fh:
        return b'"crs"' in fh.read()


#: A vector source: a path, or (path, layer name) for one layer of a multi-layer file.
Source: TypeAlias = "str | os.PathLike[str] | tuple[str | os.PathLike[str], str | None]"


def source_and_layer(source: Source, layer: str | None = None) -> tuple[Path, str | None]:
    """(path, layer name) of a source; ``layer`` applies to plain paths."""
    if isinstance(source, tuple):
        path, name = source
        return Path(path), name
    return Path(source), layer


def source_label(source: Source) -> str:
    path, layer = source_and_layer(source)
    return f"{path}|layername={layer}" if layer else str(path)


def read_source(path: Path, *, layer: str | None = None) -> Any:
    """Read a vector file into a GeoDataFrame, with a clear error for anything unreadable."""
    import pyogrio

    from geolabel.files import check_input_file

    check_input_file(path, "vector file")
    try:
        layers = pyogrio.list_layers(path)
    except Exception as exc:
        raise InputError(f"{path}: not a vector file GDAL can read ({first_line(exc, path)})") from None
    names = [str(row[0]) for row in layers]
    if layer is None:
        candidates = [row for row in layers if row[1] is not None]
        if len(candidates) > 1:
            raise InputError(
                f"{path}: has several layers ({', '.join(names)}); choose one with `layer`", params=("layer",)
            )
        if not candidates:
            raise InputError(f"{path}: has no layer with geometries")
        layer = str(candidates[0][0])
    elif layer not in names:
        raise InputError(f"{path}: has no layer {layer!r} (layers: {', '.join(names)})")
    try:
        return pyogrio.read_dataframe(path, layer=layer)
    except Exception as exc:
        raise InputError(f"{path}: cannot read layer {layer!r} ({first_line(exc, path)})") from None


def find_class_field(frame: Any, class_field: str | None, path: Path) -> str:
    """The column holding the classes: ``class_field`` (any case), else the first of
    CLASS_FIELD_CANDIDATES present with a value in some feature (OSM exports carry empty
    ``landuse`` columns next to the field that matters)."""
    columns = {c.casefold(): c for c in frame.columns if c != frame.geometry.name}
    if class_field is not None:
        if class_field.casefold() not in columns:
            raise InputError(f"{path}: has no field {class_field!r} (fields: {_listing(list(columns.values()))})")
        return str(columns[class_field.casefold()])
    present = [columns[c] for c in CLASS_FIELD_CANDIDATES if c in columns]
    found = next((c for c in present if _has_values(frame[c])), None)
    if found is None:
        empty = f"; {', '.join(present)} {'is' if len(present) == 1 else 'are'} empty everywhere" if present else ""
        raise NoClassFieldError(
            f"{path}: no class field found (tried {', '.join(CLASS_FIELD_CANDIDATES)}{empty}); "
            "name one with `class_field` or give every feature one class with `single_class` "
            f"(fields: {_listing(list(columns.values()))})",
            params=("class_field", "single_class"),
        )
    return str(found)


def _listing(names: Sequence[str], limit: int = 15) -> str:
    """``a, b, c`` (the first ``limit`` names, then how many more), or ``none``."""
    more = f", ... {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more if names else "none"


def _has_values(column: Any) -> bool:
    """Whether a column holds a class value in some row (not only None, NaN or blanks)."""
    return any(clean_text(v) is not None for v in column.unique())


def declared_crs(frame: Any, path: Path) -> tuple[Any, str]:
    """The CRS the file gives its coordinates and how (``"declared"``, or ``"RFC 7946"`` for
    a GeoJSON without a ``crs`` member in longitude/latitude), or (None, why it gives none).

    GDAL reports WGS 84 for a GeoJSON without a ``crs`` member and for one whose member it
    cannot read, so a geographic CRS the coordinates cannot be in is no CRS: it would put
    the labels at infinity.
    """
    from geolabel.crs import crs_label, parse_crs

    if frame.crs is None:
        return None, "has no CRS (e.g. a Shapefile without .prj)"
    crs = parse_crs(frame.crs, what=f"{path}: CRS")
    is_geojson = path.suffix.lower() in (".geojson", ".json")
    has_member = is_geojson and _geojson_declares_crs(path)
    outside = _outside_lonlat(frame.geometry.values.to_numpy()) if crs.is_geographic else None
    if outside is not None:
        where = f"its coordinates (e.g. x={outside[0]:.1f}, y={outside[1]:.1f}) are not longitude/latitude"
        if is_geojson and not has_member:
            return None, f"declares no CRS, and {where} as RFC 7946 GeoJSON requires"
        if is_geojson:
            return None, f"its crs member is {crs_label(crs)} or one GDAL cannot read, but {where}"
        return None, f"declares {crs_label(crs)}, but {where}"
    if is_geojson and not has_member:
        return parse_crs("OGC:CRS84"), "RFC 7946"
    return crs, "declared"


def _outside_lonlat(geoms: Any) -> tuple[float, float] | None:
    """The lower left corner of the finite coordinates when some cannot be longitudes and
    latitudes (None when all can)."""
    import shapely

    xy = shapely.get_coordinates(geoms)
    xy = xy[np.isfinite(xy).all(axis=1)]
    if not ((np.abs(xy[:, 0]) > 180.5) | (np.abs(xy[:, 1]) > 90.5)).any():
        return None
    return float(xy[:, 0].min()), float(xy[:, 1].min())


def source_crs(frame: Any, path: Path, src_crs: Any) -> Any:
    """The CRS of a source: the file's own (:func:`declared_crs`), or ``src_crs`` when the
    file gives none or only RFC 7946's default."""
    from geolabel.crs import crs_label, parse_crs, same_crs

    if src_crs is not None:
        src_crs = parse_crs(src_crs, param="src_crs")
    crs, how = declared_crs(frame, path)
    if crs is None:
        if src_crs is None:
            raise CRSError(f"{path}: {how}; pass `src_crs` with the CRS of its coordinates", params=("src_crs",))
        return src_crs
    if src_crs is None or how == "RFC 7946":
        return src_crs if src_crs is not None else crs
    if not same_crs(crs, src_crs):
        raise CRSError(
            f"{path}: declares {crs_label(crs)} but `src_crs` says {crs_label(src_crs)}; "
            "drop `src_crs` to use the file's CRS",
            params=("src_crs",),
        )
    return crs


def prepare_source(
    path: str | os.PathLike[str],
    *,
    schema: ClassSchema,
    store_crs: Any,
    class_field: str | None = None,
    class_map: Mapping[str, str] | None = None,
    single_class: str | None = None,
    src_crs: Any = None,
    layer: str | None = None,
    labeler: str | None = None,
    team: str | None = None,
    status: str | None = None,
) -> tuple[Any, ImportReport]:
    """Read one source and turn it into store-ready labels (GeoDataFrame in store CRS)."""
    p = Path(path)
    report = ImportReport(source=p.name)
    frame = read_source(p, layer=layer)
    report.features = len(frame)
    crs = source_crs(frame, p, src_crs)
    codes = source_classes(
        frame, p, schema=schema, class_field=class_field, class_map=class_map, single_class=single_class, report=report
    )
    geoms = frame.geometry.values.to_numpy()
    idx = _polygon_rows(geoms, codes >= 0, report)
    _check_area_of_use(p, geoms[idx], crs, store_crs)
    parts, part_of = _store_polygons(geoms[idx], crs, store_crs, report)
    src_rows = idx[part_of]
    fields = {"labeler": labeler, "team": team, "status": status}
    return _label_frame(frame, src_rows, parts, codes[src_rows], store_crs, fields), report


def source_classes(
    frame: Any,
    path: Path,
    *,
    schema: ClassSchema,
    class_field: str | None = None,
    class_map: Mapping[str, str] | None = None,
    single_class: str | None = None,
    report: ImportReport | None = None,
) -> Any:
    """The class code of every feature, -1 where there is none (the reason counted in
    ``report.rejected``; ``report.classes`` says how each value was read)."""
    import pandas as pd

    report = report if report is not None else ImportReport(source=path.name)
    if single_class is not None:
        return np.full(len(frame), single_class_code(schema, single_class), dtype=np.int64)
    if len(frame) == 0:  # an empty file needs no class field
        return np.zeros(0, dtype=np.int64)
    field_name = find_class_field(frame, class_field, path)
    mapping = dict(class_map or {})
    keys, uniques = pd.factorize(frame[field_name], use_na_sentinel=True)
    table = np.array([_class_of(v, schema, mapping, report) for v in uniques.tolist()] + [-1])
    codes = table[keys]  # key -1 (missing value) picks the trailing -1
    rejected = np.bincount(keys[(keys >= 0) & (codes < 0)], minlength=len(uniques))
    for value, n in zip(uniques.tolist(), rejected.tolist()):
        if n:
            report.rejected[_rejection(value, field_name)] += n
    if (keys < 0).any():
        report.rejected[f"empty class field {field_name!r}"] += int((keys < 0).sum())
    return codes.astype(np.int64)


def single_class_code(schema: ClassSchema, name: str) -> int:
    """The code of the class ``single_class`` names (an error names the argument)."""
    try:
        return int(schema.resolve(name).code)
    except InputError as exc:
        raise InputError(f"`single_class`: {exc}", params=("single_class",)) from None


def _class_of(value: Any, schema: ClassSchema, mapping: Mapping[str, str], report: ImportReport) -> int:
    """The code of one source value (-1: none), recording in ``report`` how it was read."""
    key = str(value).strip().casefold() if value is not None else ""
    target: Any = mapping.get(key, value) if key else value
    cls = schema.find(target)
    if cls is None:
        return -1
    if key in mapping:
        how = "class map"
    elif isinstance(target, (int, float)) or re.fullmatch(r"[+-]?\d+", str(target).strip()):
        how = "code"
    else:
        how = "name"
    shown = repr(value) if isinstance(value, str) else f"{value:g}" if isinstance(value, float) else str(value)
    report.classes[shown] = f"{cls.name} (by {how})"
    return int(cls.code)


def _rejection(value: Any, field_name: str) -> str:
    if value is None or str(value).strip() == "":
        return f"empty class field {field_name!r}"
    return f"unknown class {value!r}"


def _polygon_rows(geoms: Any, ok: Any, report: ImportReport) -> Any:
    """Indices of the features with a class and a polygonal geometry (the rest counted)."""
    import shapely

    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if (missing & ok).any():
        report.rejected["empty geometry"] += int((missing & ok).sum())
    ok = ok & ~missing
    types = shapely.get_type_id(geoms)
    polygonal = np.isin(types, (3, 6, 7))
    for t in np.unique(types[ok & ~polygonal]):
        report.rejected[f"not a polygon ({TYPE_NAMES.get(int(t), 'geometry')})"] += int(
            (types[ok & ~polygonal] == t).sum()
        )
    return np.flatnonzero(ok & polygonal)


def _check_area_of_use(path: Path, geoms: Any, crs: Any, store_crs: Any) -> None:
    """Refuse labels lying far outside the area of use of the store's CRS (areas there are
    distorted by far more than a labeler's error)."""
    from geolabel.crs import outside_area_of_use, same_crs
    from geolabel.errors import CRSError

    if len(geoms) and not same_crs(crs, store_crs):
        problem = outside_area_of_use(geoms, crs, store_crs)
        if problem:
            raise CRSError(f"{path}: {problem}; import into a store in the data's CRS or one that covers it")


def _store_polygons(geoms: Any, crs: Any, store_crs: Any, report: ImportReport) -> tuple[Any, Any]:
    """Reproject, repair and explode into single polygons: (polygons, index of their source)."""
    import shapely

    from geolabel.crs import reproject_geometries, same_crs
    from geolabel.geom import polygonal_parts
    from geolabel.labels.repair import repair

    work = shapely.force_2d(geoms)
    if not same_crs(crs, store_crs):
        work = reproject_geometries(work, crs, store_crs)
    fixed, changed, reasons = repair(work)
    # collections: drop non-polygonal members, that is a repair too
    coll = shapely.get_type_id(fixed) == 7
    for k in np.flatnonzero(coll):
        reasons[k] = reasons[k] or "non-polygonal parts dropped"
        changed[k] = True
    beyond = shapely.is_missing(fixed)
    for k in np.flatnonzero(beyond):
        report.rejected[f"invalid beyond repair ({_reason_kind(reasons[k])})"] += 1
    keep = ~beyond
    for k in np.flatnonzero(changed & keep):
        report.repairs[_reason_kind(reasons[k])] += 1
    report.repaired = int((changed & keep).sum())
    kept = np.flatnonzero(keep)
    parts, part_of = polygonal_parts(fixed[keep])
    nonzero = shapely.area(parts) > 0
    parts, part_of = parts[nonzero], part_of[nonzero]
    counts = np.bincount(part_of, minlength=len(kept))
    report.exploded = int((counts > 1).sum())
    lost = np.flatnonzero(counts == 0)
    if len(lost):
        report.rejected["no area left after repair"] += len(lost)
    report.imported = len(parts)
    return parts, kept[part_of]


def _label_frame(
    frame: Any, rows: Any, parts: Any, codes: Any, store_crs: Any, defaults: Mapping[str, str | None]
) -> Any:
    """The labels as a GeoDataFrame: one row per polygon, attributes from source ``rows``
    (``defaults`` win over the source's labeler, team and status fields)."""
    import geopandas as gpd

    columns = {c.casefold(): c for c in frame.columns if c != frame.geometry.name}

    def source_values(name: str) -> list[str | None]:
        column = columns.get(name)
        if column is None:
            return [None] * len(rows)
        return [clean_text(v) for v in frame[column].to_numpy(dtype=object)[rows]]

    out: dict[str, Any] = {"class_code": codes}
    for name, default in defaults.items():
        out[name] = [default] * len(rows) if default is not None else source_values(name)
    for name in ("tile_id", "comment"):
        out[name] = source_values(name)
    out["source"] = ["imported"] * len(rows)
    return gpd.GeoDataFrame(out, geometry=list(parts), crs=store_crs)


def clean_text(value: Any) -> str | None:
    """A stripped string, or None for missing values (None, NaN, empty)."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = str(value).strip()
    return text or None


def _reason_kind(reason: str | None) -> str:
    """'Self-intersection[12.5 3.1]' -> 'Self-intersection'."""
    if not reason:
        return "invalid"
    return reason.split("[")[0].strip()


def import_labels(
    store: LabelStore,
    sources: Sequence[Source],
    *,
    class_field: str | None = None,
    class_map: str | Mapping[str, str] | None = None,
    single_class: str | None = None,
    src_crs: Any = None,
    layer: str | None = None,
    labeler: str | None = None,
    team: str | None = None,
    status: str | None = None,
) -> list[ImportReport]:
    """Import every source into ``store`` in one transaction; returns one report per source.

    A source is a path or a (path, layer name) pair; ``layer`` names the layer of plain
    paths.

    Classes come from ``class_field`` (default: the first of CLASS_FIELD_CANDIDATES),
    mapped through ``class_map``, or ``single_class`` gives every feature one class
    (single-class sources such as building footprints).

    Sources are all read and checked before anything is written, and the writes share one
    transaction, so a failure leaves the store unchanged.
    """
    from geolabel.labels.store import STATUSES

    if status is not None:
        check_choice(status, STATUSES, param="status")
    mapping = parse_class_map(class_map)
    check_class_map(mapping, store.schema)
    prepared = [
        prepare_source(
            path,
            schema=store.schema,
            store_crs=store.crs,
            class_field=class_field,
            class_map=mapping,
            single_class=single_class,
            src_crs=src_crs,
            layer=name,
            labeler=labeler,
            team=team,
            status=status,
        )
        for path, name in (source_and_layer(s, layer) for s in sources)
    ]
    with store.transaction():
        for frame, _ in prepared:
            store.add(frame)
    return [report for _, report in prepared]

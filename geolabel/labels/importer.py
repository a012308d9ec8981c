"""Import land-cover polygons from GeoJSON, Shapefile, GeoPackage or FlatGeobuf into a store.

Each source is read, its CRS established (never assumed), classes mapped to the store's
schema, geometries repaired and exploded into one polygon per label, and reprojected to
the store CRS. Features that cannot become labels are rejected with a reason. All sources
of one import are written in a single transaction: if anything fails, the store is left
as it was.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np

from geolabel.errors import CRSError, InputError, MissingFileError, check_choice, first_line

#: Field names tried, in order, when no --class-field is given.
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


def parse_class_map(text: str | Mapping[str, Any] | None) -> dict[str, str]:
    """``'wood=forest,meadow=grassland,5=1'`` -> {'wood': 'forest', ...} (keys case-folded)."""
    if text is None:
        return {}
    if isinstance(text, Mapping):
        return {str(k).strip().casefold(): str(v).strip() for k, v in text.items()}
    out = {}
    for item in text.split(","):
        if not item.strip():
            continue
        if "=" not in item:
            raise InputError(f"--class-map entry {item!r} must look like source_value=class (e.g. wood=forest)")
        key, value = item.rsplit("=", 1)  # source values may contain "=" (OSM tags)
        out[key.strip().casefold()] = value.strip()
    return out


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

    if not path.exists():
        raise MissingFileError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a vector file")
    try:
        layers = pyogrio.list_layers(path)
    except Exception as exc:
        raise InputError(f"{path}: not a vector file GDAL can read ({first_line(exc, path)})") from None
    names = [str(row[0]) for row in layers]
    if layer is None:
        candidates = [row for row in layers if row[1] is not None]
        if len(candidates) > 1:
            raise InputError(f"{path}: has several layers ({', '.join(names)}); choose one with --layer")
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
    CLASS_FIELD_CANDIDATES present."""
    columns = {c.casefold(): c for c in frame.columns if c != frame.geometry.name}
    if class_field is not None:
        if class_field.casefold() not in columns:
            raise InputError(f"{path}: has no field {class_field!r} (fields: {', '.join(columns.values())})")
        return str(columns[class_field.casefold()])
    found = next((columns[c] for c in CLASS_FIELD_CANDIDATES if c in columns), None)
    if found is None:
        raise InputError(
            f"{path}: no class field found (tried {', '.join(CLASS_FIELD_CANDIDATES)}); "
            f"name one with --class-field (fields: {', '.join(columns.values()) or 'none'})"
        )
    return str(found)


def source_crs(frame: Any, path: Path, src_crs: Any) -> Any:
    """The CRS of a source: the file's own, or ``src_crs`` when the file declares none."""
    from geolabel.crs import crs_label, parse_crs, same_crs

    declared = frame.crs
    is_geojson = path.suffix.lower() in (".geojson", ".json")
    if is_geojson and declared is not None and not _geojson_declares_crs(path):
        # GDAL reports WGS 84 for any GeoJSON without a crs member (RFC 7946). Only
        # trust that if the coordinates are longitudes and latitudes.
        if src_crs is not None:
            return parse_crs(src_crs, what="--src-crs")
        if len(frame):
            minx, miny, maxx, maxy = frame.total_bounds
            if not (-180.5 <= minx <= maxx <= 180.5 and -90.5 <= miny <= maxy <= 90.5):
                raise CRSError(
                    f"{path}: declares no CRS, and its coordinates (e.g. x={minx:.1f}, y={miny:.1f}) are not "
                    "longitude/latitude as RFC 7946 GeoJSON requires; pass --src-crs with the CRS they are in"
                )
        return parse_crs("OGC:CRS84")
    if declared is None:
        if src_crs is None:
            raise CRSError(f"{path}: has no CRS (e.g. a Shapefile without .prj); pass --src-crs")
        return parse_crs(src_crs, what="--src-crs")
    declared_crs = parse_crs(declared, what=f"{path}: CRS")
    if src_crs is not None and not same_crs(declared_crs, src_crs):
        raise CRSError(
            f"{path}: declares {crs_label(declared_crs)} but --src-crs says {crs_label(src_crs)}; "
            "drop --src-crs to use the file's CRS"
        )
    return declared_crs


def prepare_source(
    path: str | os.PathLike[str],
    *,
    schema: Any,
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
    import geopandas as gpd
    import shapely

    from geolabel.crs import reproject_geometries, same_crs
    from geolabel.labels.edit import polygonal_parts, repair

    p = Path(path)
    report = ImportReport(source=p.name)
    frame = read_source(p, layer=layer)
    report.features = len(frame)
    crs = source_crs(frame, p, src_crs)
    columns = {c.casefold(): c for c in frame.columns if c != frame.geometry.name}
    field_name: str | None = None
    if single_class is not None:
        code = schema.resolve(single_class).code
        codes = np.full(len(frame), code, dtype=np.int64)
    else:
        field_name = find_class_field(frame, class_field, p)
    mapping = dict(class_map or {})

    # classes
    if field_name is not None:
        codes = np.full(len(frame), -1, dtype=np.int64)
    for i, value in enumerate(frame[field_name].tolist() if field_name is not None else []):
        target: Any = value
        if value is not None and str(value).strip().casefold() in mapping:
            target = mapping[str(value).strip().casefold()]
        cls = schema.find(target)
        if cls is None:
            if value is None or str(value).strip() == "":
                report.rejected[f"empty class field {field_name!r}"] += 1
            else:
                report.rejected[f"unknown class {value!r}"] += 1
        else:
            codes[i] = cls.code

    # geometries: present, polygonal, valid
    geoms = frame.geometry.values.to_numpy()
    ok = codes >= 0
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if (missing & ok).any():
        report.rejected["empty geometry"] += int((missing & ok).sum())
    ok &= ~missing
    types = shapely.get_type_id(geoms)
    polygonal = np.isin(types, (3, 6, 7))
    for t in np.unique(types[ok & ~polygonal]):
        report.rejected[f"not a polygon ({TYPE_NAMES.get(int(t), 'geometry')})"] += int(
            (types[ok & ~polygonal] == t).sum()
        )
    ok &= polygonal
    idx = np.flatnonzero(ok)
    work = geoms[idx]
    if not same_crs(crs, store_crs):
        work = reproject_geometries(shapely.force_2d(work), crs, store_crs)
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
    idx, fixed = idx[keep], fixed[keep]
    parts, part_of = polygonal_parts(fixed)
    nonzero = shapely.area(parts) > 0
    parts, part_of = parts[nonzero], part_of[nonzero]
    counts = np.bincount(part_of, minlength=len(fixed))
    report.exploded = int((counts > 1).sum())
    lost = np.flatnonzero(counts == 0)
    if len(lost):
        report.rejected["no area left after repair"] += len(lost)
    src_rows = idx[part_of]
    out: dict[str, Any] = {"class_code": codes[src_rows]}
    for name, default in (("labeler", labeler), ("team", team), ("status", status)):
        column = columns.get(name)
        values = frame[column].to_numpy(dtype=object)[src_rows] if column else np.full(len(src_rows), None)
        out[name] = [default if default is not None else clean_text(v) for v in values]
    for name in ("tile_id", "comment"):
        column = columns.get(name)
        out[name] = (
            [clean_text(v) for v in frame[column].to_numpy(dtype=object)[src_rows]]
            if column
            else [None] * len(src_rows)
        )
    out["source"] = ["imported"] * len(src_rows)
    report.imported = len(parts)
    result = gpd.GeoDataFrame(out, geometry=list(parts), crs=store_crs)
    return result, report


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
    store: Any,
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
        check_choice(status, STATUSES, "status")
    mapping = parse_class_map(class_map)
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

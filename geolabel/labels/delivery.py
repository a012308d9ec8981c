"""Reading a label delivery as it was delivered, and the area it must cover.

:func:`load_delivery` reads a label store or any delivered vector file without repairing
anything (invalid geometries included), for QA (:mod:`geolabel.qa`) and scoring
(:mod:`geolabel.score`); :func:`read_region` reads an AOI file as one polygon.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geolabel.errors import InputError

if TYPE_CHECKING:
    from geolabel.labels.schema import ClassSchema
    from geolabel.labels.store import LabelStore
    from geolabel.labels.tagschema import TagSchema, TileTag


@dataclass
class Delivery:
    """A label delivery as read: raw geometries (invalid ones included) and attributes."""

    source: str
    geoms: Any  # shapely array, in ``crs``
    ids: list[str]
    codes: Any  # class code per feature, -1 when unknown
    class_values: list[Any]
    labelers: list[str | None]
    teams: list[str | None]
    crs: Any  # pyproj CRS or None
    schema: ClassSchema
    extra: dict[str, list[Any]] = field(default_factory=dict)
    done_tiles: list[str] | None = None  # a store's tiles marked done (None: not a store)
    crs_problem: str = "declares no CRS"  # why ``crs`` is None
    tag_schema: TagSchema | None = None  # a whole store's tile tags (None: no tags to check)
    tile_tags: list[TileTag] = field(default_factory=list)


def load_delivery(
    path: str | Path,
    *,
    schema: ClassSchema | None = None,
    class_field: str | None = None,
    layer: str | None = None,
    single_class: str | None = None,
) -> Delivery:
    """Read a label store (a ``.gpkg`` file or a PostgreSQL location) or a delivered vector
    file without repairing anything.

    ``single_class`` gives every feature that class (single-class deliveries such as
    building footprints); an empty file needs no class field. A store's delivery is named by
    its ``uri`` (a PostgreSQL location without its password).
    """
    from geolabel.labels.pg_location import is_postgres_location
    from geolabel.labels.store import NotAStoreError, open_store

    store = None
    if is_postgres_location(path):
        store = open_store(path)
    elif Path(path).suffix.lower() == ".gpkg" and Path(path).is_file():
        with contextlib.suppress(NotAStoreError):  # any other GeoPackage is a delivered file
            store = open_store(path)
    if store is not None:
        with store:
            return _store_delivery(store, schema=schema, single_class=single_class)
    return _file_delivery(Path(path), schema=schema, class_field=class_field, layer=layer, single_class=single_class)


def store_delivery(
    store: LabelStore, *, bbox: tuple[float, float, float, float] | None = None, labeler: str | None = None
) -> Delivery:
    """The labels of an open label store as a delivery to check; ``bbox`` (store CRS): only
    the labels touching it (one tile's work, as a submission is checked); ``labeler``: only
    theirs (one copy of a consensus tile, see :mod:`geolabel.consensus`)."""
    return _store_delivery(store, schema=None, single_class=None, bbox=bbox, labeler=labeler)


def _store_delivery(
    store: LabelStore,
    *,
    schema: ClassSchema | None,
    single_class: str | None,
    bbox: tuple[float, float, float, float] | None = None,
    labeler: str | None = None,
) -> Delivery:
    """The labels of an open label store, with its tiles marked done; unless one labeler's
    are read, without the left-out copy of each consensus tile
    (:func:`geolabel.consensus.other_copy_ids`)."""
    from geolabel.labels.importer import single_class_code

    arrays = store.read(bbox=bbox, labeler=labeler)
    if labeler is None:
        arrays = _without_other_copies(store, arrays)
    # the tile tags of a whole store only: one tile's submission is not asked for other tiles' tags
    whole = bbox is None and labeler is None
    tag_schema = store.read_tag_schema() if whole else None
    schema = schema or store.schema
    codes = np.array([c if c is not None and c in schema else -1 for c in arrays.columns["class_code"]])
    if single_class is not None:
        codes = np.full(len(codes), single_class_code(schema, single_class))
    return Delivery(
        source=store.uri,
        geoms=arrays.geoms,
        ids=[str(i) for i in arrays.columns["label_id"]],
        codes=codes,
        class_values=list(arrays.columns["class_code"]),
        labelers=list(arrays.columns["labeler"]),
        teams=list(arrays.columns["team"]),
        crs=store.crs,
        schema=schema,
        extra={"status": list(arrays.columns["status"])},
        done_tiles=store.done_tiles(),
        tag_schema=tag_schema,
        tile_tags=store.tile_tags() if tag_schema is not None else [],
    )


def _without_other_copies(store: LabelStore, arrays: Any) -> Any:
    from geolabel.consensus import other_copy_ids

    left_out = other_copy_ids(store)
    if not left_out:
        return arrays
    return arrays.take(np.array([str(i) not in left_out for i in arrays.columns["label_id"]], dtype=bool))


def _file_delivery(
    p: Path, *, schema: ClassSchema | None, class_field: str | None, layer: str | None, single_class: str | None
) -> Delivery:
    """The features of a delivered vector file; its CRS by the importer's rules."""
    from geolabel.labels.importer import clean_text, declared_crs, find_class_field, read_source, single_class_code
    from geolabel.labels.schema import default_schema

    schema = schema or default_schema()
    frame = read_source(p, layer=layer)
    columns = {c.casefold(): c for c in frame.columns if c != frame.geometry.name}
    if single_class is not None:
        values: list[Any] = [schema.get(single_class_code(schema, single_class)).name] * len(frame)
    else:
        values = frame[find_class_field(frame, class_field, p)].tolist() if len(frame) else []
    codes = np.array(_class_codes(schema, values), dtype=np.int64)
    ids_col = columns.get("label_id")
    ids = [str(v) for v in frame[ids_col]] if ids_col else [f"fid:{i + 1}" for i in range(len(frame))]

    def column(name: str) -> list[Any]:
        col = columns.get(name)
        return [clean_text(v) for v in frame[col]] if col else [None] * len(frame)

    crs, how = declared_crs(frame, p)  # by the importer's rules (RFC 7946 for GeoJSON); none: a finding
    return Delivery(
        source=str(p),
        geoms=frame.geometry.values.to_numpy(),
        ids=ids,
        codes=codes,
        class_values=values,
        labelers=column("labeler"),
        teams=column("team"),
        crs=crs,
        schema=schema,
        crs_problem=how,
    )


def _class_codes(schema: ClassSchema, values: list[Any]) -> list[int]:
    """The class code of each value (-1: no class), each distinct value looked up once (a
    delivery repeats a few class names many times)."""
    code_of: dict[Any, int] = {}

    def code(v: Any) -> int:
        cls = schema.find(v)
        return cls.code if cls is not None else -1

    out = []
    for v in values:
        try:
            if v not in code_of:
                code_of[v] = code(v)
            out.append(code_of[v])
        except TypeError:  # an unhashable value (a list from a GeoJSON property)
            out.append(code(v))
    return out


def read_region(path: Any, crs: Any) -> Any:
    """Union of the polygons of an AOI file (a path or (path, layer name)), in ``crs``."""
    import shapely

    from geolabel.crs import reproject_geometries, same_crs
    from geolabel.errors import CRSError
    from geolabel.labels.importer import declared_crs, read_source, source_and_layer
    from geolabel.labels.repair import has_nonfinite_coords

    p, layer = source_and_layer(path)
    frame = read_source(p, layer=layer)
    src, how = declared_crs(frame, p)
    if src is None:
        raise CRSError(f"{p}: {how}; an area needs a CRS")
    geoms = frame.geometry.values.to_numpy()
    geoms = shapely.make_valid(geoms[np.isin(shapely.get_type_id(geoms), (3, 6)) & ~has_nonfinite_coords(geoms)])
    if not len(geoms):
        raise InputError(f"{p}: the area holds no polygons (an AOI must have some)")
    if not same_crs(src, crs):
        geoms = reproject_geometries(geoms, src, crs, densify="auto")
    return shapely.union_all(geoms)

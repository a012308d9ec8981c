"""Copy a labeling project from one label store to another, across backends.

:func:`copy_store` moves a project between a GeoPackage and PostGIS (either way, or
between two of a kind) as it is: label ids, versions and times, the change history, the
tiles' labeling progress, tasks, review decisions, the tag schema and the tiles' tags.
Nothing partial is left behind: a GeoPackage is built under a temporary name and renamed
when complete; a PostGIS project is created and filled in one transaction.

>>> import tempfile, shapely
>>> from geolabel.labels.store import create_store, open_store
>>> tmp = tempfile.mkdtemp()
>>> with create_store(f"{tmp}/a.gpkg", crs="EPSG:32649") as a:
...     _ = a.add_geometries([shapely.box(0, 0, 10, 10)], class_codes=[2], labeler="li")
>>> copy_store(f"{tmp}/a.gpkg", f"{tmp}/b.gpkg").line()  # doctest: +ELLIPSIS
'copied .../a.gpkg -> .../b.gpkg: 1 labels, 1 history entries, 0 tiles'
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geolabel.errors import InputError
from geolabel.labels.pg_location import is_postgres_location, parse_location
from geolabel.labels.store import (
    LABEL_FIELDS,
    HistoryEntry,
    LabelArrays,
    Review,
    StoreLike,
    Task,
    create_store,
    opened_store,
)

if TYPE_CHECKING:
    import pyproj

    from geolabel.labels.schema import ClassSchema
    from geolabel.labels.store import LabelStore
    from geolabel.labels.tagschema import TagSchema, TileTag


@dataclass(frozen=True)
class CopyResult:
    """What a copy wrote: where from and to (as messages may show them) and how much."""

    source: str
    destination: str
    labels: int
    history: int
    tiles: int

    def line(self) -> str:
        return (
            f"copied {self.source} -> {self.destination}: {self.labels} labels, "
            f"{self.history} history entries, {self.tiles} tiles"
        )


@dataclass(frozen=True)
class _Project:
    """Everything a store holds, read from the source before the destination is touched."""

    crs: pyproj.CRS
    schema: ClassSchema
    labels: LabelArrays
    history: list[HistoryEntry]
    tiles: list[tuple[str, str, str | None, str | None]]
    tasks: list[Task]
    reviews: list[Review]
    tag_schema: TagSchema | None
    tile_tags: list[TileTag]

    def rows(self) -> list[dict[str, Any]]:
        columns = self.labels.columns
        return [{name: columns[name][i] for name in LABEL_FIELDS} for i in range(len(self.labels))]


def copy_store(src: StoreLike, dst: str | os.PathLike[str], *, overwrite: bool = False) -> CopyResult:
    """Copy the project in ``src`` (an open store or a location) to a new store at ``dst``
    (a ``.gpkg`` path or a PostgreSQL location): labels with their ids, versions and times,
    the history and the tile progress, tile tags, same CRS, class schema and tag schema.

    An existing ``dst`` is only replaced with ``overwrite=True`` and only if it is a label
    store (never ``src`` itself). The source is read completely before ``dst`` is touched.
    """
    with opened_store(src) as source:
        _check_not_same(source, dst)
        project = _read_project(source)
        source_uri = source.uri
    if is_postgres_location(dst):
        destination = _copy_to_postgis(os.fspath(dst), project, overwrite=overwrite)
    else:
        destination = _copy_to_geopackage(Path(dst), project, overwrite=overwrite)
    return CopyResult(source_uri, destination, len(project.labels), len(project.history), len(project.tiles))


def _check_not_same(source: LabelStore, dst: str | os.PathLike[str]) -> None:
    if is_postgres_location(dst):
        same = parse_location(os.fspath(dst)).display == source.uri
    else:
        same = not is_postgres_location(source.uri) and os.path.realpath(dst) == os.path.realpath(source.uri)
    if same:
        raise InputError(
            f"{source.uri}: a store cannot be copied onto itself; give `dst` another location", params=("dst",)
        )


def _read_project(source: LabelStore) -> _Project:
    return _Project(
        source.crs,
        source.schema,
        source.read(),
        source.history(),
        source.tile_rows(),
        _or_none(source.tasks),
        _or_none(source.reviews),
        source.read_tag_schema(),
        source.tile_tags(),
    )


def _or_none(read: Any) -> list[Any]:
    """Tasks or reviews of the source; none from a PostGIS project made before they existed."""
    from geolabel.labels.store import NotAStoreError

    try:
        return list(read())
    except NotAStoreError:
        return []


def _load(store: LabelStore, project: _Project) -> None:
    store.load_copy(
        project.labels.geoms,
        project.rows(),
        project.history,
        project.tiles,
        tasks=project.tasks,
        reviews=project.reviews,
    )
    if project.tile_tags:
        store.replace_tile_tags([], project.tile_tags)


def _copy_to_geopackage(p: Path, project: _Project, *, overwrite: bool) -> str:
    """Build the copy under a temporary name; the rename at the end replaces ``p``."""
    from geolabel.files import atomic_file, check_output_folder
    from geolabel.labels.gpkg_file import check_local_folder, check_replaceable_store

    check_replaceable_store(p, overwrite=overwrite)
    check_output_folder(p)
    check_local_folder(p)  # said of ``p``, not of the temporary name create_store would see
    with (
        atomic_file(p, ".gpkg") as tmp,
        create_store(tmp, crs=project.crs, schema=project.schema, tag_schema=project.tag_schema) as store,
    ):
        _load(store, project)
    return str(p)


def _copy_to_postgis(location: str, project: _Project, *, overwrite: bool) -> str:
    """Create the project and fill it in one transaction: a failure leaves nothing behind,
    and an old project being replaced (``overwrite``) stays as it was."""
    from geolabel.labels.pg_create import create_postgis_store

    def fill(store: LabelStore) -> None:
        _load(store, project)

    with create_postgis_store(
        location, crs=project.crs, schema=project.schema, tag_schema=project.tag_schema, overwrite=overwrite, fill=fill
    ) as store:
        return store.uri

"""The one writer of every suggest command: a new GeoPackage, or a label store.

>>> import tempfile, shapely
>>> out = f"{tempfile.mkdtemp()}/water.gpkg"
>>> done = write_suggestions([shapely.box(0, 0, 20, 10)], crs="EPSG:32649", class_name="water", out=out)
>>> done.count, done.area_m2, done.where == out
(1, 200.0, True)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geolabel.errors import CRSError, InputError, OutputExistsError

#: Layer of a suggestions GeoPackage (``out=``).
SUGGESTIONS_LAYER = "suggestions"
#: What a suggestion is in the label store's vocabulary (geolabel.labels.store.SOURCES, STATUSES).
SOURCE = "suggested"
STATUS = "draft"


@dataclass(frozen=True)
class SuggestionsWritten:
    """What :func:`write_suggestions` wrote: how many polygons, their area, and where."""

    count: int
    area_m2: float
    where: str


def write_suggestions(
    polygons: Sequence[Any],
    *,
    crs: Any,
    class_name: str | Sequence[str],
    out: str | os.PathLike[str] | None = None,
    into: Any = None,
    overwrite: bool = False,
) -> SuggestionsWritten:
    """Write suggested ``polygons`` (in ``crs``) of class ``class_name`` (one name for all,
    or one per polygon) to exactly one of:

    - ``out``: a new GeoPackage, layer ``suggestions`` in ``crs``, with columns
      class_name, source, status, area_m2 (built under a temporary name, then renamed);
    - ``into``: a label store (path, location or open store), reprojected to its CRS, as
      ``source="suggested"``, ``status="draft"`` labels of the schema's class ``class_name``,
      all in one transaction.
    """
    import numpy as np

    from geolabel.crs import area_m2

    if (out is None) == (into is None):
        raise InputError("give exactly one of `out` (a new GeoPackage) and `into` (a label store)",
                         params=("out", "into"))  # fmt: skip
    geoms = np.asarray(polygons, dtype=object)
    names = [class_name] * len(geoms) if isinstance(class_name, str) else list(class_name)
    if len(names) != len(geoms):
        raise ValueError(f"{len(names)} class names for {len(geoms)} polygons")
    areas = area_m2(geoms, crs) if len(geoms) else np.zeros(0)
    if out is not None:
        _write_geopackage(Path(out), geoms, areas, crs=crs, names=names, overwrite=overwrite)
        where = os.fspath(out)
    else:
        where = _add_to_store(into, geoms, crs=crs, names=names)
    return SuggestionsWritten(len(geoms), float(np.sum(areas)), where)


def check_output(out: str | os.PathLike[str], *, overwrite: bool) -> None:
    """Refuse before any work an ``out`` that exists (without ``overwrite``), is no
    ``.gpkg`` or lies in a folder that is missing or cannot be written."""
    from geolabel.files import check_output_file

    path = Path(out)
    if path.suffix.lower() != ".gpkg":
        raise InputError(f"{path}: suggestions are written as a GeoPackage; give a name ending in .gpkg")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path}: already exists; choose a new file or pass `overwrite=True`",
                                params=("overwrite",))  # fmt: skip
    check_output_file(path)


def _write_geopackage(path: Path, geoms: Any, areas: Any, *, crs: Any, names: list[str], overwrite: bool) -> None:
    import numpy as np
    import pyogrio.raw
    import shapely

    from geolabel.crs import as_crs
    from geolabel.files import atomic_file, writing

    check_output(path, overwrite=overwrite)
    n = len(geoms)
    columns = {
        "class_name": np.array(names, dtype=object),
        "source": np.array([SOURCE] * n, dtype=object),
        "status": np.array([STATUS] * n, dtype=object),
        "area_m2": np.round(np.asarray(areas, dtype=float), 2),
    }
    with writing(path, "suggestions"), atomic_file(path, ".gpkg") as tmp:
        pyogrio.raw.write(
            str(tmp),
            geometry=shapely.to_wkb(geoms, output_dimension=2) if n else np.array([], dtype=object),
            field_data=list(columns.values()),
            fields=list(columns),
            layer=SUGGESTIONS_LAYER,
            driver="GPKG",
            geometry_type="Polygon",
            crs=as_crs(crs).to_wkt(),
            dataset_options={"VERSION": "1.2"},
        )


def _add_to_store(into: Any, geoms: Any, *, crs: Any, names: list[str]) -> str:
    """Add the polygons to the store as draft suggestions; returns the store's uri."""
    import geopandas as gpd

    from geolabel.labels.store import opened_store

    with opened_store(into) as store:
        codes = {}
        for name in dict.fromkeys(names):
            cls = store.schema.find(name)
            if cls is None:
                known = ", ".join(c.name for c in store.schema)
                raise InputError(f"{store.uri}: the store's schema has no class {name!r} (classes: {known})")
            codes[name] = cls.code
        moved, owner = _in_store_crs(geoms, crs, store.crs, where=str(store.uri))
        frame = gpd.GeoDataFrame(
            {"class_code": [codes[names[i]] for i in owner], "source": SOURCE, "status": STATUS},
            geometry=list(moved),
            crs=store.crs,
        )
        with store.transaction():
            store.add(frame)
        return str(store.uri)


def _in_store_crs(geoms: Any, crs: Any, store_crs: Any, *, where: str) -> tuple[Any, Any]:
    """The polygons in the store's CRS, each still one valid Polygon (a reprojection can
    make a ring touch itself: repaired, and a polygon split in two gives two labels), and
    the index of the polygon each came from."""
    import numpy as np
    import shapely

    from geolabel.crs import crs_label, outside_area_of_use, reproject_geometries, same_crs
    from geolabel.geom import polygonal_parts

    if not len(geoms) or same_crs(crs, store_crs):
        return geoms, np.arange(len(geoms))
    problem = outside_area_of_use(geoms, crs, store_crs)
    if problem:
        raise CRSError(f"{where}: {problem}; make a store in the scene's CRS ({crs_label(crs)}) or one that covers it")
    moved = reproject_geometries(geoms, crs, store_crs, densify="auto")
    return polygonal_parts(shapely.make_valid(moved))

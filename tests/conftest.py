"""Shared fixtures: small seeded rasters written on the fly, and paths to real data."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"
#: Real data: bundled copies (tests/data/real/README.md); GEOLABEL_REAL_DATA points elsewhere.
REAL = Path(os.environ.get("GEOLABEL_REAL_DATA", ROOT / "tests" / "data" / "real"))


@pytest.fixture(scope="session", autouse=True)
def sample_data_stays_untouched():
    """No test may change the bundled sample or test data or leave files next to it (QGIS writes
    .aux.xml statistics and may rewrite GeoPackage headers of files it opens)."""
    import hashlib

    def state():
        files = [p for root in (SAMPLE, ROOT / "tests" / "data") for p in sorted(root.rglob("*")) if p.is_file()]
        return {str(p.relative_to(ROOT)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}

    before = state()
    yield
    after = state()
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"the test session changed bundled data: {changed}"


def make_scene(
    path: Path,
    *,
    width: int = 1000,
    height: int = 700,
    count: int = 4,
    dtype: str = "uint8",
    block: int | None = 256,
    compress: str | None = "deflate",
    predictor: int | None = None,
    nodata: float | None = 0,
    crs: str | None = "EPSG:32649",
    origin: tuple[float, float] = (680000.0, 3125000.0),
    res: float = 0.5,
    interleave: str = "pixel",
    collar: int = 0,
    seed: int = 0,
    mask: np.ndarray | None = None,
) -> Path:
    """Write a seeded random scene; the left ``collar`` columns are nodata."""
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "ui" else None
    if info is not None:
        low = max(int(info.min), 1)
        data = rng.integers(low, min(int(info.max), 250) + 1, size=(count, height, width), dtype=dtype)
    else:
        data = rng.normal(100, 20, size=(count, height, width)).astype(dtype)
    if collar and nodata is not None:
        data[:, :, :collar] = nodata
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": count,
        "dtype": dtype,
        "crs": crs,
        "transform": from_origin(*origin, res, res),
        "nodata": nodata,
        "interleave": interleave,
    }
    if block:
        profile.update(tiled=True, blockxsize=block, blockysize=block)
    if compress:
        profile["compress"] = compress
    if predictor:
        profile["predictor"] = predictor
    if count >= 3 and dtype == "uint8":
        profile["photometric"] = "RGB"
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        if count == 4:
            dst.descriptions = ("red", "green", "blue", "nir")
        if mask is not None:
            dst.write_mask(mask)
    return path


@pytest.fixture
def scene_factory(tmp_path: Path):
    counter = {"n": 0}

    def factory(name: str | None = None, **kwargs):
        counter["n"] += 1
        return make_scene(tmp_path / (name or f"scene{counter['n']}.tif"), **kwargs)

    return factory


def read_all(path: Path) -> np.ndarray:
    import rasterio

    with rasterio.open(path) as src:
        return src.read()


def village_store(root: Path, *, size: int, workers: int = 1) -> tuple[Path, Path]:
    """The village tiled into ``size`` px chips and its labels imported into a new store:
    (store path, tile index path)."""
    from geolabel import tile_raster
    from geolabel.labels.importer import import_labels
    from geolabel.labels.store import create_store

    tiles = tile_raster(SAMPLE / "village.tif", root / "chips", size=size, workers=workers)
    store = create_store(root / "labels.gpkg", crs="EPSG:32649")
    import_labels(store, [SAMPLE / "village_labels.gpkg"])
    store.close()
    return root / "labels.gpkg", tiles.index_path


@dataclass(frozen=True)
class Inputs:
    """Small inputs shared by the bad-input tests of a module (never written by them)."""

    root: Path
    scene: Path
    tiles: Path
    store: Path
    empty_store: Path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    """A 256 x 256 px scene on the village, its 4 chips and a store with the village labels."""
    from geolabel.labels.importer import import_labels
    from geolabel.labels.store import create_store
    from geolabel.tiling import tile_raster

    root = tmp_path_factory.mktemp("inputs")
    scene = make_scene(root / "scene.tif", width=256, height=256, count=3, origin=(686400.0, 3120900.0), res=1.0)
    tiles = tile_raster(scene, root / "chips", size=128, workers=1).index_path
    with create_store(root / "labels.gpkg", crs="EPSG:32649") as store:
        import_labels(store, [SAMPLE / "village_labels.gpkg"])
    create_store(root / "empty.gpkg", crs="EPSG:32649").close()
    return Inputs(root, scene, tiles, root / "labels.gpkg", root / "empty.gpkg")


# -- PostgreSQL/PostGIS: a real server on loopback (tests/pgserver.py) ------------------


@pytest.fixture(scope="session")
def pg_server():
    """The superuser URL of the test server: tests/run.sh's (``GEOLABEL_TEST_PG``), or one
    started for this session. A server that cannot start fails the tests that need it."""
    url = os.environ.get("GEOLABEL_TEST_PG")
    if url:
        yield url
        return
    from tests.pgserver import start, stop

    folder, url = start()
    yield url
    stop(folder)


@pytest.fixture(scope="session")
def pg_database(pg_server):
    """URL of the ``geolabel_test`` database (with PostGIS) on the test server."""
    import psycopg

    with psycopg.connect(pg_server, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'geolabel_test'").fetchone():
            conn.execute("CREATE DATABASE geolabel_test")
    url = pg_server.rsplit("/", 1)[0] + "/geolabel_test"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    return url


def new_pg_location(database_url: str, name: str = "t") -> str:
    """A PostGIS store location in a schema no test used before."""
    import uuid

    return f"{database_url}?schema={name}_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def pg_location(pg_database):
    """A fresh PostGIS store location (its schema does not exist yet)."""
    return new_pg_location(pg_database)


#: The label store backends every store test runs on.
BACKENDS = ("gpkg", "postgis")


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Each store test runs on both backends, so the two cannot drift."""
    return request.param


def location_on(backend: str, folder: Path, request: pytest.FixtureRequest, name: str = "labels") -> Path | str:
    """Where to create a new store on ``backend``: ``folder/name.gpkg``, or a fresh schema on
    the test server (for module-scoped fixtures, which cannot use ``store_location``)."""
    if backend == "gpkg":
        return folder / f"{name}.gpkg"
    return new_pg_location(request.getfixturevalue("pg_database"), name.replace("-", "_")[:40])


@pytest.fixture
def store_location(backend, tmp_path, request):
    """``store_location(name)``: where to create a new store on this test's backend: a
    ``.gpkg`` path in tmp_path, or a fresh schema on the test server."""

    def make(name: str = "labels"):
        return location_on(backend, tmp_path, request, name)

    return make


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory):
    """A real Dask cluster on loopback: ``dask scheduler`` and two single-thread ``dask worker``
    processes (tests/daskcluster.py), for the session."""
    from tests.daskcluster import start  # Dask distributed: the dev extra installs it

    cluster = start(tmp_path_factory.mktemp("dask"))
    yield cluster
    cluster.stop()


#: The training quarter of the village's 4 x 4 grid of 512 px tiles (one tile per row and
#: column: the diagonal), marked done for `suggest classes` to learn from.
VILLAGE_TRAINING = ("village_r000_c000", "village_r001_c001", "village_r002_c002", "village_r003_c003")


def village_training_store(root):
    """(tile index, store path) in ``root``: the village tiled at 512 px, a store with the
    reference labels and the :data:`VILLAGE_TRAINING` tiles done."""
    from geolabel import tile_raster
    from geolabel.labels.importer import import_labels
    from geolabel.labels.store import create_store

    index = tile_raster(SAMPLE / "village.tif", root / "chips", size=512, workers=1).index_path
    with create_store(root / "labels.gpkg", crs="EPSG:32649") as store:
        import_labels(store, [SAMPLE / "village_labels.gpkg"])
        for tile_id in VILLAGE_TRAINING:
            store.set_tile_status(tile_id, "done")
    return index, root / "labels.gpkg"

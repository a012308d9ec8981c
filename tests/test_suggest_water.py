"""`geolabel suggest water`: water polygons from a water index, compared with the exact
reference water of the village scene, limited by an AOI or a tile, written to a new
GeoPackage or into a label store; bad inputs fail in one line and leave nothing."""

from __future__ import annotations

import subprocess
import sys

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely

from tests.badinput import assert_one_line_error, run_geolabel, tree_state
from tests.conftest import SAMPLE, make_scene

VILLAGE = SAMPLE / "village.tif"
NAIP = SAMPLE / "naip_northdakota_2020.tif"


def iou(a, b) -> float:
    ua, ub = shapely.union_all(np.asarray(a)), shapely.union_all(np.asarray(b))
    return ua.intersection(ub).area / ua.union(ub).area


@pytest.fixture(scope="module")
def reference_water():
    ref = gpd.read_file(SAMPLE / "village_labels.gpkg", layer="labels")
    return ref[ref.class_name == "water"].geometry.values.to_numpy()


@pytest.fixture(scope="module")
def village_water():
    from geolabel.suggest import suggest_water

    return suggest_water(VILLAGE, workers=1)


def test_suggested_water_matches_the_reference_river_and_every_pond(village_water, reference_water):
    assert iou(village_water.polygons, reference_water) >= 0.95  # measured 0.970
    assert len(village_water.polygons) == len(reference_water) == 11  # the river and 10 ponds
    for pond in reference_water:  # each one found, as one polygon
        found = village_water.polygons[shapely.intersects(village_water.polygons, pond)]
        assert len(found) == 1
        assert iou(found, [pond]) >= 0.85
    assert 0.1 < village_water.threshold < 0.3  # the 3-class Otsu's upper threshold; plain Otsu is -0.29
    assert village_water.total_area_m2 == pytest.approx(36_693.3, rel=0.05)


def test_plain_otsu_would_have_split_vegetation_from_soil_not_water():
    """Why the threshold is the upper one of three classes: the 2-class split of the
    village's NDWI histogram lies far below water's NDWI."""
    import rasterio
    from skimage.filters import threshold_otsu

    from geolabel.suggest.water import HIST_BINS, otsu_water_threshold

    with rasterio.open(VILLAGE) as src:
        g, n = src.read(2).astype("f4"), src.read(4).astype("f4")
        valid = src.read_masks(1) > 0
    ndwi = (g[valid] - n[valid]) / (g[valid] + n[valid])  # valid pixels are 1..255
    counts = np.histogram(ndwi, bins=HIST_BINS, range=(-1, 1))[0]
    assert threshold_otsu(ndwi) < -0.2 < 0.1 < otsu_water_threshold(counts)


def test_small_windows_give_the_polygons_of_one_big_window(village_water):
    from geolabel.suggest import suggest_water

    small = suggest_water(VILLAGE, window=300, workers=2)  # 7 x 7 windows, cut through river and ponds
    assert small.threshold == village_water.threshold
    assert len(small.polygons) == len(village_water.polygons)
    assert iou(small.polygons, village_water.polygons) > 0.9999
    assert np.allclose(np.sort(small.area_m2), np.sort(village_water.area_m2), rtol=1e-3)


def test_progress_rises_to_the_end_and_a_cancel_stops_between_windows():
    from concurrent.futures import ThreadPoolExecutor

    from geolabel.errors import CancelledError
    from geolabel.suggest import suggest_water

    seen: list[float] = []
    with ThreadPoolExecutor(1) as pool:
        suggest_water(VILLAGE, window=512, executor=pool, progress=seen.append)
        assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) == 2 * 16  # two passes of 4 x 4 windows
        polled: list[float] = []
        with pytest.raises(CancelledError):
            suggest_water(
                VILLAGE, window=512, executor=pool, progress=polled.append, is_cancelled=lambda: len(polled) >= 3
            )
    assert 3 <= len(polled) < 16  # stopped within the first pass


def test_islands_are_kept_as_holes_and_specks_dropped(tmp_path):
    """A lake with a 10 m island and a 1 m reed clump: the island stays a hole, the clump
    is under --min-area and goes; a 2 m puddle outside is dropped."""
    import rasterio
    from rasterio.transform import from_origin

    from geolabel.suggest import suggest_water

    data = np.empty((2, 200, 200), dtype="uint8")
    data[0], data[1] = 60, 160  # green, NIR of grass
    lake = (slice(40, 160), slice(40, 160))
    data[0][lake], data[1][lake] = 90, 20  # NDWI 0.64 in the lake, -0.45 on land
    data[:, 90:110, 90:110] = np.array([60, 160], dtype="uint8").reshape(2, 1, 1)  # island 10 m x 10 m
    data[:, 60:62, 60:62] = np.array([60, 160], dtype="uint8").reshape(2, 1, 1)  # reeds 1 m x 1 m
    data[:, 10:14, 10:14] = np.array([90, 20], dtype="uint8").reshape(2, 1, 1)  # puddle 2 m x 2 m
    path = tmp_path / "lake.tif"
    profile = dict(driver="GTiff", width=200, height=200, count=2, dtype="uint8", crs="EPSG:32649",
                   transform=from_origin(680000, 3125000, 0.5, 0.5))  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    found = suggest_water(path, bands="green=1,nir=2", min_area=20, workers=1)
    assert len(found.polygons) == 1
    (lake_polygon,) = found.polygons
    assert len(lake_polygon.interiors) == 1
    assert lake_polygon.area == pytest.approx(60 * 60 - 10 * 10, rel=0.01)


def test_mndwi_reads_the_swir_band_it_is_given(village_water):
    from geolabel.suggest import suggest_water

    # the village has no SWIR; calling NIR "swir" makes MNDWI compute what NDWI computes
    found = suggest_water(VILLAGE, index="mndwi", bands="swir=4", workers=1)
    assert found.index == "mndwi" and found.threshold == village_water.threshold
    assert iou(found.polygons, village_water.polygons) > 0.9999


def test_cli_writes_a_new_geopackage_in_the_scene_crs(tmp_path, reference_water):
    res = run_geolabel("suggest", "water", VILLAGE, "--out", "water.gpkg", cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert res.stdout.strip().startswith("water.gpkg: 11 water polygons, 3.5") and "otsu" in res.stdout
    out = gpd.read_file(tmp_path / "water.gpkg", layer="suggestions")
    assert out.crs.to_epsg() == 32649
    assert set(out.class_name) == {"water"} and set(out.source) == {"suggested"} and set(out.status) == {"draft"}
    assert np.allclose(out.area_m2, out.area, atol=0.01)
    assert iou(out.geometry.values, reference_water) >= 0.95
    assert sorted(p.name for p in tmp_path.iterdir()) == ["water.gpkg"]


def test_cli_adds_drafts_to_a_label_store_in_its_own_crs(tmp_path, reference_water):
    from geolabel.crs import reproject_geometries
    from geolabel.labels.store import open_store

    assert run_geolabel("labels", "init", "labels.gpkg", "--crs", "EPSG:3857", cwd=tmp_path).code == 0
    res = run_geolabel("suggest", "water", VILLAGE, "--into", "labels.gpkg", cwd=tmp_path)
    assert res.code == 0, res.stderr
    with open_store(tmp_path / "labels.gpkg") as store:
        labels = store.to_geodataframe()
    assert len(labels) == 11
    assert set(labels.source) == {"suggested"} and set(labels.status) == {"draft"}
    assert set(labels.class_name) == {"water"}
    back = reproject_geometries(labels.geometry.values.to_numpy(), "EPSG:3857", "EPSG:32649")
    assert iou(back, reference_water) >= 0.95


def test_a_tile_or_an_aoi_in_another_crs_limits_the_suggestions(tmp_path, village_water):
    from geolabel import tile_raster
    from geolabel.crs import reproject_geometries
    from geolabel.suggest import suggest_water
    from geolabel.tileindex import load_chips

    index = tile_raster(VILLAGE, tmp_path / "chips", size=512, workers=1).index_path
    chips = load_chips(index)
    chip = max(chips, key=lambda c: shapely.intersection(c.footprint, shapely.union_all(village_water.polygons)).area)
    in_tile = suggest_water(VILLAGE, tiles=index, tile=chip.tile_id, workers=1, min_area=0)
    expected = shapely.intersection(village_water.polygons, chip.footprint)
    assert shapely.covers(chip.footprint.buffer(1e-6), shapely.union_all(in_tile.polygons))
    assert iou(in_tile.polygons, expected[~shapely.is_empty(expected)]) > 0.999

    box = shapely.box(686300, 3120500, 686800, 3121000)  # the scene's south-east, in EPSG:32649
    aoi = gpd.GeoDataFrame(geometry=reproject_geometries(np.array([box]), "EPSG:32649", "EPSG:4326", densify=5),
                           crs="EPSG:4326")  # fmt: skip
    aoi.to_file(tmp_path / "aoi.geojson")
    in_aoi = suggest_water(VILLAGE, aoi=tmp_path / "aoi.geojson", workers=1, min_area=0)
    expected = shapely.intersection(village_water.polygons, box)
    assert 0 < len(in_aoi.polygons) < len(village_water.polygons)
    assert iou(in_aoi.polygons, expected[~shapely.is_empty(expected)]) > 0.999


def test_bad_inputs_fail_in_one_line_and_leave_nothing(tmp_path):
    make_scene(tmp_path / "rgb.tif", count=3, width=64, height=64)
    (tmp_path / "taken.gpkg").write_bytes(b"mine")
    before = tree_state(tmp_path)

    def fails(*args, contains, code=2):
        assert_one_line_error(run_geolabel("suggest", "water", *args, cwd=tmp_path), code=code, contains=contains)
        assert tree_state(tmp_path) == before

    fails("rgb.tif", "--out", "w.gpkg", contains="geolabel suggest classes")
    fails("rgb.tif", "--out", "w.gpkg", contains="--bands green=N,nir=N")
    fails(VILLAGE, "--bands", "green=2,nir=9", "--out", "w.gpkg", contains="nir=9 is out of range")
    fails(VILLAGE, "--bands", "blue=3", "--out", "w.gpkg", contains="--bands")
    fails("missing.tif", "--out", "w.gpkg", contains="missing.tif")
    fails(VILLAGE, "--out", "taken.gpkg", contains="already exists")
    fails(VILLAGE, "--out", "no/such/folder/w.gpkg", contains="does not exist", code=73)
    fails(VILLAGE, "--threshold", "high", "--out", "w.gpkg", contains="--threshold")
    fails(VILLAGE, "--tile", "x", "--out", "w.gpkg", contains="--tiles")
    fails(VILLAGE, contains="--into")
    fails(VILLAGE, "--into", "no_store.gpkg", contains="no_store.gpkg")


def test_a_store_without_the_class_is_refused_and_unchanged(tmp_path):
    schema = tmp_path / "schema.json"
    schema.write_text('{"name": "roads", "classes": [{"code": 1, "name": "road", "color": "#777777", "priority": 1}]}')
    assert (
        run_geolabel("labels", "init", "roads.gpkg", "--crs", "EPSG:32649", "--schema", schema, cwd=tmp_path).code == 0
    )
    before = tree_state(tmp_path)
    res = run_geolabel("suggest", "water", VILLAGE, "--into", "roads.gpkg", cwd=tmp_path)
    assert_one_line_error(res, contains="has no class 'water'")
    assert tree_state(tmp_path) == before


def test_a_store_far_outside_the_scene_is_refused_and_unchanged(tmp_path):
    """NAIP North Dakota into a store in UTM zone 49N (China): areas would be 13 % off."""
    assert run_geolabel("labels", "init", "china.gpkg", "--crs", "EPSG:32649", cwd=tmp_path).code == 0
    before = tree_state(tmp_path)
    res = run_geolabel("suggest", "water", NAIP, "--bands", "green=2,nir=4", "--into", "china.gpkg", cwd=tmp_path)
    assert_one_line_error(res, contains="outside the area of use of EPSG:32649")
    assert tree_state(tmp_path) == before


def test_the_plain_cli_does_not_import_scikit_image_or_learn():
    code = "import sys; from geolabel.cli import main; print('skimage' in sys.modules, 'sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_the_naip_scene_needs_its_band_roles_and_then_finds_its_ponds(tmp_path):
    """Real NAIP (R, G, B, NIR without band descriptions): no guess from the band order."""
    naip = SAMPLE / "naip_northdakota_2020.tif"
    assert_one_line_error(run_geolabel("suggest", "water", naip, "--out", "w.gpkg", cwd=tmp_path), contains="--bands")
    from geolabel.suggest import suggest_water

    found = suggest_water(naip, bands={"green": 2, "nir": 4}, workers=1)
    assert 50 <= len(found.polygons) <= 150  # 88 measured: potholes from 100 m² to lakes of tens of ha
    assert 0.2 < found.threshold < 0.4
    assert pyproj.CRS(found.crs).to_epsg() == 26914

"""``check`` partitioned: any partition size, worker count or executor gives the same
findings and summaries, with overlaps found once and gaps merged across cell borders."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import geopandas as gpd
import numpy as np
import pytest
import shapely
from click.testing import CliRunner

from geolabel.cli import main
from geolabel.qa import check_labels, load_delivery
from geolabel.qa import partition as part

X0, Y0 = 686000.0, 3120400.0  # UTM 49N
CLASSES = ["farmland", "forest", "water", "building"]


def write(tmp_path, geoms, *, name="d.gpkg", seed=0):
    rng = np.random.default_rng(seed)
    frame = gpd.GeoDataFrame(
        {
            "class_name": rng.choice(CLASSES, size=len(geoms)),
            "labeler": rng.choice(["li", "wang"], size=len(geoms)),
            "team": rng.choice(["hunan", "hubei"], size=len(geoms)),
        },
        geometry=list(geoms),
        crs="EPSG:32649",
    )
    path = tmp_path / name
    frame.to_file(path)
    return path


def aoi_file(tmp_path, geom):
    path = tmp_path / "aoi.gpkg"
    gpd.GeoDataFrame(geometry=[geom], crs="EPSG:32649").to_file(path)
    return path


def random_labels(seed: int, n: int = 160) -> list:
    """Jittered parcels (overlaps and gaps along every edge), rotated houses and ponds,
    a few duplicates and bow-tie (invalid) polygons, over about 300 x 300 m."""
    rng = np.random.default_rng(seed)
    geoms = []
    for k in range(n):
        r, c = divmod(k, 12)
        j = rng.uniform(-1.5, 1.5, 4)
        geoms.append(
            shapely.box(X0 + c * 25 + j[0], Y0 + r * 25 + j[1], X0 + c * 25 + 25 + j[2], Y0 + r * 25 + 25 + j[3])
        )
    for _ in range(40):
        x, y = X0 + rng.uniform(0, 300), Y0 + rng.uniform(0, 300)
        house = shapely.box(x, y, x + rng.uniform(4, 12), y + rng.uniform(4, 12))
        geoms.append(shapely.affinity.rotate(house, rng.uniform(0, 90)))
        geoms.append(shapely.Point(x + 30, y).buffer(rng.uniform(2, 9), quad_segs=4))
    geoms += [geoms[3], geoms[50], geoms[170]]  # duplicates
    x, y = X0 + 100, Y0 + 100
    geoms.append(shapely.Polygon([(x, y), (x + 20, y + 20), (x + 20, y), (x, y + 20)]))  # bow-tie
    return geoms


def outcome(result) -> tuple:
    doc = result.to_dict()
    return doc, [(f.type, f.feature_ids, f.message, f.area_m2) for f in result.findings]


@pytest.fixture
def small_cells(monkeypatch):
    """Cells of a few labels: every gap and overlap of the data crosses cell borders."""
    monkeypatch.setattr(part, "CELL_LABELS", 4)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("with_aoi", [True, False])
def test_any_partition_size_worker_count_or_executor_gives_the_same_result(tmp_path, small_cells, seed, with_aoi):
    geoms = random_labels(seed)
    delivery = load_delivery(write(tmp_path, geoms, seed=seed))
    aoi = aoi_file(tmp_path, shapely.box(X0 - 5, Y0 - 5, X0 + 320, Y0 + 320)) if with_aoi else None
    serial = check_labels(delivery, aoi=aoi, require="labeler,team", workers=1)
    grid = part.cell_grid((0, 0, 325, 325), len(geoms))
    assert grid.nx * grid.ny >= 25  # really many cells
    kinds = serial.counts()
    assert {"duplicate", "overlap", "gap", "invalid"} <= set(kinds)
    assert kinds["duplicate"]["error"] == 3
    for other in (
        check_labels(delivery, aoi=aoi, require="labeler,team", workers=2, partition_size=16),
        check_labels(delivery, aoi=aoi, require="labeler,team", workers=2, partition_size=1e6),
        check_labels(delivery, aoi=aoi, require="labeler,team", executor=ThreadPoolExecutor(2), partition_size=40),
    ):
        assert outcome(other) == outcome(serial)
        assert other.by_class == serial.by_class and other.by_labeler == serial.by_labeler


def test_gaps_across_cell_borders_measure_as_in_one_cell(tmp_path, monkeypatch):
    """Whole-metre boxes: snapping moves nothing, so many cells and one cell must agree
    exactly, and with the gaps shapely measures on the whole set at once."""
    rng = np.random.default_rng(7)
    geoms = []
    for _ in range(120):
        x, y = rng.integers(0, 200, 2)
        w, h = rng.integers(5, 40, 2)
        geoms.append(shapely.box(X0 + x, Y0 + y, X0 + x + w, Y0 + y + h))
    region = shapely.box(X0, Y0, X0 + 230, Y0 + 230)
    delivery = load_delivery(write(tmp_path, geoms))
    aoi = aoi_file(tmp_path, region)
    monkeypatch.setattr(part, "CELL_LABELS", 10**9)
    one = check_labels(delivery, aoi=aoi, workers=1)
    assert part.cell_grid(region.bounds, 120).nx == 1
    monkeypatch.setattr(part, "CELL_LABELS", 3)
    many = check_labels(delivery, aoi=aoi, workers=2, partition_size=32)
    expected = shapely.get_parts(region.difference(shapely.union_all(geoms)))
    areas = sorted(round(a, 6) for a in shapely.area(expected) if a > 0.01)
    for result in (one, many):
        gaps = [f for f in result.findings if f.type == "gap"]
        assert sorted(round(f.area_m2, 6) for f in gaps) == areas
        assert result.gap_area_m2 == pytest.approx(float(shapely.area(expected).sum()), abs=1e-6)
    assert outcome(one)[1] == outcome(many)[1]


def test_hole_enclosed_by_labels_across_cells_is_one_gap(tmp_path, small_cells):
    """A 100 m ring of parcels round a 60 x 60 m hole, over many cells: one gap of
    3600 m², and nothing outside the ring."""
    ring = [shapely.box(X0 + x, Y0 + y, X0 + x + 20, Y0 + y + 20) for x in range(0, 100, 20) for y in range(0, 100, 20)]
    ring = [g for g in ring if not g.centroid.within(shapely.box(X0 + 20, Y0 + 20, X0 + 80, Y0 + 80))]
    result = check_labels(load_delivery(write(tmp_path, ring)), workers=2, partition_size=16)
    gaps = [f for f in result.findings if f.type == "gap"]
    assert [round(f.area_m2, 6) for f in gaps] == [3600.0]
    assert gaps[0].geometry.bounds == pytest.approx((X0 + 20, Y0 + 20, X0 + 80, Y0 + 80))


def test_an_overlap_spanning_many_cells_is_found_once(tmp_path, small_cells):
    geoms = [shapely.box(X0, Y0, X0 + 200, Y0 + 50), shapely.box(X0 + 10, Y0 + 10, X0 + 190, Y0 + 60)]
    geoms += [shapely.box(X0 + x, Y0 + 100, X0 + x + 5, Y0 + 105) for x in range(0, 200, 10)]
    result = check_labels(load_delivery(write(tmp_path, geoms)), workers=2, partition_size=16)
    overlaps = [f for f in result.findings if f.type == "overlap"]
    assert [(f.feature_ids, round(f.area_m2, 6)) for f in overlaps] == [(["fid:1", "fid:2"], 180 * 40.0)]


def test_cli_workers_flag_gives_the_same_report(tmp_path, small_cells):
    path = write(tmp_path, random_labels(5))
    docs = []
    for n in ("1", "2"):
        out = tmp_path / f"qa{n}"
        res = CliRunner().invoke(main, ["check", str(path), "--workers", n, "--out", str(out), "-q"])
        assert res.exit_code == 1, res.output  # the data has errors
        docs.append(json.loads((out / "findings.json").read_text()))
        html = (out / "report.html").read_text()
        assert "Worst findings" in html
    assert docs[0] == docs[1]
    assert docs[0]["counts"]["duplicate"]["error"] == 3


def test_cli_refuses_a_worker_count_before_checking(tmp_path):
    path = write(tmp_path, [shapely.box(X0, Y0, X0 + 10, Y0 + 10)])
    res = CliRunner().invoke(main, ["check", str(path), "--workers", "-3"])
    assert res.exit_code == 2 and "workers" in res.output


def test_the_village_against_its_tile_grid_checks_in_partitions(tmp_path):
    """The tiles' region only touches some cells' windows: cutting it there gives lines
    beside polygons, which the gap overlay must never see (it refused them)."""
    from geolabel.labels.resolve import resolve_store
    from geolabel.labels.store import open_store
    from tests.conftest import village_store

    store_path, tiles = village_store(tmp_path, size=512)
    with open_store(store_path) as store:
        resolve_store(store, min_area=1.0)
    delivery = load_delivery(store_path)
    results = [
        check_labels(delivery, tiles=tiles, workers=1),
        check_labels(delivery, tiles=tiles, executor=ThreadPoolExecutor(2), partition_size=100),
    ]
    for result in results:
        assert result.counts().get("gap", {}).get("error", 0) == 0
        assert result.completeness == pytest.approx(1.0, abs=1e-9)
    assert outcome(results[0]) == outcome(results[1])


def cut_labels(seed: int) -> list:
    """The random labels plus parcels cut by ponds and houses (vertices at rounding
    distance from their neighbours' edges, as resolve and QGIS snapping make them), some
    cut pieces drawn again overlapping: pairs for both the floating and the grid overlay."""
    import shapely.affinity

    geoms = random_labels(seed)
    rng = np.random.default_rng(seed + 100)
    for k in rng.choice(160, size=30, replace=False):
        cutter = shapely.affinity.rotate(shapely.Point(geoms[k].centroid).buffer(rng.uniform(4, 11), 3), 7.0)
        geoms.append(shapely.difference(geoms[k], cutter))
        geoms.append(shapely.affinity.translate(cutter, rng.uniform(-2, 2), rng.uniform(-2, 2)))
    return geoms


@pytest.mark.parametrize("seed", [4, 5])
def test_floating_overlay_where_clear_equals_the_grid_everywhere(tmp_path, small_cells, monkeypatch, seed):
    """Pairs with every vertex clear of the other's boundary are overlaid in floating point,
    the rest on the 1e-7 m grid; forcing the grid for all gives the same findings (that
    the grid is taken where GEOS's floating overlay fails: test_qa's last-bit test)."""
    import math

    from geolabel.geom import intersecting_pairs, near_boundary

    geoms = np.array(cut_labels(seed), dtype=object)
    fixed = shapely.make_valid(geoms)
    left, right = intersecting_pairs(fixed, interiors=True)
    fragile = near_boundary(fixed, left, right, part.FLOATING_CLEARANCE_M)
    assert 20 < fragile.sum() < len(fragile) - 100  # both overlays are exercised
    loaded = load_delivery(write(tmp_path, geoms, seed=seed))
    aoi = aoi_file(tmp_path, shapely.box(X0 - 5, Y0 - 5, X0 + 320, Y0 + 340))
    mixed = check_labels(loaded, aoi=aoi, workers=1)
    monkeypatch.setattr(part, "FLOATING_CLEARANCE_M", math.inf)
    grid = check_labels(loaded, aoi=aoi, workers=1)

    def findings(result):
        return sorted((f.type, f.feature_ids, f.area_m2 or 0.0) for f in result.findings)

    assert [f[:2] for f in findings(mixed)] == [f[:2] for f in findings(grid)]
    assert [f[2] for f in findings(mixed)] == pytest.approx([f[2] for f in findings(grid)], abs=1e-5)
    assert sum(f.type == "overlap" for f in mixed.findings) > 100 and any(f.type == "gap" for f in mixed.findings)

"""``geolabel score``: hand-computed cases, symmetry, matching ties, a perturbed village, CLI."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely
from click.testing import CliRunner

from geolabel.cli import main
from geolabel.labels.schema import default_schema
from geolabel.score import match_objects, score_files, score_polygons

from .conftest import SAMPLE

SCHEMA = default_schema()


def test_two_squares_offset_by_a_known_amount():
    ref = [shapely.box(0, 0, 10, 10)]
    sub = [shapely.box(3, 0, 13, 10)]  # shifted 3 m: TP 70, FP 30, FN 30
    s = score_polygons((sub, [2]), (ref, [2]), SCHEMA, iou=0.5, tolerance=1.0)
    a = s.area["farmland"]
    assert (a["tp"], a["fp"], a["fn"]) == (70.0, 30.0, 30.0)
    assert a["correctness"] == pytest.approx(0.7) and a["completeness"] == pytest.approx(0.7)
    assert a["quality"] == pytest.approx(70 / 130) and a["f1"] == pytest.approx(0.7)
    assert s.overall["quality"] == pytest.approx(70 / 130)
    # IoU 70/130 = 0.538 >= 0.5: one matched object
    assert s.objects["farmland"]["tp"] == 1 and s.objects["farmland"]["f1"] == 1.0
    strict = score_polygons((sub, [2]), (ref, [2]), SCHEMA, iou=0.6)
    assert (strict.objects["farmland"]["tp"], strict.objects["farmland"]["fp"], strict.objects["farmland"]["fn"]) == (
        0,
        1,
        1,
    )
    # boundaries: vertical edges 3 m apart, horizontal edges overlap for 7 of 10 m
    b = s.boundary["farmland"]
    # within 1 m: 8 m of each horizontal edge (the buffer reaches 1 m past the corner) and
    # 1 m of each vertical edge next to the other square's corners: 18 of 40 m
    assert b["precision"] == pytest.approx(b["recall"]) and b["precision"] == pytest.approx((8 + 8 + 1 + 1) / 40)


def test_score_of_a_layer_against_itself_is_perfect():
    rng = np.random.default_rng(0)
    cells = [(x, y) for x in range(0, 200, 25) for y in range(0, 125, 25)]
    geoms = [shapely.box(x, y, x + rng.uniform(5, 24), y + rng.uniform(5, 24)) for x, y in cells]
    codes = rng.choice([1, 2, 3, 5], size=len(geoms))
    s = score_polygons((geoms, codes), (geoms, codes), SCHEMA)
    assert s.overall["quality"] == pytest.approx(1.0) and s.overall["f1"] == pytest.approx(1.0)
    assert s.objects_overall["f1"] == 1.0 and s.boundary["overall"]["f"] == pytest.approx(1.0)
    assert s.kappa == pytest.approx(1.0)


def test_scores_are_symmetric_where_they_should_be():
    a = ([shapely.box(0, 0, 10, 10), shapely.box(20, 0, 30, 10)], [2, 1])
    b = ([shapely.box(2, 0, 12, 10), shapely.box(20, 0, 30, 8)], [2, 5])
    ab, ba = score_polygons(a, b, SCHEMA), score_polygons(b, a, SCHEMA)
    assert ab.overall["quality"] == pytest.approx(ba.overall["quality"])
    assert ab.overall["correctness"] == pytest.approx(ba.overall["completeness"])
    assert ab.confusion["water"]["forest"] == pytest.approx(ba.confusion["forest"]["water"]) == 80.0
    assert ab.kappa == pytest.approx(ba.kappa)


def test_object_matching_is_one_to_one_with_deterministic_ties():
    ref = np.array([shapely.box(0, 0, 10, 10)], dtype=object)
    twins = np.array([shapely.box(1, 0, 11, 10), shapely.box(1, 0, 11, 10)], dtype=object)
    tp, fp, fn, pairs = match_objects(twins, ref, iou=0.5)
    assert (tp, fp, fn) == (1, 1, 0) and pairs[0][:2] == (0, 0)  # tie: the lower submission index wins
    # one big submission covering two references matches only one of them
    refs = np.array([shapely.box(0, 0, 10, 10), shapely.box(10, 0, 20, 10)], dtype=object)
    big = np.array([shapely.box(0, 0, 20, 10)], dtype=object)
    assert match_objects(big, refs, iou=0.5)[:3] == (1, 0, 1)  # IoU 0.5 each: exactly at the threshold


def resolved_village(tmp_path, location):
    """The village labels resolved in a store at ``location`` (a clean partition: ponds cut out
    of their fields), written to a reference file."""
    from geolabel.labels.importer import import_labels
    from geolabel.labels.resolve import resolve_store
    from geolabel.labels.store import create_store

    store = create_store(location, crs="EPSG:32649")
    import_labels(store, [SAMPLE / "village_labels.gpkg"])
    resolve_store(store)
    frame = store.query()[["class_code", "class_name", "geometry"]]
    store.close()
    frame.to_file(tmp_path / "reference.gpkg")
    return frame, tmp_path / "reference.gpkg"


def test_perturbed_village_shift_mislabelled_pond_and_missing_field(tmp_path, store_location):
    location = store_location()
    ref, ref_path = resolved_village(tmp_path, location)
    assert score_files(location, ref_path).overall["quality"] == pytest.approx(1.0)  # the store itself
    sub = ref.copy()
    pond = sub.index[(sub.class_name == "water")][3]
    pond_area = ref.geometry[pond].area
    sub.loc[pond, ["class_name", "class_code"]] = ["farmland", 2]
    field = sub.index[(sub.class_name == "farmland")][10]
    missing_area = sub.geometry[field].area
    sub = sub.drop(index=field)
    sub.to_file(tmp_path / "sub.gpkg")
    s = score_files(tmp_path / "sub.gpkg", ref_path, tolerance=1.0)
    # exact area arithmetic: the pond is reference water labelled farmland, the field is missing
    assert s.confusion["farmland"]["water"] == pytest.approx(pond_area, rel=1e-9)
    assert s.confusion["unlabelled"]["farmland"] == pytest.approx(missing_area, rel=1e-9)
    assert s.area["water"]["fn"] == pytest.approx(pond_area, rel=1e-9)
    assert s.area["farmland"]["fn"] == pytest.approx(missing_area, rel=1e-9)
    assert s.area["farmland"]["fp"] == pytest.approx(pond_area, rel=1e-9)
    assert (s.objects["water"]["fn"], s.objects["farmland"]["fp"], s.objects["farmland"]["fn"]) == (1, 1, 1)
    total_ref = ref.geometry.area.sum()
    tp, fp, fn = total_ref - pond_area - missing_area, pond_area, pond_area + missing_area
    assert s.overall["quality"] == pytest.approx(tp / (tp + fp + fn), rel=1e-9)
    # the same delivery shifted 0.8 m east: boundaries within 1 m, not within 0.5 m
    sub["geometry"] = sub.geometry.translate(xoff=0.8)
    sub.to_file(tmp_path / "shifted.gpkg")
    shifted = score_files(tmp_path / "shifted.gpkg", ref_path, tolerance=1.0)
    tight = score_files(tmp_path / "shifted.gpkg", ref_path, tolerance=0.5)
    # the shift moves the (north-south) vertical edges out of a 0.5 m tolerance, not the others
    assert shifted.boundary["overall"]["f"] > 0.95 and tight.boundary["overall"]["f"] < 0.7
    assert shifted.overall["quality"] < s.overall["quality"]


def test_crs_aoi_and_repairs(tmp_path):
    ref = gpd.read_file(SAMPLE / "village_labels.gpkg")
    ref.to_crs(4326).to_file(tmp_path / "wgs84.geojson", driver="GeoJSON")
    same = score_files(tmp_path / "wgs84.geojson", SAMPLE / "village_labels.gpkg")
    assert same.overall["quality"] == pytest.approx(1.0, abs=1e-4)  # reprojected to the reference CRS
    assert same.settings["crs"] == "EPSG:32649"
    aoi = tmp_path / "aoi.gpkg"
    b = ref.total_bounds
    gpd.GeoDataFrame(geometry=[shapely.box(b[0], b[1], (b[0] + b[2]) / 2, b[3])], crs=ref.crs).to_file(aoi)
    half = score_files(SAMPLE / "village_labels.gpkg", SAMPLE / "village_labels.gpkg", aoi=aoi)
    total = sum(v["tp"] for v in half.area.values())
    assert total == pytest.approx(sum(ref.geometry.intersection(shapely.box(b[0], b[1], (b[0] + b[2]) / 2, b[3])).area))
    bow = gpd.GeoDataFrame(
        {"class_name": ["water"]},
        crs="EPSG:32649",
        geometry=[shapely.Polygon([(686000, 3120400), (686010, 3120410), (686010, 3120400), (686000, 3120410)])],
    )
    bow.to_file(tmp_path / "bow.gpkg")
    r = score_files(tmp_path / "bow.gpkg", tmp_path / "bow.gpkg")
    assert r.repaired == {"submission": 1, "reference": 1} and r.overall["tp"] == pytest.approx(50.0)


def test_cli_score_leaderboard_agreement_and_json(tmp_path):
    ref = gpd.read_file(SAMPLE / "village_labels.gpkg")
    ref.to_file(tmp_path / "exact.gpkg")
    shifted = ref.copy()
    shifted["geometry"] = shifted.geometry.translate(xoff=2.0)
    shifted.to_file(tmp_path / "shifted.gpkg")
    runner = CliRunner()
    res = runner.invoke(
        main,
        [
            "score",
            str(tmp_path / "shifted.gpkg"),
            str(tmp_path / "exact.gpkg"),
            "--reference",
            str(SAMPLE / "village_labels.gpkg"),
            "--json",
            str(tmp_path / "lb.json"),
        ],
    )
    assert res.exit_code == 0, res.output
    lines = [line for line in res.output.splitlines() if line.strip()[:1].isdigit()]
    assert "exact.gpkg" in lines[0] and "shifted.gpkg" in lines[1]
    board = json.loads((tmp_path / "lb.json").read_text())
    assert board["leaderboard"][0].endswith("exact.gpkg")
    res = runner.invoke(
        main,
        [
            "score",
            str(tmp_path / "shifted.gpkg"),
            "--reference",
            str(tmp_path / "exact.gpkg"),
            "--agreement",
            "--classes",
            "water,farmland",
        ],
    )
    assert res.exit_code == 0 and "agreement (IoU of the class regions)" in res.output and "kappa" in res.output
    assert "building" not in res.output
    res = runner.invoke(main, ["score", str(tmp_path / "none.gpkg"), "--reference", str(tmp_path / "exact.gpkg")])
    assert res.exit_code == 2 and "no such file" in res.output


def test_reference_in_geographic_crs_is_scored_in_metres(tmp_path):
    t = pyproj.Transformer.from_crs(32649, 4326, always_xy=True)

    def lonlat(g):
        return shapely.transform(shapely.segmentize(g, 1), lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))

    ref = gpd.GeoDataFrame(
        {"class_name": ["water"]}, geometry=[lonlat(shapely.box(686000, 3120400, 686010, 3120410))], crs=4326
    )
    sub = gpd.GeoDataFrame(
        {"class_name": ["water"]}, geometry=[lonlat(shapely.box(686002, 3120400, 686012, 3120410))], crs=4326
    )
    ref.to_file(tmp_path / "ref.geojson", driver="GeoJSON")
    sub.to_file(tmp_path / "sub.geojson", driver="GeoJSON")
    s = score_files(tmp_path / "sub.geojson", tmp_path / "ref.geojson")
    assert s.settings["crs"] == "EPSG:32649"
    assert s.area["water"]["tp"] == pytest.approx(80.0, rel=1e-3) and s.area["water"]["fp"] == pytest.approx(
        20.0, rel=1e-2
    )

"""`geolabel suggest classes`: a classifier learnt from a quarter of the village's tiles
(marked done) suggests the classes on the other twelve, compared with the exact reference
polygons there; the same seed gives the same polygons; bad inputs fail in one line."""

from __future__ import annotations

import functools
import shutil

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geolabel.errors import InputError
from tests.badinput import assert_one_line_error, run_geolabel, tree_state
from tests.conftest import SAMPLE, VILLAGE_TRAINING, make_scene, village_training_store

VILLAGE = SAMPLE / "village.tif"
TRAINING = VILLAGE_TRAINING


@pytest.fixture(scope="module")
def village(tmp_path_factory):
    """(tile index, store with the reference labels and the diagonal tiles done, folder)."""
    root = tmp_path_factory.mktemp("classes")
    return (*village_training_store(root), root)


@pytest.fixture(scope="module")
def suggested(village):
    from geolabel.suggest import suggest_classes

    index, store, _ = village
    return suggest_classes(VILLAGE, store=store, tiles=index, workers=1)


def rest_of_scene(index):
    from geolabel.tileindex import load_chips

    return shapely.union_all([c.footprint for c in load_chips(index) if c.tile_id not in TRAINING])


def class_iou(polygons, names, where) -> dict[str, float]:
    ref = gpd.read_file(SAMPLE / "village_labels.gpkg", layer="labels")
    out = {}
    for name in sorted(set(ref.class_name)):
        a = shapely.intersection(shapely.union_all(polygons[np.asarray(names) == name]), where)
        b = shapely.intersection(shapely.union_all(ref[ref.class_name == name].geometry.values), where)
        out[name] = a.intersection(b).area / a.union(b).area
    return out


def test_classes_learnt_on_a_quarter_of_the_tiles_match_the_reference_on_the_rest(village, suggested):
    from geolabel.tileindex import load_chips

    index, _, _ = village
    iou = class_iou(suggested.polygons, suggested.class_names, rest_of_scene(index))
    # measured: water 0.980, farmland 0.900, forest 0.977, grassland 0.925, road 0.833, building 0.740
    assert iou["water"] >= 0.9 and iou["farmland"] >= 0.85  # the issue asks for 0.8
    assert iou["forest"] >= 0.9 and iou["grassland"] >= 0.85
    assert iou["road"] >= 0.7 and iou["building"] >= 0.6  # narrow roads and 8 m houses lose their edges
    assert all(shapely.is_valid(suggested.polygons)) and suggested.crs.startswith(("PROJCRS", "PROJCS"))
    training = shapely.union_all([c.footprint.buffer(-0.01) for c in load_chips(index) if c.tile_id in TRAINING])
    assert not shapely.intersects(suggested.polygons, training).any()  # nothing suggested where labels are done


def test_the_hold_out_is_a_whole_training_tile_scored_per_class(suggested):
    held = suggested.accuracy
    assert held is not None and len(held.sites) == 1 and held.sites[0] in TRAINING
    assert set(suggested.training_sites) == set(TRAINING)
    assert held.pixels == 50_000 and held.overall >= 0.95  # measured 0.985
    assert held.iou["water"] >= 0.9 and held.iou["grassland"] >= 0.9


def test_the_same_seed_gives_the_same_polygons_on_any_number_of_workers(village, suggested):
    from geolabel.suggest import suggest_classes

    index, store, _ = village
    again = suggest_classes(VILLAGE, store=store, tiles=index, workers=2)
    assert again.class_names == suggested.class_names
    assert shapely.equals_exact(again.polygons, suggested.polygons, tolerance=1e-6).all()
    assert again.accuracy == suggested.accuracy


def test_cli_only_todo_adds_drafts_outside_tiles_in_progress(village):
    from geolabel.labels.store import open_store
    from geolabel.tileindex import load_chips

    index, store, root = village
    work = root / "todo"
    work.mkdir()
    shutil.copy(store, work / "labels.gpkg")
    busy = "village_r000_c003"
    with open_store(work / "labels.gpkg") as s:
        s.set_tile_status(busy, "in_progress")
        before = len(s)
    res = run_geolabel("suggest", "classes", VILLAGE, "--from", "labels.gpkg", "--tiles", index, "--only-todo",
                       "--classes", "water,farmland", "--into", "labels.gpkg", cwd=work)  # fmt: skip
    assert res.code == 0, res.stderr
    assert "held-out accuracy on 1 of 4 training tiles" in res.stdout and "farmland     IoU" in res.stdout
    with open_store(work / "labels.gpkg") as s:
        added = s.query(status=["draft"])
        added = added[added.source == "suggested"]
        assert len(s) == before + len(added) > 0
    assert set(added.class_name) == {"water", "farmland"}
    assert f"{len(added)} polygons" in res.stdout
    footprint = next(c.footprint for c in load_chips(index) if c.tile_id == busy)
    assert not shapely.intersects(added.geometry.values, footprint.buffer(-0.01)).any()


def test_bad_inputs_fail_in_one_line_and_leave_nothing(village, tmp_path):
    from geolabel.labels.importer import import_labels
    from geolabel.labels.store import create_store

    index, store, _ = village
    with create_store(tmp_path / "empty.gpkg", crs="EPSG:32649") as s:
        s.set_tile_status(TRAINING[0], "done")
    far = make_scene(tmp_path / "far.tif", width=64, height=64, origin=(500000.0, 2000000.0))
    with create_store(tmp_path / "accepted.gpkg", crs="EPSG:32649") as s:
        import_labels(s, [SAMPLE / "village_labels.gpkg"], status="accepted")
    before = tree_state(tmp_path, store)

    def fails(*args, contains):
        res = run_geolabel("suggest", "classes", *args, "--out", "s.gpkg", cwd=tmp_path)
        assert_one_line_error(res, contains=contains)
        assert tree_state(tmp_path, store) == before

    fails(VILLAGE, "--from", "empty.gpkg", "--tiles", index, contains="nothing to learn from")
    fails(VILLAGE, "--from", store, contains="need their tile index (--tiles)")
    fails(far, "--from", "accepted.gpkg", contains="does not overlap the store's training labels")
    fails(VILLAGE, "--from", store, "--tiles", index, "--classes", "water,paddy", contains="--classes: unknown class")
    fails(VILLAGE, "--from", store, "--only-todo", contains="--only-todo needs --tiles")


def test_without_scikit_learn_the_error_names_the_extra(monkeypatch, village):
    import importlib.util

    from geolabel.suggest import suggest_classes

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "sklearn" else real(name, *a))
    with pytest.raises(InputError, match=r"scikit-learn: pip install 'geolabel\[suggest\]'"):
        suggest_classes(VILLAGE, store=village[1], tiles=village[0])


def test_progress_rises_to_the_end_and_a_cancel_stops_between_sites_or_windows(village):
    from concurrent.futures import ThreadPoolExecutor

    from geolabel.errors import CancelledError
    from geolabel.suggest import suggest_classes

    index, store, _ = village
    with ThreadPoolExecutor(1) as pool:
        run = functools.partial(suggest_classes, VILLAGE, store=store, tiles=index, window=512, executor=pool)
        seen: list[float] = []
        run(progress=seen.append)
        assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) == 4 + 16  # 4 sites, 4 x 4 windows
        sampling: list[float] = []
        with pytest.raises(CancelledError):
            run(progress=sampling.append, is_cancelled=lambda: bool(sampling))
        assert 0 < max(sampling) <= 0.2  # stopped while sampling the sites: no forest, no window
        windows: list[float] = []
        with pytest.raises(CancelledError):
            run(progress=windows.append, is_cancelled=lambda: max(windows, default=0) > 0.3)
        assert 0.3 < max(windows) < 1.0 and len(windows) < 4 + 16  # stopped between windows


def test_forest_prediction_summed_in_this_thread_equals_scikit_learns():
    from geolabel.suggest.classes import forest_predict, make_model

    rng = np.random.default_rng(0)
    X = rng.normal(size=(5000, 6)).astype(np.float32)
    y = np.array([2, 4, 7])[(X[:, 0] + rng.normal(scale=0.8, size=5000) > 0).astype(int) + (X[:, 1] > 1)]
    model = make_model(7, 1).fit(X, y)
    pixels = rng.normal(size=(40_000, 6))
    predicted = forest_predict(model, pixels)
    np.testing.assert_array_equal(predicted, model.predict(pixels))
    assert set(np.unique(predicted)) == {2, 4, 7}

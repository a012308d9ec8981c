"""Incremental checks equal full checks, on seeded random edit sequences on both store backends."""

from __future__ import annotations

import random

import geopandas as gpd
import pytest
import shapely

from geolabel.labels.store import create_store
from geolabel.qa import check_labels, load_delivery
from geolabel.qa.incremental import check_changed

CRS = "EPSG:32649"
#: Labels at the corners are never edited, so the labels' extent (and the cells) stay.
CORNERS = [
    shapely.box(0, 0, 5, 5),
    shapely.box(395, 0, 400, 5),
    shapely.box(0, 395, 5, 400),
    shapely.box(395, 395, 400, 400),
]


def summary(result):
    """Everything a check reports, comparable: findings as tuples, summaries, areas."""
    findings = [
        (f.type, f.severity, tuple(f.feature_ids), f.message, None if f.area_m2 is None else round(f.area_m2, 6))
        for f in result.findings
    ]
    gap = None if result.gap_area_m2 is None else round(result.gap_area_m2, 6)
    return findings, result.by_class, result.by_team, result.by_labeler, result.region_area_m2, gap


def random_polygon(rng: random.Random):
    x, y = rng.uniform(10, 370), rng.uniform(10, 370)
    w, h = rng.uniform(0.3, 30), rng.uniform(0.3, 30)
    shape = shapely.box(x, y, x + w, y + h)
    if rng.random() < 0.3:
        shape = shapely.Polygon([(x, y), (x + w, y), (x + w / 2, y + h), (x + w / 2 + 0.01, y + h * 0.2)])
    if rng.random() < 0.2:  # a hole
        shape = shape.difference(shapely.box(x + w / 3, y + h / 3, x + w / 2, y + h / 2))
    return shape


def edit(store, rng: random.Random, ids: list[str]) -> None:
    """One round: a few adds, moves, reshapes, class changes and deletes."""
    for _ in range(rng.randint(1, 6)):
        action = rng.choice(["add", "add", "move", "reshape", "class", "delete"]) if ids else "add"
        if action == "add":
            ids += store.add_geometries([random_polygon(rng)], class_codes=[rng.choice([1, 2, 3])], labeler="li")
        elif action == "move":
            label = rng.choice(ids)
            geom = store.read(label_ids=[label]).geoms[0]
            store.update(label, geometry=shapely.affinity.translate(geom, rng.uniform(-20, 20), rng.uniform(-20, 20)))
        elif action == "reshape":
            store.update(rng.choice(ids), geometry=random_polygon(rng))
        elif action == "class":
            store.update(rng.choice(ids), class_code=rng.choice([1, 2, 3, 4]))
        else:
            label = rng.choice(ids)
            store.delete([label])
            ids.remove(label)


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("with_aoi", [False, True])
def test_incremental_check_equals_full_check_after_random_edits(backend, store_location, tmp_path, seed, with_aoi):
    rng = random.Random(seed)
    location = store_location()
    store = create_store(location, crs=CRS)
    store.add_geometries(CORNERS, class_codes=[2, 2, 2, 2], labeler="li")
    ids = store.add_geometries([random_polygon(rng) for _ in range(60)], class_codes=[2] * 60, labeler="li")
    options = {"require": "labeler,team", "min_area": 2.0}
    if with_aoi:
        aoi = tmp_path / "aoi.gpkg"
        gpd.GeoDataFrame(geometry=[shapely.box(-2, -2, 390, 402)], crs=CRS).to_file(aoi)
        options["aoi"] = aoi
    state = None
    ways = []
    for _ in range(6):
        delivery = load_delivery(location)
        result, state = check_changed(delivery, state, workers=1, **options)
        ways.append(state.how.split(":")[0])
        assert summary(result) == summary(check_labels(delivery, workers=1, **options))
        edit(store, rng, ids)
    store.close()
    assert ways[0] == "full" and "incremental" in ways[1:]


def test_incremental_check_without_changes_keeps_everything(tmp_path):
    location = tmp_path / "labels.gpkg"
    store = create_store(location, crs=CRS)
    store.add_geometries([shapely.box(0, 0, 10, 10), shapely.box(5, 5, 15, 15)], class_codes=[2, 3])
    store.close()
    result, state = check_changed(load_delivery(location), None, workers=1)
    again, state = check_changed(load_delivery(location), state, workers=1)
    assert state.how == "incremental: 0 labels changed, 0 deleted, 0 cells"
    assert summary(again) == summary(result)
    assert [f.type for f in again.findings] == ["overlap"]


def test_other_options_start_over(tmp_path):
    location = tmp_path / "labels.gpkg"
    store = create_store(location, crs=CRS)
    store.add_geometries([shapely.box(0, 0, 10, 10)], class_codes=[2])
    store.close()
    _, state = check_changed(load_delivery(location), None, workers=1)
    _, state = check_changed(load_delivery(location), state, workers=1, min_area=500.0)
    assert state.how == "full: the options changed"


def test_pair_findings_kept_through_a_saved_state(tmp_path):
    """Duplicates and overlaps are kept by pair in the state file: a deleted label's pair
    goes, an edited label's pairs are found again, the others stay."""
    from geolabel.qa.state_file import load_check_state, save_check_state

    location = tmp_path / "labels.gpkg"
    store = create_store(location, crs=CRS)
    boxes = [shapely.box(0, 0, 10, 10), shapely.box(0, 0, 10, 10), shapely.box(5, 5, 15, 15), shapely.box(40, 0, 50, 9)]
    a, b, c, d, e = store.add_geometries([*boxes, shapely.box(45, 5, 55, 15)], class_codes=[2, 2, 3, 2, 3])
    _, state = check_changed(load_delivery(location), None, workers=1)
    assert sorted(f.type for f in state.pairs.values()) == ["duplicate", "overlap", "overlap", "overlap"]
    save_check_state(state, tmp_path)
    store.delete([b])
    store.update(c, geometry=shapely.box(42, 2, 47, 7))
    delivery = load_delivery(location)
    state, note = load_check_state(tmp_path)
    result, state = check_changed(delivery, state, workers=1)
    assert note is None and state.how.startswith("incremental: 1 labels changed, 1 deleted")
    assert summary(result) == summary(check_labels(delivery, workers=1))
    overlaps = sorted(tuple(f.feature_ids) for f in result.findings if f.type in ("overlap", "duplicate"))
    assert overlaps == sorted([(c, d), (c, e), (d, e)])  # ids are random: sorted both
    store.close()


def findings_json(folder):
    import json

    return json.loads((folder / "findings.json").read_text(encoding="utf-8"))


def test_cli_tiles_changed_rechecks_what_changed_and_reports_as_a_full_check(tmp_path):
    from click.testing import CliRunner

    from geolabel.cli import main

    rng = random.Random(3)
    location = tmp_path / "labels.gpkg"
    store = create_store(location, crs=CRS)
    store.add_geometries(CORNERS, class_codes=[2, 2, 2, 2], labeler="li")
    ids = store.add_geometries([random_polygon(rng) for _ in range(40)], class_codes=[2] * 40, labeler="li")
    runner = CliRunner()
    again = ["check", str(location), "--out", str(tmp_path / "qa"), "--tiles-changed", "--workers", "1"]
    first = runner.invoke(main, again)
    assert "check: full: no earlier check" in first.output and (tmp_path / "qa" / "check_state.npz").is_file()
    edit(store, rng, ids)
    store.close()
    second = runner.invoke(main, again)
    assert "check: incremental:" in second.output, second.output
    full = runner.invoke(main, ["check", str(location), "--out", str(tmp_path / "full"), "--workers", "1"])
    assert second.exit_code == full.exit_code
    assert findings_json(tmp_path / "qa") == findings_json(tmp_path / "full")
    assert not (tmp_path / "full" / "check_state.npz").exists()  # only when asked for


@pytest.mark.parametrize("damage", ["truncated", "foreign", "pickle"])
def test_cli_tiles_changed_with_a_damaged_state_checks_everything(tmp_path, damage):
    import numpy as np
    from click.testing import CliRunner

    from geolabel.cli import main

    location = tmp_path / "labels.gpkg"
    store = create_store(location, crs=CRS)
    store.add_geometries([shapely.box(0, 0, 10, 10), shapely.box(5, 5, 15, 15)], class_codes=[2, 3])
    store.close()
    runner = CliRunner()
    args = ["check", str(location), "--out", str(tmp_path / "qa"), "--tiles-changed", "--workers", "1"]
    runner.invoke(main, args)
    state = tmp_path / "qa" / "check_state.npz"
    if damage == "truncated":
        state.write_bytes(state.read_bytes()[:300])
    elif damage == "foreign":
        np.savez(state, doc=np.frombuffer(b'{"format": "other"}', dtype=np.uint8))
    else:  # an object array needs pickle to be read: refused
        np.savez(state, doc=np.array([{"format": "x"}], dtype=object))
    res = runner.invoke(main, args)
    assert res.exception is None or isinstance(res.exception, SystemExit), res.output
    assert "unusable" in res.output and "check: full: no earlier check" in res.output
    assert res.exit_code == 1 and [f["type"] for f in findings_json(tmp_path / "qa")["findings"]] == ["overlap"]


def test_cli_tiles_changed_with_other_options_checks_everything(tmp_path):
    from click.testing import CliRunner

    from geolabel.cli import main

    location = tmp_path / "labels.gpkg"
    store = create_store(location, crs=CRS)
    store.add_geometries([shapely.box(0, 0, 10, 10)], class_codes=[2])
    store.close()
    args = ["check", str(location), "--out", str(tmp_path / "qa"), "--tiles-changed", "--workers", "1"]
    CliRunner().invoke(main, args)
    res = CliRunner().invoke(main, [*args, "--min-area", "500"])
    assert "check: full: the options changed" in res.output


def test_gaps_across_small_cells_through_saved_states_equal_full_checks(tmp_path, monkeypatch):
    """Cells of a few labels, so gaps cross cell borders and are merged group by group;
    the merged groups go through the state file and the next check reuses them."""
    from geolabel.qa import partition
    from geolabel.qa.state_file import load_check_state, save_check_state

    monkeypatch.setattr(partition, "CELL_LABELS", 4)
    rng = random.Random(7)
    location = tmp_path / "labels.gpkg"
    store = create_store(location, crs=CRS)
    store.add_geometries(CORNERS, class_codes=[2, 2, 2, 2], labeler="li")
    ids = store.add_geometries([random_polygon(rng) for _ in range(60)], class_codes=[2] * 60, labeler="li")
    state, ways = None, []
    for _ in range(5):
        delivery = load_delivery(location)
        result, state = check_changed(delivery, state, workers=1)
        ways.append(state.how.split(":")[0])
        assert summary(result) == summary(check_labels(delivery, workers=1))
        assert state.merged  # groups of border pieces were merged
        save_check_state(state, tmp_path)
        saved = state.merged
        state, note = load_check_state(tmp_path)
        assert note is None and state.merged == saved
        edit(store, rng, ids)
    store.close()
    assert ways.count("incremental") >= 3, ways

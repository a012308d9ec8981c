"""Consensus tiles on both backends: each copy checked alone, agreement of the two copies
(IoU per class, Cohen's kappa by area) computed right, the review queue putting
disagreement first, and a whole-store check/export taking one copy only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import shapely
from click.testing import CliRunner

from geolabel.cli import main
from geolabel.consensus import agreement, other_copy_ids, review_queue
from geolabel.errors import InputError
from geolabel.labels.store import create_store, open_store
from geolabel.tasks import assign_tiles, review_tiles, start_tile, submit_tile

from .conftest import SAMPLE

WATER, FARMLAND, GRASSLAND = 1, 2, 6
SAME, SHIFTED, WRONG, SINGLE = (f"village_r000_c00{c}" for c in range(4))


@pytest.fixture(scope="module")
def tiles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from geolabel import tile_raster

    root = tmp_path_factory.mktemp("village")
    return tile_raster(SAMPLE / "village.tif", root / "chips", size=256, workers=1).index_path


@pytest.fixture
def project(store_location, tiles) -> str:
    """An empty store; SAME, SHIFTED and WRONG are consensus tiles (li copy 1, chen copy 2),
    SINGLE is li's alone."""
    location = str(store_location())
    create_store(location, crs="EPSG:32649").close()
    assign_tiles(location, tiles, team="hunan", labeler="li", count=3, overlap_fraction=1.0)
    assign_tiles(location, tiles, team="hunan", labeler="li", count=1)
    for tile in (SAME, SHIFTED, WRONG):
        start_tile(location, tile, labeler="chen")
    return location


def bounds(location: str, tile: str) -> tuple[float, float, float, float]:
    with open_store(location) as store:
        return store.tasks(tile_ids=[tile])[0].bounds


def draw(location: str, tile: str, labeler: str, parts: list[tuple[int, tuple[float, float, float, float]]]) -> None:
    """Polygons given as (class, (x0, y0, x1, y1)) in fractions of the tile."""
    minx, miny, maxx, maxy = bounds(location, tile)
    w, h = maxx - minx, maxy - miny
    with open_store(location) as store:
        for code, (x0, y0, x1, y1) in parts:
            box = shapely.box(minx + x0 * w, miny + y0 * h, minx + x1 * w, miny + y1 * h)
            store.add_geometries([box], class_codes=[code], labeler=labeler, team="hunan", tile_id=tile)


#: Copy 1 everywhere: the left half farmland, the right half water.
HALVES = [(FARMLAND, (0, 0, 0.5, 1)), (WATER, (0.5, 0, 1, 1))]


def label_all(location: str) -> None:
    for tile in (SAME, SHIFTED, WRONG, SINGLE):
        draw(location, tile, "li", HALVES)
    draw(location, SAME, "chen", HALVES)
    # the top quarter of the water called grassland
    draw(location, SHIFTED, "chen", [HALVES[0], (WATER, (0.5, 0, 1, 0.75)), (GRASSLAND, (0.5, 0.75, 1, 1))])
    draw(location, WRONG, "chen", [(FARMLAND, (0, 0, 1, 1))])  # all farmland


def submit_all(location: str) -> None:
    for tile in (SAME, SHIFTED, SINGLE, WRONG):
        for labeler in ("li", "chen") if tile != SINGLE else ("li",):
            assert submit_tile(location, tile, labeler=labeler).submitted, (tile, labeler)


def test_submit_checks_only_the_labelers_own_copy(project):
    label_all(project)
    # chen's all-farmland copy of WRONG covers li's water: not an overlap, another copy
    assert submit_tile(project, WRONG, labeler="li").submitted
    assert submit_tile(project, WRONG, labeler="chen").submitted
    draw(project, SHIFTED, "chen", [(GRASSLAND, (0, 0, 0.25, 0.25))])  # over chen's own farmland
    refused = submit_tile(project, SHIFTED, labeler="chen")
    assert not refused.submitted and [f.type for f in refused.errors] == ["overlap"]
    assert submit_tile(project, SHIFTED, labeler="li").submitted


def test_agreement_of_identical_changed_and_wrong_copies(project):
    label_all(project)
    assert agreement(project).tiles == []  # nothing submitted yet
    submit_all(project)
    report = agreement(project)
    by_tile = {a.tiles[0]: a for a in report.tiles}
    assert list(by_tile) == [SAME, SHIFTED, WRONG]
    same, shifted, wrong = by_tile[SAME], by_tile[SHIFTED], by_tile[WRONG]
    assert same.labelers == ("li", "chen")
    assert same.kappa == pytest.approx(1.0) and same.iou == pytest.approx({"farmland": 1.0, "water": 1.0})
    # rows copy 2, columns copy 1 (in tile fractions): farmland 1/2 | 1/2 water: 3/8 water, 1/8 grassland
    # po = 7/8, pe = 1/2*1/2 + 3/8*1/2 = 7/16, kappa = (7/8 - 7/16) / (1 - 7/16) = 7/9
    assert shifted.kappa == pytest.approx(7 / 9)
    assert shifted.iou == pytest.approx({"water": 0.75, "farmland": 1.0, "grassland": 0.0})
    area = shapely.box(*bounds(project, SHIFTED)).area
    assert shifted.confusion["grassland"]["water"] == pytest.approx(area / 8, rel=1e-6)
    assert wrong.kappa == pytest.approx(0.0, abs=1e-9)  # po = 1/2 = pe
    assert wrong.iou == pytest.approx({"water": 0.0, "farmland": 0.5})
    assert [a.tiles[0] for a in report.low] == [WRONG]
    (pair,) = report.pairs
    assert (pair.team, pair.labelers, pair.tiles) == ("hunan", ("li", "chen"), (SAME, SHIFTED, WRONG))
    # the three equal tiles' matrices added (in tile fractions): farmland/farmland 1.5, farmland/water 0.5,
    # water/water 0.875, grassland/water 0.125; po = 2.375/3, pe = (2/3 * 1/2 + 0.875/3 * 1/2), kappa = 0.6
    assert pair.iou == pytest.approx({"farmland": 1.5 / 2.0, "water": 0.875 / 1.5, "grassland": 0.0})
    assert pair.kappa == pytest.approx(0.6)


def test_review_queue_puts_the_low_agreement_tile_first(project):
    label_all(project)
    submit_all(project)
    queue = review_queue(project)
    assert [(i.task.tile_id, i.task.copy, i.low) for i in queue[:2]] == [(WRONG, 1, True), (WRONG, 2, True)]
    rest = queue[2:]
    assert {(i.task.tile_id, i.task.copy) for i in rest} == {(SAME, 1), (SAME, 2), (SHIFTED, 1), (SHIFTED, 2),
                                                             (SINGLE, 1)}  # fmt: skip
    assert rest == sorted(rest, key=lambda i: (i.task.submitted_at, i.task.task_id))
    assert {i.task.tile_id: i.kappa for i in rest}[SINGLE] is None and not any(i.low for i in rest)
    assert [i.task.tile_id for i in review_queue(project, threshold=0.8)][:4] == [WRONG, WRONG, SHIFTED, SHIFTED]
    review_tiles(project, [WRONG], accept=False, comment="which half is water?", reviewer="zhao")
    assert WRONG not in {i.task.tile_id for i in review_queue(project)}
    assert review_queue(project, team="hubei") == []
    with pytest.raises(InputError, match="`threshold` is a kappa"):
        review_queue(project, threshold=2)


def test_a_whole_store_check_takes_one_copy_of_each_consensus_tile(project):
    from geolabel.labels.delivery import load_delivery
    from geolabel.qa import check_labels

    label_all(project)
    submit_all(project)
    with open_store(project) as store:
        chen = ids(store, "chen")
        chen_wrong, li_wrong = ids(store, "chen", WRONG), ids(store, "li", WRONG)
        assert other_copy_ids(store) == chen  # copy 2 is left out
    delivery = load_delivery(project)
    assert set(delivery.ids).isdisjoint(chen) and len(delivery.ids) == 8  # li's 2 labels on each of 4 tiles
    assert not [f for f in check_labels(delivery).findings if f.type == "overlap"]
    review_tiles(project, [WRONG], accept=False, comment="redo", reviewer="zhao")
    with open_store(project) as store:
        copy2 = next(t for t in store.tasks(tile_ids=[WRONG]) if t.copy == 2)
        store.update_task(copy2.task_id, expected_status="rejected", status="accepted")
        assert other_copy_ids(store) == (chen - chen_wrong) | li_wrong  # chen's accepted copy of WRONG goes out


def ids(store, labeler: str, tile: str | None = None) -> set[str]:
    return {str(i) for i in store.read(labeler=labeler, tile_id=tile, fields=["label_id"]).columns["label_id"]}


def test_cli_agreement_and_queue(project):
    label_all(project)
    submit_all(project)
    runner = CliRunner()
    res = runner.invoke(main, ["tasks", "agreement", project])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[1].split()[:5] == ["hunan", "li", "/", "chen", f"{agreement(project).pairs[0].kappa:.3f}"]
    assert [line.split()[0] for line in lines if line.endswith("LOW")] == [WRONG]
    data = json.loads(runner.invoke(main, ["tasks", "agreement", project, "--json"]).output)
    assert data["threshold_kappa"] == 0.6 and [t["low"] for t in data["tiles"]] == [False, False, True]
    res = runner.invoke(main, ["tasks", "queue", project, "--team", "hunan"])
    assert res.exit_code == 0 and res.output.splitlines()[0].startswith(f"{WRONG}  copy 1  hunan  li")
    assert "LOW AGREEMENT" in res.output.splitlines()[1] and "LOW" not in res.output.splitlines()[2]
    queue = json.loads(runner.invoke(main, ["tasks", "queue", project, "--json"]).output)
    assert [q["tile_id"] for q in queue[:2]] == [WRONG, WRONG] and queue[0]["kappa"] == pytest.approx(0.0, abs=1e-9)
    res = runner.invoke(main, ["tasks", "queue", project, "--threshold", "5"])
    assert res.exit_code == 2 and res.output.startswith("geolabel: error: --threshold is a kappa")


def test_export_takes_one_copy_of_each_consensus_tile(project, tiles, tmp_path):
    from geolabel.export.dataset import export_dataset

    label_all(project)
    submit_all(project)
    result = export_dataset(project, tiles, tmp_path / "out", formats="geojson", split=None, skip_empty=True, workers=1)
    assert result.skipped_labels == {"the other copy of a consensus tile": 6}  # chen's 2 + 3 + 1 labels
    objects = {name: n for split in result.objects.values() for name, n in split.items()}
    assert objects == {"farmland": 4, "water": 4}  # li's halves on the 4 tiles, nothing of chen's grassland

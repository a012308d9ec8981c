"""Gold tiles on both backends: marked with a clipped reference, assigned like any tile,
scored when submitted (a perfect copy scores 1, a shifted or partial one less), ranked on
the quality leaderboard; on PostGIS hidden from labelers and reviewers."""

from __future__ import annotations

import json

import psycopg
import pytest
import shapely
from click.testing import CliRunner

from geolabel.cli import main
from geolabel.errors import AccessDeniedError, InputError
from geolabel.gold import mark_gold, quality
from geolabel.labels.store import TASK_FIELDS, create_store, open_store
from geolabel.tasks import assign_tiles, review_tiles, submit_tile

from .test_tasks import tiles  # noqa: F401  (the village tile index fixture)

GOLD = ["village_r002_c002", "village_r002_c003", "village_r002_c004"]
WHO = {GOLD[0]: ("hunan", "li"), GOLD[1]: ("hunan", "wang"), GOLD[2]: ("changsha", "zhou")}


def halves(bounds: tuple[float, float, float, float]) -> list[tuple[shapely.Polygon, int]]:
    """A tile's left half farmland (2), right half forest (5)."""
    x0, y0, x1, y1 = bounds
    mid = (x0 + x1) / 2
    return [(shapely.box(x0, y0, mid, y1), 2), (shapely.box(mid, y0, x1, y1), 5)]


@pytest.fixture
def gold_store(store_location, tiles, tmp_path):  # noqa: F811
    """An empty store (EPSG:32649) with three gold tiles assigned, and the reference file:
    each tile's halves, drawn reaching 20 m beyond the tiles' row (the clip must cut that off)."""
    import geopandas as gpd

    location = str(store_location())
    create_store(location, crs="EPSG:32649").close()
    for tile, (team, labeler) in WHO.items():
        assign_tiles(location, tiles, team=team, labeler=labeler, where=f"tile_id = '{tile}'", overlap_fraction=0)
    with open_store(location) as store:
        bounds = {t.tile_id: t.bounds for t in store.tasks()}
    parts = [p for x0, y0, x1, y1 in bounds.values() for p in halves((x0, y0 - 20, x1, y1 + 20))]
    reference = gpd.GeoDataFrame({"class_code": [c for _, c in parts]}, geometry=[g for g, _ in parts],
                                 crs="EPSG:32649")  # fmt: skip
    reference.to_file(tmp_path / "reference.gpkg")
    return location, tmp_path / "reference.gpkg", bounds


def label_tile(location: str, bounds, labeler: str, team: str, *, dy: float = 0.0, keep: int = 2) -> None:
    """The labeler's labels of a tile: the reference as clipped to it, shifted and/or partial."""
    clipped = halves(bounds)
    with open_store(location) as store:
        for geom, code in clipped[:keep]:
            store.add_geometries(
                [shapely.affinity.translate(geom, 0, dy)], class_codes=[code], labeler=labeler, team=team
            )


def task_columns(location: str) -> list[str]:
    if location.endswith(".gpkg"):
        import sqlite3

        with sqlite3.connect(location) as conn:
            return [r[1] for r in conn.execute("PRAGMA table_info(geolabel_tasks)")]
    url, schema = location.split("?schema=")
    with psycopg.connect(url) as conn:
        sql = "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"
        return [r[0] for r in conn.execute(sql + " ORDER BY ordinal_position", (schema, "geolabel_tasks"))]


def test_perfect_copy_scores_one_and_worse_work_scores_less_on_the_leaderboard(gold_store):
    location, reference, bounds = gold_store
    result = mark_gold(location, GOLD, reference)
    assert result.polygons == dict.fromkeys(GOLD, 2)
    with open_store(location) as store:
        assert sorted(store.gold_tiles()) == GOLD
        geoms, codes = store.reference(GOLD[0])
        assert sorted(codes) == [2, 5]
        assert shapely.union_all(geoms).equals(shapely.box(*bounds[GOLD[0]]))  # clipped to the tile
    assert task_columns(location) == list(TASK_FIELDS)  # nothing in the tasks tells a gold tile apart
    label_tile(location, bounds[GOLD[0]], "li", "hunan")
    label_tile(location, bounds[GOLD[1]], "wang", "hunan", dy=16)  # an eighth of the tile off
    label_tile(location, bounds[GOLD[2]], "zhou", "changsha", keep=1)  # the forest half missed
    for tile, (_, labeler) in WHO.items():
        assert submit_tile(location, tile, labeler=labeler).submitted
    with open_store(location) as store:
        scores = {s.labeler: json.loads(s.metrics) for s in store.gold_scores()}
    assert scores["li"]["iou"] == pytest.approx(1.0) and scores["li"]["f1"] == pytest.approx(1.0)
    assert scores["li"]["boundary_f"] == pytest.approx(1.0)
    assert 0.5 < scores["wang"]["iou"] < 0.95 and scores["wang"]["completeness"] < 1
    assert scores["zhou"]["iou"] == pytest.approx(0.5)  # farmland 1, forest 0
    assert scores["zhou"]["correctness"] == pytest.approx(1.0) and scores["zhou"]["completeness"] == pytest.approx(0.5)
    board = quality(location)
    assert board.scored_now == 0  # scored as they were submitted
    assert [(s.rank, s.labeler, s.tiles) for s in board.labelers] == [(1, "li", 1), (2, "wang", 1), (3, "zhou", 1)]
    assert [s.team for s in board.teams] == ["hunan", "changsha"]
    assert board.teams[0].means["iou"] == pytest.approx((1 + scores["wang"]["iou"]) / 2)


def test_a_rejected_gold_tile_is_scored_again_when_resubmitted(gold_store):
    location, reference, bounds = gold_store
    mark_gold(location, GOLD[:1], reference)
    label_tile(location, bounds[GOLD[0]], "li", "hunan", keep=1)
    submit_tile(location, GOLD[0], labeler="li")
    review_tiles(location, GOLD[:1], accept=False, comment="forest missing", reviewer="zhao")
    label_tile(location, bounds[GOLD[0]], "li", "hunan")  # adds both halves: farmland twice, dissolved
    with open_store(location) as store:
        store.delete([lid for lid in store.read(labeler="li").columns["label_id"]][:1])
    submit_tile(location, GOLD[0], labeler="li")
    with open_store(location) as store:
        ious = [json.loads(s.metrics)["iou"] for s in store.gold_scores()]
    assert ious == [pytest.approx(0.5), pytest.approx(1.0)]
    (li,) = quality(location).labelers
    assert li.tiles == 1 and li.means["iou"] == pytest.approx(1.0)  # the latest submission counts
    assert [m["iou"] for _, m in quality(location).series["li"]] == ious


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_marking_refuses_unknown_tiles_and_references_without_crs_or_polygons(gold_store, tmp_path):
    import geopandas as gpd

    location, reference, _ = gold_store
    with pytest.raises(InputError, match="no task for tile nope: assign it first"):
        mark_gold(location, ["nope"], reference)
    gpd.GeoDataFrame({"class_code": [2]}, geometry=[shapely.box(0, 0, 1, 1)]).to_file(tmp_path / "nocrs.gpkg")
    with pytest.raises(InputError, match="nocrs.gpkg: .*a reference needs a CRS"):
        mark_gold(location, GOLD, tmp_path / "nocrs.gpkg")
    far = gpd.GeoDataFrame({"class_code": [2]}, geometry=[shapely.box(0, 0, 1, 1)], crs="EPSG:32649")
    far.to_file(tmp_path / "far.gpkg")
    with pytest.raises(InputError, match=f"holds no polygon in tile {GOLD[0]}"):
        mark_gold(location, GOLD, tmp_path / "far.gpkg")
    with open_store(location) as store:
        assert store.gold_tiles() == []  # nothing half done


def test_cli_gold_quality_and_report(gold_store, tmp_path):
    location, reference, bounds = gold_store
    run = CliRunner().invoke
    res = run(main, ["tasks", "gold", location, "--tiles", ",".join(GOLD[:2]), "--reference", str(reference)])
    assert res.exit_code == 0 and res.output.strip() == "marked 2 gold tiles with 4 reference polygons"
    label_tile(location, bounds[GOLD[0]], "li", "hunan")
    label_tile(location, bounds[GOLD[1]], "wang", "hunan", dy=16)
    for tile in GOLD[:2]:
        assert run(main, ["tasks", "submit", location, "--tile", tile, "--labeler", WHO[tile][1]]).exit_code == 0
    res = run(main, ["tasks", "quality", location, "--report", str(tmp_path / "q")])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0] == "labelers (by mean IoU on gold tiles):"
    assert lines[1].split() == ["#", "team", "labeler", "gold", "tiles", "IoU", "F1", "correctness", "completeness",
                                "boundary", "F"]  # fmt: skip
    assert lines[2].split()[:6] == ["1", "hunan", "li", "1", "1.000", "1.000"]
    rank, team, labeler, count, iou = lines[3].split()[:5]
    assert (rank, team, labeler, count) == ("2", "hunan", "wang", "1") and iou.startswith("0.")
    charts = sorted((tmp_path / "q" / "charts").iterdir())
    assert [c.name for c in charts] == ["01_li.png", "02_wang.png"]
    from PIL import Image

    with Image.open(charts[0]) as img:
        assert img.size == (640, 320)
    page = (tmp_path / "q" / "quality.html").read_text()
    assert "charts/01_li.png" in page and "<td>wang</td>" in page
    doc = json.loads(run(main, ["tasks", "quality", location, "--json"]).output)
    assert [r["labeler"] for r in doc["labelers"]] == ["li", "wang"] and doc["headline"] == "iou"
    res = run(main, ["tasks", "quality", location, "--report", str(tmp_path / "q")])
    assert res.exit_code != 0 and "already exists" in res.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tasks", "gold", "{s}", "--tiles", "nope", "--reference", "{r}"], "no task for tile nope"),
        (["tasks", "gold", "{s}", "--tiles", " , ", "--reference", "{r}"], "at least one gold tile"),
        (["tasks", "gold", "{s}", "--tiles", GOLD[0], "--reference", "{r}.missing"], "missing"),
    ],
)
def test_cli_gold_errors_are_one_line(gold_store, args, message):
    location, reference, _ = gold_store
    res = CliRunner().invoke(main, [a.format(s=location, r=reference) for a in args])
    lines = res.output.strip().splitlines()
    assert res.exit_code != 0 and len(lines) == 1 and lines[0].startswith("geolabel: error: "), res.output
    assert message in lines[0]


# -- PostGIS: gold tiles are the admin's secret -----------------------------------------------


@pytest.fixture
def project(pg_database):
    from .labels.test_roles import make_project

    return make_project(pg_database)


def test_labelers_and_reviewers_cannot_see_gold_and_the_admin_scores_their_work(project, tiles, tmp_path):  # noqa: F811
    import geopandas as gpd

    tile = GOLD[0]
    labeler = project.users["labeler_a"]
    with project.open("admin") as store:
        assign_tiles(store, tiles, team="A", labeler=labeler, where=f"tile_id = '{tile}'", overlap_fraction=0)
        (task,) = store.tasks()
    parts = halves(task.bounds)
    gpd.GeoDataFrame({"class_code": [c for _, c in parts]}, geometry=[g for g, _ in parts],
                     crs="EPSG:32649").to_file(tmp_path / "ref.gpkg")  # fmt: skip
    with project.open("admin") as store:
        mark_gold(store, [tile], tmp_path / "ref.gpkg")
    with project.open("labeler_a") as store:
        for geom, code in parts:
            store.add_geometries([geom], class_codes=[code])
        assert not store.may_read_gold()
        assert submit_tile(store, tile).submitted  # not scored: this connection cannot read the reference
        with pytest.raises(AccessDeniedError, match="only the project's admin handles gold tiles"):
            quality(store)
    for who in ("labeler_a", "reviewer_a"):
        with project.sql(who) as conn:
            for table in ("geolabel_gold", "geolabel_reference", "geolabel_gold_scores"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
                    conn.execute(f"SELECT * FROM {project.schema}.{table}")
    board = quality(project.url("admin"))
    assert board.scored_now == 1
    ((rank, who, n, iou),) = [(s.rank, s.labeler, s.tiles, s.means["iou"]) for s in board.labelers]
    assert (rank, who, n) == (1, labeler, 1) and iou == pytest.approx(1.0)
    assert quality(project.url("admin")).scored_now == 0  # scored once

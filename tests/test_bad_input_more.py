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
import shutil
import sqlite3
import struct
from dataclasses import dataclass
from pathlib import Path

import pytest

from .badinput import Result, assert_one_line_error, run_geolabel, tree_state
from .conftest import SAMPLE, make_scene

VILLAGE = SAMPLE / "village_labels.gpkg"
#: A GeoJSON ``crs`` member for the village's UTM zone.
UTM49 = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32649"}}


@dataclass(frozen=True)
class Inputs:
    """Inputs shared by the tests of this module (never written by them)."""

    root: Path
    scene: Path
    tiles: Path
    store: Path
    empty_store: Path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    """A 256 x 256 px scene on the village, its 4 chips and a store with the village labels."""
    from geolabel.labels.importer import import_labels
    from geolabel.labels.store import create_store
    from geolabel.tiling import tile_raster

    root = tmp_path_factory.mktemp("inputs")
    scene = make_scene(root / "scene.tif", width=256, height=256, count=3, origin=(686400.0, 3120900.0), res=1.0)
    tiles = tile_raster(scene, root / "chips", size=128, workers=1).index_path
    with create_store(root / "labels.gpkg", crs="EPSG:32649") as store:
        import_labels(store, [VILLAGE])
    create_store(root / "empty.gpkg", crs="EPSG:32649").close()
    return Inputs(root, scene, tiles, root / "labels.gpkg", root / "empty.gpkg")


def geolabel(*args: object, cwd: Path, inputs: Inputs, timeout: float = 120) -> Result:
    """Run the command; nothing in ``cwd`` or the shared inputs may change."""
    before = tree_state(cwd, inputs.root)
    res = run_geolabel(*args, cwd=cwd, timeout=timeout)
    assert tree_state(cwd, inputs.root) == before, f"files changed or left behind\n{res.stderr}"
    return res


def fails(*args: object, cwd: Path, inputs: Inputs, contains: str, file: str | None = None, **kw: float) -> str:
    """The command fails with one ``geolabel: error:`` line (exit 2) and changes nothing."""
    res = geolabel(*args, cwd=cwd, inputs=inputs, **kw)
    line = assert_one_line_error(res, code=2, contains=contains, file=file)
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
        "export", "s.gpkg", "--tiles", inputs.tiles, "--out", "ds", "--workers", 1, cwd=tmp_path, inputs=inputs
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
    from geolabel.labels.edit import resolve_store
    from geolabel.labels.gpkg import register_functions
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

"""Every failure of the ``geolabel`` command is one line with the documented exit code.

Each case runs the real command in a subprocess (tests/badinput.py) on small inputs and
checks: the exit code, exactly one stderr line (or the documented warning line plus the
error line), no traceback, no partial output, and inputs byte-identical afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .badinput import EXIT_OUTPUT, Result, assert_one_line_error, run_geolabel, tree_state
from .conftest import REAL, SAMPLE, Inputs

VILLAGE = SAMPLE / "village_labels.gpkg"
SPACENET = REAL / "solaris_spacenet_samples" / "geotiff_labels.geojson"
needs_spacenet = pytest.mark.skipif(not SPACENET.exists(), reason="SpaceNet sample labels not available")
STATUSES = "draft, submitted, reviewed, accepted, rejected"


def geolabel(*args: object, cwd: Path, inputs: Inputs, env: dict[str, str] | None = None) -> Result:
    """Run the command; nothing in ``cwd`` or the shared inputs may change."""
    before = tree_state(cwd, inputs.root)
    res = run_geolabel(*args, cwd=cwd, env=env, timeout=120)
    assert tree_state(cwd, inputs.root) == before, f"files changed or left behind\n{res.stderr}"
    return res


def fails(
    *args: object, cwd: Path, inputs: Inputs, contains: str, file: str | None = None, code: int = 2, **kw: object
) -> str:
    """The command fails with one ``geolabel: error:`` line (exit ``code``: 2 for unusable
    input, EXIT_OUTPUT for an output that cannot be written) and changes nothing."""
    res = geolabel(*args, cwd=cwd, inputs=inputs, **kw)  # type: ignore[arg-type]
    line = assert_one_line_error(res, code=code, contains=contains, file=file)
    assert "internal error" not in line
    return line


def geojson(path: Path, features: list[dict[str, object]], *, epsg: int | None = 32649) -> Path:
    doc: dict[str, object] = {"type": "FeatureCollection", "features": features}
    if epsg is not None:
        doc["crs"] = {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{epsg}"}}
    path.write_text(json.dumps(doc))
    return path


def square(x: float, y: float, side: float = 50.0, **properties: object) -> dict[str, object]:
    ring = [[x, y], [x + side, y], [x + side, y + side], [x, y + side], [x, y]]
    return {"type": "Feature", "properties": properties, "geometry": {"type": "Polygon", "coordinates": [ring]}}


def with_bad_vertex(feature: dict[str, object], value: str) -> str:
    """JSON text of ``feature`` whose second vertex has x = NaN or Infinity (json writes both)."""
    geometry = feature["geometry"]
    assert isinstance(geometry, dict)
    geometry["coordinates"][0][1][0] = float(value)
    return json.dumps(feature)


def copy(src: Path, dst_dir: Path, name: str | None = None) -> Path:
    dst = dst_dir / (name or src.name)
    shutil.copy(src, dst)
    return dst


def damaged_schema_store(inputs: Inputs, folder: Path) -> Path:
    store = copy(inputs.store, folder, "damaged.gpkg")
    with sqlite3.connect(store) as conn:
        conn.execute("UPDATE geolabel_meta SET value = '{broken' WHERE key = 'schema'")
    return store


def damaged_geometry_store(inputs: Inputs, folder: Path) -> Path:
    """A store copy whose third label's geometry blob is two bytes (as a broken tool might write)."""
    store = copy(inputs.store, folder, "damaged.gpkg")
    with sqlite3.connect(store) as conn:
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'rtree%'"):
            conn.execute(f"DROP TRIGGER {name}")  # its SQL functions live in GDAL and geolabel only
        conn.execute("UPDATE labels SET geom = x'0102' WHERE fid = 3")
    return store


@pytest.fixture
def readonly_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody can write into: a read-only bind mount as root (chmod does not stop
    root), else a folder without write permission."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True).returncode == 0
    if mounted and subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], capture_output=True).returncode:
        subprocess.run(["umount", str(folder)], check=True)
        mounted = False
    if not mounted:
        pytest.skip("cannot make a read-only folder here (no bind mounts as root)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.fixture
def busy(tmp_path: Path) -> Iterator[object]:
    """Hold a store's write lock from another connection: ``with busy(store, "IMMEDIATE")``."""
    conns: list[sqlite3.Connection] = []

    def hold(store: Path, mode: str = "IMMEDIATE") -> sqlite3.Connection:
        conn = sqlite3.connect(store, isolation_level=None)
        conn.execute(f"BEGIN {mode}")
        conns.append(conn)
        return conn

    yield hold
    for conn in conns:
        conn.execute("ROLLBACK")
        conn.close()


FAST_BUSY = {"GEOLABEL_BUSY_TIMEOUT": "1"}


# -- tile ------------------------------------------------------------------------------


def test_tile_missing_scene(tmp_path, inputs):
    fails("tile", "nope.tif", "--out", "chips", cwd=tmp_path, inputs=inputs, contains="no such file", file="nope.tif")


@pytest.mark.parametrize(("name", "content"), [("empty.tif", b""), ("notes.tif", b"just some notes\n")])
def test_tile_a_file_that_is_no_raster(tmp_path, inputs, name, content):
    (tmp_path / name).write_bytes(content)
    line = fails("tile", name, "--out", "chips", cwd=tmp_path, inputs=inputs, contains="not a raster GDAL can read")
    assert "It might help" not in line  # GDAL's hint about driver prefixes is no help here


def test_tile_a_truncated_scene(tmp_path, inputs):
    (tmp_path / "cut.tif").write_bytes(inputs.scene.read_bytes()[:4000])
    fails("tile", "cut.tif", "--out", "chips", cwd=tmp_path, inputs=inputs, contains="corrupt or truncated")


def test_tile_a_tiff_declaring_a_million_by_a_million_pixels_prints_no_gdal_warnings(tmp_path, inputs):
    entries = [  # a classic TIFF header: 10^6 x 10^6 px, one strip of 10 bytes
        (256, 4, 1, 10**6),
        (257, 4, 1, 10**6),
        (258, 3, 1, 8),
        (259, 3, 1, 1),
        (262, 3, 1, 1),
        (273, 4, 1, 8),
        (277, 3, 1, 1),
        (278, 4, 1, 10**6),
        (279, 4, 1, 10),
    ]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        ifd += struct.pack("<HHIHH" if kind == 3 else "<HHII", tag, kind, count, value, *((0,) if kind == 3 else ()))
    (tmp_path / "huge.tif").write_bytes(struct.pack("<2sHI", b"II", 42, 8) + ifd + b"\0" * 20)
    args = ("tile", "huge.tif", "--out", "chips", "--allow-no-crs")
    fails(*args, cwd=tmp_path, inputs=inputs, contains="corrupt or truncated", file="huge.tif")


def test_tile_options_that_differ_from_the_index_name_the_flag(tmp_path, inputs):
    shutil.copytree(inputs.tiles.parent, tmp_path / "chips")
    line = fails(
        "tile", inputs.scene, "--out", "chips", "--size", "64", cwd=tmp_path, inputs=inputs, contains="size=128"
    )
    assert "use another --out or pass --overwrite" in line and "overwrite=True" not in line


def test_tile_into_a_read_only_folder(tmp_path, inputs, readonly_dir):
    fails(
        "tile",
        inputs.scene,
        "--out",
        readonly_dir / "chips",
        cwd=tmp_path,
        inputs=inputs,
        contains="cannot create",
        code=EXIT_OUTPUT,
    )


def test_tile_refuses_chips_too_large_to_hold_in_memory(tmp_path, inputs):
    fails(
        "tile", inputs.scene, "--out", "c", "--size", "200000", cwd=tmp_path, inputs=inputs, contains="--size must be"
    )


def test_tile_with_negative_workers(tmp_path, inputs):
    fails("tile", inputs.scene, "--out", "c", "--workers", "-2", cwd=tmp_path, inputs=inputs, contains="--workers")


def test_tile_refuses_a_crs_proj_only_guessed_from_part_of_a_name(tmp_path, inputs):
    args = ("tile", inputs.scene, "--out", "chips", "--dst-crs", "foo")
    fails(*args, cwd=tmp_path, inputs=inputs, contains="--dst-crs 'foo' is not a CRS: PROJ only guessed 'Amersfoort'")


def test_library_deprecation_warnings_are_not_shown(tmp_path, inputs):
    """affine warns (PendingDeprecationWarning) when rasterio multiplies transforms; even with
    Python's warnings switched on, users do not see it."""
    args = ("tile", inputs.scene, "--out", "chips", "--size", "128", "-q")
    res = run_geolabel(*args, cwd=tmp_path, env={"PYTHONWARNINGS": "default"})
    assert res.code == 0 and res.stderr == "", res.stderr
    assert len(list((tmp_path / "chips" / "scene").glob("*.tif"))) == 4


# -- labels init ---------------------------------------------------------------------------


def test_init_into_a_missing_folder(tmp_path, inputs):
    args = ("labels", "init", "no/such/s.gpkg", "--crs", "EPSG:32649")
    fails(
        *args,
        cwd=tmp_path,
        inputs=inputs,
        contains="folder no/such does not exist",
        file="no/such/s.gpkg",
        code=EXIT_OUTPUT,
    )


def test_init_into_a_read_only_folder(tmp_path, inputs, readonly_dir):
    args = ("labels", "init", readonly_dir / "s.gpkg", "--crs", "EPSG:32649")
    fails(*args, cwd=tmp_path, inputs=inputs, contains="cannot write in folder", code=EXIT_OUTPUT)


def test_init_with_a_schema_that_is_not_utf8(tmp_path, inputs):
    (tmp_path / "s.toml").write_bytes(b'[[classes]]\ncode = 1\nname = "\xe6\xb0\xb4\xff"\n')
    args = ("labels", "init", "s.gpkg", "--crs", "EPSG:32649", "--schema", "s.toml")
    fails(*args, cwd=tmp_path, inputs=inputs, contains="is not UTF-8 text (byte 0xff at offset 32)", file="s.toml")


def test_init_refuses_a_crs_name_fragment(tmp_path, inputs):
    args = ("labels", "init", "s.gpkg", "--crs", "foo")
    fails(*args, cwd=tmp_path, inputs=inputs, contains="only guessed 'Amersfoort' (EPSG:4289)")


def test_init_over_an_existing_store_names_the_flag(tmp_path, inputs):
    store = copy(inputs.store, tmp_path)
    line = fails("labels", "init", store.name, "--crs", "EPSG:32649", cwd=tmp_path, inputs=inputs, contains="exists")
    assert "pass --overwrite to replace it" in line


# -- labels import -------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_import_rejects_nan_or_infinite_coordinates_and_imports_the_rest(tmp_path, inputs, value):
    store = copy(inputs.empty_store, tmp_path, "s.gpkg")
    good = json.dumps(square(686500, 3121000, **{"class": "water"}))
    bad = with_bad_vertex(square(686600, 3121000, **{"class": "water"}), value)
    crs = '{"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32649"}}'
    (tmp_path / "bad.geojson").write_text(f'{{"type": "FeatureCollection", "crs": {crs}, "features": [{good}, {bad}]}}')
    source = tree_state(tmp_path / "bad.geojson")
    res = run_geolabel("labels", "import", store.name, "bad.geojson", cwd=tmp_path)
    assert res.code == 0 and res.stderr == "", res.stderr
    assert "2 features -> 1 labels" in res.stdout
    assert "1 rejected: 1 invalid beyond repair (NaN or infinite coordinates)" in res.stdout
    assert tree_state(tmp_path / "bad.geojson") == source


def test_import_of_duplicate_feature_ids_prints_no_gdal_warning(tmp_path, inputs):
    store = copy(inputs.empty_store, tmp_path, "s.gpkg")
    features = [square(686500 + 100 * i, 3121000, **{"class": "water"}) for i in range(3)]
    for feature, fid in zip(features, (1, 2, 2)):
        feature["id"] = fid
    geojson(tmp_path / "dup.geojson", features)
    res = run_geolabel("labels", "import", store.name, "dup.geojson", cwd=tmp_path)
    assert res.code == 0 and res.stderr == "", res.stderr
    assert "3 features -> 3 labels" in res.stdout


def test_import_says_how_numeric_class_values_were_read(tmp_path, inputs):
    store = copy(inputs.empty_store, tmp_path, "s.gpkg")
    geojson(tmp_path / "n.geojson", [square(686500 + 100 * i, 3121000, kind=k) for i, k in enumerate([0, 1, 2, 2])])
    res = run_geolabel("labels", "import", store.name, "n.geojson", "--class-field", "kind", cwd=tmp_path)
    assert res.code == 0 and res.stderr == "", res.stderr
    assert "  classes: 0 -> unclassified (by code), 1 -> water (by code), 2 -> farmland (by code)" in res.stdout


def test_import_into_a_store_whose_schema_is_damaged(tmp_path, inputs):
    damaged_schema_store(inputs, tmp_path)
    args = ("labels", "import", "damaged.gpkg", VILLAGE)
    fails(*args, cwd=tmp_path, inputs=inputs, contains="metadata is damaged (geolabel_meta 'schema' is unreadable")


def test_import_while_another_program_writes_the_store(tmp_path, inputs, busy):
    store = copy(inputs.store, tmp_path)
    before = tree_state(tmp_path, inputs.root)
    busy(store, "IMMEDIATE")
    start = time.monotonic()
    res = run_geolabel("labels", "import", store.name, VILLAGE, cwd=tmp_path, env=FAST_BUSY)
    assert time.monotonic() - start < 15
    assert_one_line_error(
        res, contains="store busy (another program is writing it; gave up after 1 s)", file=store.name
    )
    assert tree_state(tmp_path, inputs.root) == before


def test_a_busy_timeout_that_is_not_a_number(tmp_path, inputs):
    args = ("labels", "import", inputs.store, VILLAGE)
    fails(*args, cwd=tmp_path, inputs=inputs, env={"GEOLABEL_BUSY_TIMEOUT": "soon"}, contains="GEOLABEL_BUSY_TIMEOUT")


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"hello\n", "not a GeoPackage (not an SQLite database)"), (b"", "not a geolabel label store")],
)
def test_import_into_a_file_that_is_no_store(tmp_path, inputs, content, message):
    (tmp_path / "s.gpkg").write_bytes(content)
    fails("labels", "import", "s.gpkg", VILLAGE, cwd=tmp_path, inputs=inputs, contains=message, file="s.gpkg")


def test_import_of_a_text_file_named_gpkg(tmp_path, inputs):
    store = copy(inputs.store, tmp_path)
    (tmp_path / "notes.gpkg").write_text("no geopackage\n")
    args = ("labels", "import", store.name, "notes.gpkg")
    line = fails(*args, cwd=tmp_path, inputs=inputs, contains="not a vector file GDAL can read", file="notes.gpkg")
    assert "It might help" not in line


def test_import_of_a_truncated_geopackage(tmp_path, inputs):
    store = copy(inputs.store, tmp_path)
    (tmp_path / "cut.gpkg").write_bytes(VILLAGE.read_bytes()[:40000])
    fails(
        "labels", "import", store.name, "cut.gpkg", cwd=tmp_path, inputs=inputs, contains="cut.gpkg: not a vector file"
    )


def test_import_with_a_source_crs_proj_only_guesses(tmp_path, inputs):
    store = copy(inputs.store, tmp_path)
    args = ("labels", "import", store.name, VILLAGE, "--src-crs", "foo")
    fails(*args, cwd=tmp_path, inputs=inputs, contains="--src-crs 'foo' is not a CRS")


def test_import_a_folder(tmp_path, inputs):
    (tmp_path / "folder").mkdir()
    fails("labels", "import", inputs.store, "folder", cwd=tmp_path, inputs=inputs, contains="is a directory")


def test_import_with_an_unknown_single_class(tmp_path, inputs):
    line = fails(
        "labels", "import", inputs.store, VILLAGE, "--class", "nope", cwd=tmp_path, inputs=inputs, contains="--class:"
    )
    assert "unknown class 'nope'" in line


# -- labels resolve and stats --------------------------------------------------------------


def test_resolve_while_another_program_writes_the_store(tmp_path, inputs, busy):
    store = copy(inputs.store, tmp_path)
    before = tree_state(tmp_path, inputs.root)
    busy(store, "IMMEDIATE")
    res = run_geolabel("labels", "resolve", store.name, cwd=tmp_path, env=FAST_BUSY)
    assert_one_line_error(res, contains="store busy (another program is writing it", file=store.name)
    assert tree_state(tmp_path, inputs.root) == before


def test_resolve_with_a_negative_minimum_area(tmp_path, inputs):
    store = copy(inputs.store, tmp_path)
    fails(
        "labels", "resolve", store.name, "--min-area", "-1", cwd=tmp_path, inputs=inputs, contains="--min-area must be"
    )


def test_stats_while_another_program_holds_the_store_exclusively(tmp_path, inputs, busy):
    store = copy(inputs.store, tmp_path)
    before = tree_state(tmp_path, inputs.root)
    busy(store, "EXCLUSIVE")  # as QGIS does while it commits: nobody can even read
    res = run_geolabel("labels", "stats", store.name, cwd=tmp_path, env=FAST_BUSY)
    assert_one_line_error(res, contains="store busy", file=store.name)
    assert tree_state(tmp_path, inputs.root) == before


def test_stats_of_a_store_whose_schema_is_damaged(tmp_path, inputs):
    damaged_schema_store(inputs, tmp_path)
    fails(
        "labels", "stats", "damaged.gpkg", cwd=tmp_path, inputs=inputs, contains="metadata is damaged", file="damaged"
    )


@pytest.mark.parametrize(
    "args",
    [
        ("labels", "stats", "damaged.gpkg"),
        ("labels", "resolve", "damaged.gpkg", "--dry-run"),
        ("check", "damaged.gpkg"),
    ],
)
def test_a_store_with_a_damaged_geometry(tmp_path, inputs, args):
    damaged_geometry_store(inputs, tmp_path)
    fails(*args, cwd=tmp_path, inputs=inputs, contains="is damaged (not a GeoPackage geometry blob)", file="damaged")


def test_check_of_a_truncated_store_says_it_is_damaged(tmp_path, inputs):
    (tmp_path / "cut.gpkg").write_bytes(inputs.store.read_bytes()[:100_000])
    fails("check", "cut.gpkg", cwd=tmp_path, inputs=inputs, contains="cut.gpkg: the store file is damaged")


# -- export --------------------------------------------------------------------------------


def test_export_refuses_an_unknown_status(tmp_path, inputs):
    args = ("export", inputs.store, "--tiles", inputs.tiles, "--out", "ds", "--status", "accepted,acepted")
    fails(*args, cwd=tmp_path, inputs=inputs, contains=f"--status must be one of {STATUSES}; got 'acepted'")


def test_export_into_a_read_only_folder(tmp_path, inputs, readonly_dir):
    args = ("export", inputs.store, "--tiles", inputs.tiles, "--out", readonly_dir / "ds")
    fails(*args, cwd=tmp_path, inputs=inputs, contains="cannot write in folder", code=EXIT_OUTPUT)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--split", "a,b", "--split 'a,b' must be fractions"),
        ("--guard", "-1", "--guard must be 0 or more"),
        ("--min-overlap", "2", "--min-overlap must be between 0 and 1"),
        ("--format", "yolo", "--format must be one of geojson, coco, masks, stac, tags; got"),
        ("--seed", "-1", "--seed must be 0 or more"),
    ],
)
def test_export_with_impossible_option_values(tmp_path, inputs, option, value, message):
    args = ("export", inputs.store, "--tiles", inputs.tiles, "--out", "ds", option, value)
    fails(*args, cwd=tmp_path, inputs=inputs, contains=message)


def test_export_from_a_store_whose_schema_is_damaged(tmp_path, inputs):
    damaged_schema_store(inputs, tmp_path)
    args = ("export", "damaged.gpkg", "--tiles", inputs.tiles, "--out", "ds")
    fails(*args, cwd=tmp_path, inputs=inputs, contains="metadata is damaged")


def test_export_with_a_missing_tile_index_names_the_command_that_makes_one(tmp_path, inputs):
    args = ("export", inputs.store, "--tiles", "nope.gpkg", "--out", "ds")
    fails(*args, cwd=tmp_path, inputs=inputs, contains="no such tile index (make one with `geolabel tile`)")


def test_export_with_a_tile_index_that_is_no_geopackage(tmp_path, inputs):
    (tmp_path / "tiles.gpkg").write_text("hello\n")
    args = ("export", inputs.store, "--tiles", "tiles.gpkg", "--out", "ds")
    fails(*args, cwd=tmp_path, inputs=inputs, contains="not a geolabel tile index", file="tiles.gpkg")


# -- check ---------------------------------------------------------------------------------


def test_check_passes_an_empty_geojson_with_a_warning(tmp_path, inputs):
    geojson(tmp_path / "none.geojson", [], epsg=None)
    res = geolabel("check", "none.geojson", cwd=tmp_path, inputs=inputs)
    assert res.code == 0 and res.stderr == "", res.stderr
    assert "warning: none.geojson holds no features (an empty delivery)" in res.stdout
    assert "none.geojson: passed: 0 errors, 1 warnings on 0 features" in res.stdout


def test_check_passes_an_empty_store_with_a_warning(tmp_path, inputs):
    res = geolabel("check", inputs.empty_store, "-q", cwd=tmp_path, inputs=inputs)
    assert res.code == 0 and res.stderr == "", res.stderr
    assert "passed: 0 errors, 1 warnings on 0 features" in res.stdout


def test_check_report_into_a_read_only_folder(tmp_path, inputs, readonly_dir):
    args = ("check", inputs.store, "--out", readonly_dir / "qa")
    fails(*args, cwd=tmp_path, inputs=inputs, contains="cannot write in folder", code=EXIT_OUTPUT)


def test_check_reports_nan_coordinates_as_invalid(tmp_path, inputs):
    bad = with_bad_vertex(square(686600, 3121000, **{"class": "water"}), "nan")
    (tmp_path / "bad.geojson").write_text(f'{{"type": "FeatureCollection", "features": [{bad}]}}')
    res = geolabel("check", "bad.geojson", "-q", "--crs", "EPSG:32649", cwd=tmp_path, inputs=inputs)
    assert res.code == 1 and res.stderr == "", res.stderr
    assert "bad.geojson: FAILED: 2 errors" in res.stdout  # invalid, and no CRS (the expected one assumed)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--min-area", "-1"], "--min-area must be 0 m² or more"),
        (["--spike-angle", "200"], "--spike-angle must be from 0 to 180 degrees"),
        (["--crs", "foo"], "--crs 'foo' is not a CRS"),
    ],
)
def test_check_with_impossible_option_values(tmp_path, inputs, args, message):
    fails("check", inputs.store, *args, cwd=tmp_path, inputs=inputs, contains=message)


def test_check_with_an_aoi_without_polygons(tmp_path, inputs):
    geojson(tmp_path / "aoi.geojson", [])
    args = ("check", inputs.store, "--aoi", "aoi.geojson")
    fails(*args, cwd=tmp_path, inputs=inputs, contains="the area holds no polygons", file="aoi.geojson")


def test_check_with_a_schema_that_is_not_utf8(tmp_path, inputs):
    (tmp_path / "s.json").write_bytes(b'{"classes": "\xff"}')
    fails("check", inputs.store, "--schema", "s.json", cwd=tmp_path, inputs=inputs, contains="is not UTF-8 text")


@needs_spacenet
def test_check_of_classless_building_footprints_needs_a_class(tmp_path, inputs):
    line = fails("check", SPACENET, cwd=tmp_path, inputs=inputs, contains="no class field found")
    assert "landuse is empty everywhere" in line and "--class-field" in line and "with --class " in line
    res = geolabel("check", SPACENET, "--class", "building", "-q", cwd=tmp_path, inputs=inputs)
    assert res.code == 0 and res.stderr == "", res.stderr
    assert "passed: 0 errors, 0 warnings on 43 features" in res.stdout


# -- score ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [("--iou", "1.5", "--iou must be more than 0 and at most 1; got 1.5"), ("--tolerance-m", "-1", "--tolerance-m")],
)
def test_score_with_impossible_option_values(tmp_path, inputs, option, value, message):
    fails("score", VILLAGE, "--reference", VILLAGE, option, value, cwd=tmp_path, inputs=inputs, contains=message)


def test_score_names_the_classes_flag_not_the_prose(tmp_path, inputs):
    line = fails(
        "score",
        VILLAGE,
        "--reference",
        VILLAGE,
        "--classes",
        "road,foo",
        cwd=tmp_path,
        inputs=inputs,
        contains="--classes:",
    )
    assert "unknown class 'foo'; known classes: 0=unclassified" in line


def test_score_json_into_a_missing_folder(tmp_path, inputs):
    args = ("score", VILLAGE, "--reference", VILLAGE, "--json", "no/score.json")
    fails(
        *args, cwd=tmp_path, inputs=inputs, contains="folder no does not exist", file="no/score.json", code=EXIT_OUTPUT
    )


def test_score_json_into_a_read_only_folder(tmp_path, inputs, readonly_dir):
    args = ("score", VILLAGE, "--reference", VILLAGE, "--json", readonly_dir / "score.json")
    fails(*args, cwd=tmp_path, inputs=inputs, contains="cannot write in folder", code=EXIT_OUTPUT)


def test_score_two_empty_files(tmp_path, inputs):
    geojson(tmp_path / "a.geojson", [])
    args = ("score", "a.geojson", "--reference", "a.geojson")
    fails(*args, cwd=tmp_path, inputs=inputs, contains="nothing to score", file="a.geojson")


def test_score_drops_nan_polygons_instead_of_crashing(tmp_path, inputs):
    good = json.dumps(square(686500, 3121000, **{"class": "water"}))
    bad = with_bad_vertex(square(686600, 3121000, **{"class": "water"}), "inf")
    crs = '{"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32649"}}'
    (tmp_path / "s.geojson").write_text(f'{{"type": "FeatureCollection", "crs": {crs}, "features": [{good}, {bad}]}}')
    res = geolabel("score", "s.geojson", "--reference", "s.geojson", cwd=tmp_path, inputs=inputs)
    assert res.code == 0 and res.stderr == "", res.stderr
    assert "overall: quality (IoU) 1.0000" in res.stdout


@needs_spacenet
def test_score_of_classless_spacenet_footprints_is_one_class_with_a_warning(tmp_path, inputs):
    res = geolabel("score", SPACENET, "--reference", SPACENET, cwd=tmp_path, inputs=inputs)
    assert res.code == 0 and "Traceback" not in res.stderr
    assert len(res.lines) == 1 and res.lines[0].startswith("geolabel: warning: "), res.stderr
    assert (
        "neither has a class field; every feature is scored as one class 'object' (name a class with --class)"
        in (res.lines[0])
    )
    assert "objects (IoU >= 0.5): 43 matched, 0 extra, 0 missed" in res.stdout


@needs_spacenet
def test_score_of_spacenet_footprints_with_a_named_class(tmp_path, inputs):
    geojson(tmp_path / "pred.geojson", [square(733700, 3724800, 20.0)], epsg=32616)
    args = ("score", "pred.geojson", "--reference", SPACENET, "--class", "building", "--json", "s.json")
    res = run_geolabel(*args, cwd=tmp_path)
    assert res.code == 0 and res.stderr == "", res.stderr
    doc = json.loads((tmp_path / "s.json").read_text())["pred.geojson"]
    assert doc["classes"] == ["building"] and doc["objects_overall"]["fn"] == 43
    assert {p.name for p in tmp_path.iterdir()} == {"pred.geojson", "s.json"}  # no temporary file left


# -- the engine names API arguments, the command line its flags ----------------------------


def test_api_errors_name_arguments_and_the_cli_names_flags(tmp_path, inputs):
    from geolabel.errors import OutputExistsError
    from geolabel.tiling import tile_raster

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("not a tile index")
    with pytest.raises(OutputExistsError, match="use an empty `out_dir`") as info:
        tile_raster(inputs.scene, tmp_path / "out", size=128, workers=1)
    assert info.value.params == ("out_dir",)
    line = fails("tile", inputs.scene, "--out", "out", cwd=tmp_path, inputs=inputs, contains="use an empty --out")
    assert "out_dir" not in line


def test_every_argument_an_error_names_has_a_flag():
    """The flag table covers every ``params=`` name in the engine, and every flag exists."""
    import re

    import click

    from geolabel.cli import main
    from geolabel.cli.flags import FLAGS

    named = set()
    for path in (Path(__file__).parents[1] / "geolabel").rglob("*.py"):
        for group in re.findall(r'params=\(((?:"[\w()]+",?\s*)+)\)', path.read_text()):
            named |= set(re.findall(r'"([\w()]+)"', group))
        named |= set(re.findall(r'param="(\w+)"', path.read_text()))
    assert named and named <= set(FLAGS), sorted(named - set(FLAGS))

    def options(command: click.Command) -> set[str]:
        found = {opt for p in command.params for opt in p.opts}
        if isinstance(command, click.Group):
            ctx = click.Context(command)
            for name in command.list_commands(ctx):
                found |= options(command.get_command(ctx, name))
        return found

    flags = {f for f in FLAGS.values() if f.startswith("--")}
    assert flags <= options(main), sorted(flags - options(main))


@pytest.mark.parametrize(
    ("error", "code", "last_line"),
    [
        (
            "OSError(28, 'No space left on device', 'out/x.tif')",
            2,
            "geolabel: error: out/x.tif: No space left on device",
        ),
        ("ZeroDivisionError('division by zero')", 70, "geolabel: error: internal error (a bug in geolabel"),
    ],
)
def test_the_program_says_what_no_geolabel_error_means(tmp_path, error, code, last_line):
    """An OSError from outside the engine's checks is one line; a bug keeps its traceback
    (so tests and bug reports see it) and exits 70, not 2 as a bad input would."""
    script = (
        "import sys\nfrom geolabel.cli import main\n"
        f"@main.command()\ndef boom():\n    raise {error}\n"
        "sys.argv = ['geolabel', 'boom']\nmain()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == code and lines[-1].startswith(last_line), proc.stderr
    assert ("Traceback" in proc.stderr) == (code == 70)


def test_a_command_loads_only_its_own_module_and_help_lists_them_all():
    code = (
        "import sys; from geolabel.cli import main; "
        "print(sorted(m for m in sys.modules if m.startswith('geolabel.cli.') and m != 'geolabel.cli.flags'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    res = run_geolabel("--help", cwd=Path.cwd())
    commands = res.stdout.split("Commands:")[1].splitlines()
    listed = {line.split()[0] for line in commands if line.startswith("  ") and not line.startswith("   ")}
    assert {"tile", "labels", "export", "check", "score", "team", "tasks", "review", "suggest", "tags"} <= listed

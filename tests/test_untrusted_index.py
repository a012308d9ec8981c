"""Tile indexes travel between labeling sites: a crafted ``tiles.gpkg`` must never make
geolabel touch a file outside its folders.

Each crafted index is a real index made by ``tile_raster`` with rows rewritten (sqlite3)
or chips replaced by symlinks. ``tile --overwrite``, ``export`` and ``check --tiles`` are
run through the real CLI: each must refuse the index in one line naming it (exit 2), and
nothing may be created, deleted or changed anywhere below the test folder.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
import shapely

from geolabel import tile_raster
from geolabel.errors import InputError
from geolabel.files import child_path
from geolabel.labels.store import create_store
from geolabel.tileindex import TileRecord, record_problem

from .badinput import Result, assert_one_line_error, run_geolabel, tree_state
from .conftest import make_scene

SCENE = "场景"
INDEX = "chips/tiles.gpkg"
FIRST = f"{SCENE}_r000_c000"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Chinese-named scene tiled into 9 chips, and a store with one water polygon on it."""
    root = tmp_path_factory.mktemp("untrusted")
    scene = make_scene(root / f"{SCENE}.tif", width=600, height=600)
    tile_raster(scene, root / "chips", size=256, workers=1)
    store = create_store(root / "labels.gpkg", crs="EPSG:32649")
    store.add_geometries([shapely.box(680010, 3124800, 680200, 3124990)], class_codes=[1])
    store.close()
    return root


@pytest.fixture
def work(base: Path, tmp_path: Path) -> Path:
    """A private copy of the chips, index and store, with a readable raster (``secret.tif``)
    and a canary file next to the chips folder."""
    shutil.copytree(base / "chips", tmp_path / "chips", symlinks=True)
    shutil.copy(base / "labels.gpkg", tmp_path / "labels.gpkg")
    shutil.copy(tmp_path / "chips" / SCENE / f"{FIRST}.tif", tmp_path / "secret.tif")
    (tmp_path / "canary.txt").write_text("do not touch\n")
    return tmp_path


def set_fields(index: Path, fid: int, **values: object) -> None:
    """Rewrite fields of one row of the ``tiles`` layer in place (geometry untouched)."""
    con = sqlite3.connect(index)
    for name in ("ST_IsEmpty", "ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY"):  # named by GDAL's rtree triggers
        con.create_function(name, 1, lambda g: 0)
    assignments = ", ".join(f'"{k}" = ?' for k in values)
    con.execute(f"UPDATE tiles SET {assignments} WHERE fid = ?", (*values.values(), fid))
    con.commit()
    con.close()


def row(tile_id: str, scene: str = SCENE, path: str | None = None) -> dict[str, object]:
    return {"tile_id": tile_id, "scene": scene, "path": f"{scene}/{tile_id}.tif" if path is None else path}


def symlinked_chip(root: Path) -> None:
    chip = root / "chips" / SCENE / f"{FIRST}.tif"
    chip.unlink()
    chip.symlink_to(root / "secret.tif")


def symlinked_scene_folder(root: Path) -> None:
    (root / "elsewhere").mkdir()
    shutil.move(root / "chips" / SCENE, root / "elsewhere" / SCENE)
    (root / "chips" / SCENE).symlink_to(Path("..") / "elsewhere" / SCENE)


def set_params(index: Path, text: str) -> None:
    """Replace the stored tiling options (layer metadata) with ``text``."""
    import fiona

    with fiona.open(index, "a", layer="tiles") as dst:
        dst.update_tags({"GEOLABEL_TILING": text})


LONG = "长" * 100  # 300 bytes of UTF-8
CASES: dict[str, Callable[[Path], None]] = {
    "path_dotdot": lambda r: set_fields(r / INDEX, 1, path="../secret.tif"),
    "path_dotdot_canary": lambda r: set_fields(r / INDEX, 1, path="../canary.txt"),
    "path_absolute": lambda r: set_fields(r / INDEX, 1, path=str(r / "secret.tif")),
    "path_backslash": lambda r: set_fields(r / INDEX, 1, path=f"{SCENE}\\{FIRST}.tif"),
    "path_empty": lambda r: set_fields(r / INDEX, 1, path=""),
    # GDAL reads text up to a NUL byte: geolabel sees '../secret.tif' and '场景_r000'
    "path_nul": lambda r: set_fields(r / INDEX, 1, path="../secret.tif\x00" + f"{SCENE}/{FIRST}.tif"),
    "tile_id_dotdot": lambda r: set_fields(r / INDEX, 1, tile_id="../../../x"),
    "tile_id_dotdot_consistent_path": lambda r: set_fields(r / INDEX, 1, **row("../../../x")),
    "tile_id_other_cell": lambda r: set_fields(r / INDEX, 1, **row(f"{SCENE}_r002_c002")),
    "tile_id_backslash": lambda r: set_fields(r / INDEX, 1, **row("..\\..\\..\\x")),
    "tile_id_hidden": lambda r: set_fields(r / INDEX, 1, **row(".x")),
    "tile_id_empty": lambda r: set_fields(r / INDEX, 1, **row("")),
    "tile_id_nul": lambda r: set_fields(r / INDEX, 1, **row(f"{SCENE}_r000\x00_c000")),
    "tile_id_very_long": lambda r: set_fields(r / INDEX, 1, **row(FIRST + "x" * 5000)),
    "tile_id_twice": lambda r: set_fields(r / INDEX, 2, col=0, **row(FIRST)),
    "scene_dotdot": lambda r: set_fields(r / INDEX, 1, **row(".._r000_c000", scene="..")),
    "scene_hidden": lambda r: set_fields(r / INDEX, 1, **row(".x_r000_c000", scene=".x")),
    "scene_backslash": lambda r: set_fields(r / INDEX, 1, **row("a\\b_r000_c000", scene="a\\b")),
    "scene_empty": lambda r: set_fields(r / INDEX, 1, **row("_r000_c000", scene="")),
    "scene_very_long": lambda r: set_fields(r / INDEX, 1, **row(f"{LONG}_r000_c000", scene=LONG)),
    "params_not_json": lambda r: set_params(r / INDEX, "{not json"),
    "params_a_list": lambda r: set_params(r / INDEX, "[1]"),
    "width_negative": lambda r: set_fields(r / INDEX, 1, width=-256),
    "nodata_fraction_nan": lambda r: set_fields(r / INDEX, 1, nodata_fraction=float("nan")),
    "transform_text": lambda r: set_fields(r / INDEX, 1, transform="nan,0,0,0,-1,0"),
    "symlinked_chip_out": symlinked_chip,
    "symlinked_scene_folder_out": symlinked_scene_folder,
}


def run_command(command: str, root: Path, base: Path) -> Result:
    if command == "tile":
        return run_geolabel("tile", base / f"{SCENE}.tif", "--out", "chips", "--size", 256, "--overwrite", cwd=root)
    if command == "export":
        return run_geolabel("export", "labels.gpkg", "--tiles", INDEX, "--out", "dataset", "--workers", 1, cwd=root)
    return run_geolabel("check", "labels.gpkg", "--tiles", INDEX, "--out", "qa", cwd=root)


@pytest.mark.parametrize("command", ["tile", "export", "check"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_crafted_index_is_refused_and_nothing_is_touched(case: str, command: str, work: Path, base: Path) -> None:
    CASES[case](work)
    before = tree_state(work)
    res = run_command(command, work, base)
    # tile checks its own scene folders before it reads the index
    named = f"chips/{SCENE}" if (case, command) == ("symlinked_scene_folder_out", "tile") else INDEX
    assert_one_line_error(res, code=2, file=named)
    assert tree_state(work) == before
    assert not (work / "dataset").exists() and not (work / "qa").exists()


def test_normal_index_with_a_chinese_scene_name_still_works(work: Path, base: Path) -> None:
    chips = sorted((work / "chips" / SCENE).iterdir())
    assert len(chips) == 9
    res = run_command("export", work, base)
    assert res.code == 0, res.stderr
    images = sorted(p.name for p in (work / "dataset" / "images").rglob("*.tif"))
    assert images == sorted(p.name for p in chips)
    res = run_command("check", work, base)
    assert res.code in (0, 1) and (work / "qa" / "report.html").exists(), res.stderr
    res = run_command("tile", work, base)
    assert res.code == 0, res.stderr
    assert sorted((work / "chips" / SCENE).iterdir()) == chips
    assert (work / "canary.txt").read_text() == "do not touch\n" and (work / "secret.tif").exists()


def test_scene_folder_symlinked_inside_the_index_folder_is_accepted(work: Path, base: Path) -> None:
    moved = work / "chips" / "store" / SCENE
    moved.parent.mkdir()
    shutil.move(work / "chips" / SCENE, moved)
    (work / "chips" / SCENE).symlink_to(Path("store") / SCENE)
    res = run_command("export", work, base)
    assert res.code == 0, res.stderr


def test_overwrite_removes_a_chip_link_never_its_target(work: Path, base: Path) -> None:
    keep = work / "chips" / "keep.tif"
    chip = work / "chips" / SCENE / f"{FIRST}.tif"
    shutil.move(chip, keep)
    chip.symlink_to(Path("..") / "keep.tif")
    kept = keep.read_bytes()
    res = run_command("tile", work, base)
    assert res.code == 0, res.stderr
    assert keep.read_bytes() == kept and not chip.is_symlink() and chip.is_file()


def test_tile_refuses_a_scene_name_too_long_for_chip_names(base: Path, tmp_path: Path) -> None:
    scene = tmp_path / ("长" * 80 + ".tif")  # 240 bytes: its chips' temporary names would not fit in 255
    shutil.copy(base / f"{SCENE}.tif", scene)
    before = tree_state(tmp_path)
    res = run_geolabel("tile", scene.name, "--out", "chips", "--size", 256, cwd=tmp_path)
    assert_one_line_error(res, code=2, file=scene.name, contains="too long")
    assert tree_state(tmp_path) == before


def test_tile_refuses_a_scene_folder_that_links_outside_the_output(base: Path, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "chips").mkdir()
    (tmp_path / "chips" / SCENE).symlink_to(Path("..") / "elsewhere")
    before = tree_state(tmp_path)
    res = run_geolabel("tile", base / f"{SCENE}.tif", "--out", "chips", "--size", 256, cwd=tmp_path)
    assert_one_line_error(res, code=2, file=f"chips/{SCENE}", contains="outside")
    assert tree_state(tmp_path) == before


@pytest.mark.parametrize("with_index", [False, True])
def test_overwrite_never_deletes_through_a_scene_folder_that_links_outside(
    base: Path, tmp_path: Path, with_index: bool
) -> None:
    """A scene the old index does not list (or no index at all): --overwrite deletes chip-named
    files in the scene's folder, which must not be followed to outside the output folder."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / f"{SCENE}_r000_c000.tif").write_bytes(b"not yours")
    (tmp_path / "chips").mkdir()
    if with_index:  # an index of another scene
        other = tmp_path / "other.tif"
        shutil.copy(base / f"{SCENE}.tif", other)
        assert run_geolabel("tile", other, "--out", "chips", "--size", 256, cwd=tmp_path).code == 0
    (tmp_path / "chips" / SCENE).symlink_to(Path("..") / "victim")
    before = tree_state(tmp_path)
    res = run_geolabel("tile", base / f"{SCENE}.tif", "--out", "chips", "--size", 128, "--overwrite", cwd=tmp_path)
    assert_one_line_error(res, code=2, file=f"chips/{SCENE}", contains="outside")
    assert tree_state(tmp_path) == before


def record(tile_id: str, *, scene: str = "village", row: int = 5, col: int = 12, path: str | None = None) -> TileRecord:
    return TileRecord(
        tile_id=tile_id,
        scene=scene,
        scene_path="/data/village.tif",
        path=f"{scene}/{tile_id}.tif" if path is None else path,
        row=row,
        col=col,
        row_off=0,
        col_off=0,
        width=256,
        height=256,
        nodata_fraction=0.0,
        crs="EPSG:32649",
        transform=(0.5, 0.0, 0.0, 0.0, -0.5, 0.0),
    )


@pytest.mark.parametrize("tile_id", ["village_r005_c012", "village_r0005_c0012", "village_r00005_c00012"])
def test_ids_of_any_grid_size_are_accepted(tile_id: str) -> None:
    assert record_problem(record(tile_id), chip=True) is None


@pytest.mark.parametrize(
    ("tile_id", "scene", "path"),
    [
        ("village_r05_c12", "village", None),  # fewer than 3 digits
        ("village_r0005_c012", "village", None),  # row and column padded differently
        ("village_r005_c013", "village", None),  # another cell
        ("other_r005_c012", "village", None),  # another scene
        ("village_r005_c012", "village", "village/../village/village_r005_c012.tif"),
        ("village_r005_c012", "village", "./village/village_r005_c012.tif"),
        ("my scene_r005_c012", "my scene", None),  # geolabel makes my_scene
        ("village_r005_c012", "village", ""),  # a chip without a path
        ("village_r005_c012", "village", "village/village_r005_c012.tif\x00/../x"),  # NUL (OGR would cut it)
        ("vil\x00lage_r005_c012", "vil\x00lage", None),
        ("village_r005_c012", "village", "/abs/village/village_r005_c012.tif"),
    ],
)
def test_ids_and_paths_geolabel_would_not_make_are_refused(tile_id: str, scene: str, path: str | None) -> None:
    assert record_problem(record(tile_id, scene=scene, path=path), chip=True)


def test_skipped_cells_have_no_path() -> None:
    assert record_problem(record("village_r005_c012", path=""), chip=False) is None
    assert record_problem(record("village_r005_c012"), chip=False)


@pytest.mark.parametrize(
    "name",
    ["", "/etc/x", "../x", "a/../../x", "a/./x", "a//x", ".hidden", "a/.x", "a\\..\\x", "a\x00/x", "x" * 256, "a/"],
)
def test_child_path_refuses_names_that_could_lead_elsewhere(name: str, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a name inside"):
        child_path(tmp_path, name)


def test_child_path_refuses_a_folder_linked_outside_but_not_a_final_link(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "inside").mkdir()
    (tmp_path / "out" / "away").symlink_to(tmp_path)
    (tmp_path / "out" / "near").symlink_to("inside")
    with pytest.raises(InputError, match="link to outside"):
        child_path(tmp_path / "out", "away/x.tif")
    assert child_path(tmp_path / "out", "near/x.tif") == tmp_path / "out" / "near" / "x.tif"
    assert child_path(tmp_path / "out", "away") == tmp_path / "out" / "away"  # removing it removes the link

from __future__ import annotations

import os
from pathlib import Path

import fiona
import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from geolabel import tile_raster
from geolabel.errors import CancelledError, CRSError, InputError, MissingFileError, OutputExistsError
from geolabel.tileindex import read_index

from .conftest import make_scene


def assert_chips_match_source(result, scene: Path, *, size: int, bands=None, nodata=0):
    """Every chip equals the scene window (all bands), padding is nodata, georef exact."""
    with rasterio.open(scene) as src:
        full = src.read(bands)
        for rec in result.chips:
            with rasterio.open(result.out_dir / rec.path) as chip:
                data = chip.read()
                assert chip.crs == src.crs
                assert chip.transform == window_transform(Window(rec.col_off, rec.row_off, size, size), src.transform)
                assert (chip.width, chip.height) == (size, size)
                assert chip.nodata == src.nodata
            want = np.full((full.shape[0], size, size), nodata if nodata is not None else 0, dtype=full.dtype)
            part = full[:, rec.row_off : rec.row_off + size, rec.col_off : rec.col_off + size]
            want[:, : part.shape[1], : part.shape[2]] = part
            np.testing.assert_array_equal(data, want, err_msg=rec.tile_id)


@pytest.mark.parametrize("workers", [1, 2])
def test_chips_equal_source_windows_including_padded_edges(scene_factory, tmp_path, workers):
    scene = scene_factory(width=1000, height=700, block=256, collar=0)
    result = tile_raster(scene, tmp_path / "out", size=256, workers=workers)
    assert len(result.chips) == 12  # 3 rows x 4 cols, edges padded
    assert result.written == 12 and result.resumed == 0
    assert_chips_match_source(result, scene, size=256)
    ids = [r.tile_id for r in result.chips]
    assert ids[0] == "scene1_r000_c000" and ids[-1] == "scene1_r002_c003"


@pytest.mark.parametrize(
    ("edge", "overlap", "count", "last_offsets"),
    [
        ("pad", 0, 12, (512, 768)),
        ("shift", 0, 12, (444, 744)),
        ("drop", 0, 6, (256, 512)),
        ("pad", 56, 20, (600, 800)),
        ("shift", 56, 20, (444, 744)),
        ("drop", 56, 12, (400, 600)),
    ],
)
def test_counts_and_offsets_for_every_edge_policy_and_overlap(
    scene_factory, tmp_path, edge, overlap, count, last_offsets
):
    scene = scene_factory(width=1000, height=700, block=None, compress=None)
    result = tile_raster(scene, tmp_path / "out", size=256, overlap=overlap, edge=edge, workers=1)
    assert len(result.chips) == count
    last = result.chips[-1]
    assert (last.row_off, last.col_off) == last_offsets
    assert_chips_match_source(result, scene, size=256)
    if edge != "pad":
        assert all(r.nodata_fraction == 0 for r in result.chips)


def test_tile_ids_are_the_same_on_every_run(scene_factory, tmp_path):
    scene = scene_factory(width=600, height=600)
    a = tile_raster(scene, tmp_path / "a", size=200, overlap=20, workers=1)
    b = tile_raster(scene, tmp_path / "b", size=200, overlap=20, workers=2)
    assert [r.tile_id for r in a.chips] == [r.tile_id for r in b.chips]
    assert [(r.row_off, r.col_off) for r in a.chips] == [(r.row_off, r.col_off) for r in b.chips]


def test_index_lists_every_chip_with_footprint_in_scene_crs(scene_factory, tmp_path):
    scene = scene_factory(width=1000, height=700, origin=(680000.0, 3125000.0), res=0.5)
    result = tile_raster(scene, tmp_path / "out", size=256, workers=1)
    with fiona.open(result.index_path, layer="tiles") as layer:
        assert layer.crs.to_epsg() == 32649
        feats = list(layer)
    assert len(feats) == 12
    props = feats[1]["properties"]
    assert props["tile_id"] == "scene1_r000_c001"
    assert props["path"] == "scene1/scene1_r000_c001.tif"
    assert (props["row_off"], props["col_off"], props["width"], props["height"]) == (0, 256, 256, 256)
    assert props["scene"] == "scene1" and props["nodata_fraction"] == 0.0
    xs, ys = zip(*feats[1]["geometry"]["coordinates"][0])
    assert (min(xs), max(xs)) == (680000.0 + 128.0, 680000.0 + 256.0)
    assert (min(ys), max(ys)) == (3125000.0 - 128.0, 3125000.0)
    last = feats[-1]["properties"]
    assert last["nodata_fraction"] == pytest.approx(1 - (188 * 232) / 256**2)


def test_chips_keep_band_metadata_and_source_compression(scene_factory, tmp_path):
    scene = scene_factory(width=600, height=600, compress="zstd", block=256)
    result = tile_raster(scene, tmp_path / "out", size=256, workers=1)
    with rasterio.open(result.out_dir / result.chips[0].path) as chip:
        assert chip.compression.name == "zstd"
        assert chip.descriptions == ("red", "green", "blue", "nir")
        assert [c.name for c in chip.colorinterp] == ["red", "green", "blue", "undefined"]
        assert chip.block_shapes[0] == (256, 256)


@pytest.mark.parametrize("compress", ["none", "deflate", "lzw", "zstd"])
def test_compress_option_sets_chip_compression(scene_factory, tmp_path, compress):
    scene = scene_factory(width=300, height=300, compress="deflate")
    result = tile_raster(scene, tmp_path / "out", size=256, compress=compress, workers=1)
    with rasterio.open(result.out_dir / result.chips[0].path) as chip:
        assert (chip.compression.name if chip.compression else "none") == compress
    assert_chips_match_source(result, scene, size=256)


def test_band_subset_in_requested_order(scene_factory, tmp_path):
    scene = scene_factory(width=300, height=300)
    result = tile_raster(scene, tmp_path / "out", size=256, bands=[4, 1], workers=1)
    with rasterio.open(result.out_dir / result.chips[0].path) as chip:
        assert chip.count == 2
        assert chip.descriptions == ("nir", "red")
    assert_chips_match_source(result, scene, size=256, bands=[4, 1])


def test_band_out_of_range_is_refused(scene_factory, tmp_path):
    scene = scene_factory(width=300, height=300)
    with pytest.raises(InputError, match="has 4 bands; cannot select band 7"):
        tile_raster(scene, tmp_path / "out", size=256, bands=[1, 7], workers=1)
    assert not (tmp_path / "out").exists()


def test_nodata_fraction_and_max_nodata_skipping(scene_factory, tmp_path):
    # left 300 columns nodata: chip col 0 fully nodata, col 1 (256..511) 44/256 nodata
    scene = scene_factory(width=1024, height=512, collar=300, block=256)
    result = tile_raster(scene, tmp_path / "out", size=256, max_nodata=0.5, workers=1)
    by_col = {}
    for r in result.chips:
        by_col.setdefault(r.col, r.nodata_fraction)
    assert sorted(by_col) == [1, 2, 3]  # col 0 is 100 % nodata: always skipped
    assert by_col[1] == pytest.approx(44 / 256)
    assert len(result.skipped) == 2 and result.n_skipped == 2
    assert all(r.nodata_fraction == 1.0 for r in result.skipped)
    with fiona.open(result.index_path, layer="skipped_tiles") as layer:
        assert sorted(f["properties"]["tile_id"] for f in layer) == ["scene1_r000_c000", "scene1_r001_c000"]
    strict = tile_raster(scene, tmp_path / "strict", size=256, max_nodata=0.1, workers=1)
    assert sorted({r.col for r in strict.chips}) == [2, 3]
    assert_chips_match_source(strict, scene, size=256)


def test_scene_without_nodata_has_zero_fraction_and_masked_padding(scene_factory, tmp_path):
    scene = scene_factory(width=300, height=300, nodata=None)
    result = tile_raster(scene, tmp_path / "out", size=256, workers=1)
    fractions = {r.tile_id: r.nodata_fraction for r in result.chips}
    assert fractions["scene1_r000_c000"] == 0.0
    assert fractions["scene1_r001_c001"] == pytest.approx(1 - 44 * 44 / 256**2)
    with rasterio.open(result.out_dir / "scene1/scene1_r001_c001.tif") as chip:
        assert chip.nodata is None
        mask = chip.dataset_mask()
        assert mask[:44, :44].min() == 255 and mask[44:, :].max() == 0 and mask[:, 44:].max() == 0
    with rasterio.open(result.out_dir / "scene1/scene1_r000_c000.tif") as chip:
        assert chip.dataset_mask().min() == 255


def test_scene_with_internal_mask_uses_it_for_nodata_fraction(scene_factory, tmp_path):
    mask = np.full((512, 512), 255, dtype=np.uint8)
    mask[:, :128] = 0
    scene = scene_factory(width=512, height=512, nodata=None, mask=mask)
    result = tile_raster(scene, tmp_path / "out", size=256, workers=1)
    fractions = {r.col: r.nodata_fraction for r in result.chips}
    assert fractions == {0: 0.5, 1: 0.0}
    with rasterio.open(result.out_dir / result.chips[0].path) as chip:
        assert (chip.dataset_mask()[:, :128] == 0).all() and (chip.dataset_mask()[:, 128:] == 255).all()


def test_float_scene_with_negative_nodata(scene_factory, tmp_path):
    scene = scene_factory(
        width=300, height=200, dtype="float32", nodata=-99999.0, collar=100, block=None, compress=None
    )
    result = tile_raster(scene, tmp_path / "out", size=128, workers=1)
    first = next(r for r in result.chips if r.tile_id.endswith("r000_c000"))
    assert first.nodata_fraction == pytest.approx(100 / 128)
    assert_chips_match_source(result, scene, size=128, nodata=-99999.0)


def test_reprojection_puts_a_known_point_at_the_right_pixel(tmp_path):
    # A bright 3x3 block around a known UTM 49N point; tile in UTM 50N at 1 m.
    import pyproj

    path = tmp_path / "utm49.tif"
    origin = (790000.0, 3125000.0)
    data = np.full((1, 400, 400), 10, dtype=np.uint8)
    data[0, 199:202, 199:202] = 200
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=400,
        height=400,
        count=1,
        dtype="uint8",
        crs="EPSG:32649",
        transform=from_origin(*origin, 1.0, 1.0),
        nodata=0,
    ) as dst:
        dst.write(data)
    x49, y49 = origin[0] + 200.5, origin[1] - 200.5
    x50, y50 = pyproj.Transformer.from_crs(32649, 32650, always_xy=True).transform(x49, y49)
    result = tile_raster(path, tmp_path / "out", size=256, dst_crs="EPSG:32650", resolution=1.0, workers=1)
    hits = []
    for rec in result.chips:
        with rasterio.open(result.out_dir / rec.path) as chip:
            assert chip.crs.to_epsg() == 32650
            assert chip.res == (1.0, 1.0)
            assert chip.transform.c % 1.0 == 0 and chip.transform.f % 1.0 == 0  # aligned to the resolution
            row, col = chip.index(x50, y50)
            if 0 <= row < 256 and 0 <= col < 256:
                hits.append(chip.read(1)[row, col])
    assert hits == [200]
    # Outside the rotated source footprint the chips are nodata, and counted as such.
    assert any(r.nodata_fraction > 0 for r in result.chips)


def test_scenes_in_two_utm_zones_share_one_crs(scene_factory, tmp_path):
    a = scene_factory("zone49.tif", width=300, height=300, crs="EPSG:32649", origin=(799000.0, 3125000.0))
    b = scene_factory("zone50.tif", width=300, height=300, crs="EPSG:32650", origin=(200000.0, 3125000.0))
    result = tile_raster([a, b], tmp_path / "out", size=128, dst_crs="EPSG:32650", resolution=0.5, workers=1)
    assert {r.scene for r in result.chips} == {"zone49", "zone50"}
    assert (tmp_path / "out" / "zone49").is_dir() and (tmp_path / "out" / "zone50").is_dir()
    with fiona.open(result.index_path, layer="tiles") as layer:
        assert layer.crs.to_epsg() == 32650
        assert len(layer) == len(result.chips)
    for rec in result.chips:
        with rasterio.open(result.out_dir / rec.path) as chip:
            assert chip.crs.to_epsg() == 32650


def test_rerun_resumes_without_rewriting_finished_chips(scene_factory, tmp_path):
    scene = scene_factory(width=600, height=600)
    out = tmp_path / "out"
    first = tile_raster(scene, out, size=256, workers=1)
    stamps = {r.tile_id: os.stat(out / r.path).st_mtime_ns for r in first.chips}
    (out / first.chips[4].path).unlink()
    second = tile_raster(scene, out, size=256, workers=1)
    assert second.written == 1 and second.resumed == 8
    for r in second.chips:
        if r.tile_id != first.chips[4].tile_id:
            assert os.stat(out / r.path).st_mtime_ns == stamps[r.tile_id]
    assert_chips_match_source(second, scene, size=256)
    chips, skipped, params = read_index(out / "tiles.gpkg")
    assert len(chips) == 9 and params["size"] == 256


def test_rerun_with_other_options_is_refused_unless_overwrite(scene_factory, tmp_path):
    scene = scene_factory(width=600, height=600)
    out = tmp_path / "out"
    tile_raster(scene, out, size=256, workers=1)
    with pytest.raises(OutputExistsError, match=r"size=256.*`overwrite=True`"):
        tile_raster(scene, out, size=128, workers=1)
    result = tile_raster(scene, out, size=128, overwrite=True, workers=1)
    assert len(result.chips) == 25
    assert len(list((out / "scene1").glob("*.tif"))) == 25


def test_failed_run_leaves_no_partial_chip_and_can_be_resumed(scene_factory, tmp_path):
    scene = scene_factory(width=1024, height=1024, block=256)
    out = tmp_path / "out"
    calls = {"n": 0}

    def cancel_after_two_tasks():
        calls["n"] += 1
        return calls["n"] > 2

    with pytest.raises(CancelledError):
        tile_raster(scene, out, size=128, workers=1, is_cancelled=cancel_after_two_tasks, block_copy=False)
    files = sorted(p.name for p in (out / "scene1").iterdir())
    assert not [f for f in files if f.startswith(".")], "no temporary files left"
    chips, _, _ = read_index(out / "tiles.gpkg")
    assert len(chips) == len(files) and 0 < len(files) < 64  # two tasks finished, the rest not started
    import pyogrio

    assert pyogrio.read_info(out / "tiles.gpkg", layer="tiles")["layer_metadata"]["GEOLABEL_STATUS"] == "incomplete"
    result = tile_raster(scene, out, size=128, workers=1)
    assert result.resumed == len(files) and result.written == 64 - len(files)
    assert pyogrio.read_info(out / "tiles.gpkg", layer="tiles")["layer_metadata"]["GEOLABEL_STATUS"] == "complete"
    assert_chips_match_source(result, scene, size=128)


def test_missing_file_and_non_raster_are_refused_before_any_output(tmp_path):
    with pytest.raises(MissingFileError, match=r"nope\.tif: no such file"):
        tile_raster(tmp_path / "nope.tif", tmp_path / "out")
    text = tmp_path / "notes.txt"
    text.write_text("not a raster\n")
    with pytest.raises(InputError, match=r"notes\.txt: not a raster GDAL can read"):
        tile_raster(text, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_truncated_raster_is_reported_as_corrupt(scene_factory, tmp_path):
    scene = scene_factory(width=512, height=512, block=256)
    raw = scene.read_bytes()
    broken = tmp_path / "broken.tif"
    broken.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match=r"broken\.tif: .*(corrupt|not a raster)"):
        tile_raster(broken, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_raster_without_crs_needs_allow_no_crs(scene_factory, tmp_path):
    scene = scene_factory(width=300, height=300, crs=None)
    with pytest.raises(CRSError, match="has no CRS.*`allow_no_crs=True`"):
        tile_raster(scene, tmp_path / "out", size=256)
    result = tile_raster(scene, tmp_path / "out", size=256, allow_no_crs=True, workers=1)
    assert len(result.chips) == 4
    with rasterio.open(result.out_dir / result.chips[0].path) as chip:
        assert chip.crs is None


def test_two_scenes_with_the_same_name_are_refused(scene_factory, tmp_path):
    a = scene_factory("a.tif", width=100, height=100)
    (tmp_path / "other").mkdir()
    b = make_scene(tmp_path / "other" / "a.tif", width=100, height=100)
    with pytest.raises(InputError, match="same name"):
        tile_raster([a, b], tmp_path / "out", size=64)


def test_cog_format_chips_are_cloud_optimized(scene_factory, tmp_path):
    scene = scene_factory(width=600, height=600)
    result = tile_raster(scene, tmp_path / "out", size=512, format="cog", workers=1)
    with rasterio.open(result.out_dir / result.chips[0].path) as chip:
        assert chip.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    assert_chips_match_source(result, scene, size=512)


def test_non_empty_folder_without_index_is_not_used(scene_factory, tmp_path):
    scene = scene_factory(width=100, height=100)
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    with pytest.raises(OutputExistsError, match="not empty"):
        tile_raster(scene, out, size=64)
    assert (out / "precious.txt").read_text() == "keep me"

"""Regressions from a review of the tiler: each test names the case it guards."""

from __future__ import annotations

import fiona
import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from rasterio.transform import from_origin

from geolabel import tile_raster
from geolabel.cli import main
from geolabel.errors import InputError, OutputExistsError
from geolabel.tileindex import read_index

from .conftest import SAMPLE, make_scene
from .test_tiling import assert_chips_match_source


def footprints(index):
    with fiona.open(index, layer="tiles") as layer:
        return layer.crs.to_epsg(), {f.properties["tile_id"]: f.geometry.coordinates[0][0] for f in layer}


def test_resuming_scenes_in_two_crss_keeps_the_index_crs_and_footprints(tmp_path):
    scenes = [SAMPLE / "village.tif", SAMPLE / "naip_northdakota_2020.tif"]
    tile_raster(scenes, tmp_path / "out", size=512, workers=1)
    before = footprints(tmp_path / "out" / "tiles.gpkg")
    again = tile_raster(scenes, tmp_path / "out", size=512, workers=1)
    assert again.written == 0
    assert footprints(tmp_path / "out" / "tiles.gpkg") == before
    assert before[0] == 32649 and before[1]["village_r000_c000"] == pytest.approx((685974.0, 3121331.0))
    chips, _, _ = read_index(tmp_path / "out" / "tiles.gpkg")
    naip = next(r for r in chips if r.scene == "naip_northdakota_2020")
    assert naip.crs == "EPSG:26914" and naip.transform[0] == pytest.approx(5.0)


def test_nbits_sources_are_decoded_not_block_copied(tmp_path):
    path = tmp_path / "nbits12.tif"
    data = np.random.default_rng(1).integers(0, 4096, size=(1, 512, 512), dtype=np.uint16)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=512,
        height=512,
        count=1,
        dtype="uint16",
        nbits=12,
        crs="EPSG:32649",
        transform=from_origin(0, 512, 1, 1),
        tiled=True,
        blockxsize=256,
        blockysize=256,
        compress="deflate",
    ) as dst:
        dst.write(data)
    result = tile_raster(path, tmp_path / "out", size=256, workers=1)
    assert result.scenes[0].copied == 0 and "NBITS" in result.scenes[0].fast_path
    assert_chips_match_source(result, path, size=256, nodata=None)


@pytest.mark.parametrize(("dst_crs", "res"), [(None, 4.0), ("EPSG:4326", 0.00005)])
def test_uncompressed_warped_chips_have_the_requested_pixel_size(tmp_path, dst_crs, res):
    scene = make_scene(tmp_path / "s.tif", width=600, height=600, compress=None, block=256, nodata=0)
    result = tile_raster(scene, tmp_path / "out", size=64, compress="none", dst_crs=dst_crs, resolution=res, workers=1)
    with rasterio.open(result.out_dir / result.chips[0].path) as chip:
        assert chip.res == pytest.approx((res, res))
        assert chip.transform.c % res == pytest.approx(0, abs=1e-9) or chip.transform.c % res == pytest.approx(res)


def test_georeferencing_and_nodata_from_an_aux_xml_sidecar_are_used(tmp_path):
    path = tmp_path / "plain.tif"
    data = np.full((1, 300, 300), 7, dtype=np.uint8)
    data[0, :, :50] = 0
    with rasterio.open(path, "w", driver="GTiff", width=300, height=300, count=1, dtype="uint8") as dst:
        dst.write(data)
    (tmp_path / "plain.tif.aux.xml").write_text(
        "<PAMDataset><SRS>EPSG:32633</SRS><GeoTransform>500000, 10, 0, 5000000, 0, -10</GeoTransform>"
        '<PAMRasterBand band="1"><NoDataValue>0</NoDataValue></PAMRasterBand></PAMDataset>'
    )
    result = tile_raster(path, tmp_path / "out", size=256, workers=1)
    with rasterio.open(result.out_dir / result.chips[0].path) as chip:
        assert chip.crs.to_epsg() == 32633 and chip.transform.c == 500000.0 and chip.nodata == 0
    assert result.chips[0].nodata_fraction == pytest.approx(50 / 256)
    assert not list((result.out_dir / "plain").glob("*.aux.xml")), "chips carry everything inside the TIFF"


def test_a_different_file_with_the_same_name_is_not_mistaken_for_done_work(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = make_scene(tmp_path / "a" / "scene.tif", width=300, height=300)
    b = make_scene(tmp_path / "b" / "scene.tif", width=300, height=300, seed=9)
    tile_raster(a, tmp_path / "out", size=256, workers=1)
    with pytest.raises(OutputExistsError, match=r"already holds chips named 'scene' from .*a/scene\.tif"):
        tile_raster(b, tmp_path / "out", size=256, workers=1)
    result = tile_raster(b, tmp_path / "out", size=256, workers=1, overwrite=True)
    assert_chips_match_source(result, b, size=256)


def test_non_latin_scene_names_stay_distinct(tmp_path):
    a = make_scene(tmp_path / "场景.tif", width=300, height=300)
    b = make_scene(tmp_path / "景色.tif", width=300, height=300, seed=4)
    result = tile_raster([a, b], tmp_path / "out", size=256, workers=1)
    assert {r.scene for r in result.chips} == {"场景", "景色"}


def test_changing_max_nodata_counts_as_another_job(tmp_path):
    scene = make_scene(tmp_path / "s.tif", width=512, height=256, collar=200)
    tile_raster(scene, tmp_path / "out", size=256, workers=1)
    with pytest.raises(OutputExistsError, match="max_nodata=1.0"):
        tile_raster(scene, tmp_path / "out", size=256, max_nodata=0.1, workers=1)
    strict = tile_raster(scene, tmp_path / "out", size=256, max_nodata=0.1, workers=1, overwrite=True)
    assert all(r.nodata_fraction <= 0.1 for r in strict.chips)


def test_a_source_with_an_alpha_band_can_be_reprojected(tmp_path):
    path = tmp_path / "rgba.tif"
    data = np.full((4, 200, 200), 100, dtype=np.uint8)
    data[3] = 255
    data[3, :, :40] = 0
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=200,
        height=200,
        count=4,
        dtype="uint8",
        photometric="RGB",
        alpha="YES",
        crs="EPSG:32649",
        transform=from_origin(686000, 3121000, 1, 1),
    ) as dst:
        dst.write(data)
    result = tile_raster(path, tmp_path / "out", size=128, dst_crs="EPSG:32650", resolution=1.0, workers=1)
    assert result.chips and max(r.nodata_fraction for r in result.chips) > 0.1


def test_a_corrupt_block_fails_with_gdals_reason_and_keeps_the_good_chips(tmp_path):
    scene = make_scene(tmp_path / "s.tif", width=1024, height=256, block=256, nodata=None)
    with rasterio.open(scene) as src:
        off = int(src.get_tag_item("BLOCK_OFFSET_2_0", "TIFF", bidx=1))
    raw = bytearray(scene.read_bytes())
    raw[off : off + 64] = b"\xff" * 64
    scene.write_bytes(bytes(raw))
    with pytest.raises(InputError, match=r"s\.tif: reading or writing chips failed \(.*(IReadBlock|Decod|failed)"):
        tile_raster(scene, tmp_path / "out", size=256, workers=1, block_copy=False)
    chips, _, _ = read_index(tmp_path / "out" / "tiles.gpkg")
    assert chips and all((tmp_path / "out" / r.path).exists() for r in chips)


def test_palette_rasters_keep_their_colour_table(tmp_path):
    path = tmp_path / "pal.tif"
    cmap = {0: (0, 0, 0, 255), 1: (255, 0, 0, 255), 2: (0, 255, 0, 255)}
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=300,
        height=300,
        count=1,
        dtype="uint8",
        crs="EPSG:32649",
        transform=from_origin(0, 300, 1, 1),
        photometric="palette",
    ) as dst:
        dst.write(np.random.default_rng(0).integers(0, 3, (1, 300, 300), dtype=np.uint8))
        dst.write_colormap(1, cmap)
    result = tile_raster(path, tmp_path / "out", size=256, workers=1)
    with rasterio.open(result.out_dir / result.chips[0].path) as chip:
        assert chip.colormap(1)[1] == (255, 0, 0, 255)


def test_lossless_chips_from_a_lossy_or_webp_source(tmp_path):
    path = tmp_path / "webp.tif"
    data = np.random.default_rng(2).integers(1, 255, (3, 256, 256), dtype=np.uint8)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=256,
        height=256,
        count=3,
        dtype="uint8",
        crs="EPSG:32649",
        transform=from_origin(0, 256, 1, 1),
        compress="webp",
        webp_lossless=True,
        tiled=True,
    ) as dst:
        dst.write(data)
    result = tile_raster(path, tmp_path / "out", size=128, workers=1)
    with rasterio.open(result.out_dir / result.chips[0].path) as chip:
        assert chip.compression.name == "deflate"
    assert_chips_match_source(result, path, size=128, nodata=None)


def test_a_scene_without_crs_cannot_join_a_projected_index(tmp_path):
    tile_raster(make_scene(tmp_path / "a.tif", width=300, height=300), tmp_path / "out", size=256, workers=1)
    nocrs = make_scene(tmp_path / "b.tif", width=300, height=300, crs=None)
    with pytest.raises(InputError, match="has no CRS but the chips in .* do"):
        tile_raster(nocrs, tmp_path / "out", size=256, allow_no_crs=True, workers=1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["adir"], "File 'adir' is a directory"),
        (["good.tif", "--edge", "wrap"], "'wrap' is not one of 'pad', 'shift', 'drop'"),
        (["good.tif", "--dst-crs", "EPSG:4326", "--resolution", "1e-9"], "would make a"),
    ],
)
def test_option_errors_are_one_line(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "adir").mkdir()
    make_scene(tmp_path / "good.tif", width=300, height=300)
    res = CliRunner().invoke(main, ["tile", *args, "--out", "out"])
    assert res.exit_code == 2
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("geolabel: error:") and message in lines[0], res.output


def test_drop_policy_on_a_small_scene_warns(tmp_path):
    from geolabel.errors import EdgePolicyWarning

    scene = make_scene(tmp_path / "small.tif", width=100, height=70)
    with pytest.warns(EdgePolicyWarning, match="leaves no chip"):
        result = tile_raster(scene, tmp_path / "out", size=256, edge="drop", workers=1)
    assert result.chips == []

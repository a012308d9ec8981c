"""The no-decode fast path: chips assembled from the scene's compressed blocks."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import rasterio
from rasterio.errors import RasterioIOError

from geolabel import tile_raster
from geolabel.errors import InputError
from geolabel.tileindex import read_index

from .test_tiling import assert_chips_match_source


@pytest.mark.parametrize(
    ("compress", "predictor", "block", "size"),
    [
        ("deflate", None, 256, 256),
        ("deflate", 2, 256, 512),
        ("zstd", 2, 128, 256),
        ("lzw", None, 256, 256),
    ],
)
def test_aligned_chips_are_copied_without_decoding_and_pixel_exact(
    scene_factory, tmp_path, compress, predictor, block, size
):
    scene = scene_factory(width=1024, height=1024, block=block, compress=compress, predictor=predictor, collar=40)
    result = tile_raster(scene, tmp_path / "out", size=size, workers=1)
    summary = result.scenes[0]
    assert summary.fast_path == "block copy"
    assert summary.copied == summary.written == len(result.chips)
    assert_chips_match_source(result, scene, size=size)
    with rasterio.open(result.out_dir / result.chips[0].path) as chip:
        assert chip.block_shapes[0] == (block, block)
        assert chip.descriptions == ("red", "green", "blue", "nir")
        assert [c.name for c in chip.colorinterp] == ["red", "green", "blue", "undefined"]
        assert chip.nodata == 0
    # nodata fractions from the raw blocks equal those counted on decoded pixels
    decoded = tile_raster(scene, tmp_path / "decoded", size=size, workers=1, block_copy=False)
    assert decoded.scenes[0].copied == 0
    assert [r.nodata_fraction for r in result.chips] == [r.nodata_fraction for r in decoded.chips]
    assert result.chips[0].nodata_fraction == pytest.approx(40 / size)


@pytest.mark.parametrize(
    ("source_compress", "size", "block"), [(None, 256, 256), ("deflate", 512, 256), (None, 200, 256)]
)
def test_uncompressed_chips_are_band_interleaved_and_pixel_exact(scene_factory, tmp_path, source_compress, size, block):
    scene = scene_factory(width=1000, height=600, block=block, compress=source_compress)
    result = tile_raster(scene, tmp_path / "out", size=size, compress="none", workers=1)
    assert result.scenes[0].copied == 0
    assert_chips_match_source(result, scene, size=size)
    with rasterio.open(result.out_dir / result.chips[0].path) as chip:
        assert chip.compression is None
        assert chip.interleaving.name == "band"
        assert chip.descriptions == ("red", "green", "blue", "nir")
        assert [c.name for c in chip.colorinterp] == ["red", "green", "blue", "undefined"]


def test_partial_edge_chips_fall_back_to_decoding(scene_factory, tmp_path):
    scene = scene_factory(width=1000, height=600, block=256)
    result = tile_raster(scene, tmp_path / "out", size=256, workers=2)
    assert result.scenes[0].copied == 6  # 2 full rows x 3 full columns
    assert result.written == 12
    assert_chips_match_source(result, scene, size=256)


@pytest.mark.parametrize(
    ("why", "kwargs", "scene_kwargs"),
    [
        ("band subset", {"bands": [1, 2, 3]}, {}),
        ("compression differs", {"compress": "zstd"}, {}),
        ("band-interleaved", {}, {"interleave": "band"}),
        ("overlap", {"overlap": 100}, {}),
        ("cog", {"format": "cog"}, {}),
    ],
)
def test_fast_path_is_not_used_when_blocks_cannot_be_copied(scene_factory, tmp_path, why, kwargs, scene_kwargs):
    scene = scene_factory(width=512, height=512, block=256, **scene_kwargs)
    result = tile_raster(scene, tmp_path / "out", size=256, workers=1, **kwargs)
    assert result.scenes[0].copied == 0, why
    assert_chips_match_source(result, scene, size=256, bands=kwargs.get("bands"))


def test_copied_chips_read_back_with_an_independent_gdal(scene_factory, tmp_path):
    gdalinfo = shutil.which("gdalinfo")
    if gdalinfo is None:
        pytest.skip("gdalinfo (Debian gdal-bin) is not installed")
    scene = scene_factory(width=512, height=512, block=256, predictor=2)
    result = tile_raster(scene, tmp_path / "out", size=512, workers=1)
    assert result.scenes[0].copied == 1
    chip = result.out_dir / result.chips[0].path
    out = subprocess.run([gdalinfo, "-checksum", str(chip)], capture_output=True, text=True, check=True)
    assert "ERROR" not in out.stderr and "Warning" not in out.stderr
    with rasterio.open(scene) as src:
        want = src.read()
    checksums = [int(line.split("=")[1]) for line in out.stdout.splitlines() if "Checksum=" in line]
    assert len(checksums) == 4
    # gdalinfo's checksums of the chip equal those of the source window (same pixels)
    ref = subprocess.run([gdalinfo, "-checksum", str(scene)], capture_output=True, text=True, check=True).stdout
    assert checksums == [int(line.split("=")[1]) for line in ref.splitlines() if "Checksum=" in line]
    assert want.shape == (4, 512, 512)


def damage_block(scene, *, where: str) -> None:
    """Change the compressed block (x=2, y=0) of ``scene`` in place: ``checksum`` flips a bit
    of its last byte (DEFLATE: the Adler-32 checksum), ``middle`` one in the middle,
    ``header`` overwrites its first 8 bytes."""
    with rasterio.open(scene) as src:
        off = int(src.get_tag_item("BLOCK_OFFSET_2_0", "TIFF", bidx=1))
        size = int(src.get_tag_item("BLOCK_SIZE_2_0", "TIFF", bidx=1))
    raw = bytearray(scene.read_bytes())
    if where == "header":
        raw[off : off + 8] = b"\xff" * 8
    else:
        raw[off + size - 1 if where == "checksum" else off + size // 2] ^= 0x10
    scene.write_bytes(bytes(raw))


@pytest.mark.parametrize(
    ("compress", "where"),
    [("deflate", "checksum"), ("deflate", "middle"), ("deflate", "header"), ("zstd", "header"), ("lzw", "header")],
)
def test_a_damaged_block_is_not_copied_into_a_chip(scene_factory, tmp_path, compress, where):
    scene = scene_factory(width=1024, height=256, block=256, nodata=None, compress=compress)
    with rasterio.open(scene) as src:
        full = src.read()
    damage_block(scene, where=where)
    with pytest.raises(InputError, match=r"reading or writing chips failed \(.*X offset 2, Y offset 0"):
        tile_raster(scene, tmp_path / "out", size=256, workers=1)
    chips, _, _ = read_index(tmp_path / "out" / "tiles.gpkg")
    assert "scene1_r000_c002" not in {r.tile_id for r in chips}
    assert not (tmp_path / "out" / "scene1" / "scene1_r000_c002.tif").exists()
    for rec in chips:  # the chips written are the intact blocks, byte for byte
        with rasterio.open(tmp_path / "out" / rec.path) as chip:
            assert (chip.read() == full[:, :, rec.col_off : rec.col_off + 256]).all()


def test_damage_that_still_decodes_is_found_only_in_deflate_blocks(scene_factory, tmp_path):
    """What the README says: ZSTD and LZW blocks carry no checksum, so a changed byte that
    still decodes gives other pixels, on every path (GDAL reads the source without error)."""
    for compress in ("zstd", "lzw"):
        scene = scene_factory(width=1024, height=256, block=256, nodata=None, compress=compress)
        damage_block(scene, where="middle")
        result = tile_raster(scene, tmp_path / compress, size=256, workers=1)
        assert result.written == 4
        with rasterio.open(scene) as src:
            assert src.read().shape == (4, 256, 1024)  # no error reading the source either


def test_no_verify_blocks_copies_a_damaged_block_as_it_is(scene_factory, tmp_path):
    from .badinput import assert_one_line_error, run_geolabel

    scene = scene_factory("s.tif", width=1024, height=256, block=256, nodata=None)
    damage_block(scene, where="checksum")
    res = run_geolabel("tile", scene.name, "--out", "checked", "--size", "256", cwd=tmp_path)
    assert_one_line_error(res, code=2, file=scene.name, contains="X offset 2, Y offset 0")
    res = run_geolabel("tile", scene.name, "--out", "unchecked", "--size", "256", "--no-verify-blocks", cwd=tmp_path)
    assert res.code == 0, res.stderr
    assert "4 chips written, 4 by block copy" in res.stdout
    with rasterio.open(tmp_path / "unchecked" / "s" / "s_r000_c002.tif") as chip, pytest.raises(RasterioIOError):
        chip.read()  # the chip holds the damaged block: its readers fail on it as the source's do

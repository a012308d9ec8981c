"""Counting nodata and checking DEFLATE blocks from their compressed bytes (libdeflate)."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from geolabel import tile_raster
from geolabel.blockcheck import count_nodata_pixels, decoder_for
from geolabel.blockcopy import block_table, read_blocks
from geolabel.raster import inspect_scene
from geolabel.tiling import worker

from .test_blockcopy import damage_block


def patchy_scene(
    path, *, dtype="uint8", count=4, predictor=None, nodata=0, compress="deflate", interleave="pixel", seed=3
):
    """512 x 256 px, 128 px blocks; about 20 % of pixels nodata in every band, 20 % more in
    some bands only, and the right block column left out of the file (sparse tiles)."""
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    low, high = (int(info.min), int(info.max)) if info else (-1000, 1000)
    data = rng.integers(low, high, size=(count, 256, 512), endpoint=True).astype(dtype)
    if nodata is not None:
        pick = rng.random((256, 512))
        data[:, pick < 0.2] = nodata
        some = (pick >= 0.2) & (pick < 0.4)
        data[0, some] = nodata  # band 1 only: not a nodata pixel
        data[:, :, 384:] = nodata  # a whole block column of nodata, left sparse
    profile = dict(
        driver="GTiff", width=512, height=256, count=count, dtype=dtype, crs="EPSG:32649",
        transform=from_origin(680000, 3125000, 0.5, 0.5), nodata=nodata, tiled=True,
        blockxsize=128, blockysize=128, compress=compress, interleave=interleave,
    )  # fmt: skip
    if predictor:
        profile["predictor"] = predictor
    with rasterio.open(path, "w", SPARSE_OK=True, **profile) as dst:
        dst.write(data[:, :, :384], window=rasterio.windows.Window(0, 0, 384, 256))
    return path


def expected_counts(path):
    """Nodata pixels per block counted on what GDAL decodes, (block rows, block cols)."""
    with rasterio.open(path) as src:
        data = src.read()
        nodata = src.nodata
    every = (data == data.dtype.type(nodata)).all(axis=0)
    return every.reshape(2, 128, 4, 128).sum(axis=(1, 3))


@pytest.mark.parametrize(
    ("dtype", "count", "predictor", "nodata"),
    [
        ("uint8", 4, None, 0),
        ("uint8", 3, 2, 255),  # 3 bytes a pixel: compared band by band
        ("uint16", 4, 2, 7),  # 8 bytes a pixel
        ("int16", 1, 2, -9999),
        ("int32", 2, None, -1),
    ],
)
def test_counts_from_compressed_blocks_equal_gdals_decoding(tmp_path, dtype, count, predictor, nodata):
    scene = patchy_scene(tmp_path / "s.tif", dtype=dtype, count=count, predictor=predictor, nodata=nodata)
    decoder = decoder_for(inspect_scene(scene))
    assert decoder is not None
    with rasterio.open(scene) as src:
        offsets, sizes = block_table(src)
    assert (sizes[:, 3] == 0).all()  # the sparse column is what the test means to cover
    fd = os.open(scene, os.O_RDONLY)
    try:
        got = [[decoder.nodata_pixels(read_blocks(fd, offsets[y, x], sizes[y, x])) for x in range(4)] for y in range(2)]
    finally:
        os.close(fd)
    want = expected_counts(scene)
    assert got == want.tolist()
    # pixels nodata in band 1 only count as nodata only in a one-band scene
    assert want[:, :3].sum() / (3 * 128 * 256) == pytest.approx(0.4 if count == 1 else 0.2, abs=0.02)


def test_tiling_takes_the_fractions_from_the_blocks_without_gdal_decoding(tmp_path, monkeypatch):
    scene = patchy_scene(tmp_path / "s.tif", dtype="uint16", predictor=2, nodata=7)
    decoded = tile_raster(scene, tmp_path / "decoded", size=256, workers=1, block_copy=False, max_nodata=1.0)

    def no_gdal(*_args, **_kwargs):
        raise AssertionError("GDAL decoded a DEFLATE window")

    monkeypatch.setattr(worker._SceneReader, "read", no_gdal)
    copied = tile_raster(scene, tmp_path / "copied", size=256, workers=1, max_nodata=1.0)
    assert copied.scenes[0].copied == 2
    assert [r.nodata_fraction for r in copied.chips] == [r.nodata_fraction for r in decoded.chips]
    assert copied.chips[1].nodata_fraction > 0.5  # the sparse half


def test_a_damaged_block_is_left_to_gdal(tmp_path):
    scene = patchy_scene(tmp_path / "s.tif", nodata=None)
    damage_block(scene, where="checksum")  # block (x=2, y=0)
    decoder = decoder_for(inspect_scene(scene))
    with rasterio.open(scene) as src:
        offsets, sizes = block_table(src)
    fd = os.open(scene, os.O_RDONLY)
    try:
        assert decoder.nodata_pixels(read_blocks(fd, offsets[0, 1], sizes[0, 1])) == 0
        assert decoder.nodata_pixels(read_blocks(fd, offsets[0, 2], sizes[0, 2])) is None
        short = read_blocks(fd, offsets[0, 1], sizes[0, 1])[0][:-4]  # the stream cut before its end
        assert decoder.nodata_pixels([short]) is None
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        (dict(compress="zstd"), "not DEFLATE"),
        (dict(dtype="float32", nodata=-1.0), "floating-point samples"),
        (dict(dtype="float32", predictor=3, nodata=-1.0), "floating-point predictor"),
        (dict(interleave="band"), "a block per band"),
    ],
)
def test_other_blocks_are_decoded_by_gdal(tmp_path, kwargs, why):
    assert decoder_for(inspect_scene(patchy_scene(tmp_path / "s.tif", **kwargs))) is None, why


def test_without_the_deflate_package_gdal_decodes(tmp_path, monkeypatch):
    info = inspect_scene(patchy_scene(tmp_path / "s.tif"))
    assert decoder_for(info) is not None
    monkeypatch.setitem(sys.modules, "deflate", None)  # import deflate now raises ImportError
    assert decoder_for(info) is None


def test_a_pixel_is_nodata_only_in_every_band():
    samples = np.zeros((2, 3, 5), dtype="uint8")  # 5 bytes a pixel: no single integer view
    samples[0, 1, 4] = 1
    samples[1, :, 0] = 9
    assert count_nodata_pixels(samples, 0) == 2
    wide = np.zeros((2, 3, 2), dtype="<u2")  # 4 bytes a pixel: compared as one uint32
    wide[0, 1, 1] = 1
    assert count_nodata_pixels(wide, 0) == 5
    assert count_nodata_pixels(samples, None) == 0


@pytest.mark.parametrize(("dtype", "count", "predictor", "nodata"), [("uint16", 4, 2, 7), ("uint8", 3, None, None)])
def test_uncompressed_chips_decoded_from_the_blocks_equal_gdals_byte_for_byte(
    tmp_path, monkeypatch, dtype, count, predictor, nodata
):
    # (4 bands of uint8 without nodata would be RGB + alpha: a mask, which GDAL reads)
    scene = patchy_scene(tmp_path / "s.tif", dtype=dtype, count=count, predictor=predictor, nodata=nodata)
    by_gdal = tile_raster(scene, tmp_path / "gdal", size=256, compress="none", workers=1, block_copy=False)

    def no_gdal(*_args, **_kwargs):
        raise AssertionError("GDAL decoded a DEFLATE window")

    monkeypatch.setattr(worker._SceneReader, "read", no_gdal)
    decoded = tile_raster(scene, tmp_path / "blocks", size=256, compress="none", workers=1)
    assert len(decoded.chips) == len(by_gdal.chips) == 2  # the sparse half too
    for ours, theirs in zip(decoded.chips, by_gdal.chips):
        assert ours.nodata_fraction == theirs.nodata_fraction
        assert (decoded.out_dir / ours.path).read_bytes() == (by_gdal.out_dir / theirs.path).read_bytes()
    with rasterio.open(decoded.out_dir / decoded.chips[1].path) as chip:
        assert chip.compression is None and chip.read(1)[0, -1] == (nodata or 0)  # sparse: nodata, else 0


def test_a_damaged_block_in_an_uncompressed_run_fails_as_gdal_says(tmp_path):
    from geolabel.errors import InputError

    scene = patchy_scene(tmp_path / "s.tif", count=3, nodata=None)
    damage_block(scene, where="checksum")
    with pytest.raises(InputError, match=r"X offset 2, Y offset 0"):
        tile_raster(scene, tmp_path / "out", size=128, compress="none", workers=1)

"""Pixel work, in worker processes: :func:`process_chips` writes the chips of one task.

A task opens its scene itself and streams window by window; each chip is written under
a temporary name and renamed when complete, so a task can run anywhere and run twice
without harm.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geolabel.blockcheck import decoder_for  # here, not in each task: forked workers inherit it
from geolabel.errors import InputError, TaskError, TaskInputError, TaskOutputError, first_line
from geolabel.tileindex import TileRecord

if TYPE_CHECKING:
    from numpy.typing import NDArray  # numpy.typing costs 40 ms to import: types only

    from geolabel.geo import GeoGrid
    from geolabel.grid import Tile
    from geolabel.tiling.plan import ChipTask

#: What :func:`process_chips` reports per chip.
Result = tuple[TileRecord, str]


def process_chips(task: ChipTask) -> list[Result]:
    """Write the chips of one task; returns (record, 'written' | 'copied' | 'found' | 'skipped').

    'found': the chip was already complete on disk (an interrupted run of the same job
    wrote it but did not list it) and is kept as it is.
    """
    from geolabel.raster import gdal_env
    from geolabel.remote import gdal_options, is_remote

    results: list[Result] = []
    reader = _SceneReader(task)
    reads_blocks = any(table is not None for table in task.block_offsets)
    fd = os.open(task.scene.path, os.O_RDONLY) if reads_blocks and not is_remote(task.scene.path) else -1
    try:
        with gdal_env(**gdal_options(task.scene.path)):
            for tile, tid, table in zip(task.tiles, task.ids, task.block_offsets or (None,) * len(task.tiles)):
                results.append(_chip(task, reader, fd, tile, tid, table))
    except Exception as exc:
        raise _task_error(task, exc, results) from exc
    finally:
        reader.close()
        if fd >= 0:
            os.close(fd)
    return results


def _chip(task: ChipTask, reader: _SceneReader, fd: int, tile: Tile, tid: str, table: Any) -> Result:
    """Write (or find, or skip) one chip."""
    from geolabel.blockcopy import band_tiles, write_assembled_chip
    from geolabel.raster import complete_chip_fraction, write_chip

    rel = f"{task.scene.name}/{tid}.tif"
    out = Path(task.out_dir) / task.scene.name / f"{tid}.tif"
    chip = task.grid.window(col_off=tile.col_off, row_off=tile.row_off, width=tile.width, height=tile.height)
    if task.adopt and out.exists():
        found = complete_chip_fraction(out, _profile(task, chip))
        if found is not None and _keep(found, task.max_nodata):
            return _record(task, tile, tid, rel, found, chip), "found"
    if table is not None and task.template is not None:
        blocks, fraction = _block_copy_chip(task, reader, fd, tile, table, chip.origin)
        if blocks is None:
            return _record(task, tile, tid, "", fraction, chip), "skipped"
        write_assembled_chip(out, task.template, chip.origin, blocks)
        return _record(task, tile, tid, rel, fraction, chip), "copied"
    data, invalid = None, None
    if table is not None:  # uncompressed chips from the scene's DEFLATE blocks
        data = reader.decode_blocks(_source_blocks(task, fd, table), tile)
    if data is None:
        data, invalid = reader.read(tile)
    fraction = reader.nodata_fraction(data) if invalid is None else float(invalid.sum()) / invalid.size
    if not _keep(fraction, task.max_nodata):
        return _record(task, tile, tid, "", fraction, chip), "skipped"
    valid = None
    if invalid is not None and invalid.any():
        valid = ~invalid
    if valid is None and task.raw_template is not None and task.fmt.block:
        write_assembled_chip(out, task.raw_template, chip.origin, band_tiles(data, task.fmt.block))
    else:
        write_chip(out, data, profile=_profile(task, chip), meta=task.meta, valid=valid)
    return _record(task, tile, tid, rel, fraction, chip), "written"


def _record(task: ChipTask, tile: Tile, tid: str, path: str, fraction: float, chip: GeoGrid) -> TileRecord:
    from geolabel.remote import index_location

    return TileRecord(
        tile_id=tid,
        scene=task.scene.name,
        scene_path=index_location(task.scene.path),
        path=path,
        row=tile.row,
        col=tile.col,
        row_off=tile.row_off,
        col_off=tile.col_off,
        width=tile.width,
        height=tile.height,
        nodata_fraction=fraction,
        crs=task.chip_crs,
        transform=chip.transform,
    )


def _keep(fraction: float, max_nodata: float) -> bool:
    return fraction < 1.0 and fraction <= max_nodata


def _profile(task: ChipTask, chip: GeoGrid) -> dict[str, Any]:
    from geolabel.raster import chip_profile

    return chip_profile(
        task.scene,
        task.fmt,
        size=task.size,
        count=len(task.bands),
        transform=chip.affine,
        crs_wkt=chip.crs,
        nodata=task.scene.nodata,
    )


def _task_error(task: ChipTask, exc: Exception, results: list[Result]) -> TaskError:
    """What a failed chip task says, with the chips it finished: the output folder when a
    chip could not be written (a full disk: an output error), else the scene."""
    from geolabel.files import write_failure

    if isinstance(exc, InputError):
        return TaskInputError(str(exc), partial_results=results)
    reason = write_failure(exc) or (write_failure(exc.__cause__) if exc.__cause__ else None)
    if reason is not None:
        where = Path(task.out_dir) / task.scene.name
        return TaskOutputError(f"{where}: cannot write chips ({reason})", partial_results=results)
    return TaskInputError(f"{task.scene.path}: reading or writing chips failed ({first_line(exc)})", results)


class _SceneReader:
    """Opens the scene (and its warped view) lazily, once per task."""

    def __init__(self, task: ChipTask) -> None:
        self.task = task
        self._src: Any = None
        self._vrt: Any = None
        self._pixels: Any = None  # a whole chip's pixels, decoded into again for every chip
        self._counts: Any = None  # two (rows, cols) masks nodata_fraction counts in
        self._decoder: Any = False  # geolabel.blockcheck's decoder (None: GDAL decodes), made once

    def dataset(self) -> Any:
        import rasterio

        from geolabel.remote import gdal_path

        if self._src is None:
            self._src = rasterio.open(gdal_path(self.task.scene.path))
            if self.task.warp is not None:
                self._vrt = self._warped(self._src)
        return self._vrt if self._vrt is not None else self._src

    def _warped(self, src: Any) -> Any:
        from rasterio.crs import CRS as RioCRS
        from rasterio.enums import Resampling
        from rasterio.vrt import WarpedVRT

        warp, scene = self.task.warp, self.task.scene
        assert warp is not None
        return WarpedVRT(
            src,
            crs=RioCRS.from_wkt(warp.grid.crs),
            transform=warp.grid.affine,
            width=warp.grid.width,
            height=warp.grid.height,
            resampling=Resampling[warp.resampling],
            nodata=scene.nodata,
            add_alpha=scene.nodata is None and "alpha" not in scene.colorinterp,
        )

    def read(self, tile: Tile) -> tuple[NDArray[Any], NDArray[Any] | None]:
        """Chip pixels (bands, size, size), padded with nodata, and the invalid-pixel mask
        of a scene without nodata value (padding, its mask band, outside a warped footprint).

        The mask is ``None`` when every pixel is valid or when the scene has a nodata value
        (:meth:`nodata_fraction` counts those). A whole chip is decoded into the reader's
        own buffer, so the pixels are valid until the next read: callers write or count
        them at once.
        """
        import numpy as np
        from rasterio.windows import Window

        from geolabel.raster import nodata_fill

        task = self.task
        ds = self.dataset()
        scene = task.scene
        vh, vw = tile.valid_height, tile.valid_width
        window = Window(tile.col_off, tile.row_off, vw, vh)
        if tile.is_partial:
            data = np.full((len(task.bands), tile.height, tile.width), nodata_fill(scene.nodata), dtype=scene.dtype)
            data[:, :vh, :vw] = ds.read(list(task.bands), window=window)
        else:
            data = ds.read(list(task.bands), window=window, out=self._buffer(tile))
        if scene.nodata is not None:
            return data, None
        inside = None
        if task.warp is not None:
            inside = ds.dataset_mask(window=window) != 0  # outside the source footprint, or its alpha
        elif scene.mask_kind == "mask":
            inside = ds.dataset_mask(window=window) != 0
        if inside is None and not tile.is_partial:
            return data, None
        invalid = np.ones((tile.height, tile.width), dtype=bool)
        invalid[:vh, :vw] = False if inside is None else ~inside
        return data, invalid

    def _buffer(self, tile: Tile) -> NDArray[Any]:
        import numpy as np

        shape = (len(self.task.bands), tile.height, tile.width)
        if self._pixels is None or self._pixels.shape != shape:
            self._pixels = np.empty(shape, dtype=self.task.scene.dtype)
        return self._pixels  # type: ignore[no-any-return]

    def nodata_fraction(self, data: NDArray[Any]) -> float:
        """The fraction of pixels of ``data`` that are nodata in every band (0 without a
        nodata value), counted in reused buffers (:func:`~geolabel.raster.count_nodata`)."""
        import numpy as np

        from geolabel.raster import count_nodata

        nodata = self.task.scene.nodata
        if nodata is None:
            return 0.0
        shape = (2, *data.shape[1:])
        if self._counts is None or self._counts.shape != shape:
            self._counts = np.empty(shape, dtype=bool)
        return count_nodata(data, nodata, scratch=self._counts) / (data.shape[1] * data.shape[2])

    def fraction_from_blocks(self, blocks: list[bytes]) -> float | None:
        """The nodata fraction of a whole chip made of the scene's compressed ``blocks``,
        decoded (so checked) from those bytes; ``None`` when GDAL must decode them
        (:func:`geolabel.blockcheck.decoder_for`, or a block that did not decode)."""
        decoder = self._block_decoder()
        pixels = None if decoder is None else decoder.nodata_pixels(blocks)
        return None if pixels is None else pixels / (self.task.size * self.task.size)

    def decode_blocks(self, blocks: list[bytes], tile: Tile) -> NDArray[Any] | None:
        """A whole chip's pixels decoded from the scene's compressed ``blocks`` into the
        reader's buffer, as :meth:`read` gives them; ``None`` when GDAL must decode them."""
        decoder = self._block_decoder()
        data = self._buffer(tile)
        return data if decoder is not None and decoder.decode_into(blocks, data) else None

    def _block_decoder(self) -> Any:
        if self._decoder is False:
            self._decoder = decoder_for(self.task.scene)
        return self._decoder

    def close(self) -> None:
        if self._vrt is not None:
            self._vrt.close()
        if self._src is not None:
            self._src.close()


def _block_copy_chip(
    task: ChipTask, reader: _SceneReader, fd: int, tile: Tile, table: Any, origin: tuple[float, float]
) -> tuple[list[bytes] | None, float]:
    """(the chip's compressed tiles, or None when skipped; nodata fraction), without re-encoding.

    The blocks are read (a scene behind a URL: fetched, once), then decoded once to count
    nodata and to check every block before it is copied: a DEFLATE block with a wrong
    Adler-32 checksum, or any block its codec cannot decode, fails the chip here instead of
    being copied into it. DEFLATE blocks are decoded from the bytes just read
    (:mod:`geolabel.blockcheck`); other codecs, and a block that does not decode there, by
    GDAL (:func:`_gdal_fraction`, whose error names the block). Only ``verify=False``
    without a nodata value decodes nothing.
    """
    blocks = _source_blocks(task, fd, table)
    if task.scene.nodata is None and not task.verify:
        return blocks, 0.0
    fraction = reader.fraction_from_blocks(blocks)
    if fraction is None:
        fraction = _gdal_fraction(task, reader, tile, origin, blocks)
    return (blocks if _keep(fraction, task.max_nodata) else None), fraction


def _gdal_fraction(
    task: ChipTask, reader: _SceneReader, tile: Tile, origin: tuple[float, float], blocks: list[bytes]
) -> float:
    """The nodata fraction of a block-copied chip, decoded by GDAL: the scene's window, or
    for a scene behind a URL the chip its fetched blocks make, in memory (not read twice)."""
    from geolabel.blockcopy import chip_bytes
    from geolabel.raster import decode_chip, invalid_pixels
    from geolabel.remote import is_remote

    if not is_remote(task.scene.path):
        data, _ = reader.read(tile)  # a whole chip of a scene without mask: no invalid mask
        return reader.nodata_fraction(data)
    assert task.template is not None
    invalid = invalid_pixels(decode_chip(chip_bytes(task.template, origin, blocks)), task.scene.nodata)
    return float(invalid.sum()) / invalid.size


def _source_blocks(task: ChipTask, fd: int, table: Any) -> list[bytes]:
    """The compressed blocks of one chip: read from the open scene file, or by HTTP range
    requests from a scene behind a URL."""
    from geolabel.blockcopy import read_blocks
    from geolabel.remote import fetch_blocks, is_remote

    offsets, sizes = table
    if is_remote(task.scene.path):
        return fetch_blocks(task.scene.path, offsets, sizes)
    return read_blocks(fd, offsets, sizes)

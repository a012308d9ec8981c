"""Chips assembled from ready-made TIFF tiles, without GDAL's per-chip write overhead.

Two uses:

* the no-decode fast path: chips built from the scene's compressed tiles, byte for byte;
* uncompressed chips: the decoded window's bands are written as the chip's tiles
  (band-interleaved, so each band plane of the ``(bands, rows, cols)`` array is one
  tile and nothing is copied).

When the chip grid lines up with a tiled GeoTIFF's internal blocks and the chip keeps
the source's compression, every block of a chip already exists, compressed, in the
scene file. Decoding and re-encoding it (what GDAL and a rasterio loop do) costs far
more than copying the bytes.

How a chip is made:

1. Once per scene, GDAL writes an empty *template* chip (``SPARSE_OK``, so it holds no
   image data, only the TIFF directory with every GeoTIFF key, nodata, band
   descriptions and colour interpretation GDAL would write for a normal chip).
2. For each chip we patch, in a copy of the template, the georeferencing tie point and
   the tile offset/byte-count arrays, and append the compressed blocks read from the
   scene with ``os.pread`` (or HTTP range requests for a scene behind an ``http(s)://``
   URL, :func:`geolabel.remote.fetch_blocks`) at the offsets GDAL reports
   (``BLOCK_OFFSET_x_y`` in the ``TIFF`` metadata domain).

Chips are pixel-identical to decoding the source window; tests read them back with
rasterio and compare every pixel.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from numpy.typing import NDArray  # numpy.typing costs 40 ms to import: types only
    from typing_extensions import Buffer

    from geolabel.geo import GeoGrid
    from geolabel.grid import Tile
    from geolabel.raster import BandMeta, ChipFormat, SceneInfo

#: Compressions whose blocks are self-contained (no shared tables) and can be copied.
COPYABLE_COMPRESSIONS = frozenset({"none", "deflate", "lzw", "zstd", "packbits", "lzma"})

_TAG_TILE_OFFSETS = 324
_TAG_TILE_BYTE_COUNTS = 325
_TAG_TIEPOINT = 33922
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 16: 8}
_TYPE_LONG = 4


def why_not_block_copy(
    scene: SceneInfo,
    *,
    size: int,
    overlap: int,
    bands: tuple[int, ...],
    compress: str,
    driver: str,
    reprojecting: bool,
) -> str | None:
    """Why the fast path cannot be used for this scene (``None`` when it can)."""
    from geolabel.remote import is_http, is_remote

    if driver != "GTiff":
        return "output format is not plain GeoTIFF"
    if scene.driver != "GTiff":
        return "source is not a GeoTIFF"
    if scene.path.startswith("/vsi"):
        return "source is a GDAL /vsi path (blocks are copied from files or http(s):// URLs)"
    if is_remote(scene.path) and not is_http(scene.path):
        return "source is on S3 (blocks are range-read over http(s):// only; geolabel signs no S3 requests)"
    if reprojecting:
        return "chips are reprojected or resampled"
    if not scene.is_tiled:
        return "source is not internally tiled"
    bh, bw = scene.block_shape
    if bh != bw or size % bw or overlap % bw:
        return f"chip size/overlap are not multiples of the source's {bw}x{bh} blocks"
    if (scene.compression or "none") != compress:
        return f"output compression {compress} differs from the source's {scene.compression or 'none'}"
    if compress == "none":
        return "uncompressed chips are written band-interleaved from decoded pixels"
    if (scene.compression or "none") not in COPYABLE_COMPRESSIONS:
        return f"source compression {scene.compression} has shared tables"
    if scene.count > 1 and scene.interleave != "pixel":
        return "source is band-interleaved"
    if bands != tuple(range(1, scene.count + 1)):
        return "a band subset is requested"
    if scene.mask_kind == "mask":
        return "source has a mask band"
    if scene.nbits is not None:
        return f"source packs {scene.nbits}-bit samples (NBITS)"
    if not scene.is_north_up:
        return "source is rotated"
    if not scene.little_endian and scene.dtype not in ("uint8", "int8"):
        return "source is a big-endian TIFF"
    return None


@dataclass(frozen=True)
class ChipTemplate:
    """An empty chip's TIFF bytes and where to patch them."""

    data: bytes
    tiepoint_pos: int  # byte offset of the 6 doubles of ModelTiepointTag
    tiepoint_xy: tuple[float, float]  # what GDAL wrote for the template's origin
    origin_xy: tuple[float, float]  # the template transform's (c, f)
    offsets_entry: int  # byte offset of the TileOffsets IFD entry
    counts_entry: int  # byte offset of the TileByteCounts IFD entry
    n_tiles: int


def _read_ifd(buf: bytes) -> dict[int, tuple[int, int, int, int]]:
    """Entries of the first IFD of a little-endian classic TIFF: tag -> (type, count, value, pos)."""
    if buf[:4] != b"II*\x00":
        raise ValueError("template is not a little-endian classic TIFF")
    (ifd,) = struct.unpack_from("<I", buf, 4)
    (n,) = struct.unpack_from("<H", buf, ifd)
    entries = {}
    for i in range(n):
        pos = ifd + 2 + 12 * i
        tag, typ, count, value = struct.unpack_from("<HHII", buf, pos)
        entries[tag] = (typ, count, value, pos)
    (next_ifd,) = struct.unpack_from("<I", buf, ifd + 2 + 12 * n)
    if next_ifd:
        raise ValueError("template has more than one image (mask or overviews)")
    return entries


def make_template(path: str, profile: dict[str, Any], meta: Any) -> ChipTemplate:
    """Write an empty, sparse chip with GDAL at ``path`` and return its patchable bytes."""
    import rasterio

    from geolabel.raster import NO_SIDECARS, apply_band_meta, gdal_env, photometric_option

    options = dict(profile, SPARSE_OK=True)
    options.update(photometric_option(meta, profile["dtype"], profile["driver"]))
    try:
        with gdal_env(**NO_SIDECARS), rasterio.open(path, "w", **options) as dst:
            apply_band_meta(dst, meta)
        with open(path, "rb") as fh:
            data = fh.read()
    finally:
        if os.path.exists(path):
            os.unlink(path)
    entries = _read_ifd(data)
    for tag in (_TAG_TILE_OFFSETS, _TAG_TILE_BYTE_COUNTS, _TAG_TIEPOINT):
        if tag not in entries:
            raise ValueError(f"template lacks TIFF tag {tag}")
    typ, count, value, _pos = entries[_TAG_TIEPOINT]
    if typ != 12 or count != 6:
        raise ValueError("unexpected ModelTiepointTag layout")
    tie = struct.unpack_from("<6d", data, value)
    transform = profile["transform"]
    n_tiles = entries[_TAG_TILE_OFFSETS][1]
    if entries[_TAG_TILE_BYTE_COUNTS][1] != n_tiles:
        raise ValueError("tile offset and byte count arrays differ in length")
    return ChipTemplate(
        data=data,
        tiepoint_pos=value,
        tiepoint_xy=(tie[3], tie[4]),
        origin_xy=(transform.c, transform.f),
        offsets_entry=entries[_TAG_TILE_OFFSETS][3],
        counts_entry=entries[_TAG_TILE_BYTE_COUNTS][3],
        n_tiles=n_tiles,
    )


def chip_template(
    scene: SceneInfo, fmt: ChipFormat, meta: BandMeta, *, size: int, count: int, grid: GeoGrid
) -> ChipTemplate | None:
    """An empty chip header written by GDAL (pixel size and CRS of the chip ``grid``), or
    None if GDAL's layout cannot be patched. Only the origin is patched per chip."""
    import tempfile

    from geolabel.raster import chip_profile

    profile = chip_profile(
        scene, fmt, size=size, count=count, transform=grid.affine, crs_wkt=grid.crs, nodata=scene.nodata
    )
    try:
        with tempfile.TemporaryDirectory(prefix="geolabel-") as tmp:
            return make_template(os.path.join(tmp, "template.tif"), profile, meta)
    except (ValueError, OSError):
        return None


def prepare_block_copy(
    scene: SceneInfo, fmt: ChipFormat, meta: BandMeta, *, size: int, grid: GeoGrid, tiles: Sequence[Tile]
) -> tuple[ChipTemplate | None, dict[tuple[int, int], Any], str | None]:
    """Template chip and per-chip block tables (keyed by the tile's pixel offsets) for the
    no-decode path, or why it cannot be taken after all. ``grid`` is the chip grid, the
    scene's own (block copy never reprojects)."""
    if fmt.block != scene.block_shape[0]:
        return None, {}, "chip block size differs from the source's"
    template = chip_template(scene, fmt, meta, size=size, count=scene.count, grid=grid)
    if template is None:
        return None, {}, "GDAL's chip header could not be patched"
    return template, block_tables(scene, size=size, tiles=tiles), None


def block_tables(scene: SceneInfo, *, size: int, tiles: Sequence[Tile]) -> dict[tuple[int, int], Any]:
    """Per whole chip lined up with the scene's blocks, keyed by its pixel offsets: the
    (offsets, sizes) of its blocks, shaped (block rows, block cols)."""
    import rasterio

    from geolabel.raster import gdal_env
    from geolabel.remote import gdal_options, gdal_path

    b = scene.block_shape[0]
    with gdal_env(**gdal_options(scene.path)), rasterio.open(gdal_path(scene.path)) as src:
        offsets, sizes = block_table(src)
    tables = {}
    k = size // b
    for tile in tiles:
        if tile.is_partial or tile.row_off % b or tile.col_off % b:
            continue
        by, bx = tile.row_off // b, tile.col_off // b
        tables[(tile.row_off, tile.col_off)] = (offsets[by : by + k, bx : bx + k], sizes[by : by + k, bx : bx + k])
    return tables


def block_table(src: Any) -> tuple[NDArray[Any], NDArray[Any]]:
    """(offsets, sizes) of every internal block of band 1, shaped (block rows, block cols)."""
    import numpy as np

    bh, bw = src.block_shapes[0]
    nby = -(-src.height // bh)
    nbx = -(-src.width // bw)
    offsets = np.zeros((nby, nbx), dtype=np.int64)
    sizes = np.zeros((nby, nbx), dtype=np.int64)
    for y in range(nby):
        for x in range(nbx):
            off = src.get_tag_item(f"BLOCK_OFFSET_{x}_{y}", "TIFF", bidx=1)
            size = src.get_tag_item(f"BLOCK_SIZE_{x}_{y}", "TIFF", bidx=1)
            offsets[y, x] = int(off) if off else 0
            sizes[y, x] = int(size) if size else 0
    return offsets, sizes


def assemble_chip(template: ChipTemplate, origin_xy: tuple[float, float], sizes: Sequence[int]) -> bytes:
    """The chip's header: the template re-georeferenced to ``origin_xy``, pointing at tiles.

    ``sizes`` are the byte lengths of the chip's tiles in file order (row-major, band by
    band for band-interleaved chips); they follow the header back to back. A size of 0
    is a sparse tile (GDAL reads it as nodata, as it does in the source).
    """
    n = template.n_tiles
    if len(sizes) != n:
        raise ValueError(f"chip needs {n} tiles, got {len(sizes)}")
    buf = bytearray(template.data)
    x, y = origin_xy
    if template.tiepoint_xy != template.origin_xy:  # PixelIsPoint shifts the tie point
        x += template.tiepoint_xy[0] - template.origin_xy[0]
        y += template.tiepoint_xy[1] - template.origin_xy[1]
    struct.pack_into("<2d", buf, template.tiepoint_pos + 24, x, y)
    if len(buf) % 2:
        buf += b"\x00"
    arrays_at = len(buf)
    data_start = arrays_at if n == 1 else arrays_at + 8 * n
    offsets, pos = [], data_start
    for size in sizes:
        offsets.append(pos if size else 0)
        pos += size
    if pos > 0xFFFFFFFF:
        raise ValueError("chip larger than 4 GiB cannot be assembled as a classic TIFF")
    if n == 1:
        struct.pack_into("<HII", buf, template.offsets_entry + 2, _TYPE_LONG, 1, offsets[0])
        struct.pack_into("<HII", buf, template.counts_entry + 2, _TYPE_LONG, 1, sizes[0])
    else:
        buf += struct.pack(f"<{n}I", *offsets)
        buf += struct.pack(f"<{n}I", *sizes)
        struct.pack_into("<HII", buf, template.offsets_entry + 2, _TYPE_LONG, n, arrays_at)
        struct.pack_into("<HII", buf, template.counts_entry + 2, _TYPE_LONG, n, arrays_at + 4 * n)
    return bytes(buf)


def write_assembled_chip(
    path: Path, template: ChipTemplate, origin_xy: tuple[float, float], tiles: Sequence[Buffer]
) -> None:
    """Write header + ``tiles`` to ``path`` atomically (temporary name, then rename)."""
    from geolabel.files import atomic_file

    views = [memoryview(t).cast("B") for t in tiles]
    header = assemble_chip(template, origin_xy, [v.nbytes for v in views])
    with atomic_file(path, path.suffix) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            parts: list[Buffer] = [header, *views]
            for start in range(0, len(parts), 512):  # stay below IOV_MAX
                chunk = parts[start : start + 512]
                want = sum(memoryview(p).nbytes for p in chunk)
                done = os.writev(fd, chunk)
                if done != want:  # short write: finish the rest plainly
                    rest = b"".join(bytes(p) for p in chunk)[done:]
                    while rest:
                        rest = rest[os.write(fd, rest) :]
        finally:
            os.close(fd)


def band_tiles(data: NDArray[Any], block: int) -> list[Buffer]:
    """The tiles of a band-interleaved chip from a C-contiguous ``(bands, rows, cols)`` array."""
    import numpy as np

    bands, rows, cols = data.shape
    if rows == cols == block:
        return [memoryview(data[b]) for b in range(bands)]
    out: list[Buffer] = []
    for b in range(bands):
        for y in range(0, rows, block):
            for x in range(0, cols, block):
                out.append(memoryview(np.ascontiguousarray(data[b, y : y + block, x : x + block])))  # type: ignore[arg-type]
    return out


def read_blocks(fd: int, offsets: NDArray[Any], sizes: NDArray[Any]) -> list[bytes]:
    """Read the compressed blocks at ``offsets``/``sizes`` (row-major) from an open file."""
    out = []
    for off, size in zip(offsets.ravel().tolist(), sizes.ravel().tolist()):
        out.append(os.pread(fd, size, off) if size else b"")
    return out


def chip_bytes(template: ChipTemplate, origin_xy: tuple[float, float], tiles: Sequence[bytes]) -> bytes:
    """The whole chip file (header, then ``tiles``) in memory, as :func:`write_assembled_chip`
    writes it: decoded from memory when its blocks came over the network."""
    return assemble_chip(template, origin_xy, [len(t) for t in tiles]) + b"".join(tiles)

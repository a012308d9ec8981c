"""Raster I/O with rasterio: inspect scenes, read chip windows, write chips atomically.

Everything that opens a GeoTIFF lives here (and in :mod:`geolabel.blockcopy` for the
no-decode fast path), so the tiling code deals in plain values.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geolabel import vocabulary
from geolabel.errors import CRSError, InputError, first_line
from geolabel.files import atomic_file, temp_pattern

if TYPE_CHECKING:
    from affine import Affine
    from numpy.typing import NDArray  # numpy.typing costs 40 ms to import: types only

    from geolabel.geo import GeoGrid

#: Compression names accepted for chips (``None`` keeps the source's compression).
COMPRESSIONS = vocabulary.COMPRESSIONS
#: Output formats for chips.
FORMATS = vocabulary.CHIP_FORMATS

#: GDAL block cache per process while tiling. Chips are read once, in row order, so a
#: small cache keeps memory flat whatever the scene size.
GDAL_CACHE_MB = 64


def gdal_env(**options: Any) -> Any:
    """A rasterio Env with geolabel's GDAL settings for reading scenes (small block cache).

    Sidecar files (.aux.xml, .tfw, .msk) are read as GDAL normally does; writers add
    :data:`NO_SIDECARS` so chips never get an .aux.xml next to them.
    """
    import rasterio

    _silence_libtiff()
    settings: dict[str, Any] = {"GDAL_CACHEMAX": GDAL_CACHE_MB, "GDAL_HTTP_CONNECTTIMEOUT": HTTP_CONNECT_SECONDS}
    settings.update(options)
    return rasterio.Env(**settings)


#: Seconds GDAL waits to connect to the server of a ``/vsicurl/`` scene: without a network
#: (or with a firewall that drops packets) a run fails in one line instead of hanging.
HTTP_CONNECT_SECONDS = 10


@functools.cache
def _silence_libtiff() -> None:
    """Mute libtiff's own stderr handler in the libtiff of rasterio's wheel.

    GDAL's TIFF I/O reports some failures through libtiff's global error handler, which
    prints them straight to stderr: a chip written onto a full disk printed twenty
    ``_tiffWriteProc: No space left on device.`` lines before geolabel's one. GDAL sees the
    failure anyway (the write raises). A libtiff elsewhere (a system GDAL's, QGIS's) is
    left alone.
    """
    import ctypes

    import rasterio

    for lib in (Path(rasterio.__file__).parent.parent / "rasterio.libs").glob("libtiff*.so*"):
        with contextlib.suppress(OSError, AttributeError):
            libtiff = ctypes.CDLL(str(lib))
            libtiff.TIFFSetErrorHandler(None)
            libtiff.TIFFSetWarningHandler(None)


#: GDAL options for writing chips: everything goes into the TIFF, no .aux.xml sidecar.
NO_SIDECARS = {"GDAL_PAM_ENABLED": "NO"}


@dataclass(frozen=True)
class SceneInfo:
    """What geolabel needs to know about a scene, read once from its header."""

    path: str
    name: str
    driver: str
    width: int
    height: int
    count: int
    dtype: str
    crs_wkt: str | None
    transform: tuple[float, ...]
    nodata: float | None
    #: ``none`` (all pixels valid), ``nodata`` (a nodata value), ``mask`` (mask band or alpha)
    mask_kind: str
    block_shape: tuple[int, int]
    is_tiled: bool
    compression: str | None
    predictor: int | None
    interleave: str | None
    colorinterp: tuple[str, ...]
    descriptions: tuple[str | None, ...]
    scales: tuple[float, ...]
    offsets: tuple[float, ...]
    units: tuple[str | None, ...]
    tags: dict[str, str] = field(default_factory=dict)
    little_endian: bool = True
    nbits: int | None = None  # NBITS of packed sub-byte / 12-bit / half-float samples
    colormap: dict[int, tuple[int, ...]] | None = None  # palette of a paletted band 1

    @property
    def affine(self) -> Affine:
        from affine import Affine

        return Affine(*self.transform[:6])

    @property
    def grid(self) -> GeoGrid:
        """The scene's georeferenced pixel grid."""
        from geolabel.geo import GeoGrid

        return GeoGrid(self.crs_wkt, self.transform, self.width, self.height)

    @property
    def is_north_up(self) -> bool:
        a, b, _c, d, e, _f = self.transform[:6]
        return b == 0 and d == 0 and a > 0 and e < 0


def _tiff_is_little_endian(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(2) != b"MM"
    except OSError:
        return True


def inspect_scene(path: str | os.PathLike[str], *, allow_no_crs: bool = False, name: str | None = None) -> SceneInfo:
    """Open ``path`` once and describe it; raise a one-line :class:`InputError` if unusable.

    Checks that the file exists, is a raster GDAL can read, has a CRS (unless
    ``allow_no_crs``) and that its last pixel can be decoded (catches truncated files).
    ``path`` may be an ``http(s)://`` or ``s3://`` URL (read through GDAL's ``/vsicurl/``
    and ``/vsis3/``, see :mod:`geolabel.remote`) or one of GDAL's ``/vsi...`` paths, kept
    as given. The scene's name (its chips' folder and id prefix) is the file name without
    extension (a URL's path stem), or ``name`` (a STAC item's id), made safe by
    :func:`~geolabel.grid.safe_name`.
    """
    import rasterio
    from rasterio.errors import RasterioIOError

    from geolabel.remote import gdal_options, gdal_path

    p = _scene_location(path)
    little_endian = _byte_order_is_little(str(p))
    try:
        with gdal_env(**gdal_options(str(p))), rasterio.open(gdal_path(str(p))) as src:
            if src.count == 0 or src.width == 0 or src.height == 0:
                raise InputError(f"{p}: not a raster (no bands or no pixels)")
            if src.crs is None and not allow_no_crs:
                raise _no_crs_error(src, p)
            if len(set(src.dtypes)) != 1:
                raise InputError(f"{p}: bands have different data types {src.dtypes}; not supported")
            _check_decodable(src, p)
            return _scene_info(src, p, name, little_endian=little_endian)
    except RasterioIOError as exc:
        raise _unreadable(exc, p) from None


def _unreadable(exc: Exception, p: str | Path) -> InputError:
    """The one-line error of a scene GDAL cannot open: an HTTP problem for a URL."""
    from geolabel.remote import gdal_problem, is_remote

    problem = gdal_problem(str(exc)) if is_remote(str(p)) or str(p).startswith("/vsi") else None
    if problem is not None:
        return InputError(f"{p}: {problem}")
    return InputError(f"{p}: not a raster GDAL can read ({first_line(exc, p)})")


def _byte_order_is_little(p: str) -> bool:
    """Whether the TIFF at ``p`` is little-endian (anything else counts as little-endian).
    A URL served over HTTP is asked for its first two bytes: that also turns a 404, a 403
    or an unreachable host into a one-line error before GDAL tries."""
    from geolabel.remote import is_http, is_remote, read_range

    if is_http(p):
        return read_range(p, 0, 2) != b"MM"
    if is_remote(p):
        return True  # S3: byte order only matters to block copy, which reads HTTP(S) only
    return _tiff_is_little_endian(p)


#: ``scheme://`` at the start of a scene name: a URL, not a file.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def _scene_location(path: str | os.PathLike[str]) -> str | Path:
    """A local scene file as a Path (checked: a regular file); a GDAL ``/vsi`` path or an
    ``http(s)://``/``s3://`` URL as the text it is (a Path would fold ``https://`` into
    ``https:/``); another URL scheme is refused."""
    from geolabel.files import check_input_file
    from geolabel.remote import is_remote

    text = os.fspath(path)
    if text.startswith("/vsi") or is_remote(text):
        return text
    if _URL.match(text):
        raise InputError(f"{text}: is a URL geolabel cannot read; give an http(s):// or s3:// URL, or a file")
    check_input_file(Path(text), "raster file")
    return Path(text)


def _no_crs_error(src: Any, p: str | Path) -> CRSError:
    gcps, _gcp_crs = src.gcps
    if gcps:
        return CRSError(
            f"{p}: is georeferenced by {len(gcps)} ground control points only; warp it to a map "
            "grid first (e.g. `gdalwarp -t_srs EPSG:32649 in.tif out.tif`)"
        )
    return CRSError(
        f"{p}: the raster has no CRS; assign one (e.g. `gdal_edit.py -a_srs EPSG:32649`)"
        " or pass `allow_no_crs=True` to tile it in pixel coordinates",
        params=("allow_no_crs",),
    )


#: Largest internal block (bytes) a scene may have: GDAL decodes a block whole for any
#: read inside it, so a scene declaring 65536 x 65536 px blocks costs 4 GiB per worker
#: however small it is. 512 MiB still admits a compressed 12000 x 12000 px RGB strip.
MAX_BLOCK_BYTES = 512 * 2**20


def _check_decodable(src: Any, p: str | Path) -> None:
    """Refuse blocks too large to decode (before decoding one), then decode the last pixel:
    truncated and corrupt files fail here, before any chip is written."""
    import numpy as np
    from rasterio.windows import Window

    rows, cols = (int(v) for v in src.block_shapes[0])
    interleaved = src.count if src.interleaving is not None and src.interleaving.name == "pixel" else 1
    size = rows * cols * interleaved * np.dtype(src.dtypes[0]).itemsize
    if size > MAX_BLOCK_BYTES:
        raise InputError(
            f"{p}: its internal blocks of {cols} x {rows} px ({size / 2**30:.1f} GiB each) are decoded whole for "
            "any read; re-tile it first (e.g. `gdal_translate -co TILED=YES in.tif out.tif`)"
        )
    try:
        src.read(1, window=Window(src.width - 1, src.height - 1, 1, 1))
    except Exception as exc:  # GDAL reports corrupt data as various errors
        raise InputError(f"{p}: the raster is corrupt or truncated ({first_line(exc, p)})") from None


def _scene_info(src: Any, p: str | Path, name: str | None = None, *, little_endian: bool) -> SceneInfo:
    """The :class:`SceneInfo` of an open scene."""
    from rasterio.enums import MaskFlags

    from geolabel.grid import safe_name

    if src.nodata is not None:
        mask_kind = "nodata"
    elif any(MaskFlags.per_dataset in f or MaskFlags.alpha in f for f in src.mask_flag_enums):
        mask_kind = "mask"
    else:
        mask_kind = "none"
    structure = {**src.tags(ns="IMAGE_STRUCTURE"), **src.tags(1, ns="IMAGE_STRUCTURE")}
    predictor = structure.get("PREDICTOR")
    nbits = int(structure["NBITS"]) if structure.get("NBITS") else None
    colormap = None
    if src.colorinterp[0].name == "palette":
        try:
            colormap = {int(k): tuple(v) for k, v in src.colormap(1).items()}
        except ValueError:
            colormap = None
    compression = src.compression.name.lower() if src.compression else None
    tags = {k: v for k, v in src.tags().items() if not k.startswith("STATISTICS_")}
    return SceneInfo(
        path=str(p),
        name=safe_name(name) if name is not None else _default_name(str(p)),
        driver=src.driver,
        width=src.width,
        height=src.height,
        count=src.count,
        dtype=src.dtypes[0],
        crs_wkt=src.crs.to_wkt() if src.crs else None,
        transform=tuple(src.transform)[:6],
        nodata=src.nodata,
        mask_kind=mask_kind,
        block_shape=(int(src.block_shapes[0][0]), int(src.block_shapes[0][1])),
        is_tiled=src.block_shapes[0][1] < src.width or bool(src.profile.get("tiled")),
        compression=compression,
        predictor=int(predictor) if predictor else None,
        interleave=src.interleaving.name.lower() if src.interleaving else None,
        colorinterp=tuple(ci.name for ci in src.colorinterp),
        descriptions=tuple(src.descriptions),
        scales=tuple(src.scales),
        offsets=tuple(src.offsets),
        units=tuple(src.units),
        tags=tags,
        little_endian=little_endian,
        nbits=nbits,
        colormap=colormap,
    )


def _default_name(path: str) -> str:
    """A scene's name: its file name without extension (a URL's: its path's stem)."""
    from geolabel.grid import safe_name
    from geolabel.remote import is_remote, scene_name

    return scene_name(path) if is_remote(path) else safe_name(Path(path).stem)


@dataclass(frozen=True)
class ChipFormat:
    """How chips are encoded."""

    driver: str  # GTiff or COG
    compress: str  # deflate, zstd, lzw, none, or the source's (packbits, jpeg ...)
    predictor: int | None
    block: int | None  # internal tile size, None = striped
    interleave: str = "pixel"  # uncompressed chips are band-interleaved (one plane per band)


def choose_chip_format(scene: SceneInfo, *, size: int, fmt: str = "gtiff", compress: str | None = None) -> ChipFormat:
    """Chip encoding: the requested compression, else the source's; tiled when possible."""
    from geolabel.errors import check_choice

    check_choice(fmt, FORMATS, "format")
    if compress is not None:
        check_choice(compress, COMPRESSIONS, "compression")
    comp = compress or scene.compression or "none"
    if compress is None and comp not in ("none", "deflate", "zstd", "lzw", "lzma", "packbits"):
        # lossy (JPEG, WebP) or exotic source compression: lossless chips, no generation loss
        comp = "deflate"
    predictor = scene.predictor if comp in ("deflate", "zstd", "lzw", "lzma") else None
    if predictor == 3 and not scene.dtype.startswith("float"):
        predictor = None
    block: int | None
    if scene.is_tiled and size % scene.block_shape[1] == 0 and scene.block_shape[0] == scene.block_shape[1]:
        block = scene.block_shape[1]
    elif size <= 512:
        block = -(-size // 16) * 16  # one internal tile per chip (TIFF tiles are multiples of 16)
    else:
        block = 512
    driver = "COG" if fmt == "cog" else "GTiff"
    interleave = "band" if comp == "none" and driver == "GTiff" else "pixel"
    return ChipFormat(driver=driver, compress=comp, predictor=predictor, block=block, interleave=interleave)


def chip_profile(
    scene: SceneInfo,
    chip: ChipFormat,
    *,
    size: int,
    count: int,
    transform: Affine,
    crs_wkt: str | None,
    nodata: float | None,
) -> dict[str, Any]:
    """The rasterio creation profile of one chip."""
    profile: dict[str, Any] = {
        "driver": chip.driver,
        "width": size,
        "height": size,
        "count": count,
        "dtype": scene.dtype,
        "crs": crs_wkt,
        "transform": transform,
        "nodata": nodata,
    }
    if chip.compress != "none":
        profile["compress"] = chip.compress
        if chip.predictor:
            profile["predictor"] = chip.predictor
    if chip.driver == "COG":
        if chip.predictor:
            profile["predictor"] = "FLOATING_POINT" if chip.predictor == 3 else "STANDARD"
        profile["blocksize"] = chip.block or 512
        profile["overviews"] = "NONE" if size <= (chip.block or 512) else "AUTO"
        if chip.compress == "none":
            profile["compress"] = "NONE"
    else:
        if chip.block:
            profile.update(tiled=True, blockxsize=chip.block, blockysize=chip.block)
        profile["interleave"] = chip.interleave
    return profile


@dataclass(frozen=True)
class BandMeta:
    """Per-band metadata carried from the scene to every chip."""

    colorinterp: tuple[str, ...]
    descriptions: tuple[str | None, ...]
    scales: tuple[float, ...]
    offsets: tuple[float, ...]
    units: tuple[str | None, ...]
    tags: dict[str, str]
    colormap: dict[int, tuple[int, ...]] | None = None  # palette of the first chip band

    @classmethod
    def from_scene(cls, scene: SceneInfo, bands: Sequence[int]) -> BandMeta:
        pick = [b - 1 for b in bands]
        return cls(
            colorinterp=tuple(scene.colorinterp[i] for i in pick),
            descriptions=tuple(scene.descriptions[i] for i in pick),
            scales=tuple(scene.scales[i] for i in pick),
            offsets=tuple(scene.offsets[i] for i in pick),
            units=tuple(scene.units[i] for i in pick),
            tags=dict(scene.tags),
            colormap=scene.colormap if pick and pick[0] == 0 else None,
        )

    @property
    def is_rgb(self) -> bool:
        return self.colorinterp[:3] == ("red", "green", "blue")


def photometric_option(meta: BandMeta, dtype: str, driver: str) -> dict[str, Any]:
    """Creation option that lets GDAL store RGB colour interpretation natively."""
    if driver == "GTiff" and meta.is_rgb and dtype in ("uint8", "uint16"):
        return {"photometric": "RGB"}
    return {}


def apply_band_meta(dst: Any, meta: BandMeta) -> None:
    """Write colour interpretation, descriptions, scales/offsets, units and tags to ``dst``."""
    from rasterio.enums import ColorInterp

    dst.colorinterp = [ColorInterp[name] for name in meta.colorinterp]
    for i, desc in enumerate(meta.descriptions, start=1):
        if desc:
            dst.set_band_description(i, desc)
    if any(s != 1.0 for s in meta.scales):
        dst.scales = meta.scales
    if any(o != 0.0 for o in meta.offsets):
        dst.offsets = meta.offsets
    if any(meta.units):
        dst.units = tuple(u or "" for u in meta.units)
    if meta.tags:
        dst.update_tags(**meta.tags)
    if meta.colormap:
        dst.write_colormap(1, meta.colormap)


#: Names of chip temporaries (``atomic_file(path, path.suffix)``), swept when their process is gone.
CHIP_TEMP = temp_pattern(r".+\.tif", r"\.tif")


def write_chip(
    path: Path,
    data: NDArray[Any],
    *,
    profile: dict[str, Any],
    meta: BandMeta,
    valid: NDArray[Any] | None = None,
) -> None:
    """Write ``data`` (bands, rows, cols) as a chip, atomically (temp file, then rename).

    ``valid`` is a boolean pixel mask written as an internal GDAL mask when the chip has
    invalid pixels but no nodata value to mark them.
    """
    options = dict(profile)
    options.update(photometric_option(meta, profile["dtype"], profile["driver"]))

    def fill(dst: Any) -> None:
        apply_band_meta(dst, meta)
        dst.write(data)
        if valid is not None:
            dst.write_mask(valid)

    write_raster_file(path, options, fill)


def write_raster_file(path: Path, profile: dict[str, Any], fill: Callable[[Any], None]) -> None:
    """Create a raster file with ``profile`` whose content ``fill(dataset)`` writes, atomically.

    GDAL encodes it in memory and Python writes the bytes under a temporary name, renamed
    when complete: a write GDAL fails when it closes a file (a full disk) raised nothing in
    rasterio, and left truncated chips under their final names; Python's writes raise.
    """
    from rasterio.io import MemoryFile

    with atomic_file(path, path.suffix) as tmp, MemoryFile() as memory:
        with gdal_env(GDAL_TIFF_INTERNAL_MASK=True, **NO_SIDECARS), memory.open(**profile) as dst:
            fill(dst)
        with open(tmp, "wb") as fh:
            fh.write(memory.getbuffer())


def complete_chip_fraction(path: Path, profile: dict[str, Any]) -> float | None:
    """The nodata fraction of the chip at ``path`` if it is the chip ``profile`` describes
    (size, bands, data type, compression, nodata, CRS and transform), else None.

    A chip exists under its final name only when complete (it is written to a temporary
    name and renamed), so a chip an interrupted or killed run left can be kept after this
    check instead of being written again. The fraction is counted as when the chip was
    written: pixels where every band is nodata, or the chip's mask (padding).
    """
    import rasterio
    from rasterio.enums import MaskFlags
    from rasterio.errors import RasterioError

    nodata = profile["nodata"]
    try:
        with gdal_env(), rasterio.open(path) as src:
            if not _matches_profile(src, profile):
                return None
            if nodata is not None:
                invalid = invalid_pixels(src.read(), nodata)
            elif MaskFlags.per_dataset in src.mask_flag_enums[0]:
                invalid = src.dataset_mask() == 0
            else:
                src.read()  # a chip that cannot be decoded is not complete
                return 0.0
    except (RasterioError, OSError):
        return None
    return float(invalid.sum()) / invalid.size


def _matches_profile(src: Any, profile: dict[str, Any]) -> bool:
    """Whether an open chip has the size, bands, type, compression, nodata, CRS and
    transform of its creation ``profile``."""
    import math

    from rasterio.crs import CRS as RioCRS

    compression = src.compression.value if src.compression else "none"
    crs = RioCRS.from_wkt(profile["crs"]) if profile["crs"] else None
    a, b = src.nodata, profile["nodata"]
    same_nodata = a == b or (a is not None and b is not None and math.isnan(a) and math.isnan(b))
    return bool(
        (src.width, src.height, src.count) == (profile["width"], profile["height"], profile["count"])
        and set(src.dtypes) == {profile["dtype"]}
        and compression.lower() == str(profile.get("compress", "none")).lower()
        and src.transform.almost_equals(profile["transform"], precision=1e-6 * abs(src.transform.a or 1.0))
        and (src.crs == crs if crs is not None else not src.crs)
        and same_nodata
    )


def nodata_fill(nodata: float | None) -> float:
    """The value written into pixels outside the scene."""
    return 0 if nodata is None else nodata


def invalid_pixels(data: NDArray[Any], nodata: float | None) -> NDArray[Any]:
    """Boolean (rows, cols): True where every band equals ``nodata`` (NaN-aware)."""
    import numpy as np

    if nodata is None:
        return np.zeros(data.shape[1:], dtype=bool)
    if np.isnan(nodata):
        return np.isnan(data).all(axis=0)  # type: ignore[no-any-return]
    return (data == data.dtype.type(nodata)).all(axis=0)  # type: ignore[no-any-return]


def count_nodata(data: NDArray[Any], nodata: float, *, scratch: NDArray[Any] | None = None) -> int:
    """How many pixels are ``nodata`` in every band of ``data`` (bands, rows, cols), NaN-aware:
    what ``invalid_pixels(data, nodata).sum()`` counts, without its (bands, rows, cols)
    comparison. ``scratch``: two (rows, cols) boolean masks to count in (reused by a caller
    that counts many chips).

    >>> import numpy as np
    >>> count_nodata(np.array([[[0, 0, 5]], [[0, 7, 0]]], dtype="uint8"), 0)
    1
    """
    import numpy as np

    masks = np.empty((2, *data.shape[1:]), dtype=bool) if scratch is None else scratch
    every, band_is = masks[0], masks[1]
    if np.isnan(nodata):
        np.isnan(data[0], out=every)
    else:
        value = data.dtype.type(nodata)
        np.equal(data[0], value, out=every)
    for band in data[1:]:
        if np.isnan(nodata):
            np.isnan(band, out=band_is)
        else:
            np.equal(band, value, out=band_is)
        np.logical_and(every, band_is, out=every)
    return int(np.count_nonzero(every))


def decode_chip(data: bytes) -> NDArray[Any]:
    """The pixels ``(bands, rows, cols)`` of a chip file held in memory (every block decoded:
    a block its codec cannot decode raises)."""
    from rasterio.io import MemoryFile

    with gdal_env(), MemoryFile(data) as memory, memory.open() as src:
        return src.read()  # type: ignore[no-any-return]

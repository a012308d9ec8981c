"""Cut scenes into georeferenced chips: :func:`tile_raster`.

Planning (which chips, which path, which encoding) happens in the calling process from
the scene headers; the pixel work is split into small tasks (a few chips of one scene
each) that open the scene themselves, so they run the same way serially, on a local
process pool or on a Dask cluster. Each task streams window by window: memory holds a
handful of chips, whatever the scene size.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geolabel.errors import (
    EdgePolicyWarning,
    InputError,
    OutputError,
    OutputExistsError,
    TaskError,
    check_choice,
    first_line,
)
from geolabel.grid import Tile, TileGrid, tile_id
from geolabel.tileindex import INDEX_NAME, TileRecord

if TYPE_CHECKING:
    import numpy as np

    from geolabel.blockcopy import ChipTemplate
    from geolabel.raster import BandMeta, ChipFormat, SceneInfo

RESAMPLING_METHODS = ("nearest", "bilinear", "cubic", "cubic_spline", "lanczos", "average", "mode")

#: Chips per task, bounds: few enough tasks that opening the scene once per task stays
#: negligible, small enough at the end of the queue that the workers finish together.
MIN_CHIPS_PER_TASK = 4
#: Sanity limits: a grid this large is almost always a unit mistake (e.g. --resolution).
MAX_CHIPS_PER_SCENE = 2_000_000
MAX_GRID_PIXELS = 10**12
#: A chip is read into memory whole: larger ones are a typo (or a job for another tool).
MAX_CHIP_SIZE = 32768
MAX_CHIPS_PER_TASK = 32


@dataclass(frozen=True)
class TileOptions:
    """Everything that decides what the chips look like (stored in the index)."""

    size: int = 512
    overlap: int = 0
    edge: str = "pad"
    max_nodata: float = 1.0
    bands: tuple[int, ...] | None = None
    format: str = "gtiff"
    compress: str | None = None
    dst_crs: str | None = None
    resolution: float | None = None
    resampling: str = "nearest"
    allow_no_crs: bool = False

    def validate(self) -> None:
        from geolabel.raster import COMPRESSIONS, FORMATS

        TileGrid(width=self.size, height=self.size, size=self.size, overlap=self.overlap, edge=self.edge)
        if self.size > MAX_CHIP_SIZE:
            raise InputError(
                f"`size` must be at most {MAX_CHIP_SIZE} px (a chip is read into memory whole); got {self.size}",
                params=("size",),
            )
        if not 0.0 <= self.max_nodata <= 1.0:
            raise InputError(
                f"`max_nodata` must be a fraction between 0 and 1; got {self.max_nodata}", params=("max_nodata",)
            )
        check_choice(self.format, FORMATS, param="format")
        if self.compress is not None:
            check_choice(self.compress, COMPRESSIONS, param="compress")
        check_choice(self.resampling, RESAMPLING_METHODS, param="resampling")
        if self.resolution is not None and not self.resolution > 0:
            raise InputError(
                f"`resolution` must be a positive number of CRS units; got {self.resolution}", params=("resolution",)
            )
        if self.bands is not None and (not self.bands or min(self.bands) < 1):
            raise InputError(f"`bands` are numbered from 1; got {list(self.bands)}", params=("bands",))

    def params(self) -> dict[str, Any]:
        """The options as stored in the tile index (what a resumed run must match)."""
        from geolabel.crs import compact_crs

        out = asdict(self)
        out["bands"] = list(self.bands) if self.bands else None
        out["dst_crs"] = compact_crs(self.dst_crs) if self.dst_crs else None  # EPSG code: stable across PROJ versions
        out.pop("allow_no_crs")
        return out


@dataclass(frozen=True)
class WarpSpec:
    """Target grid of a warped (reprojected or resampled) read."""

    crs_wkt: str
    transform: tuple[float, ...]
    width: int
    height: int
    resampling: str


@dataclass(frozen=True)
class ChipTask:
    """A few chips of one scene; everything a worker needs, as plain values."""

    scene: SceneInfo
    out_dir: str
    tiles: tuple[Tile, ...]
    ids: tuple[str, ...]
    size: int
    bands: tuple[int, ...]
    fmt: ChipFormat
    meta: BandMeta
    chip_crs: str
    chip_crs_wkt: str | None
    grid_transform: tuple[float, ...]
    warp: WarpSpec | None
    max_nodata: float
    template: ChipTemplate | None = None  # block copy: header of a chip like the source
    block_offsets: tuple[Any, ...] = ()  # per tile: (offsets, sizes) arrays, or None
    raw_template: ChipTemplate | None = None  # uncompressed band-interleaved chip header


@dataclass
class SceneSummary:
    scene: str
    path: str
    chips: int = 0
    written: int = 0
    resumed: int = 0
    skipped: int = 0
    copied: int = 0
    fast_path: str = ""


@dataclass
class TilingResult:
    """What :func:`tile_raster` did."""

    index_path: Path
    out_dir: Path
    chips: list[TileRecord] = field(default_factory=list)
    skipped: list[TileRecord] = field(default_factory=list)
    scenes: list[SceneSummary] = field(default_factory=list)

    @property
    def written(self) -> int:
        return sum(s.written for s in self.scenes)

    @property
    def resumed(self) -> int:
        return sum(s.resumed for s in self.scenes)

    @property
    def n_skipped(self) -> int:
        return sum(s.skipped for s in self.scenes)


# ---------------------------------------------------------------------------------
# Planning (calling process)


def _target_grid(scene: SceneInfo, options: TileOptions) -> WarpSpec | None:
    """The warped grid for ``--dst-crs``/``--resolution``, aligned to the resolution."""
    if options.dst_crs is None and options.resolution is None:
        return None
    from rasterio.crs import CRS as RioCRS
    from rasterio.transform import array_bounds
    from rasterio.warp import aligned_target, calculate_default_transform

    from geolabel.crs import to_rasterio_crs

    if scene.crs_wkt is None:
        raise InputError(f"{scene.path}: cannot reproject a raster that has no CRS")
    src_crs = RioCRS.from_wkt(scene.crs_wkt)
    dst_crs = to_rasterio_crs(options.dst_crs) if options.dst_crs else src_crs
    bounds = array_bounds(scene.height, scene.width, scene.affine)
    left, bottom, right, top = bounds[0], bounds[1], bounds[2], bounds[3]
    kwargs: dict[str, Any] = {}
    if options.resolution is not None:
        kwargs["resolution"] = options.resolution
    try:
        transform, width, height = calculate_default_transform(
            src_crs, dst_crs, scene.width, scene.height, left=left, bottom=bottom, right=right, top=top, **kwargs
        )
        if options.resolution is not None:
            transform, width, height = aligned_target(transform, width, height, options.resolution)
    except Exception as exc:
        raise InputError(f"{scene.path}: cannot be reprojected to the requested grid ({first_line(exc)})") from None
    if width * height > MAX_GRID_PIXELS:
        raise InputError(
            f"{scene.path}: warping to that CRS/resolution would make a {width} x {height} px scene; check "
            "`resolution` (it is in the units of the target CRS: metres for UTM, degrees for EPSG:4326)",
            params=("resolution",),
        )
    return WarpSpec(
        crs_wkt=dst_crs.to_wkt(),
        transform=tuple(transform)[:6],
        width=int(width),
        height=int(height),
        resampling=options.resampling,
    )


def _plan_scene(
    scene: SceneInfo,
    options: TileOptions,
    out_dir: Path,
    done_ids: set[str],
    *,
    block_copy: bool,
    workers: int = 8,
) -> tuple[list[ChipTask], list[str], SceneSummary]:
    """Tasks for the chips of one scene that are not done yet."""
    from affine import Affine

    from geolabel.crs import compact_crs
    from geolabel.raster import BandMeta, choose_chip_format

    bands = options.bands or tuple(range(1, scene.count + 1))
    if max(bands) > scene.count:
        raise InputError(f"{scene.path}: has {scene.count} bands; cannot select band {max(bands)}")
    warp = _target_grid(scene, options)
    width, height = (warp.width, warp.height) if warp else (scene.width, scene.height)
    grid_transform = warp.transform if warp else scene.transform
    chip_crs_wkt = warp.crs_wkt if warp else scene.crs_wkt
    grid = TileGrid(width=width, height=height, size=options.size, overlap=options.overlap, edge=options.edge)
    if len(grid) > MAX_CHIPS_PER_SCENE:
        raise InputError(
            f"{scene.path}: would be cut into {len(grid):,} chips (more than {MAX_CHIPS_PER_SCENE:,}); "
            "use a larger `size` or a smaller `overlap`",
            params=("size", "overlap"),
        )
    if len(grid) == 0:
        warnings.warn(
            EdgePolicyWarning(
                f"{scene.path}: {width}x{height} px is smaller than a {options.size} px chip; "
                "`edge='drop'` leaves no chip",
                params=("edge",),
            ),
            stacklevel=3,
        )
    if options.edge == "shift" and (width < options.size or height < options.size):
        warnings.warn(
            f"{scene.path}: {width}x{height} px is smaller than a {options.size} px chip; padded instead of shifted",
            EdgePolicyWarning,
            stacklevel=3,
        )
    summary = SceneSummary(scene=scene.name, path=scene.path)
    tiles = list(grid.tiles())
    rows, cols = grid.shape
    digits = max(3, len(str(max(rows, cols) - 1)))
    ids = [tile_id(scene.name, t.row, t.col, digits=digits) for t in tiles]
    _check_chip_names(scene, out_dir, ids)
    summary.chips = len(tiles)
    todo = [(t, i) for t, i in zip(tiles, ids) if i not in done_ids]
    fmt = choose_chip_format(scene, size=options.size, fmt=options.format, compress=options.compress)
    meta = BandMeta.from_scene(scene, bands)
    chip_crs = compact_crs(chip_crs_wkt)

    template = None
    tables: dict[tuple[int, int], Any] = {}
    from geolabel.blockcopy import why_not_block_copy

    reason = why_not_block_copy(
        scene,
        size=options.size,
        overlap=options.overlap,
        bands=tuple(bands),
        compress=fmt.compress,
        driver=fmt.driver,
        reprojecting=warp is not None,
    )
    if not block_copy:
        reason = "disabled"
    if reason is None and todo:
        template, tables, reason = _prepare_block_copy(scene, options, fmt, meta, chip_crs_wkt, todo)
    summary.fast_path = reason or "block copy"
    raw_template = None
    if fmt.interleave == "band" and fmt.block and options.size % fmt.block == 0 and todo:
        raw_template = _make_template(
            scene, fmt, options, meta, chip_crs_wkt, len(bands), transform=Affine(*grid_transform[:6])
        )

    tasks = []
    start = 0
    while start < len(todo):
        # Guided chunking: big tasks first, smaller ones at the end so workers finish together.
        per_task = min(MAX_CHIPS_PER_TASK, max(MIN_CHIPS_PER_TASK, -(-(len(todo) - start) // (2 * workers))))
        chunk = todo[start : start + per_task]
        start += per_task
        task_tiles = tuple(t for t, _ in chunk)
        tasks.append(
            ChipTask(
                scene=scene,
                out_dir=str(out_dir),
                tiles=task_tiles,
                ids=tuple(i for _, i in chunk),
                size=options.size,
                bands=tuple(bands),
                fmt=fmt,
                meta=meta,
                chip_crs=chip_crs,
                chip_crs_wkt=chip_crs_wkt,
                grid_transform=tuple(grid_transform),
                warp=warp,
                max_nodata=options.max_nodata,
                template=template,
                block_offsets=tuple(tables.get((t.row_off, t.col_off)) for t in task_tiles),
                raw_template=raw_template,
            )
        )
    return tasks, ids, summary


def _check_chip_names(scene: SceneInfo, out_dir: Path, ids: Sequence[str]) -> None:
    """Chips must be files the tile index accepts (:func:`~geolabel.tileindex.record_problem`):
    ids of at most ``MAX_TILE_ID_BYTES``, in a scene folder that is no link to outside ``out_dir``."""
    from geolabel.files import leads_outside
    from geolabel.tileindex import MAX_TILE_ID_BYTES

    if ids and len(ids[0].encode()) > MAX_TILE_ID_BYTES:
        raise InputError(
            f"{scene.path}: the name is too long for chip names ({ids[0][:40]}..., over {MAX_TILE_ID_BYTES} bytes); "
            "rename the file"
        )
    if leads_outside(out_dir / scene.name, out_dir):
        raise OutputError(f"{out_dir / scene.name}: is a link to outside {out_dir}; chips must stay inside --out")


def _make_template(
    scene: SceneInfo,
    fmt: ChipFormat,
    options: TileOptions,
    meta: BandMeta,
    crs_wkt: str | None,
    count: int,
    *,
    transform: Any,
) -> ChipTemplate | None:
    """An empty chip header written by GDAL (pixel size and CRS of the chip grid), or None
    if GDAL's layout cannot be patched. Only the origin is patched per chip."""
    import tempfile

    from geolabel.blockcopy import make_template
    from geolabel.raster import chip_profile

    profile = chip_profile(
        scene, fmt, size=options.size, count=count, transform=transform, crs_wkt=crs_wkt, nodata=scene.nodata
    )
    try:
        with tempfile.TemporaryDirectory(prefix="geolabel-") as tmp:
            return make_template(os.path.join(tmp, "template.tif"), profile, meta)
    except (ValueError, OSError):
        return None


def _prepare_block_copy(
    scene: SceneInfo,
    options: TileOptions,
    fmt: ChipFormat,
    meta: BandMeta,
    chip_crs_wkt: str | None,
    todo: Sequence[tuple[Tile, str]],
) -> tuple[ChipTemplate | None, dict[tuple[int, int], Any], str | None]:
    """Template chip and per-chip block tables for the no-decode path."""
    import rasterio

    from geolabel.blockcopy import block_table
    from geolabel.raster import gdal_env

    b = scene.block_shape[0]
    if fmt.block != b:
        return None, {}, "chip block size differs from the source's"
    template = _make_template(scene, fmt, options, meta, chip_crs_wkt, scene.count, transform=scene.affine)
    if template is None:
        return None, {}, "GDAL's chip header could not be patched"
    with gdal_env(), rasterio.open(scene.path) as src:
        offsets, sizes = block_table(src)
    tables = {}
    k = options.size // b
    for tile, _ in todo:
        if tile.is_partial or tile.row_off % b or tile.col_off % b:
            continue
        by, bx = tile.row_off // b, tile.col_off // b
        tables[(tile.row_off, tile.col_off)] = (offsets[by : by + k, bx : bx + k], sizes[by : by + k, bx : bx + k])
    return template, tables, None


# ---------------------------------------------------------------------------------
# Pixel work (worker processes)


def _chip_transform(grid_transform: tuple[float, ...], tile: Tile) -> Any:
    from affine import Affine
    from rasterio.windows import Window
    from rasterio.windows import transform as window_transform

    return window_transform(Window(tile.col_off, tile.row_off, tile.width, tile.height), Affine(*grid_transform[:6]))


def _record(task: ChipTask, tile: Tile, tid: str, path: str, fraction: float, transform: Any) -> TileRecord:
    return TileRecord(
        tile_id=tid,
        scene=task.scene.name,
        scene_path=os.path.abspath(task.scene.path) if not task.scene.path.startswith("/vsi") else task.scene.path,
        path=path,
        row=tile.row,
        col=tile.col,
        row_off=tile.row_off,
        col_off=tile.col_off,
        width=tile.width,
        height=tile.height,
        nodata_fraction=fraction,
        crs=task.chip_crs,
        transform=tuple(transform)[:6],
    )


def _keep(fraction: float, max_nodata: float) -> bool:
    return fraction < 1.0 and fraction <= max_nodata


class _SceneReader:
    """Opens the scene (and its warped view) lazily, once per task."""

    def __init__(self, task: ChipTask) -> None:
        self.task = task
        self._src: Any = None
        self._vrt: Any = None

    def dataset(self) -> Any:
        import rasterio
        from rasterio.enums import Resampling

        if self._src is None:
            self._src = rasterio.open(self.task.scene.path)
            warp = self.task.warp
            if warp is not None:
                from affine import Affine
                from rasterio.crs import CRS as RioCRS
                from rasterio.vrt import WarpedVRT

                self._vrt = WarpedVRT(
                    self._src,
                    crs=RioCRS.from_wkt(warp.crs_wkt),
                    transform=Affine(*warp.transform[:6]),
                    width=warp.width,
                    height=warp.height,
                    resampling=Resampling[warp.resampling],
                    nodata=self.task.scene.nodata,
                    add_alpha=self.task.scene.nodata is None and "alpha" not in self.task.scene.colorinterp,
                )
        return self._vrt if self._vrt is not None else self._src

    def read(self, tile: Tile) -> tuple[np.ndarray, np.ndarray | None]:
        """Chip pixels (bands, size, size), padded with nodata, and the invalid-pixel mask.

        The mask is ``None`` when every pixel is valid (the common case, no allocation).
        """
        import numpy as np
        from rasterio.windows import Window

        from geolabel.raster import invalid_pixels, nodata_fill

        task = self.task
        ds = self.dataset()
        scene = task.scene
        vh, vw = tile.valid_height, tile.valid_width
        window = Window(tile.col_off, tile.row_off, vw, vh)
        if tile.is_partial:
            data = np.full((len(task.bands), tile.height, tile.width), nodata_fill(scene.nodata), dtype=scene.dtype)
            data[:, :vh, :vw] = ds.read(list(task.bands), window=window)
        else:
            data = ds.read(list(task.bands), window=window)
        if scene.nodata is not None:
            return data, invalid_pixels(data, scene.nodata)
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

    def close(self) -> None:
        if self._vrt is not None:
            self._vrt.close()
        if self._src is not None:
            self._src.close()


def _block_copy_chip(
    task: ChipTask, reader: _SceneReader, fd: int, tile: Tile, table: Any
) -> tuple[list[bytes] | None, float]:
    """(the chip's compressed tiles, or None when skipped; nodata fraction), without re-encoding.

    With a nodata value the pixels must still be decoded once to count nodata (GDAL's
    libdeflate decodes about twice as fast as Python's zlib); without one, nothing is decoded.
    """
    from geolabel.blockcopy import read_blocks

    fraction = 0.0
    if task.scene.nodata is not None:
        _, invalid = reader.read(tile)
        fraction = 0.0 if invalid is None else float(invalid.sum()) / invalid.size
        if not _keep(fraction, task.max_nodata):
            return None, fraction
    offsets, sizes = table
    return read_blocks(fd, offsets, sizes), fraction


def process_chips(task: ChipTask) -> list[tuple[TileRecord, str]]:
    """Write the chips of one task; returns (record, 'written' | 'copied' | 'skipped')."""
    from geolabel.blockcopy import band_tiles, write_assembled_chip
    from geolabel.raster import chip_profile, gdal_env, write_chip

    scene_dir = Path(task.out_dir) / task.scene.name
    results = []
    reader = _SceneReader(task)
    fd = os.open(task.scene.path, os.O_RDONLY) if task.template is not None else -1
    try:
        with gdal_env():
            for tile, tid, table in zip(task.tiles, task.ids, task.block_offsets or (None,) * len(task.tiles)):
                rel = f"{task.scene.name}/{tid}.tif"
                out = scene_dir / f"{tid}.tif"
                transform = _chip_transform(task.grid_transform, tile)
                if table is not None and task.template is not None:
                    blocks, fraction = _block_copy_chip(task, reader, fd, tile, table)
                    if blocks is None:
                        results.append((_record(task, tile, tid, "", fraction, transform), "skipped"))
                        continue
                    write_assembled_chip(out, task.template, (transform.c, transform.f), blocks)
                    results.append((_record(task, tile, tid, rel, fraction, transform), "copied"))
                    continue
                data, invalid = reader.read(tile)
                fraction = 0.0 if invalid is None else float(invalid.sum()) / invalid.size
                if not _keep(fraction, task.max_nodata):
                    results.append((_record(task, tile, tid, "", fraction, transform), "skipped"))
                    continue
                valid = None
                if task.scene.nodata is None and invalid is not None and invalid.any():
                    valid = ~invalid
                if valid is None and task.raw_template is not None and task.fmt.block:
                    tiles = band_tiles(data, task.fmt.block)
                    write_assembled_chip(out, task.raw_template, (transform.c, transform.f), tiles)
                else:
                    profile = chip_profile(
                        task.scene,
                        task.fmt,
                        size=task.size,
                        count=len(task.bands),
                        transform=transform,
                        crs_wkt=task.chip_crs_wkt,
                        nodata=task.scene.nodata,
                    )
                    write_chip(out, data, profile=profile, meta=task.meta, valid=valid)
                results.append((_record(task, tile, tid, rel, fraction, transform), "written"))
    except Exception as exc:
        message = (
            str(exc)
            if isinstance(exc, InputError)
            else (f"{task.scene.path}: reading or writing chips failed ({first_line(exc)})")
        )
        raise TaskError(message, partial_results=results) from exc
    finally:
        reader.close()
        if fd >= 0:
            os.close(fd)
    return results


# ---------------------------------------------------------------------------------
# Orchestration


def _scene_list(scenes: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[str]:
    if isinstance(scenes, (str, os.PathLike)):
        return [str(scenes)]
    out = [str(s) for s in scenes]
    if not out:
        raise InputError("no scene given")
    return out


def _clean_stale_temps(folder: Path) -> None:
    if folder.is_dir():
        for stale in folder.glob(".*.tmp.tif"):
            stale.unlink(missing_ok=True)


def _prefetch_index_writer(crs: str) -> None:
    """Import fiona, register its drivers and resolve the index CRS while the workers are busy."""
    import fiona
    from fiona.crs import CRS

    with fiona.Env():
        if crs:
            CRS.from_user_input(crs)


def tile_raster(
    scenes: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    size: int = 512,
    overlap: int = 0,
    edge: str = "pad",
    max_nodata: float = 1.0,
    bands: Sequence[int] | None = None,
    format: str = "gtiff",
    compress: str | None = None,
    dst_crs: Any = None,
    resolution: float | None = None,
    resampling: str = "nearest",
    allow_no_crs: bool = False,
    overwrite: bool = False,
    block_copy: bool = True,
    workers: int | None = None,
    executor: Executor | None = None,
    progress: Callable[[float], None] | None = None,
    is_cancelled: Callable[[], bool] | None = None,
) -> TilingResult:
    """Cut one or more scenes into georeferenced chips and write a tile index.

    Chips go to ``out_dir/<scene>/<scene>_rRRR_cCCC.tif`` and the index to
    ``out_dir/tiles.gpkg``. Rerunning the same call resumes: chips already listed in
    the index are not rewritten. Tiles whose nodata fraction exceeds ``max_nodata``
    (and tiles with no valid pixel at all) are skipped and listed in the index's
    ``skipped_tiles`` layer.

    >>> result = tile_raster("sample_data/village.tif", "out/chips", size=512)  # doctest: +SKIP
    >>> result.written, result.index_path  # doctest: +SKIP
    (15, PosixPath('out/chips/tiles.gpkg'))

    Args:
        scenes: raster path(s); each scene's chips go to their own folder.
        size, overlap: chip size and overlap between neighbours, in pixels.
        edge: ``pad``, ``shift`` or ``drop`` (see :mod:`geolabel.grid`).
        bands: 1-based band numbers to keep, in order (default all).
        format: ``gtiff`` or ``cog``. compress: ``deflate``, ``zstd``, ``lzw``,
            ``none``, or ``None`` to keep the source's compression.
        dst_crs, resolution, resampling: warp scenes to a common CRS/pixel size.
        overwrite: ignore (and replace) an existing index made with other options.
        block_copy: allow copying compressed blocks without decoding when aligned.
        workers / executor: local processes, or any ``concurrent.futures.Executor``.
        progress: called with the finished fraction (0..1). is_cancelled: polled.
    """
    from geolabel.crs import compact_crs, parse_crs
    from geolabel.parallel import default_workers, local_executor, run_tasks
    from geolabel.raster import inspect_scene
    from geolabel.tileindex import read_index, remove_chips, sorted_records, write_index

    options = TileOptions(
        size=int(size),
        overlap=int(overlap),
        edge=edge,
        max_nodata=float(max_nodata),
        bands=tuple(int(b) for b in bands) if bands else None,
        format=format,
        compress=compress,
        dst_crs=parse_crs(dst_crs, param="dst_crs").to_wkt() if dst_crs is not None else None,
        resolution=float(resolution) if resolution is not None else None,
        resampling=resampling,
        allow_no_crs=allow_no_crs,
    )
    options.validate()
    paths = _scene_list(scenes)
    infos: list[SceneInfo] = []
    seen: dict[str, str] = {}
    for p in paths:
        info = inspect_scene(p, allow_no_crs=allow_no_crs)
        other = seen.get(info.name)
        if other is not None:
            if os.path.realpath(other) == os.path.realpath(info.path):
                continue
            raise InputError(f"{info.path}: has the same name as {other}; rename one so their chips do not collide")
        seen[info.name] = info.path
        infos.append(info)
    if len({i.crs_wkt is None for i in infos}) > 1:
        raise InputError("some scenes have a CRS and some do not; they cannot share one tile index")

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{out}: exists and is not a folder")
    index_path = out / INDEX_NAME
    old_chips: list[TileRecord] = []
    old_skipped: list[TileRecord] = []
    params = options.params()
    if index_path.exists():
        old_chips, old_skipped, old_params = read_index(index_path)
        if old_params != params or overwrite:
            if not overwrite:
                diff = ", ".join(f"{k}={old_params.get(k)!r}" for k in sorted(params) if old_params.get(k) != params[k])
                raise OutputExistsError(
                    f"{index_path}: was made with other options ({diff}); "
                    "use another `out_dir` or pass `overwrite=True`",
                    params=("out_dir", "overwrite"),
                )
            remove_chips(out, old_chips)
            old_chips, old_skipped = [], []
    elif out.exists() and any(out.iterdir()) and not overwrite:
        stray = [p.name for p in out.iterdir() if not p.name.startswith(".")]
        if stray and not all((out / n).is_dir() and n in seen for n in stray):
            raise OutputExistsError(
                f"{out}: folder is not empty and holds no tile index; use an empty `out_dir`", params=("out_dir",)
            )

    stored_index_crs = None  # the CRS of the index this run continues
    if old_chips or old_skipped:
        from geolabel.tileindex import index_crs as stored_crs

        stored_index_crs = stored_crs(index_path)
        had_crs = bool(stored_index_crs)
        for info in infos:
            if (info.crs_wkt is not None) != had_crs:
                raise InputError(
                    f"{info.path}: {'has' if info.crs_wkt else 'has no'} CRS but the chips in {index_path} "
                    f"{'do not' if info.crs_wkt else 'do'}; use another `out_dir`",
                    params=("out_dir",),
                )
        earlier = {r.scene: r.scene_path for r in old_chips + old_skipped}
        for info in infos:
            before = earlier.get(info.name)
            now = os.path.abspath(info.path) if not info.path.startswith("/vsi") else info.path
            if before is not None and before != now and not overwrite:
                raise OutputExistsError(
                    f"{info.path}: {out} already holds chips named {info.name!r} from {before}; rename the scene, "
                    "use another `out_dir`, or pass `overwrite=True`",
                    params=("out_dir", "overwrite"),
                )
    done = {r.tile_id for r in old_chips if (out / r.path).exists()}
    done |= {r.tile_id for r in old_skipped}
    chips_by_scene: dict[str, list[TileRecord]] = {}
    skipped_by_scene: dict[str, list[TileRecord]] = {}
    for r in old_chips:
        if r.tile_id in done:
            chips_by_scene.setdefault(r.scene, []).append(r)
    for r in old_skipped:
        skipped_by_scene.setdefault(r.scene, []).append(r)

    n_workers = getattr(executor, "_max_workers", 8) if executor is not None else (workers or default_workers())
    plans = []
    for info in infos:
        tasks, ids, summary = _plan_scene(info, options, out, done, block_copy=block_copy, workers=n_workers)
        id_set = set(ids)
        summary.resumed = sum(1 for r in chips_by_scene.get(info.name, []) if r.tile_id in id_set)
        summary.skipped = sum(1 for r in skipped_by_scene.get(info.name, []) if r.tile_id in id_set)
        plans.append((info, tasks, summary))

    index_crs = ""
    if stored_index_crs is not None:  # a resumed index keeps its CRS
        index_crs = stored_index_crs
    elif infos[0].crs_wkt:
        first_grid = _target_grid(infos[0], options)
        index_crs = compact_crs(first_grid.crs_wkt if first_grid else infos[0].crs_wkt)

    created = [d for d in [out] + [out / i.name for i in infos] if not d.exists()]
    try:
        for d in created:
            d.mkdir(parents=True)
    except OSError as exc:
        raise OutputError(f"{d}: cannot create the output folder ({exc.strerror or exc})") from None
    for info in infos:
        _clean_stale_temps(out / info.name)

    result = TilingResult(index_path=index_path, out_dir=out, scenes=[p[2] for p in plans])
    total = sum(len(t.tiles) for _, tasks, _ in plans for t in tasks)
    finished = 0
    remaining = {info.name: len(tasks) for info, tasks, _ in plans}
    summaries = {info.name: s for info, _, s in plans}

    def flush(*, complete: bool) -> None:
        chips = sorted_records(chips_by_scene)
        skipped = sorted_records(skipped_by_scene)
        try:
            write_index(index_path, chips, skipped, crs=index_crs, params=params, complete=complete)
        except Exception as exc:
            raise OutputError(f"{index_path}: cannot write the tile index ({first_line(exc)})") from None

    def on_result(task: ChipTask, results: list[tuple[TileRecord, str]]) -> None:
        nonlocal finished
        summary = summaries[task.scene.name]
        for rec, status in results:
            if status == "skipped":
                skipped_by_scene.setdefault(rec.scene, []).append(rec)
                summary.skipped += 1
            else:
                chips_by_scene.setdefault(rec.scene, []).append(rec)
                summary.written += 1
                summary.copied += status == "copied"
        finished += len(results)
        remaining[task.scene.name] -= 1
        if remaining[task.scene.name] == 0 and finished < total:
            flush(complete=False)
        if progress is not None and total:
            progress(finished / total)

    all_tasks = [t for _, tasks, _ in plans for t in tasks]
    # The index writer's import overlaps with the pixel work instead of following it.
    threading.Thread(target=_prefetch_index_writer, args=(index_crs,), daemon=True).start()
    try:
        if executor is not None:
            run_tasks(process_chips, all_tasks, executor=executor, on_result=on_result, is_cancelled=is_cancelled)
        else:
            with local_executor(workers) as pool:
                n = getattr(pool, "_max_workers", 1)
                run_tasks(
                    process_chips,
                    all_tasks,
                    executor=pool,
                    on_result=on_result,
                    is_cancelled=is_cancelled,
                    max_in_flight=max(2, 2 * n),
                )
    except BaseException:
        if chips_by_scene or skipped_by_scene:
            flush(complete=False)
        else:
            for d in reversed(created):
                _clean_stale_temps(d)
                if d.is_dir() and not any(d.iterdir()):
                    d.rmdir()
        raise
    flush(complete=True)
    if progress is not None:
        progress(1.0)
    result.chips = sorted_records(chips_by_scene)
    result.skipped = sorted_records(skipped_by_scene)
    return result

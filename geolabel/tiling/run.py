"""Cut scenes into georeferenced chips: :func:`tile_raster`.

Planning (which chips, which path, which encoding) happens in the calling process from
the scene headers; the pixel work is split into small tasks (a few chips of one scene
each) that open the scene themselves, so they run the same way serially, on a local
process pool or on a Dask cluster. Each task streams window by window: memory holds a
handful of chips, whatever the scene size.
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
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
from geolabel.files import sweep_stale
from geolabel.grid import Tile, TileGrid, tile_id
from geolabel.tileindex import INDEX_NAME, TileRecord

if TYPE_CHECKING:
    import numpy as np

    from geolabel.blockcopy import ChipTemplate
    from geolabel.raster import BandMeta, ChipFormat, SceneInfo
    from geolabel.tileindex import IndexWriter

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

        if not self.size > 0:
            raise InputError(f"`size` must be a positive number of pixels; got {self.size}", params=("size",))
        if not 0 <= self.overlap < self.size:
            raise InputError(
                f"`overlap` must be 0 or more pixels and smaller than `size` ({self.size}); got {self.overlap}",
                params=("overlap", "size"),
            )
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
        if self.resolution is not None and not 0 < self.resolution < float("inf"):
            raise InputError(
                f"`resolution` must be a positive number of CRS units; got {self.resolution}", params=("resolution",)
            )
        if self.bands is not None and not self.bands:
            raise InputError("`bands` must name at least one band (numbered from 1)", params=("bands",))
        if self.bands is not None and min(self.bands) < 1:
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
    adopt: bool = False  # keep complete chips an interrupted run of the same job left on disk
    verify: bool = True  # block copy: decode each window once to check its blocks


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

    def count(self, status: str) -> None:
        """Count one chip a task reported: written, copied (block copy), found or skipped."""
        if status == "skipped":
            self.skipped += 1
        elif status == "found":  # complete on disk from an interrupted run
            self.resumed += 1
        else:
            self.written += 1
            self.copied += status == "copied"


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
    try:
        transform, width, height = calculate_default_transform(
            src_crs, dst_crs, scene.width, scene.height, left=left, bottom=bottom, right=right, top=top
        )
    except Exception as exc:
        raise InputError(f"{scene.path}: cannot be reprojected to the requested grid ({first_line(exc)})") from None
    extent = max(width * abs(transform.a), height * abs(transform.e))
    if options.resolution is not None and options.resolution > extent:
        raise InputError(
            f"{scene.path}: a pixel of {options.resolution:g} is larger than the whole scene ({extent:.4g} across); "
            "check `resolution` (it is in the units of the target CRS: metres for UTM, degrees for EPSG:4326)",
            params=("resolution",),
        )
    if options.resolution is not None:
        transform, width, height = calculate_default_transform(
            src_crs,
            dst_crs,
            scene.width,
            scene.height,
            left=left,
            bottom=bottom,
            right=right,
            top=top,
            resolution=options.resolution,
        )
        transform, width, height = aligned_target(transform, width, height, options.resolution)
    if width * height > MAX_GRID_PIXELS:
        raise InputError(
            f"{scene.path}: warping to that CRS/resolution would make a {width:.4g} x {height:.4g} px scene; check "
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
    previous: _PreviousRun,
    *,
    block_copy: bool,
    verify_blocks: bool = True,
    workers: int = 8,
) -> tuple[list[ChipTask], SceneSummary]:
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
    done = previous.done
    todo = [(t, i) for t, i in zip(tiles, ids) if i not in done]
    planned = set(ids)
    summary.resumed = sum(1 for r in previous.chips if r.tile_id in planned)
    summary.skipped = sum(1 for r in previous.skipped if r.tile_id in planned)
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
                adopt=previous.resume,
                verify=verify_blocks,
            )
        )
    return tasks, summary


def _check_chip_names(scene: SceneInfo, out_dir: Path, ids: Sequence[str]) -> None:
    """Chips must be files the tile index accepts (:func:`~geolabel.tileindex.record_problem`):
    ids of at most ``MAX_TILE_ID_BYTES``, in a scene folder that is no link to outside ``out_dir``."""
    from geolabel.files import child_dir
    from geolabel.tileindex import MAX_TILE_ID_BYTES

    if ids and len(ids[0].encode()) > MAX_TILE_ID_BYTES:
        raise InputError(
            f"{scene.path}: the name is too long for chip names ({ids[0][:40]}..., over {MAX_TILE_ID_BYTES} bytes); "
            "rename the file"
        )
    child_dir(out_dir, scene.name)


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

    The window is decoded once (by GDAL: libdeflate decodes about twice as fast as
    Python's zlib) to count nodata and to check every block before it is copied: a DEFLATE
    block with a wrong Adler-32 checksum, or any block its codec cannot decode, fails the
    chip here instead of being copied into it. Only ``verify=False`` without a nodata value
    decodes nothing.
    """
    from geolabel.blockcopy import read_blocks

    fraction = 0.0
    if task.scene.nodata is not None or task.verify:
        _, invalid = reader.read(tile)
        fraction = 0.0 if invalid is None else float(invalid.sum()) / invalid.size
        if not _keep(fraction, task.max_nodata):
            return None, fraction
    offsets, sizes = table
    return read_blocks(fd, offsets, sizes), fraction


def process_chips(task: ChipTask) -> list[tuple[TileRecord, str]]:
    """Write the chips of one task; returns (record, 'written' | 'copied' | 'found' | 'skipped').

    'found': the chip was already complete on disk (an interrupted run of the same job
    wrote it but did not list it) and is kept as it is.
    """
    from geolabel.blockcopy import band_tiles, write_assembled_chip
    from geolabel.raster import complete_chip_fraction, gdal_env, write_chip

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
                if task.adopt and out.exists():
                    found = complete_chip_fraction(out, _profile(task, transform))
                    if found is not None and _keep(found, task.max_nodata):
                        results.append((_record(task, tile, tid, rel, found, transform), "found"))
                        continue
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
                    write_chip(out, data, profile=_profile(task, transform), meta=task.meta, valid=valid)
                results.append((_record(task, tile, tid, rel, fraction, transform), "written"))
    except Exception as exc:
        raise TaskError(_task_failure(task, exc), partial_results=results) from exc
    finally:
        reader.close()
        if fd >= 0:
            os.close(fd)
    return results


def _task_failure(task: ChipTask, exc: Exception) -> str:
    """What a failed chip task says: the output folder when a chip could not be written (a
    full disk), else the scene."""
    from geolabel.files import write_failure

    if isinstance(exc, InputError):
        return str(exc)
    reason = write_failure(exc) or (write_failure(exc.__cause__) if exc.__cause__ else None)
    if reason is not None:
        return f"{Path(task.out_dir) / task.scene.name}: cannot write chips ({reason})"
    return f"{task.scene.path}: reading or writing chips failed ({first_line(exc)})"


def _profile(task: ChipTask, transform: Any) -> dict[str, Any]:
    from geolabel.raster import chip_profile

    return chip_profile(
        task.scene,
        task.fmt,
        size=task.size,
        count=len(task.bands),
        transform=transform,
        crs_wkt=task.chip_crs_wkt,
        nodata=task.scene.nodata,
    )


# ---------------------------------------------------------------------------------
# Orchestration


def _scene_list(scenes: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[str]:
    if isinstance(scenes, (str, os.PathLike)):
        return [str(scenes)]
    out = [str(s) for s in scenes]
    if not out:
        raise InputError("no scene given")
    return out


def _inspect_scenes(paths: Sequence[str], *, allow_no_crs: bool) -> list[SceneInfo]:
    """Each scene's header, once; the same file given twice counts once."""
    from geolabel.raster import inspect_scene

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
    return infos


def _scene_path(info: SceneInfo) -> str:
    return os.path.abspath(info.path) if not info.path.startswith("/vsi") else info.path


def _chip_files(folder: Path, scene: str) -> list[Path]:
    """Files in ``folder`` named like chips of ``scene`` (``<scene>_rRRR_cCCC.tif``)."""
    pattern = re.compile(rf"{re.escape(scene)}_r\d{{3,}}_c\d{{3,}}\.tif")
    try:
        return [Path(e.path) for e in os.scandir(folder) if pattern.fullmatch(e.name)]
    except (FileNotFoundError, NotADirectoryError):
        return []


def _remove_chip_files(out: Path, scenes: Iterable[str]) -> None:
    """Delete every chip-named file of ``scenes`` in their folders inside ``out`` (for
    ``overwrite``; listed or not); a scene folder that is a link to outside ``out`` is
    refused, not entered, and a chip that is a link loses the link, never its target."""
    from geolabel.files import child_dir

    for name in scenes:
        for chip in _chip_files(child_dir(out, name), name):
            chip.unlink(missing_ok=True)


@dataclass
class _PreviousRun:
    """What an earlier run in the output folder left, and whether this run continues it."""

    chips: list[TileRecord] = field(default_factory=list)  # listed and still on disk
    skipped: list[TileRecord] = field(default_factory=list)
    index_crs: str | None = None  # the CRS of the index this run continues
    resume: bool = False  # same options: complete chips found on disk are kept

    @property
    def done(self) -> set[str]:
        return {r.tile_id for r in self.chips} | {r.tile_id for r in self.skipped}


def _previous_run(out: Path, infos: Sequence[SceneInfo], params: dict[str, Any], *, overwrite: bool) -> _PreviousRun:
    """Read the index an earlier run left in ``out``; refuse to mix jobs, or (``overwrite``)
    delete that run's chips, including those it finished but had not listed yet."""
    from geolabel.files import child_dir
    from geolabel.tileindex import index_crs, read_index

    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{out}: exists and is not a folder")
    index_path = out / INDEX_NAME
    names = {i.name for i in infos}
    for name in names:  # before anything is deleted or written: no scene folder leads outside
        child_dir(out, name)
    if not index_path.exists():
        if out.exists() and not overwrite:
            stray = [p.name for p in out.iterdir() if not p.name.startswith(".")]
            if stray and not all((out / n).is_dir() and n in names for n in stray):
                raise OutputExistsError(
                    f"{out}: folder is not empty and holds no tile index; use an empty `out_dir`", params=("out_dir",)
                )
        if overwrite:
            _remove_chip_files(out, names)
        return _PreviousRun()
    chips, skipped, old_params = read_index(index_path)
    if old_params != params or overwrite:
        if not overwrite:
            diff = ", ".join(f"{k}={old_params.get(k)!r}" for k in sorted(params) if old_params.get(k) != params[k])
            raise OutputExistsError(
                f"{index_path}: was made with other options ({diff}); use another `out_dir` or pass `overwrite=True`",
                params=("out_dir", "overwrite"),
            )
        # the old index goes first: a run killed while deleting must not resume the old job
        # with chips of the new one
        index_path.unlink()
        _remove_chip_files(out, names | {r.scene for r in chips})
        return _PreviousRun()
    previous = _PreviousRun(index_crs=index_crs(index_path), resume=True)
    for info in infos:
        if (info.crs_wkt is not None) != bool(previous.index_crs):
            raise InputError(
                f"{info.path}: {'has' if info.crs_wkt else 'has no'} CRS but the chips in {index_path} "
                f"{'do not' if info.crs_wkt else 'do'}; use another `out_dir`",
                params=("out_dir",),
            )
    earlier = {r.scene: r.scene_path for r in chips + skipped}
    for info in infos:
        before = earlier.get(info.name)
        if before is not None and before != _scene_path(info):
            raise OutputExistsError(
                f"{info.path}: {out} already holds chips named {info.name!r} from {before}; rename the scene, "
                "use another `out_dir`, or pass `overwrite=True`",
                params=("out_dir", "overwrite"),
            )
    previous.chips = [r for r in chips if (out / r.path).exists()]
    previous.skipped = skipped
    return previous


def _new_index_crs(first: SceneInfo, options: TileOptions) -> str:
    """A new index is in the first scene's chip CRS ('' without CRS)."""
    from geolabel.crs import compact_crs

    if not first.crs_wkt:
        return ""
    grid = _target_grid(first, options)
    return compact_crs(grid.crs_wkt if grid else first.crs_wkt)


def _make_folders(out: Path, infos: Sequence[SceneInfo]) -> list[Path]:
    """Create the output folders (returned: those that did not exist) and sweep the
    temporary files of killed runs from them."""
    from geolabel.raster import CHIP_TEMP
    from geolabel.tileindex import INDEX_TEMP

    created = [d for d in [out] + [out / i.name for i in infos] if not d.exists()]
    for d in created:
        try:
            d.mkdir(parents=True)
        except OSError as exc:
            raise OutputError(f"{d}: cannot create the output folder ({exc.strerror or exc})") from None
    sweep_stale(out, INDEX_TEMP)
    for info in infos:
        sweep_stale(out / info.name, CHIP_TEMP)
    return created


def _run_chip_tasks(
    tasks: Sequence[ChipTask],
    *,
    executor: Executor | None,
    workers: int | None,
    on_result: Callable[[ChipTask, list[tuple[TileRecord, str]]], None],
    on_started: Callable[[], None],
    is_cancelled: Callable[[], bool] | None,
) -> None:
    from geolabel.parallel import local_executor, run_tasks

    if executor is not None:
        run_tasks(
            process_chips,
            tasks,
            executor=executor,
            on_result=on_result,
            on_started=on_started,
            is_cancelled=is_cancelled,
        )
        return
    with local_executor(workers) as pool:
        n = getattr(pool, "_max_workers", 1)
        run_tasks(
            process_chips,
            tasks,
            executor=pool,
            on_result=on_result,
            on_started=on_started,
            is_cancelled=is_cancelled,
            max_in_flight=max(2, 2 * n),
        )


def _leave_unfinished(index: IndexWriter, out: Path, infos: Sequence[SceneInfo], created: Sequence[Path]) -> None:
    """After a failure or an interruption: an index marked incomplete when there is
    anything to list or resume, else no trace of the run."""
    from geolabel.raster import CHIP_TEMP

    for info in infos:
        sweep_stale(out / info.name, CHIP_TEMP)
    chips_on_disk = any(_chip_files(out / i.name, i.name) for i in infos)
    if index.path.exists() or index.chips or index.skipped or chips_on_disk:
        with contextlib.suppress(OutputError):  # a full disk: the error that stopped the run is the one to tell
            index.write(complete=False)
        if index.path.exists() or chips_on_disk:
            return
    for d in reversed(created):
        if d.is_dir() and not any(d.iterdir()):
            d.rmdir()


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
    verify_blocks: bool = True,
    workers: int | None = None,
    executor: Executor | None = None,
    progress: Callable[[float], None] | None = None,
    is_cancelled: Callable[[], bool] | None = None,
) -> TilingResult:
    """Cut one or more scenes into georeferenced chips and write a tile index.

    Chips go to ``out_dir/<scene>/<scene>_rRRR_cCCC.tif`` and the index to
    ``out_dir/tiles.gpkg``. Rerunning the same call resumes: chips already listed in
    the index are not rewritten, nor are complete chips an interrupted or killed run
    left without listing them. Tiles whose nodata fraction exceeds ``max_nodata``
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
        block_copy: allow copying compressed blocks without re-encoding when aligned.
        verify_blocks: decode each copied window once to check its blocks (DEFLATE's
            checksum, every codec's structure); False copies them unchecked (faster).
        workers / executor: local processes, or any ``concurrent.futures.Executor``.
        progress: called with the finished fraction (0..1). is_cancelled: polled.
    """
    from geolabel.crs import parse_crs

    options = TileOptions(
        size=int(size),
        overlap=int(overlap),
        edge=edge,
        max_nodata=float(max_nodata),
        bands=tuple(int(b) for b in bands) if bands is not None else None,
        format=format,
        compress=compress,
        dst_crs=parse_crs(dst_crs, param="dst_crs").to_wkt() if dst_crs is not None else None,
        resolution=float(resolution) if resolution is not None else None,
        resampling=resampling,
        allow_no_crs=allow_no_crs,
    )
    options.validate()
    infos = _inspect_scenes(_scene_list(scenes), allow_no_crs=allow_no_crs)
    with _output_folder(Path(out_dir)) as out:
        return _tile_scenes(
            infos,
            out,
            options,
            overwrite=overwrite,
            block_copy=block_copy,
            verify_blocks=verify_blocks,
            workers=workers,
            executor=executor,
            progress=progress,
            is_cancelled=is_cancelled,
        )


@contextlib.contextmanager
def _output_folder(out: Path) -> Iterator[Path]:
    """The output folder, created if needed and held by this run alone (see
    :func:`~geolabel.files.folder_lock`); one this run created is removed again if the run
    fails before it put anything in it."""
    from geolabel.files import folder_lock
    from geolabel.tileindex import CHIPS_BUSY

    created = False
    if not out.exists():
        try:
            out.mkdir(parents=True)
            created = True
        except FileExistsError:
            pass
        except OSError as exc:
            raise OutputError(f"{out}: cannot create the output folder ({exc.strerror or exc})") from None
    with folder_lock(out, shared=False, busy=CHIPS_BUSY):
        try:
            yield out
        except BaseException:
            if created and out.is_dir() and not any(out.iterdir()):
                out.rmdir()
            raise


def _tile_scenes(
    infos: Sequence[SceneInfo],
    out: Path,
    options: TileOptions,
    *,
    overwrite: bool,
    block_copy: bool,
    verify_blocks: bool,
    workers: int | None,
    executor: Executor | None,
    progress: Callable[[float], None] | None,
    is_cancelled: Callable[[], bool] | None,
) -> TilingResult:
    """Tile ``infos`` into ``out``, a folder this run holds (:func:`_output_folder`)."""
    from geolabel.parallel import default_workers
    from geolabel.tileindex import IndexWriter

    previous = _previous_run(out, infos, options.params(), overwrite=overwrite)
    n_workers = getattr(executor, "_max_workers", 8) if executor is not None else (workers or default_workers())
    plans = [
        _plan_scene(info, options, out, previous, block_copy=block_copy, verify_blocks=verify_blocks, workers=n_workers)
        for info in infos
    ]
    index = IndexWriter(
        out / INDEX_NAME,
        crs=previous.index_crs if previous.index_crs is not None else _new_index_crs(infos[0], options),
        params=options.params(),
        chips=previous.chips,
        skipped=previous.skipped,
    )
    created = _make_folders(out, infos)
    summaries = {summary.scene: summary for _, summary in plans}
    tasks = [task for scene_tasks, _ in plans for task in scene_tasks]
    total = sum(len(t.tiles) for t in tasks)
    finished = 0

    def on_result(task: ChipTask, results: list[tuple[TileRecord, str]]) -> None:
        nonlocal finished
        for rec, status in results:
            index.add(rec, skipped=status == "skipped")
            summaries[task.scene.name].count(status)
        finished += len(results)
        index.checkpoint()  # a killed run leaves the chips of a few seconds ago listed
        if progress is not None and total:
            progress(finished / total)

    def on_started() -> None:  # the index exists (incomplete) from the first chips on
        index.write(complete=False)

    try:
        _run_chip_tasks(
            tasks,
            executor=executor,
            workers=workers,
            on_result=on_result,
            on_started=on_started,
            is_cancelled=is_cancelled,
        )
    except BaseException:
        _leave_unfinished(index, out, infos, created)
        raise
    index.write(complete=True)
    if progress is not None:
        progress(1.0)
    return TilingResult(
        index_path=index.path, out_dir=out, chips=index.chips, skipped=index.skipped, scenes=list(summaries.values())
    )

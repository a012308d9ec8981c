"""Planning, in the calling process: scene headers in, :class:`ChipTask` values out.

Each scene's header is read once (:func:`inspect_scenes`); its chip grid is the scene's
own or, for ``dst_crs``/``resolution``, the warped grid (:func:`target_grid`); the chips
not done yet are cut into tasks of a few chips each, with the writing path chosen per
scene (block copy, assembled uncompressed chip, or GDAL).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geolabel.errors import EdgePolicyWarning, InputError, first_line
from geolabel.geo import GeoGrid
from geolabel.grid import Tile, TileGrid, tile_id
from geolabel.tileindex import SceneProperties
from geolabel.tiling.options import (
    MAX_CHIPS_PER_SCENE,
    MAX_CHIPS_PER_TASK,
    MAX_GRID_PIXELS,
    MIN_CHIPS_PER_TASK,
    TileOptions,
)

if TYPE_CHECKING:
    from geolabel.blockcopy import ChipTemplate
    from geolabel.raster import BandMeta, ChipFormat, SceneInfo
    from geolabel.tiling.resume import PreviousRun

#: Where a planning warning points: 4 frames up from :func:`_chips` (through
#: :func:`plan_scene` and the comprehension that calls it) is the orchestrator,
#: ``run._tile_scenes``, the place the warning pointed to before the package split.
_WARN_LEVEL = 4


@dataclass(frozen=True)
class WarpSpec:
    """Target grid of a warped (reprojected or resampled) read."""

    grid: GeoGrid
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
    chip_crs: str  # the chips' CRS as the index lists it ('' without CRS)
    grid: GeoGrid  # the chip grid (the scene's, or the warp target): chips are windows of it
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


@dataclass(frozen=True)
class _Writers:
    """How the chips of one scene are written (see DESIGN.md, "Chip writers")."""

    fast_path: str  # "block copy", or why not
    template: ChipTemplate | None = None
    tables: Any = None  # (row_off, col_off) -> block (offsets, sizes)
    raw_template: ChipTemplate | None = None


# ---------------------------------------------------------------------------------
# Scenes


@dataclass(frozen=True)
class NamedScene:
    """A scene named by its catalog rather than its file name: a STAC item's asset
    (:func:`~geolabel.tiling.stac.read_stac`), whose properties go into the tile index."""

    path: str
    name: str
    properties: SceneProperties = field(default_factory=SceneProperties)


#: What :func:`~geolabel.tiling.tile_raster` takes as scenes.
Scenes = str | os.PathLike[str] | NamedScene | Sequence[str | os.PathLike[str] | NamedScene]


def scene_list(scenes: Scenes) -> list[str | NamedScene]:
    if isinstance(scenes, (str, os.PathLike, NamedScene)):
        return [scenes if isinstance(scenes, NamedScene) else str(scenes)]
    out = [s if isinstance(s, NamedScene) else str(s) for s in scenes]
    if not out:
        raise InputError("no scene given")
    return out


def inspect_scenes(
    paths: Sequence[str | NamedScene],
    *,
    allow_no_crs: bool,
    on_error: Callable[[str, InputError], None] | None = None,
) -> list[SceneInfo]:
    """Each scene's header, once; the same file given twice counts once. A scene that
    cannot be tiled goes to ``on_error`` (``keep_going``) when given, else stops the run."""
    from geolabel.raster import inspect_scene

    infos: list[SceneInfo] = []
    seen: dict[str, str] = {}
    for p in paths:
        try:
            if isinstance(p, NamedScene):
                info = inspect_scene(p.path, allow_no_crs=allow_no_crs, name=p.name)
            else:
                info = inspect_scene(p, allow_no_crs=allow_no_crs)
        except InputError as exc:
            if on_error is None:
                raise
            on_error(p.path if isinstance(p, NamedScene) else p, exc)
            continue
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


def target_grid(scene: SceneInfo, options: TileOptions) -> WarpSpec | None:
    """The warped grid for ``--dst-crs``/``--resolution``, aligned to the resolution."""
    if options.dst_crs is None and options.resolution is None:
        return None
    from rasterio.crs import CRS as RioCRS

    from geolabel.crs import to_rasterio_crs

    if scene.crs_wkt is None:
        raise InputError(f"{scene.path}: cannot reproject a raster that has no CRS")
    dst_crs = to_rasterio_crs(options.dst_crs) if options.dst_crs else RioCRS.from_wkt(scene.crs_wkt)
    try:
        grid = scene.grid.to_crs(dst_crs)
    except Exception as exc:
        raise InputError(f"{scene.path}: cannot be reprojected to the requested grid ({first_line(exc)})") from None
    a, _, _, _, e, _ = grid.transform
    extent = max(grid.width * abs(a), grid.height * abs(e))
    if options.resolution is not None and options.resolution > extent:
        raise InputError(
            f"{scene.path}: a pixel of {options.resolution:g} is larger than the whole scene ({extent:.4g} across); "
            "check `resolution` (it is in the units of the target CRS: metres for UTM, degrees for EPSG:4326)",
            params=("resolution",),
        )
    if options.resolution is not None:
        grid = scene.grid.to_crs(dst_crs, resolution=options.resolution)
    if grid.width * grid.height > MAX_GRID_PIXELS:
        raise InputError(
            f"{scene.path}: warping to that CRS/resolution would make a {grid.width:.4g} x {grid.height:.4g} px "
            "scene; check `resolution` (it is in the units of the target CRS: metres for UTM, degrees for EPSG:4326)",
            params=("resolution",),
        )
    return WarpSpec(grid=grid, resampling=options.resampling)


def chip_grid(scene: SceneInfo, options: TileOptions) -> tuple[GeoGrid, WarpSpec | None]:
    """The grid the chips are cut from (the scene's, or the warped one) and the warp."""
    warp = target_grid(scene, options)
    return (warp.grid if warp else scene.grid), warp


# ---------------------------------------------------------------------------------
# Chips and tasks


def plan_scene(
    scene: SceneInfo,
    options: TileOptions,
    out_dir: Path,
    previous: PreviousRun,
    *,
    block_copy: bool,
    verify_blocks: bool = True,
    workers: int = 8,
) -> tuple[list[ChipTask], SceneSummary]:
    """Tasks for the chips of one scene that are not done yet."""
    from geolabel.crs import compact_crs
    from geolabel.raster import BandMeta, choose_chip_format

    bands = options.bands or tuple(range(1, scene.count + 1))
    if max(bands) > scene.count:
        raise InputError(f"{scene.path}: has {scene.count} bands; cannot select band {max(bands)}")
    grid, warp = chip_grid(scene, options)
    tiles, ids = _chips(scene, grid, options, out_dir)
    summary = _summary(scene, ids, previous)
    done = previous.done
    todo = [(t, i) for t, i in zip(tiles, ids) if i not in done]
    fmt = choose_chip_format(scene, size=options.size, fmt=options.format, compress=options.compress)
    meta = BandMeta.from_scene(scene, bands)
    writers = _choose_writers(
        scene,
        grid,
        fmt,
        meta,
        options,
        bands=tuple(bands),
        todo=[t for t, _ in todo],
        reprojecting=warp is not None,
        block_copy=block_copy,
    )
    summary.fast_path = writers.fast_path
    chip_crs = compact_crs(grid.crs)
    tables = writers.tables or {}
    return [
        ChipTask(
            scene=scene,
            out_dir=str(out_dir),
            tiles=tuple(t for t, _ in chunk),
            ids=tuple(i for _, i in chunk),
            size=options.size,
            bands=tuple(bands),
            fmt=fmt,
            meta=meta,
            chip_crs=chip_crs,
            grid=grid,
            warp=warp,
            max_nodata=options.max_nodata,
            template=writers.template,
            block_offsets=tuple(tables.get((t.row_off, t.col_off)) for t, _ in chunk),
            raw_template=writers.raw_template,
            adopt=previous.resume,
            verify=verify_blocks,
        )
        for chunk in _chunks(todo, workers)
    ], summary


def _chips(scene: SceneInfo, grid: GeoGrid, options: TileOptions, out_dir: Path) -> tuple[list[Tile], list[str]]:
    """The tiles of the chip grid and their ids, refused when there are absurdly many."""
    width, height = grid.width, grid.height
    tiles_grid = TileGrid(width=width, height=height, size=options.size, overlap=options.overlap, edge=options.edge)
    if len(tiles_grid) > MAX_CHIPS_PER_SCENE:
        raise InputError(
            f"{scene.path}: would be cut into {len(tiles_grid):,} chips (more than {MAX_CHIPS_PER_SCENE:,}); "
            "use a larger `size` or a smaller `overlap`",
            params=("size", "overlap"),
        )
    if len(tiles_grid) == 0:
        warnings.warn(
            EdgePolicyWarning(
                f"{scene.path}: {width}x{height} px is smaller than a {options.size} px chip; "
                "`edge='drop'` leaves no chip",
                params=("edge",),
            ),
            stacklevel=_WARN_LEVEL,
        )
    if options.edge == "shift" and (width < options.size or height < options.size):
        warnings.warn(
            f"{scene.path}: {width}x{height} px is smaller than a {options.size} px chip; padded instead of shifted",
            EdgePolicyWarning,
            stacklevel=_WARN_LEVEL,
        )
    tiles = list(tiles_grid.tiles())
    rows, cols = tiles_grid.shape
    digits = max(3, len(str(max(rows, cols) - 1)))
    ids = [tile_id(scene.name, t.row, t.col, digits=digits) for t in tiles]
    check_chip_names(scene, out_dir, ids)
    return tiles, ids


def _summary(scene: SceneInfo, ids: Sequence[str], previous: PreviousRun) -> SceneSummary:
    """The scene's chips, and how many of them an earlier run of the job already did."""
    planned = set(ids)
    return SceneSummary(
        scene=scene.name,
        path=scene.path,
        chips=len(ids),
        resumed=sum(1 for r in previous.chips if r.tile_id in planned),
        skipped=sum(1 for r in previous.skipped if r.tile_id in planned),
    )


def _choose_writers(
    scene: SceneInfo,
    grid: GeoGrid,
    fmt: ChipFormat,
    meta: BandMeta,
    options: TileOptions,
    *,
    bands: tuple[int, ...],
    todo: Sequence[Tile],
    reprojecting: bool,
    block_copy: bool,
) -> _Writers:
    """Block copy when the grid lines up with the scene's blocks (else why not), and the
    uncompressed chip header when chips are written band-interleaved (with the scene's
    block tables when those chips are decoded from its DEFLATE blocks)."""
    import functools

    from geolabel.blockcheck import decoder_for
    from geolabel.blockcopy import block_tables, chip_template, prepare_block_copy, why_not_block_copy

    why_not = functools.partial(
        why_not_block_copy,
        scene,
        size=options.size,
        overlap=options.overlap,
        bands=bands,
        driver=fmt.driver,
        reprojecting=reprojecting,
    )
    reason = why_not(compress=fmt.compress) if block_copy else "disabled"
    template: ChipTemplate | None = None
    tables: dict[tuple[int, int], Any] = {}
    if reason is None and todo:
        template, tables, reason = prepare_block_copy(scene, fmt, meta, size=options.size, grid=grid, tiles=todo)
    raw_template = None
    if fmt.interleave == "band" and fmt.block and options.size % fmt.block == 0 and todo:
        raw_template = chip_template(scene, fmt, meta, size=options.size, count=len(bands), grid=grid)
        # decoded from the blocks a block copy keeping the scene's DEFLATE would take
        if block_copy and decoder_for(scene) is not None and not why_not(compress=scene.compression or "none"):
            tables = block_tables(scene, size=options.size, tiles=todo)
    return _Writers(fast_path=reason or "block copy", template=template, tables=tables, raw_template=raw_template)


def _chunks(todo: Sequence[tuple[Tile, str]], workers: int) -> list[Sequence[tuple[Tile, str]]]:
    """Guided chunking: big tasks first, smaller ones at the end so workers finish together."""
    chunks = []
    start = 0
    while start < len(todo):
        per_task = min(MAX_CHIPS_PER_TASK, max(MIN_CHIPS_PER_TASK, -(-(len(todo) - start) // (2 * workers))))
        chunks.append(todo[start : start + per_task])
        start += per_task
    return chunks


def check_chip_names(scene: SceneInfo, out_dir: Path, ids: Sequence[str]) -> None:
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

"""Orchestration: :func:`tile_raster` reads the scene headers, plans the chips, runs the
tasks on an executor and keeps the tile index up to date as results arrive."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geolabel import vocabulary as v
from geolabel.errors import OutputError, first_line
from geolabel.files import sweep_stale
from geolabel.tileindex import INDEX_NAME, Failure, TileRecord
from geolabel.tiling.options import TileOptions
from geolabel.tiling.plan import (
    ChipTask,
    NamedScene,
    Scenes,
    SceneSummary,
    chip_grid,
    inspect_scenes,
    plan_scene,
    scene_list,
)
from geolabel.tiling.resume import chip_files, previous_run
from geolabel.tiling.worker import Result, process_chips

if TYPE_CHECKING:
    from geolabel.raster import SceneInfo
    from geolabel.tileindex import IndexWriter, SceneProperties


@dataclass
class TilingResult:
    """What :func:`tile_raster` did."""

    index_path: Path
    out_dir: Path
    chips: list[TileRecord] = field(default_factory=list)
    skipped: list[TileRecord] = field(default_factory=list)
    scenes: list[SceneSummary] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)  # keep_going: scenes and chips not made

    @property
    def written(self) -> int:
        return sum(s.written for s in self.scenes)

    @property
    def resumed(self) -> int:
        return sum(s.resumed for s in self.scenes)

    @property
    def n_skipped(self) -> int:
        return sum(s.skipped for s in self.scenes)


@dataclass(frozen=True)
class _Run:
    """How this run executes and reports (the arguments that are no chip options)."""

    overwrite: bool = False
    block_copy: bool = True
    verify_blocks: bool = True
    workers: int | None = None
    executor: Executor | None = None
    progress: Callable[[float], None] | None = None
    is_cancelled: Callable[[], bool] | None = None
    keep_going: bool = False


def tile_raster(
    scenes: Scenes,
    out_dir: str | os.PathLike[str],
    *,
    size: int = 512,
    overlap: int = 0,
    edge: v.Edge = "pad",
    max_nodata: float = 1.0,
    bands: Sequence[int] | None = None,
    format: v.ChipFormat = "gtiff",
    compress: v.Compression | None = None,
    dst_crs: Any = None,
    resolution: float | None = None,
    resampling: v.Resampling = "nearest",
    allow_no_crs: bool = False,
    overwrite: bool = False,
    block_copy: bool = True,
    verify_blocks: bool = True,
    workers: int | None = None,
    executor: Executor | None = None,
    progress: Callable[[float], None] | None = None,
    is_cancelled: Callable[[], bool] | None = None,
    keep_going: bool = False,
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

    The assets of a STAC catalog, named by item id, with each item's datetime, platform
    and cloud cover in the index (:func:`~geolabel.tiling.read_stac`):

    >>> tile_raster(read_stac("items.json", asset="visual"), "out/chips")  # doctest: +SKIP

    Args:
        scenes: raster path(s) or :class:`~geolabel.tiling.plan.NamedScene` values (STAC
            items); each scene's chips go to their own folder.
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
        workers / executor: local processes, or any ``concurrent.futures.Executor``
            (:func:`geolabel.cluster.cluster_executor` for a Dask cluster).
        progress: called with the finished fraction (0..1). is_cancelled: polled.
        keep_going: a scene or chip that fails is listed in ``result.failed`` (and in the
            index) instead of stopping the run; a rerun tries them again.
    """
    from geolabel.crs import parse_crs
    from geolabel.grid import safe_name

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
    run = _Run(overwrite, block_copy, verify_blocks, workers, executor, progress, is_cancelled, keep_going)
    given = scene_list(scenes)
    infos, failed = _inspect(given, allow_no_crs=allow_no_crs, keep_going=keep_going)
    properties = {safe_name(s.name): s.properties for s in given if isinstance(s, NamedScene)}
    with _output_folder(Path(out_dir)) as out:
        return _tile_scenes(infos, out, options, run, properties, failed)


def _inspect(
    paths: Sequence[str | NamedScene], *, allow_no_crs: bool, keep_going: bool
) -> tuple[list[SceneInfo], list[Failure]]:
    """The scenes' headers, and (``keep_going``) the scenes that cannot be tiled; a run
    with no scene left fails with the first one's error."""
    from geolabel.errors import InputError

    errors: list[tuple[str, InputError]] = []
    infos = inspect_scenes(
        paths, allow_no_crs=allow_no_crs, on_error=(lambda p, exc: errors.append((p, exc))) if keep_going else None
    )
    if not infos and errors:
        raise errors[0][1]
    return infos, [Failure(scene=p, tile_id="", reason=str(exc)) for p, exc in errors]


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
    run: _Run,
    properties: Mapping[str, SceneProperties] | None = None,
    failed: Sequence[Failure] = (),
) -> TilingResult:
    """Tile ``infos`` into ``out``, a folder this run holds (:func:`_output_folder`);
    ``properties`` (by scene name) go into the index rows of those scenes."""
    from geolabel.parallel import capacity, default_workers
    from geolabel.tileindex import IndexWriter

    previous = previous_run(out, infos, options.params(), overwrite=run.overwrite)
    executor = run.executor
    n_workers = capacity(executor) if executor is not None else (run.workers or default_workers())
    plans = [
        plan_scene(
            info, options, out, previous, block_copy=run.block_copy, verify_blocks=run.verify_blocks, workers=n_workers
        )
        for info in infos
    ]
    index = IndexWriter(
        out / INDEX_NAME,
        crs=previous.index_crs if previous.index_crs is not None else _new_index_crs(infos[0], options),
        params=options.params(),
        chips=previous.chips,
        skipped=previous.skipped,
        properties=properties,
    )
    index.failed = list(failed)
    created = _make_folders(out, infos)
    tasks = [task for scene_tasks, _ in plans for task in scene_tasks]
    if executor is not None:  # it may run them on other machines, in other folders
        tasks = [_absolute(task) for task in tasks]
    summaries = {summary.scene: summary for _, summary in plans}
    try:
        _run_chip_tasks(tasks, index, summaries, run)
    except BaseException:
        _leave_unfinished(index, out, infos, created)
        raise
    index.write(complete=True)
    if run.progress is not None:
        run.progress(1.0)
    return TilingResult(
        index_path=index.path,
        out_dir=out,
        chips=index.chips,
        skipped=index.skipped,
        scenes=list(summaries.values()),
        failed=index.failed,
    )


def _absolute(task: ChipTask) -> ChipTask:
    """``task`` with absolute paths, for workers whose current folder is not ours."""
    from dataclasses import replace

    from geolabel.remote import index_location

    scene = replace(task.scene, path=index_location(task.scene.path))
    return replace(task, scene=scene, out_dir=os.path.abspath(task.out_dir))


def _new_index_crs(first: SceneInfo, options: TileOptions) -> str:
    """A new index is in the first scene's chip CRS ('' without CRS)."""
    from geolabel.crs import compact_crs

    if not first.crs_wkt:
        return ""
    grid, _ = chip_grid(first, options)
    return compact_crs(grid.crs)


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
    tasks: Sequence[ChipTask], index: IndexWriter, summaries: dict[str, SceneSummary], run: _Run
) -> None:
    """Run the tasks on the executor (a local process pool by default), listing each
    result in the index, checkpointing it and reporting progress."""
    from geolabel.parallel import run_batch

    total = sum(len(t.tiles) for t in tasks)
    finished = 0

    def on_result(task: ChipTask, results: list[Result]) -> None:
        nonlocal finished
        for rec, status in results:
            index.add(rec, skipped=status == "skipped")
            summaries[task.scene.name].count(status)
        finished += len(results)
        index.checkpoint()  # a killed run leaves the chips of a few seconds ago listed
        if run.progress is not None and total:
            run.progress(finished / total)

    def on_started() -> None:  # the index exists (incomplete) from the first chips on
        index.write(complete=False)

    def on_error(task: ChipTask, exc: Exception) -> None:  # keep_going
        nonlocal finished
        partial = getattr(exc, "partial_results", None) or []
        done = {rec.tile_id for rec, _ in partial}
        lost = [tid for tid in task.ids if tid not in done]
        index.failed += [Failure(scene=task.scene.name, tile_id=tid, reason=first_line(exc)) for tid in lost]
        finished += len(lost)

    run_batch(
        process_chips,
        tasks,
        on_result=on_result,
        executor=run.executor,
        workers=run.workers,
        is_cancelled=run.is_cancelled,
        on_started=on_started,
        on_error=on_error if run.keep_going else None,
    )


def _leave_unfinished(index: IndexWriter, out: Path, infos: Sequence[SceneInfo], created: Sequence[Path]) -> None:
    """After a failure or an interruption: an index marked incomplete when there is
    anything to list or resume, else no trace of the run."""
    from geolabel.raster import CHIP_TEMP

    for info in infos:
        sweep_stale(out / info.name, CHIP_TEMP)
    chips_on_disk = any(chip_files(out / i.name, i.name) for i in infos)
    if index.path.exists() or index.chips or index.skipped or chips_on_disk:
        with contextlib.suppress(OutputError):  # a full disk: the error that stopped the run is the one to tell
            index.write(complete=False)
        if index.path.exists() or chips_on_disk:
            return
    for d in reversed(created):
        if d.is_dir() and not any(d.iterdir()):
            d.rmdir()

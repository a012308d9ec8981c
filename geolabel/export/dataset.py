"""Export a training set: labels clipped to the tile grid, in the formats training code reads.

:func:`export_dataset` reads the labels once, assigns chips to leak-free spatial splits,
deals the chips out in chunks with the labels that touch them (one spatial index), and
the workers clip the labels and write all requested formats in one pass per tile. The
dataset is built in a temporary folder next to the destination and renamed into place
when complete, so a failed export never leaves a folder that looks complete. The files
and where they go: :mod:`geolabel.export.layout`; the formats: :mod:`geolabel.export.formats`.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geolabel.errors import InputError, check_choice
from geolabel.export import layout
from geolabel.export.formats import FORMATS as FORMATS
from geolabel.export.jobs import ChunkJob, InlineLabels, LabelTable, SharedLabels, TileResult
from geolabel.files import atomic_dir, prepare_output_dir, writing
from geolabel.vocabulary import EXPORT_FORMATS, parse_list

if TYPE_CHECKING:
    from geolabel.export.manifest import BackgroundHashes
    from geolabel.export.tags import ExportTags
    from geolabel.labels.schema import ClassSchema
    from geolabel.labels.store import LabelStore, StoreLike

#: Chips per worker task when the task carries its labels: small enough that the workers
#: start early and finish together, large enough that a task's set-up (parsing its labels,
#: their spatial index) is paid rarely.
CLIP_CHUNK = 8
#: Chips per worker task when the workers share the labels (:mod:`geolabel.shared`): a task
#: costs little more than its chips, so smaller tasks keep the workers evenly busy.
SHARED_CHUNK = 4


class InvalidLabelsError(InputError):
    """The store holds invalid geometries and ``repair`` was not asked for."""


@dataclass
class ExportResult:
    """What :func:`export_dataset` wrote."""

    out_dir: Path
    formats: tuple[str, ...]
    tiles: dict[str, int] = field(default_factory=dict)  # split -> tiles
    excluded_tiles: list[str] = field(default_factory=list)
    objects: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> class -> objects
    pixels: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> class -> mask pixels (masks only)
    area_px: dict[str, dict[str, float]] = field(default_factory=dict)  # split -> class -> object area, pixels
    skipped_labels: dict[str, int] = field(default_factory=dict)  # reason -> count
    repaired: int = 0
    files: int = 0
    tagged_tiles: dict[str, int] = field(default_factory=dict)  # split -> tiles with tags (format tags)
    tags: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> tag -> tiles (format tags)
    tag_conflicts: list[str] = field(default_factory=list)  # tiles left out: their labelers disagree

    def table(self) -> str:
        """The per-split, per-class summary as a text table (mask pixels when masks were written,
        else the objects' area in pixels)."""
        with_masks = "masks" in self.formats
        source = self.pixels if with_masks else self.area_px
        classes = sorted({c for per in (*self.objects.values(), *source.values()) for c in per})
        head = "pixels" if with_masks else "area px"
        lines = [f"{'split':<6} {'class':<14} {'objects':>9} {head:>12}"]
        order = ("train", "val", "test")
        for split in sorted(self.tiles, key=lambda s: order.index(s) if s in order else 9):
            lines.append(f"{split:<6} {'(tiles)':<14} {self.tiles[split]:>9}")
            for cls in classes:
                objs = self.objects.get(split, {}).get(cls, 0)
                pix = source.get(split, {}).get(cls, 0)
                if objs or pix:
                    lines.append(f"{split:<6} {cls:<14} {objs:>9,} {round(pix):>12,}")
        return "\n".join(lines)


def parse_formats(value: str | Iterable[str]) -> tuple[str, ...]:
    """``'geojson,masks'`` -> ('geojson', 'masks'), checking each name."""
    items = [v.strip().lower() for v in (parse_list(value) if isinstance(value, str) else value) if v.strip()]
    for item in items:
        check_choice(item, FORMATS, param="formats")
    if not items:
        raise InputError(f"`formats`: give at least one of {', '.join(FORMATS)}", params=("formats",))
    return tuple(dict.fromkeys(items))


def _without_other_copies(store: LabelStore, arrays: Any, result: ExportResult) -> Any:
    """The labels without the left-out copy of each consensus tile (see geolabel.consensus)."""
    from geolabel.consensus import other_copy_ids

    left_out = other_copy_ids(store)
    keep = np.array([str(i) not in left_out for i in arrays.columns["label_id"]], dtype=bool)
    if keep.all():
        return arrays
    result.skipped_labels["the other copy of a consensus tile"] = int((~keep).sum())
    return arrays.take(keep)


def _labels_for_export(
    store: LabelStore, *, status: Sequence[str] | None, repair: bool, result: ExportResult
) -> tuple[Any, dict[str, list[Any]]]:
    """Valid polygons of known classes from the store (reporting what is left out)."""
    import shapely

    from geolabel.geom import threaded
    from geolabel.labels.repair import FAR, has_far_coords
    from geolabel.labels.repair import repair as repair_geoms

    arrays = _without_other_copies(store, store.read(status=status, fields=("label_id", "class_code")), result)
    geoms = arrays.geoms
    codes = arrays.columns["class_code"]
    known = np.array([c is not None and int(c) in store.schema for c in codes], dtype=bool)
    unknown = (~known).sum()
    if unknown:
        for c in codes:
            if c is None or int(c) not in store.schema:
                key = f"unknown class code {c}"
                result.skipped_labels[key] = result.skipped_labels.get(key, 0) + 1
    # nothing to export: no geometry, an empty one, a point or a line (another tool wrote it)
    no_polygon = shapely.is_empty(geoms) | ~np.isin(shapely.get_type_id(geoms), (3, 6))
    if no_polygon.any():
        result.skipped_labels["no polygon (empty, point or line)"] = int(no_polygon.sum())
        known &= ~no_polygon
    far = has_far_coords(geoms)
    invalid = (~threaded(shapely.is_valid, geoms) | far) & ~no_polygon
    if invalid.any():
        if not repair:
            i = int(np.flatnonzero(invalid)[0])
            reason = FAR if far[i] else shapely.is_valid_reason(geoms[i])
            raise InvalidLabelsError(
                f"{store.uri}: {int(invalid.sum())} labels have invalid geometries (e.g. label "
                f"{arrays.columns['label_id'][i]}: {reason}); run `resolve_store()` on it or pass `repair=True`",
                params=("resolve_store()", "repair"),
            )
        fixed, changed, _ = repair_geoms(geoms)
        result.repaired = int(changed.sum())
        geoms = fixed
        gone = shapely.is_missing(geoms) & ~no_polygon
        if gone.any():
            result.skipped_labels["invalid beyond repair"] = int(gone.sum())
        known &= ~gone
    keep = np.flatnonzero(known)
    return geoms[keep], {k: [v[i] for i in keep.tolist()] for k, v in arrays.columns.items()}


def _check_options(
    formats: str | Iterable[str],
    split: str | Sequence[float] | None,
    *,
    min_overlap: float,
    guard: float,
    block_size: float | None,
    seed: int,
    status: Sequence[str] | None,
) -> tuple[tuple[str, ...], dict[str, float]]:
    """The formats and split fractions asked for; every other option checked, before any work."""
    from geolabel.export.splits import parse_split
    from geolabel.labels.store import STATUSES

    fmts = parse_formats(formats)
    if not 0.0 <= min_overlap <= 1.0:
        raise InputError(f"`min_overlap` must be between 0 and 1; got {min_overlap}", params=("min_overlap",))
    if not 0 <= guard < float("inf"):
        raise InputError(f"`guard` must be 0 or more (CRS units); got {guard}", params=("guard",))
    if block_size is not None and not 0 < block_size < float("inf"):
        raise InputError(
            f"`block_size` must be a positive number of CRS units; got {block_size}", params=("block_size",)
        )
    if status is not None and not status:
        raise InputError(f"`status` must name at least one of {', '.join(STATUSES)}", params=("status",))
    if seed < 0:
        raise InputError(f"`seed` must be 0 or more; got {seed}", params=("seed",))
    for value in status or ():
        check_choice(value, STATUSES, param="status")
    return fmts, parse_split(split)


def _holding_chips(export: Callable[..., ExportResult]) -> Callable[..., ExportResult]:
    """Run ``export(store, tiles, ...)`` with the chips folder held: the chips are read (and
    linked into the dataset) while no ``tile`` run may replace them."""

    @functools.wraps(export)
    def held(store: StoreLike, tiles: str | os.PathLike[str], *args: Any, **kwargs: Any) -> ExportResult:
        from geolabel.files import folder_lock
        from geolabel.tileindex import CHIPS_BUSY

        with folder_lock(Path(tiles).parent, shared=True, busy=CHIPS_BUSY):
            return export(store, tiles, *args, **kwargs)

    return held


@_holding_chips
def export_dataset(
    store: StoreLike,
    tiles: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    formats: str | Iterable[str] = EXPORT_FORMATS,
    min_overlap: float = 0.0,
    split: str | Sequence[float] | None = "0.8,0.1,0.1",
    seed: int = 0,
    block_size: float | None = None,
    guard: float = 0.0,
    status: Sequence[str] | None = None,
    repair: bool = False,
    skip_empty: bool = False,
    overwrite: bool = False,
    workers: int | None = None,
    executor: Executor | None = None,
    progress: Callable[[float], None] | None = None,
    is_cancelled: Callable[[], bool] | None = None,
) -> ExportResult:
    """Export ``store``'s labels on the chips of the tile index ``tiles`` to ``out_dir``.

    >>> from geolabel.labels import open_store                        # doctest: +SKIP
    >>> export_dataset(open_store("out/labels.gpkg"), "out/chips/tiles.gpkg", "out/dataset",
    ...                formats="geojson,masks", split="0.8,0.1,0.1", seed=42)  # doctest: +SKIP

    Args:
        store: an open label store (or a path to one).
        tiles: the ``tiles.gpkg`` written by ``geolabel tile``.
        formats: any of geojson, coco, masks, stac, tags (default: all but tags; tags
            needs the store's tag schema: see :mod:`geolabel.export.tags`).
        min_overlap: keep an object cut by a tile edge only if at least this share of its
            area lies inside the tile (objects outputs; masks show every labelled pixel).
        split: fractions for train, val, test ("0.8,0.1,0.1"; None or "1" = all train).
        block_size: side of the spatial blocks dealt to splits, in the tiles' CRS units
            (default: 2 chips). guard: minimum gap between tiles of different splits.
        status: only labels with these review statuses (e.g. ["accepted"]).
        repair: repair invalid label geometries instead of refusing them.
        skip_empty: write no GeoJSON for tiles without objects (default: empty collections).
        overwrite: replace an existing ``out_dir`` (only one geolabel exported).
        workers / executor: local worker processes, or any ``concurrent.futures`` executor.
        progress: called with the finished fraction (0..1). is_cancelled: polled; when it
            returns True the export stops with :class:`~geolabel.errors.CancelledError`
            and leaves nothing behind.
    """
    from geolabel.export.formats import write_dataset_files
    from geolabel.export.jobs import DatasetParts
    from geolabel.export.manifest import write_manifest, write_summary
    from geolabel.parallel import worker_count

    fmts, fractions = _check_options(
        formats, split, min_overlap=min_overlap, guard=guard, block_size=block_size, seed=seed, status=status
    )
    if executor is None:
        worker_count(workers)
    out = Path(out_dir)
    prepare_output_dir(out, marker=layout.MANIFEST, what="training set", overwrite=overwrite)
    result = ExportResult(out_dir=out, formats=fmts)
    with _read_inputs(store, Path(tiles), status=status, repair=repair, result=result, formats=fmts) as inputs:
        if block_size is None:
            block_size = _default_block_size(inputs.chips)
        splits = _split_chips(inputs.chips, fractions=fractions, block_size=block_size, seed=seed, guard=guard)
        result.excluded_tiles = [inputs.chips[i].tile_id for i in splits.excluded]
        # built in a temporary sibling, renamed to `out` when complete; a full disk names the
        # dataset, not the chip being copied
        with atomic_dir(out) as tmp, writing(out, "training set"):
            jobs = _TileJobs(inputs, splits.splits, tmp, fmts, min_overlap=min_overlap, skip_empty=skip_empty)
            written = _write_tiles(
                jobs, workers=workers, executor=executor, progress=progress, is_cancelled=is_cancelled
            )
            _tally(result, written, inputs.schema)
            chips = {c.tile_id: c for c in inputs.chips}
            files = write_dataset_files(DatasetParts(tmp, out.name, fmts, inputs.schema, written, chips, inputs.tags))
            summary = _summary(result, fractions, inputs, seed, block_size, guard, min_overlap)
            if inputs.tags is not None:
                summary["tags"] = _tally_tags(result, written, inputs.tags, status)
            files.append(write_summary(tmp, summary))
            result.files = write_manifest(tmp, (r.checksums for r in written), files)
    if progress is not None:
        progress(1.0)
    return result


@dataclass
class _Inputs:
    """What an export reads: the chips of the tile index and the labels to export."""

    chips: list[Any]  # ChipInfo
    geoms: Any  # label polygons in the store's CRS
    columns: dict[str, list[Any]]  # label_id, class_code
    schema: ClassSchema
    store_crs: Any
    tags: ExportTags | None = None  # the tiles' tags (format "tags")
    hashes: BackgroundHashes | None = None  # the chips' sha256, being computed

    def stop_hashing(self) -> dict[str, tuple[str, int]]:
        """Stop hashing the chips (before worker processes fork); the chips hashed so far."""
        return self.hashes.stop() if self.hashes is not None else {}

    def __enter__(self) -> _Inputs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_hashing()


def _read_inputs(
    store: StoreLike,
    tiles: Path,
    *,
    status: Sequence[str] | None,
    repair: bool,
    result: ExportResult,
    formats: Sequence[str],
) -> _Inputs:
    """The chips, the labels and (format tags) the tiles' tags; a store given by its path
    is opened and closed here. The tile index is read in a thread meanwhile, which then
    goes on to hash the chips (:class:`~geolabel.export.manifest.BackgroundHashes`)."""
    from concurrent.futures import ThreadPoolExecutor

    from geolabel.export.tags import read_export_tags
    from geolabel.labels.store import LabelStore, open_store

    with ThreadPoolExecutor(1, thread_name_prefix="geolabel-index") as pool:
        index = pool.submit(_chips_hashed, tiles)
        try:
            opened = store if isinstance(store, LabelStore) else open_store(store)
            try:
                tags = read_export_tags(opened, status=status) if "tags" in formats else None
                geoms, columns = _labels_for_export(opened, status=status, repair=repair, result=result)
            finally:
                if opened is not store:
                    opened.close()
        except BaseException:
            if index.exception() is None:
                index.result()[1].stop()
            raise
    chips, hashes = index.result()
    return _Inputs(chips, geoms, columns, opened.schema, opened.crs, tags, hashes)


def _chips_hashed(tiles: Path) -> tuple[list[Any], Any]:
    """The chips of the tile index, and their hashing started."""
    from geolabel.export.manifest import BackgroundHashes
    from geolabel.tileindex import load_chips

    chips = load_chips(tiles)
    return chips, BackgroundHashes([c.path for c in chips])


def _crs_groups(chips: Sequence[Any]) -> dict[str, list[int]]:
    """Chip indices by CRS."""
    found: dict[str, list[int]] = {}
    for i, chip in enumerate(chips):
        found.setdefault(chip.crs, []).append(i)
    return found


def _default_block_size(chips: Sequence[Any]) -> float:
    """Split blocks of 2 x 2 chips (median chip extent)."""
    extents = [max(abs(c.transform[0]) * c.width, abs(c.transform[4]) * c.height) for c in chips]
    return 2 * float(np.median(extents))


def _split_chips(
    chips: Sequence[Any], *, fractions: dict[str, float], block_size: float, seed: int, guard: float
) -> Any:
    """The chips' splits (a ``SplitResult``), computed on footprints in one CRS (the first chip's)."""
    from geolabel.crs import reproject_geometries, same_crs
    from geolabel.export.splits import spatial_split

    base_crs = chips[0].crs
    footprints: list[tuple[int, Any]] = []
    for crs, members in _crs_groups(chips).items():
        fp = np.array([chips[i].footprint for i in members], dtype=object)
        if not same_crs(crs, base_crs):
            fp = reproject_geometries(fp, crs, base_crs, densify=chips[members[0]].edge_step)
        footprints.extend(zip(members, fp))
    footprints.sort(key=lambda t: t[0])
    fp_arr: Any = np.array([f for _, f in footprints], dtype=object)
    pixel_boxes = [c.pixel_box for c in chips]
    return spatial_split(
        fp_arr, fractions=fractions, block_size=block_size, seed=seed, guard=guard, pixel_boxes=pixel_boxes
    )


@dataclass
class _TileJobs:
    """The chips that are in a split, dealt out in chunks with the labels that may touch
    them: the workers clip and write, this process only reads and deals.

    Workers that share this process's memory (:mod:`geolabel.shared`) get one published
    :class:`LabelTable` per chip CRS, with its spatial index, and small chunks: each task
    then carries only its chips. Other executors get each chunk's labels inline as WKB,
    in larger chunks so that a task's set-up (parsing, its spatial index) is paid rarely."""

    inputs: _Inputs
    splits: list[str | None]  # per chip; None: left out by the split guard
    out_dir: Path
    formats: tuple[str, ...]
    min_overlap: float
    skip_empty: bool
    image_ids: dict[int, int] = field(init=False)  # chip index -> COCO image id
    checksums: dict[str, tuple[str, int]] = field(default_factory=dict)  # chip path -> sha256, size

    def __post_init__(self) -> None:
        kept = [i for i, s in enumerate(self.splits) if s is not None]
        self.image_ids = {i: k + 1 for k, i in enumerate(kept)}

    def __len__(self) -> int:
        return len(self.image_ids)

    def tables(self) -> list[tuple[list[int], LabelTable]]:
        """Per CRS of the chips: the chips in a split, and the labels in that CRS."""
        import shapely

        from geolabel.crs import reproject_geometries, same_crs

        chips, geoms, store_crs = self.inputs.chips, self.inputs.geoms, self.inputs.store_crs
        schema, columns = self.inputs.schema, self.inputs.columns
        codes = np.array([int(c) for c in columns["class_code"]], dtype=np.int64)
        label_ids = [str(i) for i in columns["label_id"]]
        priority_of = {c.code: c.priority for c in schema}
        name_of = {c.code: c.name for c in schema}
        tables = []
        for crs, members in _crs_groups(chips).items():
            members = [i for i in members if self.splits[i] is not None]
            if members:
                local = geoms if same_crs(crs, store_crs) else reproject_geometries(geoms, store_crs, crs)
                table = LabelTable(local, codes, label_ids, priority_of, name_of, tree=shapely.STRtree(local))
                tables.append((members, table))
        return tables

    def chunks(self, tables: list[tuple[list[int], LabelTable]], keys: list[str | None]) -> Iterator[ChunkJob]:
        """The jobs of ``tables``: by the key a table is published under, else inline."""
        for (members, table), key in zip(tables, keys):
            size = SHARED_CHUNK if key is not None else CLIP_CHUNK
            for start in range(0, len(members), size):
                chunk = members[start : start + size]
                yield self._chunk(chunk, SharedLabels(key) if key is not None else self._inline(chunk, table))

    def _inline(self, members: list[int], table: LabelTable) -> InlineLabels:
        """The labels of ``table`` that touch the chips ``members``, as WKB."""
        import shapely

        footprints = np.array([self.inputs.chips[i].footprint for i in members], dtype=object)
        rows = np.unique(table.tree.query(footprints, predicate="intersects")[1])
        return InlineLabels(
            wkb=tuple(shapely.to_wkb(table.geoms[rows], output_dimension=3).tolist()),
            codes=tuple(table.codes[rows].tolist()),
            label_ids=tuple(table.label_ids[r] for r in rows.tolist()),
            priority_of=table.priority_of,
            name_of=table.name_of,
        )

    def _chunk(self, members: list[int], labels: InlineLabels | SharedLabels) -> ChunkJob:
        """The job of the chips ``members`` with their ``labels``."""
        chips = self.inputs.chips
        return ChunkJob(
            # workers may run in other folders (a cluster)
            chips=tuple(replace(chips[i], path=os.path.abspath(chips[i].path)) for i in members),
            splits=tuple(str(self.splits[i]) for i in members),
            image_ids=tuple(self.image_ids[i] for i in members),
            image_checksums=tuple(self.checksums.get(chips[i].path) for i in members),
            out_dir=os.path.abspath(self.out_dir),
            formats=self.formats,
            min_overlap=self.min_overlap,
            skip_empty=self.skip_empty,
            labels=labels,
        )


def _write_tiles(
    jobs: _TileJobs,
    workers: int | None,
    executor: Executor | None,
    *,
    progress: Callable[[float], None] | None,
    is_cancelled: Callable[[], bool] | None,
) -> list[TileResult]:
    """Write every tile (in ``executor``, else local worker processes); the results sorted
    by tile id. ``progress`` goes to 0.95: the dataset files come after the tiles."""
    from geolabel.export import writers
    from geolabel.parallel import run_batch
    from geolabel.shared import published_for

    results: list[TileResult] = []
    total = len(jobs)

    def on_result(job: ChunkJob, res: list[TileResult]) -> None:
        results.extend(res)
        if progress is not None and total:
            progress(0.95 * len(results) / total)

    tables = jobs.tables()
    jobs.checksums = jobs.inputs.stop_hashing()  # no thread may run when the local pool forks
    with contextlib.ExitStack() as held:  # published before the local pool forks
        keys = [held.enter_context(published_for(executor, t)) for _, t in tables]
        run_batch(
            writers.write_chunk,
            jobs.chunks(tables, keys),
            on_result=on_result,
            executor=executor,
            workers=workers,
            is_cancelled=is_cancelled,
            queued_per_worker=2,
        )
    results.sort(key=lambda r: r.tile_id)
    return results


def _tally(result: ExportResult, tiles: Sequence[TileResult], schema: ClassSchema) -> None:
    """Per split and class: tiles, objects, mask pixels (masks only) and objects' area in pixels."""
    from geolabel.export.masks import MASK_NODATA

    name_of = {c.code: c.name for c in schema}
    name_of[MASK_NODATA] = "unlabelled"
    for r in tiles:
        result.tiles[r.split] = result.tiles.get(r.split, 0) + 1
        objs_split = result.objects.setdefault(r.split, {})
        for code, n in r.object_counts.items():
            objs_split[name_of[code]] = objs_split.get(name_of[code], 0) + n
        if "masks" in result.formats:
            pix_split = result.pixels.setdefault(r.split, {})
            for code, n in r.pixel_counts.items():
                pix_split[name_of.get(code, str(code))] = pix_split.get(name_of.get(code, str(code)), 0) + n
        area_split = result.area_px.setdefault(r.split, {})
        for code, a in r.area_px.items():
            area_split[name_of[code]] = area_split.get(name_of[code], 0.0) + a


def _tally_tags(
    result: ExportResult, tiles: Sequence[TileResult], tags: ExportTags, status: Sequence[str] | None
) -> dict[str, Any]:
    """Per split, the tagged tiles of each tag; the exported tiles left out as conflicts
    (into ``result``); returns the ``tags`` entry of ``summary.json``."""
    for r in tiles:
        per_split = result.tags.setdefault(r.split, {})
        result.tagged_tiles.setdefault(r.split, 0)
        if r.tile_id in tags.tiles:
            result.tagged_tiles[r.split] += 1
            for name in tags.names(r.tile_id):
                per_split[name] = per_split.get(name, 0) + 1
        elif r.tile_id in tags.conflicts:
            result.tag_conflicts.append(r.tile_id)
    return {
        "mode": tags.schema.mode,
        "statuses": list(status) if status is not None else "all",
        "tagged_tiles": result.tagged_tiles,
        "tiles_per_tag": result.tags,
        "conflicts_left_out": result.tag_conflicts,
    }


def _summary(
    result: ExportResult,
    fractions: dict[str, float],
    inputs: _Inputs,
    seed: int,
    block_size: float,
    guard: float,
    min_overlap: float,
) -> dict[str, Any]:
    """The content of ``summary.json``."""
    from geolabel.crs import crs_label

    return {
        "formats": list(result.formats),
        "split": {
            "fractions": fractions,
            "seed": seed,
            "block_size": block_size,
            "guard": guard,
            "tiles": result.tiles,
            "excluded_tiles": result.excluded_tiles,
        },
        "min_overlap": min_overlap,
        "store_crs": crs_label(inputs.store_crs),
        "chips": len(inputs.chips),
        "objects": result.objects,
        "pixels": result.pixels if "masks" in result.formats else None,
        "label_area_px": {k: {c: round(a, 3) for c, a in v.items()} for k, v in result.area_px.items()},
        "labels_left_out": result.skipped_labels,
        "labels_repaired": result.repaired,
        "mask_values": {"255": "unlabelled or nodata"},
    }


def export_geojson(
    store: StoreLike, tiles: str | os.PathLike[str], out_dir: str | os.PathLike[str], **options: Any
) -> ExportResult:
    """GeoJSON per tile (RFC 7946 and pixel coordinates); same options as export_dataset."""
    return export_dataset(store, tiles, out_dir, formats=("geojson",), **options)


def export_coco(
    store: StoreLike, tiles: str | os.PathLike[str], out_dir: str | os.PathLike[str], **options: Any
) -> ExportResult:
    """COCO instance segmentation per split; same options as export_dataset."""
    return export_dataset(store, tiles, out_dir, formats=("coco",), **options)


def export_masks(
    store: StoreLike, tiles: str | os.PathLike[str], out_dir: str | os.PathLike[str], **options: Any
) -> ExportResult:
    """Class masks aligned to the chips; same options as export_dataset."""
    return export_dataset(store, tiles, out_dir, formats=("masks",), **options)


def export_stac(
    store: StoreLike, tiles: str | os.PathLike[str], out_dir: str | os.PathLike[str], **options: Any
) -> ExportResult:
    """STAC catalog with label items (and the GeoJSON and masks it points to)."""
    return export_dataset(store, tiles, out_dir, formats=("geojson", "masks", "stac"), **options)

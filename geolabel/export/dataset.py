"""Export a training set: labels clipped to the tile grid, in the formats training code reads.

:func:`export_dataset` reads the labels once, clips them to every chip with one spatial
index, assigns chips to leak-free spatial splits, and writes all requested formats in
one pass per tile (in parallel). The dataset is built in a temporary folder next to the
destination and renamed into place when complete, so a failed export never leaves a
folder that looks complete.

Dataset layout::

    DATASET/images/<split>/<tile_id>.tif             the chips (hard links, else copies)
    DATASET/labels/geojson/<split>/<tile_id>.geojson     RFC 7946 (WGS 84 lon/lat)
    DATASET/labels/geojson_px/<split>/<tile_id>.geojson  same objects in chip pixels
    DATASET/labels/masks/<split>/<tile_id>.tif       uint8 class codes, 255 = unlabelled/nodata
    DATASET/coco/<split>.json                        COCO instance segmentation
    DATASET/stac/catalog.json                        STAC catalog with the label extension
    DATASET/summary.json                             per split and class: tiles, objects, mask pixels, area
    DATASET/manifest.json                            sha256 and size of every file
"""

from __future__ import annotations

import functools
import json
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from geolabel.errors import InputError, check_choice
from geolabel.files import child_path, make_temp_dir, prepare_output_dir, replace_dir, writing

FORMATS = ("geojson", "coco", "masks", "stac")
#: Chips clipped per step: workers start writing after the first step, not after all.
CLIP_CHUNK = 16


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
    items = [v.strip().lower() for v in (value.split(",") if isinstance(value, str) else value) if v.strip()]
    for item in items:
        check_choice(item, FORMATS, param="formats")
    if not items:
        raise InputError(f"`formats`: give at least one of {', '.join(FORMATS)}", params=("formats",))
    return tuple(dict.fromkeys(items))


def _labels_for_export(
    store: Any, *, status: Sequence[str] | None, repair: bool, result: ExportResult
) -> tuple[Any, dict[str, list[Any]]]:
    """Valid polygons of known classes from the store (reporting what is left out)."""
    import shapely

    from geolabel.labels.edit import FAR, has_far_coords
    from geolabel.labels.edit import repair as repair_geoms

    arrays = store.read(status=status, fields=("label_id", "class_code"))
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
    invalid = (~shapely.is_valid(geoms) | far) & ~no_polygon
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
    def held(store: Any, tiles: str | os.PathLike[str], *args: Any, **kwargs: Any) -> ExportResult:
        from geolabel.files import folder_lock
        from geolabel.tileindex import CHIPS_BUSY

        with folder_lock(Path(tiles).parent, shared=True, busy=CHIPS_BUSY):
            return export(store, tiles, *args, **kwargs)

    return held


@_holding_chips
def export_dataset(
    store: Any,
    tiles: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    formats: str | Iterable[str] = FORMATS,
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
        formats: any of geojson, coco, masks, stac.
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
    import shapely

    from geolabel.crs import area_m2, reproject_geometries, same_crs
    from geolabel.export.clip import clip_to_tiles, load_chips
    from geolabel.export.splits import spatial_split
    from geolabel.export.writers import MASK_NODATA, TileJob, write_tile
    from geolabel.labels.store import open_store
    from geolabel.parallel import local_executor, run_tasks, worker_count

    fmts, fractions = _check_options(
        formats, split, min_overlap=min_overlap, guard=guard, block_size=block_size, seed=seed, status=status
    )
    if executor is None:
        worker_count(workers)
    out = Path(out_dir)
    prepare_output_dir(out, marker="manifest.json", what="training set", overwrite=overwrite)
    owns_store = not hasattr(store, "read")
    if owns_store:
        store = open_store(store)
    result = ExportResult(out_dir=out, formats=fmts)
    try:
        chips = load_chips(Path(tiles))
        geoms, columns = _labels_for_export(store, status=status, repair=repair, result=result)
        schema = store.schema
        store_crs = store.crs
    finally:
        if owns_store:
            store.close()

    crs_groups: dict[str, list[int]] = {}
    for i, chip in enumerate(chips):
        crs_groups.setdefault(chip.crs, []).append(i)

    # splits, computed on footprints in one CRS (the first chip's)
    base_crs = chips[0].crs
    footprints: list[tuple[int, Any]] = []
    for crs, members in crs_groups.items():
        fp = np.array([chips[i].footprint for i in members], dtype=object)
        if not same_crs(crs, base_crs):
            fp = reproject_geometries(fp, crs, base_crs, densify=chips[members[0]].edge_step)
        footprints.extend(zip(members, fp))
    footprints.sort(key=lambda t: t[0])
    fp_arr: Any = np.array([f for _, f in footprints], dtype=object)
    if block_size is None:  # blocks of 2 x 2 chips (median chip extent)
        extents = [max(abs(c.transform[0]) * c.width, abs(c.transform[4]) * c.height) for c in chips]
        block_size = 2 * float(np.median(extents))
    split_result = spatial_split(
        fp_arr,
        fractions=fractions,
        block_size=block_size,
        seed=seed,
        guard=guard,
        pixel_boxes=[c.pixel_box for c in chips],
    )
    result.excluded_tiles = [chips[i].tile_id for i in split_result.excluded]

    # build into a temporary sibling folder, rename at the end
    tmp = make_temp_dir(out)
    prio = {c.code: c.priority for c in schema}
    label_ids = columns["label_id"]
    codes_all = columns["class_code"]
    kept = [i for i in range(len(chips)) if split_result.splits[i] is not None]
    image_ids = {i: k + 1 for k, i in enumerate(kept)}

    def make_jobs() -> Iterator[TileJob]:
        """Clip chunk by chunk, so workers start writing while later chunks are clipped."""
        for crs, members in crs_groups.items():
            members = [i for i in members if split_result.splits[i] is not None]
            if not members:
                continue
            local = geoms if same_crs(crs, store_crs) else reproject_geometries(geoms, store_crs, crs)
            tree = shapely.STRtree(local) if len(local) else None
            for start in range(0, len(members), CLIP_CHUNK):
                chunk = members[start : start + CLIP_CHUNK]
                clipped = clip_to_tiles(local, [chips[i] for i in chunk], min_overlap=min_overlap, tree=tree)
                for i, objs in zip(chunk, clipped):
                    yield _tile_job(chips[i], objs, i)

    def _tile_job(chip: Any, objs: Any, i: int) -> TileJob:
        rows = objs.rows.tolist()
        areas = area_m2(objs.geoms, chip.crs) if len(rows) else np.zeros(0)
        return TileJob(
            tile_id=chip.tile_id,
            split=str(split_result.splits[i]),
            chip_path=chip.path,
            crs=chip.crs,
            transform=chip.transform,
            width=chip.width,
            height=chip.height,
            nodata_fraction=chip.nodata_fraction,
            out_dir=str(tmp),
            formats=fmts,
            wkb=tuple(shapely.to_wkb(objs.geoms, output_dimension=2).tolist()) if len(rows) else (),
            codes=tuple(int(codes_all[r]) for r in rows),
            priorities=tuple(prio[int(codes_all[r])] for r in rows),
            label_ids=tuple(str(label_ids[r]) for r in rows),
            class_names=tuple(schema.get(int(codes_all[r])).name for r in rows),
            truncated=tuple(bool(t) for t in objs.truncated.tolist()),
            area_m2=tuple(float(a) for a in areas),
            image_id=image_ids[i],
            skip_empty=skip_empty,
        )

    results: list[Any] = []
    total = len(kept)

    def on_result(job: TileJob, res: Any) -> None:
        results.append(res)
        if progress is not None and total:
            progress(0.95 * len(results) / total)

    try:
        with writing(out, "training set"):  # a full disk names the dataset, not the chip being copied
            if executor is not None:
                run_tasks(write_tile, make_jobs(), executor=executor, on_result=on_result, is_cancelled=is_cancelled)
            else:
                with local_executor(workers) as pool:
                    n = getattr(pool, "_max_workers", 1)
                    run_tasks(
                        write_tile,
                        make_jobs(),
                        executor=pool,
                        on_result=on_result,
                        max_in_flight=max(2, 4 * n),
                        is_cancelled=is_cancelled,
                    )
            results.sort(key=lambda r: r.tile_id)
            checksums: dict[str, tuple[str, int]] = {}
            for r in results:
                checksums.update(r.checksums)
            name_of = {c.code: c.name for c in schema}
            name_of[MASK_NODATA] = "unlabelled"
            for r in results:
                result.tiles[r.split] = result.tiles.get(r.split, 0) + 1
                objs_split = result.objects.setdefault(r.split, {})
                for code, n in r.object_counts.items():
                    objs_split[name_of[code]] = objs_split.get(name_of[code], 0) + n
                if "masks" in fmts:
                    pix_split = result.pixels.setdefault(r.split, {})
                    for code, n in r.pixel_counts.items():
                        pix_split[name_of.get(code, str(code))] = pix_split.get(name_of.get(code, str(code)), 0) + n
                area_split = result.area_px.setdefault(r.split, {})
                for code, a in r.area_px.items():
                    area_split[name_of[code]] = area_split.get(name_of[code], 0.0) + a
            extra_files: list[str] = []
            if "coco" in fmts:
                extra_files += _write_coco(tmp, results, schema)
            if "stac" in fmts:
                from geolabel.export.stac import write_stac

                chip_of = {c.tile_id: c for c in chips}
                stac_tiles = []
                for r in results:
                    chip = chip_of[r.tile_id]
                    stac_tiles.append(
                        {
                            "tile_id": r.tile_id,
                            "split": r.split,
                            "crs": chip.crs,
                            "transform": chip.transform,
                            "width": chip.width,
                            "height": chip.height,
                            "footprint": reproject_geometries(
                                chip.footprint, chip.crs, "EPSG:4326", densify=chip.edge_step
                            ),
                            "image": f"images/{r.split}/{r.tile_id}.tif",
                            "geojson": f"labels/geojson/{r.split}/{r.tile_id}.geojson"
                            if f"labels/geojson/{r.split}/{r.tile_id}.geojson" in r.files
                            else None,
                            "mask": f"labels/masks/{r.split}/{r.tile_id}.tif",
                            "object_counts": r.object_counts,
                        }
                    )
                extra_files += write_stac(tmp, stac_tiles, schema=schema, formats=fmts, title=out.name)
            summary = _summary(result, split_result, fractions, seed, block_size, guard, min_overlap, store_crs, chips)
            (tmp / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
            extra_files.append("summary.json")
            for rel in extra_files:
                from geolabel.export.writers import _sha256

                checksums[rel] = _sha256(tmp / rel)
            manifest = {
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "generator": "geolabel",
                "files": {rel: {"sha256": h, "bytes": n} for rel, (h, n) in sorted(checksums.items())},
            }
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
            result.files = len(checksums) + 1
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if progress is not None:
        progress(1.0)
    return result


def _write_coco(tmp: Path, results: Sequence[Any], schema: Any) -> list[str]:
    categories = [
        {"id": c.code, "name": c.name, "supercategory": "land_cover", "color": c.color} for c in schema if c.code != 0
    ]
    written = []
    by_split: dict[str, list[Any]] = {}
    for r in results:
        by_split.setdefault(r.split, []).append(r)
    for split_name, items in sorted(by_split.items()):
        images, annotations = [], []
        next_id = 1
        for r in items:
            images.append(r.coco_image)
            for ann in r.coco_annotations:
                annotations.append({"id": next_id, **ann})
                next_id += 1
        doc = {
            "info": {
                "description": f"geolabel export, split {split_name}",
                "date_created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            },
            "licenses": [],
            "images": images,
            "annotations": annotations,
            "categories": categories,
        }
        rel = f"coco/{split_name}.json"
        (tmp / "coco").mkdir(exist_ok=True)
        child_path(tmp, rel).write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")))
        written.append(rel)
    return written


def _summary(
    result: ExportResult,
    split_result: Any,
    fractions: dict[str, float],
    seed: int,
    block_size: float,
    guard: float,
    min_overlap: float,
    store_crs: Any,
    chips: Sequence[Any],
) -> dict[str, Any]:
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
        "store_crs": crs_label(store_crs),
        "chips": len(chips),
        "objects": result.objects,
        "pixels": result.pixels if "masks" in result.formats else None,
        "label_area_px": {k: {c: round(a, 3) for c, a in v.items()} for k, v in result.area_px.items()},
        "labels_left_out": result.skipped_labels,
        "labels_repaired": result.repaired,
        "mask_values": {"255": "unlabelled or nodata"},
    }


def export_geojson(store: Any, tiles: Any, out_dir: Any, **options: Any) -> ExportResult:
    """GeoJSON per tile (RFC 7946 and pixel coordinates); same options as export_dataset."""
    return export_dataset(store, tiles, out_dir, formats=("geojson",), **options)


def export_coco(store: Any, tiles: Any, out_dir: Any, **options: Any) -> ExportResult:
    """COCO instance segmentation per split; same options as export_dataset."""
    return export_dataset(store, tiles, out_dir, formats=("coco",), **options)


def export_masks(store: Any, tiles: Any, out_dir: Any, **options: Any) -> ExportResult:
    """Class masks aligned to the chips; same options as export_dataset."""
    return export_dataset(store, tiles, out_dir, formats=("masks",), **options)


def export_stac(store: Any, tiles: Any, out_dir: Any, **options: Any) -> ExportResult:
    """STAC catalog with label items (and the GeoJSON and masks it points to)."""
    return export_dataset(store, tiles, out_dir, formats=("geojson", "masks", "stac"), **options)

"""``geolabel tile``: cut scenes into georeferenced chips."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from geolabel import vocabulary as v
from geolabel.cli.options import IntList, Progress, batch_executor, scheduler_option

if TYPE_CHECKING:
    from geolabel.tileindex import Failure
    from geolabel.tiling import TilingResult


@click.command(short_help="Cut scenes into georeferenced chips.")
@click.argument("scenes", nargs=-1, required=False, type=click.Path(dir_okay=False))
@click.option(
    "--scenes",
    "scene_list",
    default=None,
    type=click.Path(dir_okay=False),
    help="A file listing scenes, one path or URL a line (# comments; paths relative to the file).",
)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option(
    "--stac",
    default=None,
    metavar="FILE_OR_URL",
    help="Also tile the items of this STAC ItemCollection, Catalog or Collection (named by item id; "
    "datetime, platform and cloud cover go into the index).",
)
@click.option("--asset", default=None, metavar="KEY", help="With --stac: the item asset to tile, e.g. visual.")
@click.option("--size", default=v.CHIP_SIZE, show_default=True, help="Chip size in pixels.")
@click.option("--overlap", default=0, show_default=True, help="Overlap between neighbouring chips, pixels.")
@click.option(
    "--edge",
    type=click.Choice(v.EDGES),
    default=v.EDGES[0],
    show_default=True,
    help="Chips at the right/bottom edge: pad with nodata, shift inward, or drop.",
)
@click.option(
    "--max-nodata",
    default=v.MAX_NODATA,
    show_default=True,
    help="Skip chips whose nodata fraction is above this (chips with no valid pixel are always skipped).",
)
@click.option("--bands", type=IntList(), default=None, help="Bands to keep, e.g. 1,2,3 (default all).")
@click.option("--format", "fmt", type=click.Choice(v.CHIP_FORMATS), default=v.CHIP_FORMATS[0], show_default=True)
@click.option(
    "--compress",
    type=click.Choice(v.COMPRESSIONS),
    default=None,
    help="Chip compression (default: the source's).",
)
@click.option("--dst-crs", default=None, help="Reproject chips to this CRS, e.g. EPSG:32650.")
@click.option(
    "--resolution", type=float, default=None, help="Output pixel size in CRS units (with or without --dst-crs)."
)
@click.option(
    "--resampling",
    type=click.Choice(v.RESAMPLINGS),
    default=v.RESAMPLINGS[0],
    show_default=True,
    help="Resampling for --dst-crs/--resolution.",
)
@click.option("--allow-no-crs", is_flag=True, help="Tile rasters without a CRS in pixel coordinates.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output made with other options.")
@click.option(
    "--no-verify-blocks",
    is_flag=True,
    help="Copy the source's compressed blocks into chips without decoding them once to check them "
    "(faster; a corrupt block is then copied unnoticed).",
)
@click.option("--workers", type=int, default=None, help="Worker processes (default: all cores).")
@scheduler_option
@click.option(
    "--keep-going",
    is_flag=True,
    help="A scene or chip that fails is listed at the end (and in the index) instead of stopping the run; "
    "exit code 1 then. Rerun to try them again.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
def tile(
    scenes: tuple[str, ...],
    scene_list: str | None,
    out_dir: str,
    stac: str | None,
    asset: str | None,
    size: int,
    overlap: int,
    edge: v.Edge,  # click.Choice(v.EDGES) let only these through
    max_nodata: float,
    bands: tuple[int, ...] | None,
    fmt: v.ChipFormat,
    compress: v.Compression | None,
    dst_crs: str | None,
    resolution: float | None,
    resampling: v.Resampling,
    allow_no_crs: bool,
    overwrite: bool,
    no_verify_blocks: bool,
    workers: int | None,
    scheduler: str | None,
    keep_going: bool,
    quiet: bool,
) -> None:
    """Cut SCENES into SIZE x SIZE chips in OUT/<scene>/ with an index OUT/tiles.gpkg.

    \b
    Examples:
      geolabel tile sample_data/village.tif --out out/chips
      geolabel tile a.tif b.tif --out chips --size 256 --overlap 32 --edge shift
      geolabel tile scene.tif --out chips --dst-crs EPSG:32650 --resolution 0.5
      geolabel tile https://host/cogs/scene.tif s3://bucket/b.tif --out chips
      geolabel tile --scenes scenes.txt --out chips
      geolabel tile --stac items.json --asset visual --out chips
      geolabel tile scenes/*.tif --out chips --scheduler tcp://10.0.0.5:8786

    SCENES are files or http(s):// and s3:// URLs (read with range requests).

    Rerunning the same command resumes where it stopped.
    """
    from geolabel.tiling import NamedScene, read_stac, tile_raster
    from geolabel.tiling.scenelist import read_scene_list

    if (stac is None) != (asset is None):
        raise click.UsageError("--stac FILE_OR_URL and --asset KEY go together")
    given: list[str | NamedScene] = [*scenes]
    if scene_list is not None:
        given += read_scene_list(scene_list)
    if stac is not None and asset is not None:
        given += read_stac(stac, asset=asset)
    if not given:
        raise click.UsageError("no scene given: name SCENES, or pass --scenes FILE or --stac FILE_OR_URL --asset KEY")
    with batch_executor(scheduler, workers) as executor, Progress("tiling", quiet=quiet) as bar:
        result = tile_raster(
            given,
            out_dir,
            size=size,
            overlap=overlap,
            edge=edge,
            max_nodata=max_nodata,
            bands=bands,
            format=fmt,
            compress=compress,
            dst_crs=dst_crs,
            resolution=resolution,
            resampling=resampling,
            allow_no_crs=allow_no_crs,
            overwrite=overwrite,
            verify_blocks=not no_verify_blocks,
            workers=workers,
            executor=executor,
            progress=bar,
            keep_going=keep_going,
        )
    if not quiet:
        _summary(result)
    if result.failed:
        _failures(result.failed)
        sys.exit(1)


def _summary(result: TilingResult) -> None:
    for s in result.scenes:
        extra = f", {s.copied} by block copy" if s.copied else ""
        click.echo(
            f"{s.scene}: {s.chips} grid cells -> {s.written} chips written{extra}, "
            f"{s.resumed} already done, {s.skipped} skipped (nodata)"
        )
    click.echo(f"chips: {result.out_dir}/<scene>/  index: {result.index_path}")


def _failures(failed: Sequence[Failure]) -> None:
    """What a --keep-going run could not do, one line per scene and problem."""
    groups: dict[tuple[str, str], list[str]] = {}
    for f in failed:
        groups.setdefault((f.scene, f.reason), []).append(f.tile_id)
    for (scene, reason), ids in groups.items():
        chips = [i for i in ids if i]
        what = f"{len(chips)} chips of {scene} (first {chips[0]}): " if chips else "not tiled: "
        click.echo(f"geolabel: failed: {what}{reason}", err=True)
    click.echo(f"geolabel: {len(groups)} problem(s); the rest is done. Run the command again to retry.", err=True)

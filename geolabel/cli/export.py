"""``geolabel export``: write a training set from a label store and a tile index."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from geolabel import vocabulary as v
from geolabel.cli.options import STORE, Progress, batch_executor, scheduler_option

if TYPE_CHECKING:
    from geolabel.export.dataset import ExportResult


@click.command("export", short_help="Export a training set (GeoJSON, COCO, masks, STAC, tags).")
@click.argument("store", type=STORE)
@click.option("--tiles", required=True, type=click.Path(dir_okay=False), help="Tile index (DIR/tiles.gpkg).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Dataset folder to create.")
@click.option(
    "--format",
    "formats",
    default=",".join(v.EXPORT_FORMATS),
    show_default=True,
    help=f"Comma-separated formats: {', '.join(v.ALL_EXPORT_FORMATS)} (tags: the tiles' tags, needs a tag schema).",
)
@click.option(
    "--min-overlap",
    default=0.0,
    show_default=True,
    help="Keep an object cut by the tile edge if at least this share of it is inside (0-1).",
)
@click.option("--split", default=v.SPLIT, show_default=True, help="train,val,test fractions (spatial blocks).")
@click.option("--seed", default=v.SEED, show_default=True, help="Seed of the split.")
@click.option("--block-size", type=float, default=None, help="Split block side in CRS units (default: 2 chips).")
@click.option("--guard", default=0.0, show_default=True, help="Minimum gap between tiles of different splits.")
@click.option("--status", default=None, help="Only labels with these statuses, e.g. accepted,reviewed.")
@click.option("--repair", is_flag=True, help="Repair invalid label geometries instead of refusing the store.")
@click.option("--skip-empty", is_flag=True, help="No GeoJSON files for tiles without labels.")
@click.option("--overwrite", is_flag=True, help="Replace an existing dataset folder.")
@click.option("--workers", type=int, default=None, help="Worker processes (default: all cores).")
@scheduler_option
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
def export(
    store: str,
    tiles: str,
    out_dir: str,
    formats: str,
    min_overlap: float,
    split: str,
    seed: int,
    block_size: float | None,
    guard: float,
    status: str | None,
    repair: bool,
    skip_empty: bool,
    overwrite: bool,
    workers: int | None,
    scheduler: str | None,
    quiet: bool,
) -> None:
    """Clip STORE's labels (a .gpkg store or a PostgreSQL location) to the chips of --tiles
    and write a dataset to --out.

    \b
    Examples:
      geolabel export out/labels.gpkg --tiles out/chips/tiles.gpkg --out out/dataset
      geolabel export labels.gpkg --tiles chips/tiles.gpkg --out ds --format geojson,masks \\
          --split 0.7,0.15,0.15 --seed 7 --status accepted --min-overlap 0.3
      geolabel export labels.gpkg --tiles chips/tiles.gpkg --out ds --format tags --status accepted

    Splits are spatial: blocks of chips go to train/val/test, and chips of different
    splits never overlap (nor come closer than --guard): chips that would leak are left
    out and listed in summary.json.

    --format tags writes the tiles' tags as an image-classification set: tags/<split>.csv
    and, for single-label projects, images_by_tag/<split>/<tag>/<tile_id>.tif links; a
    tile whose labelers disagree is left out and counted.
    """
    from geolabel.export.dataset import export_dataset

    statuses = [s.strip() for s in status.split(",")] if status is not None else None
    with batch_executor(scheduler, workers) as executor, Progress("export", quiet=quiet) as bar:
        result = export_dataset(
            store,
            tiles,
            out_dir,
            formats=formats,
            min_overlap=min_overlap,
            split=split,
            seed=seed,
            block_size=block_size,
            guard=guard,
            status=statuses,
            repair=repair,
            skip_empty=skip_empty,
            overwrite=overwrite,
            workers=workers,
            executor=executor,
            progress=bar,
        )
    if quiet:
        return
    click.echo(result.table())
    if result.excluded_tiles:
        click.echo(f"left out to keep splits apart: {len(result.excluded_tiles)} chips")
    for reason, n in result.skipped_labels.items():
        click.echo(f"labels left out: {n} ({reason})")
    _echo_tags(result)
    if result.repaired:
        click.echo(f"labels repaired: {result.repaired}")
    click.echo(f"dataset: {result.out_dir}/ ({result.files} files; summary.json, manifest.json)")


def _echo_tags(result: ExportResult) -> None:
    """The tagged tiles per split and the conflicts left out (format tags)."""
    if "tags" not in result.formats:
        return
    order = ("train", "val", "test")
    splits = sorted(result.tagged_tiles, key=lambda s: order.index(s) if s in order else 9)
    click.echo("tagged tiles: " + ", ".join(f"{s} {result.tagged_tiles[s]}" for s in splits))
    if result.tag_conflicts:
        click.echo(f"tiles left out, their labelers' tags disagree: {len(result.tag_conflicts)}")

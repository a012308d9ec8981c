"""``geolabel suggest``: polygons from the imagery, for a labeler to accept or edit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from geolabel import vocabulary as v
from geolabel.cli.options import STORE, Progress


@click.group(short_help="Suggest labels from the imagery (drafts to accept or edit).")
def suggest() -> None:
    """Make polygons from the imagery and write them to a new GeoPackage (--out) or into a
    label store (--into), where they are drafts with source "suggested". Needs
    pip install 'geolabel[suggest]'."""


def suggestion_outputs(command: Callable[..., None]) -> Callable[..., None]:
    """The options every suggest command shares: where the suggestions go and how it runs."""
    options = [
        click.option("--into", default=None, type=STORE, help="Add the suggestions to this label store as drafts."),
        click.option("--out", default=None, type=click.Path(dir_okay=False), help="Write them to this new GeoPackage."),
        click.option("--overwrite", is_flag=True, help="Replace an existing --out file."),
        click.option("--window", default=v.SUGGEST_WINDOW, show_default=True, help="Pixels read at a time (per side)."),
        click.option("--workers", type=int, default=None, help="Worker processes (default: all cores)."),
        click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@suggest.command(short_help="Water from a spectral water index (NDWI/MNDWI).")
@click.argument("scene", type=click.Path(dir_okay=False))
@click.option("--index", type=click.Choice(v.WATER_INDEXES), default=v.WATER_INDEXES[0], show_default=True,
              help="ndwi: green and NIR; mndwi: green and SWIR.")  # fmt: skip
@click.option("--bands", default=None, metavar="ROLE=N,...",
              help="Band roles the scene does not name itself, e.g. green=2,nir=4 (or swir=5).")  # fmt: skip
@click.option("--threshold", default=v.WATER_THRESHOLD, show_default=True, metavar="otsu|VALUE",
              help="otsu: upper 3-class Otsu threshold over the scene (at least 0), or a value.")  # fmt: skip
@click.option("--min-area", default=v.SUGGEST_MIN_AREA_M2, show_default=True, type=float,
              help="Drop water parts and islands smaller than this, m².")  # fmt: skip
@click.option("--aoi", default=None, type=click.Path(dir_okay=False), help="Only inside this area (a vector file).")
@click.option(
    "--tiles", default=None, type=click.Path(dir_okay=False), help="Only inside the chips of this tile index."
)
@click.option("--tile", default=None, metavar="ID", help="With --tiles: only inside this chip.")
@click.option("--class", "class_name", default=v.SUGGEST_WATER_CLASS, show_default=True, help="Class they get.")
@suggestion_outputs
def water(
    scene: str,
    index: str,
    bands: str | None,
    threshold: str,
    min_area: float,
    aoi: str | None,
    tiles: str | None,
    tile: str | None,
    into: str | None,
    out: str | None,
    class_name: str,
    overwrite: bool,
    window: int,
    workers: int | None,
    quiet: bool,
) -> None:
    """Suggest water polygons in SCENE, window by window.

    Band roles come from the scene's band descriptions or colour interpretation, else
    from --bands.

    \b
    Examples:
      geolabel suggest water sample_data/village.tif --out water.gpkg
      geolabel suggest water naip.tif --bands green=2,nir=4 --into labels.gpkg
      geolabel suggest water scene.tif --tiles chips/tiles.gpkg --tile scene_r003_c004 --into labels.gpkg
    """
    from geolabel.suggest import suggest_water, write_suggestions
    from geolabel.suggest.output import check_output

    if (into is None) == (out is None):
        raise click.UsageError("give exactly one of --into STORE and --out FILE.gpkg")
    if out is not None:
        check_output(out, overwrite=overwrite)
    with Progress("water", quiet=quiet) as bar:
        found = suggest_water(scene, index=index, bands=bands, threshold=threshold, min_area=min_area, aoi=aoi,
                              tiles=tiles, tile=tile, window=window, workers=workers, progress=bar)  # fmt: skip
    done = write_suggestions(found.polygons, crs=found.crs, class_name=class_name, out=out, into=into,
                             overwrite=overwrite)  # fmt: skip
    if not quiet:
        click.echo(
            f"{done.where}: {done.count} water polygons, {done.area_m2 / 1e4:.2f} ha "
            f"({found.index} > {found.threshold:.3f}{', otsu' if threshold == 'otsu' else ''})"
        )


@suggest.command(short_help="Land-cover classes learnt from the labels already made.")
@click.argument("scene", type=click.Path(dir_okay=False))
@click.option("--from", "store", required=True, type=STORE,
              help="Label store to learn from: labels of tiles marked done, and accepted labels.")  # fmt: skip
@click.option("--tiles", default=None, type=click.Path(dir_okay=False),
              help="Tile index of the scene: which tiles are done (learnt from) and which to suggest in.")  # fmt: skip
@click.option("--only-todo", is_flag=True, help="With --tiles: skip tiles in progress too, not only done ones.")
@click.option("--classes", default=None, metavar="NAME,...", help="Suggest only these classes (all learn).")
@click.option("--min-area", default=v.SUGGEST_CLASSES_MIN_AREA_M2, show_default=True, type=float,
              help="Drop polygons and holes smaller than this, m².")  # fmt: skip
@click.option("--seed", default=v.SEED, show_default=True, help="Seed of the sampling, hold-out and classifier.")
@suggestion_outputs
def classes(
    scene: str,
    store: str,
    tiles: str | None,
    only_todo: bool,
    classes: str | None,
    min_area: float,
    into: str | None,
    out: str | None,
    overwrite: bool,
    seed: int,
    window: int,
    workers: int | None,
    quiet: bool,
) -> None:
    """Learn the classes of the labels in --from on SCENE and suggest them on the tiles
    not done yet, with the accuracy measured on training tiles held out whole.

    \b
    Examples:
      geolabel suggest classes scene.tif --from labels.gpkg --tiles chips/tiles.gpkg --into labels.gpkg
      geolabel suggest classes scene.tif --from labels.gpkg --tiles chips/tiles.gpkg --only-todo \\
          --classes water,farmland --out suggested.gpkg
    """
    from geolabel.suggest import suggest_classes, write_suggestions
    from geolabel.suggest.output import check_output

    if (into is None) == (out is None):
        raise click.UsageError("give exactly one of --into STORE and --out FILE.gpkg")
    if out is not None:
        check_output(out, overwrite=overwrite)
    with Progress("classes", quiet=quiet) as bar:
        found = suggest_classes(scene, store=store, tiles=tiles, only_todo=only_todo, classes=classes,
                                min_area=min_area, seed=seed, window=window, workers=workers, progress=bar)  # fmt: skip
    done = write_suggestions(found.polygons, crs=found.crs, class_name=found.class_names, out=out, into=into,
                             overwrite=overwrite)  # fmt: skip
    if not quiet:
        _report_classes(found, done)


def _report_classes(found: Any, done: Any) -> None:
    """The polygons written per class, then the held-out accuracy table."""
    from collections import Counter

    from geolabel.suggest.classes import NOT_MEASURED

    counts = ", ".join(f"{n} {name}" for name, n in sorted(Counter(found.class_names).items()))
    click.echo(f"{done.where}: {done.count} polygons, {done.area_m2 / 1e4:.2f} ha ({counts or 'none'})")
    held = found.accuracy
    if held is None:
        click.echo(NOT_MEASURED)
        return
    for line in held.lines(len(found.training_sites)):
        click.echo(line)

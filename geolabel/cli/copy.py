"""``geolabel labels copy``: move a labeling project between GeoPackage and PostGIS."""

from __future__ import annotations

import click

from geolabel.cli.options import STORE


@click.command(short_help="Copy a project to another store (GeoPackage <-> PostGIS).")
@click.argument("src", type=STORE)
@click.argument("dst", type=STORE)
@click.option("--overwrite", is_flag=True, help="Replace an existing label store at DST (its labels are lost).")
def copy(src: str, dst: str, overwrite: bool) -> None:
    """Copy the project in store SRC to a new store DST, as it is: label ids, versions and
    times, the change history and the tiles' progress, same CRS and classes. Either may be
    a .gpkg file or a PostgreSQL location (postgresql://user@host/db?schema=NAME).

    Nothing partial is left: a GeoPackage is written under a temporary name and renamed
    when complete, a PostGIS project is created and filled in one transaction (a project
    replaced with --overwrite stays as it was if the copy fails).

    \b
    Examples:
      geolabel labels copy out/labels.gpkg "postgresql://admin@db.center/labels?schema=village"
      geolabel labels copy "postgresql://admin@db.center/labels?schema=village" backup/village.gpkg
    """
    from geolabel.labels.copy import copy_store

    click.echo(copy_store(src, dst, overwrite=overwrite).line())

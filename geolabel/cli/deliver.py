"""``geolabel labels deliver`` and ``geolabel labels merge``: deliveries from offline sites."""

from __future__ import annotations

import click

from geolabel.cli.options import STORE


@click.command(short_help="Package a team's submitted tiles for the central store.")
@click.argument("store", type=STORE)
@click.option("--team", required=True, help="The team whose submitted and accepted tiles are delivered.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="The delivery file (.gpkg).")
@click.option("--site", help="This site's name (default: the computer's name).")
@click.option("--overwrite", is_flag=True, help="Replace an existing delivery file.")
def deliver(store: str, team: str, out: str, site: str | None, overwrite: bool) -> None:
    """Write TEAM's submitted and accepted tiles of STORE, their tasks and labels to a new
    label store file OUT with the delivery's provenance (id, site, team, labelers, time,
    tiles) and a SHA-256 checksum of its labels, for `geolabel labels merge` at the center.

    \b
    Example:
      geolabel labels deliver site.gpkg --team changsha --site changsha-base --out changsha-0601.gpkg
    """
    from geolabel.deliveries import deliver as deliver_labels

    click.echo(deliver_labels(store, team=team, out=out, site=site, overwrite=overwrite).line())


@click.command(short_help="Merge site deliveries into the central store.")
@click.argument("central", type=STORE)
@click.argument("deliveries", nargs=-1, required=True, type=click.Path(dir_okay=False, exists=True))
@click.option("--accept-errors", is_flag=True, help="Merge deliveries whose own check finds errors.")
def merge(central: str, deliveries: tuple[str, ...], accept_errors: bool) -> None:
    """Merge DELIVERIES (made by `geolabel labels deliver`) into the CENTRAL store in one
    transaction. A delivery merged before is skipped; labels reaching into another team's
    tiles or overlapping another site's accepted labels are reported and not written.

    Exit code 0: merged (conflicts are listed); 1: a delivery fails its check (give
    --accept-errors); 2: a delivery was changed after it was made (checksum mismatch) or
    is unusable.

    \b
    Example:
      geolabel labels merge "postgresql://admin@db.center/labels?schema=village" changsha-0601.gpkg
    """
    from geolabel.merge import merge_deliveries

    for result in merge_deliveries(central, list(deliveries), accept_errors=accept_errors):
        for line in result.lines():
            click.echo(line)

"""``geolabel tasks`` (assign, start, submit, status) and ``geolabel review``: the checking
center's workflow on a label store (see :mod:`geolabel.tasks`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from geolabel import vocabulary as v
from geolabel.cli.options import STORE

if TYPE_CHECKING:
    from geolabel.tasks import Progress


@click.group(short_help="Assign tiles to teams and labelers, submit them, follow progress.")
def tasks() -> None:
    """Tiles as tasks: the center assigns them to a team or labeler, the labeler starts
    and submits them (after the checks pass), a reviewer accepts or rejects them
    (`geolabel review`). On a PostGIS store the database role is the labeler or reviewer."""


@tasks.command(short_help="Give unassigned tiles to a team or labeler.")
@click.argument("store", type=STORE)
@click.option("--tiles", "tiles_path", required=True, type=click.Path(dir_okay=False), help="Tile index (tiles.gpkg).")
@click.option("--team", required=True, help="Team that labels the tiles.")
@click.option("--labeler", help="One labeler of the team (default: any labeler of the team).")
@click.option("--where", help="Filter on the tile index's fields, e.g. \"scene='village' and row in (0, 1)\".")
@click.option("--aoi", type=click.Path(dir_okay=False), help="Only tiles intersecting this area (vector file).")
@click.option("--count", type=int, help="At most this many tiles, the first unassigned ones in tile order.")
@click.option(
    "--overlap-fraction",
    type=float,
    default=v.OVERLAP_FRACTION,
    show_default=True,
    help="This fraction of the tiles is also given to a second labeler of the team (consensus).",
)
def assign(
    store: str,
    tiles_path: str,
    team: str,
    labeler: str | None,
    where: str | None,
    aoi: str | None,
    count: int | None,
    overlap_fraction: float,
) -> None:
    """Assign tiles of the tile index to TEAM in STORE; a tile is never assigned twice.

    \b
    Example:
      geolabel tasks assign labels.gpkg --tiles chips/tiles.gpkg --team changsha --count 12 --overlap-fraction 0.1
    """
    from geolabel.tasks import assign_tiles

    result = assign_tiles(
        store,
        tiles_path,
        team=team,
        labeler=labeler,
        where=where,
        aoi=aoi,
        count=count,
        overlap_fraction=overlap_fraction,
    )
    click.echo(result.line())


@tasks.command(short_help="Start working on a tile.")
@click.argument("store", type=STORE)
@click.option("--tile", "tile_id", required=True, help="Tile id.")
@click.option("--labeler", help="Who starts it (default on PostGIS: your database role).")
def start(store: str, tile_id: str, labeler: str | None) -> None:
    """Mark the tile in progress (taking it when it was given to the whole team)."""
    from geolabel.tasks import start_tile

    task = start_tile(store, tile_id, labeler=labeler)
    click.echo(f"tile {task.tile_id}: in progress ({task.labeler})")


@tasks.command(short_help="Submit a tile for review (its labels must pass the checks).")
@click.argument("store", type=STORE)
@click.option("--tile", "tile_id", required=True, help="Tile id.")
@click.option("--labeler", help="Who submits it (default on PostGIS: your database role).")
def submit(store: str, tile_id: str, labeler: str | None) -> None:
    """Run `geolabel check`'s checks on the labels of the tile and submit it; while errors
    remain it is not submitted (one line per error, exit code 1)."""
    from geolabel.tasks import submit_tile

    result = submit_tile(store, tile_id, labeler=labeler)
    if not result.submitted:
        for finding in result.errors:
            click.echo(f"  error: {finding.message}")
        click.echo(f"tile {tile_id}: not submitted: {len(result.errors)} errors; fix them and submit again", err=True)
        click.get_current_context().exit(1)
    click.echo(f"tile {tile_id}: submitted ({result.task.labeler})")


@tasks.command(short_help="Progress per team and labeler.")
@click.argument("store", type=STORE)
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
def status(store: str, as_json: bool) -> None:
    """Tasks per team and labeler: assigned, in progress, submitted, accepted, rejected,
    tiles submitted per hour and the hours left at that pace ("(team)": tiles any labeler
    of the team may take), and "assisted": the labeler's labels that are accepted
    suggestions (`geolabel suggest`, accepted or edited in the QGIS dock)."""
    import json

    from geolabel.tasks import task_progress

    rows = task_progress(store)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in rows], indent=2))
        return
    if not rows:
        click.echo("no tasks yet; assign tiles with `geolabel tasks assign`")
        return
    for line in _table(rows):
        click.echo(line)


def _table(rows: list[Progress]) -> list[str]:
    head = ["team", "labeler", *(s.replace("_", " ") for s in v.TASK_STATUSES), "tiles/h", "hours left",
            "assisted"]  # fmt: skip
    body = [
        [r.team, r.labeler, *(str(r.counts[s]) for s in v.TASK_STATUSES), _number(r.tiles_per_hour),
         _number(r.hours_left), str(r.assisted)]
        for r in rows
    ]  # fmt: skip
    return aligned(head, body, text_columns=2)


def aligned(head: list[str], body: list[list[str]], *, text_columns: int) -> list[str]:
    """Rows under a header in columns: the first ``text_columns`` left-aligned, numbers right."""
    widths = [max(len(row[k]) for row in [head, *body]) for k in range(len(head))]
    return [
        "  ".join(c.ljust(w) if k < text_columns else c.rjust(w) for k, (c, w) in enumerate(zip(row, widths))).rstrip()
        for row in [head, *body]
    ]


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


@click.command(short_help="Accept or reject submitted tiles.")
@click.argument("store", type=STORE)
@click.option("--tile", "tile_ids", help="Tile id, or several separated by commas.")
@click.option("--all-submitted", is_flag=True, help="Every submitted tile of --team (a whole delivery).")
@click.option("--team", help="With --all-submitted: whose delivery.")
@click.option("--accept", "decision", flag_value="accept", help="Accept the tiles.")
@click.option("--reject", "decision", flag_value="reject", help="Reject the tiles (needs --comment).")
@click.option("--comment", help="What to fix (required with --reject); kept with the decision.")
@click.option("--reviewer", help="Who decides (default on PostGIS: your database role).")
def review(
    store: str,
    tile_ids: str | None,
    all_submitted: bool,
    team: str | None,
    decision: str | None,
    comment: str | None,
    reviewer: str | None,
) -> None:
    """Accept or reject submitted tiles in STORE. A rejection returns the tile to its
    labeler with the comment and the tile's findings; every decision is recorded with
    reviewer and time.

    \b
    Examples:
      geolabel review labels.gpkg --tile village_r0_c1 --accept --reviewer wang
      geolabel review labels.gpkg --tile village_r0_c2 --reject --comment "pond edge missed" --reviewer wang
      geolabel review labels.gpkg --all-submitted --team changsha --accept --reviewer wang
    """
    from geolabel.errors import InputError
    from geolabel.tasks import review_tiles, submitted_tiles
    from geolabel.vocabulary import parse_list

    if decision is None:
        raise click.UsageError("say --accept or --reject")
    if all_submitted == bool(tile_ids):
        raise click.UsageError("give --tile ID[,ID...] or --all-submitted --team T")
    if all_submitted:
        if not team:
            raise click.UsageError("--all-submitted needs --team")
        ids = submitted_tiles(store, team=team)
        if not ids:
            raise InputError(f"team {team} has no submitted tiles to review")
    else:
        ids = parse_list(tile_ids or "")
    results = review_tiles(store, ids, accept=decision == "accept", comment=comment, reviewer=reviewer)
    for r in results:
        sent = f" with {r.findings} findings" if r.decision == "rejected" else ""
        click.echo(f"tile {r.task.tile_id} (copy {r.task.copy}, {r.task.labeler}): {r.decision}{sent}")
    click.echo(f"{len(results)} tasks {results[0].decision} by {results[0].task.reviewer}")


@tasks.command(short_help="Mark assigned tiles gold, with their reference labels.")
@click.argument("store", type=STORE)
@click.option("--tiles", "tile_ids", required=True, help="Gold tile ids, separated by commas (assigned tiles).")
@click.option("--reference", required=True, type=click.Path(dir_okay=False), help="Reference labels (vector file).")
@click.option("--class-field", help="The reference's class field (default: class_code or class_name).")
@click.option("--layer", help="Layer of a multi-layer reference file.")
def gold(store: str, tile_ids: str, reference: str, class_field: str | None, layer: str | None) -> None:
    """Mark tiles of STORE gold: hidden quality control. The reference polygons are clipped
    to each tile and kept where only the admin reads them (on PostGIS; a GeoPackage has no
    roles). Each submission of a gold tile is scored against them (`geolabel tasks quality`).

    \b
    Example:
      geolabel tasks gold labels.gpkg --tiles village_r002_c003,village_r005_c001 --reference truth.gpkg
    """
    from geolabel.gold import mark_gold
    from geolabel.vocabulary import parse_list

    click.echo(mark_gold(store, parse_list(tile_ids), reference, class_field=class_field, layer=layer).line())


@tasks.command(short_help="Leaderboard of labelers and teams on gold tiles.")
@click.argument("store", type=STORE)
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False), help="Also write an HTML report here.")
@click.option("--overwrite", is_flag=True, help="Replace an earlier quality report in --report.")
def quality(store: str, as_json: bool, report_dir: str | None, overwrite: bool) -> None:
    """Score the gold submissions not scored yet, then rank labelers and teams by mean IoU
    on their gold tiles (also F1, correctness, completeness, boundary F). --report writes
    quality.html with one chart per labeler of their scores over time.

    \b
    Example:
      geolabel tasks quality labels.gpkg --report quality/
    """
    import json

    from geolabel.gold import quality as rank

    result = rank(store)
    if report_dir:
        from geolabel.gold_report import write_quality_report

        write_quality_report(result, report_dir, overwrite=overwrite)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    if not result.labelers:
        click.echo("no gold submissions scored yet; mark tiles with `geolabel tasks gold`")
        return
    for title, rows in (("labelers", result.labelers), ("teams", result.teams)):
        click.echo(f"{title} (by mean IoU on gold tiles):")
        head = ["#", "team", "labeler", "gold tiles", "IoU", "F1", "correctness", "completeness", "boundary F"]
        body = [
            [str(r.rank), r.team, r.labeler or "-", str(r.tiles),
             *(f"{r.means[k]:.3f}" for k in ("iou", "f1", "correctness", "completeness", "boundary_f"))]
            for r in rows
        ]  # fmt: skip
        for line in aligned(head, body, text_columns=3):
            click.echo("  " + line)
    if report_dir:
        click.echo(f"report: {report_dir}/quality.html")


_THRESHOLD = click.option(
    "--threshold",
    type=float,
    default=v.LOW_KAPPA,
    show_default=True,
    help="Consensus tiles whose Cohen's kappa is below this have low agreement.",
)


@tasks.command(short_help="Agreement of the two copies of consensus tiles, per pair and tile.")
@click.argument("store", type=STORE)
@click.option("--team", help="Only this team's tiles.")
@_THRESHOLD
@click.option("--json", "as_json", is_flag=True, help="As JSON (with the confusion matrices in m²).")
def agreement(store: str, team: str | None, threshold: float, as_json: bool) -> None:
    """Agreement of each consensus tile whose copies are both submitted or accepted: the
    IoU of each class's regions and Cohen's kappa by area over the tile, per tile and per
    pair of labelers (pooled over their tiles). Tiles below --threshold are marked LOW.

    \b
    Example:
      geolabel tasks agreement labels.gpkg --threshold 0.6
    """
    import json

    from geolabel.consensus import agreement as measure

    report = measure(store, team=team, threshold=threshold)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    if not report.tiles:
        click.echo("no consensus tile has both copies submitted yet")
        return
    click.echo("pairs (kappa, mean IoU, tiles):")
    for p in report.pairs:
        click.echo(f"  {p.team}  {p.labelers[0]} / {p.labelers[1]}  {p.kappa:.3f}  {p.mean_iou:.3f}  {len(p.tiles)}")
    click.echo("tiles (kappa, mean IoU, IoU per class):")
    for t in report.tiles:
        ious = ", ".join(f"{name} {value:.3f}" for name, value in t.iou.items())
        low = "  LOW" if t.is_low(threshold) else ""
        click.echo(f"  {t.tiles[0]}  {t.labelers[0]} / {t.labelers[1]}  {t.kappa:.3f}  {t.mean_iou:.3f}  {ious}{low}")


@tasks.command(short_help="Submitted tiles in the order to review them.")
@click.argument("store", type=STORE)
@click.option("--team", help="Only this team's tiles.")
@_THRESHOLD
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
def queue(store: str, team: str | None, threshold: float, as_json: bool) -> None:
    """Submitted tasks waiting for review: consensus tiles whose copies disagree (kappa below
    --threshold) first, lowest first, then the rest in submission order.

    \b
    Example:
      geolabel tasks queue labels.gpkg --team changsha
    """
    import json

    from geolabel.consensus import review_queue

    items = review_queue(store, team=team, threshold=threshold)
    if as_json:
        click.echo(json.dumps([i.to_dict() for i in items], indent=2))
        return
    if not items:
        click.echo("nothing submitted is waiting for review")
        return
    for i in items:
        kappa = f"  kappa {i.kappa:.3f}" if i.kappa is not None else ""
        low = "  LOW AGREEMENT" if i.low else ""
        t = i.task
        click.echo(f"{t.tile_id}  copy {t.copy}  {t.team}  {t.labeler}  {t.submitted_at}{kappa}{low}")

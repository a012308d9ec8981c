"""``geolabel check``: quality control of a label store or a delivered vector file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from geolabel import garbage
from geolabel import vocabulary as v
from geolabel.cli.options import STORE, Progress, batch_executor, scheduler_option

if TYPE_CHECKING:
    from geolabel.labels.delivery import Delivery
    from geolabel.qa.findings import QAResult
    from geolabel.qa.incremental import CheckState


@click.command(short_help="Quality control of a delivery (validity, overlaps, gaps, slivers, schema).")
@click.argument("source", type=STORE)
@click.option("--schema", "schema_path", type=click.Path(dir_okay=False), help="Class schema (.toml/.json).")
@click.option("--class-field", help="Class field of a delivered file (default: class_code, class_name, class ...).")
@click.option("--class", "single_class", help="Give every feature this class (single-class deliveries, e.g. building).")
@click.option("--layer", help="Layer of a multi-layer file.")
@click.option("--aoi", type=click.Path(dir_okay=False), help="Area to be labelled wall to wall (vector file).")
@click.option(
    "--tiles",
    type=click.Path(dir_okay=False),
    help="Tile index: labels must lie on the chips' image data and cover it (nodata excluded).",
)
@click.option("--done-only", is_flag=True, help="With --tiles and a store: only tiles marked done must be covered.")
@click.option("--min-area", default=v.CHECK_MIN_AREA_M2, show_default=True, help="Minimum mapping unit, m².")
@click.option(
    "--min-width",
    default=v.CHECK_MIN_WIDTH_M,
    show_default=True,
    help="Polygons thinner than this (mean width, m) are slivers.",
)
@click.option(
    "--spike-angle",
    default=v.CHECK_SPIKE_ANGLE_DEG,
    show_default=True,
    help="Vertex angles below this (degrees) are spikes.",
)
@click.option("--require", default=None, help="Attributes that must be filled, e.g. labeler,team.")
@click.option("--crs", "expected_crs", default=None, help="The CRS deliveries must be in, e.g. EPSG:32649.")
@click.option(
    "--store",
    "central",
    type=STORE,
    help="With a site delivery: also check it against this central store (other teams' tiles and accepted labels).",
)
@click.option("--workers", type=int, default=None, help="Worker processes (default: all cores).")
@scheduler_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Report folder (findings.gpkg, report.html).")
@click.option("--overwrite", is_flag=True, help="Replace an existing report folder.")
@click.option(
    "--tiles-changed",
    is_flag=True,
    help="With --out: recheck only the labels changed since the check saved in that folder (full the first time), "
    "and save this check there for the next.",
)
@click.option("-q", "--quiet", is_flag=True, help="Only the exit code and the summary line.")
def check(
    source: str,
    schema_path: str | None,
    class_field: str | None,
    single_class: str | None,
    layer: str | None,
    aoi: str | None,
    tiles: str | None,
    done_only: bool,
    min_area: float,
    min_width: float,
    spike_angle: float,
    require: str | None,
    expected_crs: str | None,
    central: str | None,
    workers: int | None,
    scheduler: str | None,
    out_dir: str | None,
    overwrite: bool,
    tiles_changed: bool,
    quiet: bool,
) -> None:
    """Check SOURCE (a label store, .gpkg or PostgreSQL location, or a GeoPackage/GeoJSON/Shapefile delivery).

    Exit code 0: no errors (warnings allowed); 1: findings of severity error;
    2: unusable input.

    \b
    Examples:
      geolabel check out/labels.gpkg --out out/qa
      geolabel check out/labels.gpkg --out out/qa --tiles-changed   # again after edits: only what changed
      geolabel check delivery.geojson --aoi aoi.gpkg --require labeler,team --crs EPSG:32649 --out qa
      geolabel check changsha-0601.gpkg --store "postgresql://admin@db.center/labels?schema=village"
    """
    from geolabel.labels.delivery import load_delivery
    from geolabel.labels.schema import load_schema
    from geolabel.qa import check_labels
    from geolabel.qa.state_file import save_check_state
    from geolabel.report import check_report_folder, write_report

    if tiles_changed and not out_dir:
        raise click.UsageError("--tiles-changed needs --out: the folder keeps the check to start from")
    if out_dir:  # --tiles-changed updates the report in that folder: replaced as with --overwrite
        overwrite = overwrite or tiles_changed
        check_report_folder(out_dir, overwrite=overwrite)
    schema = load_schema(schema_path) if schema_path else None
    delivery = load_delivery(source, schema=schema, class_field=class_field, layer=layer, single_class=single_class)
    options: dict[str, Any] = {
        "aoi": aoi, "tiles": tiles, "done_only": done_only, "min_area": min_area, "min_width": min_width,
        "spike_angle": spike_angle, "require": require or (), "expected_crs": expected_crs,
    }  # fmt: skip
    state = None
    with batch_executor(scheduler, workers) as executor, Progress("check", quiet=quiet) as bar:
        if tiles_changed:
            result, state = _check_changed(delivery, str(out_dir), options, workers, executor, bar, quiet)
        else:
            result = check_labels(delivery, **options, workers=workers, executor=executor, progress=bar)
    if central:
        _add_central_findings(result, source, central)
    if out_dir:
        write_report(result, out_dir, schema=delivery.schema, overwrite=overwrite, workers=workers)
    if state is not None:
        save_check_state(state, str(out_dir))
    garbage.keep_to_exit(result, delivery, state)  # freed by the exit, not one by one
    if not quiet:
        for t, c in result.counts().items():
            click.echo(f"{t:<18} {c['error']:>6} errors {c['warning']:>6} warnings")
        if result.completeness is not None:
            click.echo(f"completeness: {result.completeness:.2%} ({result.gap_area_m2:,.1f} m² unlabelled)")
        for f in result.findings[:10]:
            click.echo(f"  {f.severity}: {f.message}")
        if len(result.findings) > 10:
            click.echo(f"  ... {len(result.findings) - 10} more")
    verdict = "FAILED" if result.errors else "passed"
    where = f"; report: {out_dir}/report.html, findings: {out_dir}/findings.gpkg" if out_dir else ""
    click.echo(
        f"{delivery.source}: {verdict}: {result.errors} errors, {result.warnings} warnings "
        f"on {result.n_features} features{where}"
    )
    click.get_current_context().exit(1 if result.errors else 0)


def _check_changed(
    delivery: Delivery, out_dir: str, options: dict[str, Any], workers: int | None, executor: Any, bar: Any, quiet: bool
) -> tuple[QAResult, CheckState]:
    """The check reusing the one saved in ``out_dir`` (a full one without it), saying which it was."""
    from geolabel.qa import check_changed
    from geolabel.qa.state_file import STATE_NAME, load_check_state

    previous, note = load_check_state(out_dir, **options)
    if note is not None and previous is None and Path(out_dir, STATE_NAME).is_file():
        click.echo(f"note: {note}; checking everything", err=True)
    result, state = check_changed(delivery, previous, **options, workers=workers, executor=executor, progress=bar)
    if not quiet:
        click.echo(f"check: {state.how}")
    return result, state


def _add_central_findings(result: QAResult, source: str, central: str) -> None:
    """A site delivery's conflicts with the central store, among the other findings."""
    from geolabel.conflicts import central_findings
    from geolabel.deliveries import read_delivery
    from geolabel.labels.store import open_store
    from geolabel.qa.findings import sort_findings

    delivery = read_delivery(source)
    with open_store(central) as store:
        result.findings += central_findings(store, delivery, result)
    sort_findings(result.findings)

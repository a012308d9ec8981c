"""``geolabel labels``: create a label store, import labels, resolve overlaps, statistics."""

from __future__ import annotations

import json

import click

from geolabel import vocabulary as v
from geolabel.cli.options import STORE


@click.group(short_help="Label store: init, import, resolve, stats, history, restore, copy.")
def labels() -> None:
    """Keep land-cover labels in a label store: a GeoPackage QGIS edits natively, or a
    PostGIS project a team shares (postgresql://user@host/db?schema=NAME)."""


@labels.command(short_help="Create an empty label store.")
@click.argument("store", type=STORE)
@click.option("--crs", "crs", required=True, help="Store CRS, e.g. EPSG:32649 (metric CRSs recommended).")
@click.option("--schema", "schema_path", type=click.Path(dir_okay=False), help="Class schema file (.toml or .json).")
@click.option(
    "--tag-schema",
    "tag_schema_path",
    type=click.Path(dir_okay=False),
    help="Tile tag schema file (.toml or .json), for whole-image labels (`geolabel tags`).",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing store (its labels are lost).")
def init(store: str, crs: str, schema_path: str | None, tag_schema_path: str | None, overwrite: bool) -> None:
    """Create STORE with an empty `labels` layer in CRS and the class schema.

    STORE is a GeoPackage file (.gpkg) or, for a team, a project schema in PostgreSQL with
    PostGIS: postgresql://user@host:port/db?schema=NAME (or PG:service=NAME schema=NAME);
    a password is best kept in ~/.pgpass or a service file, not on the command line.

    \b
    Examples:
      geolabel labels init out/labels.gpkg --crs EPSG:32649
      geolabel labels init out/labels.gpkg --crs EPSG:32649 --tag-schema sample_data/village_tags.toml
      geolabel labels init "postgresql://admin@db.center/labels?schema=village" --crs EPSG:32649
    """
    from geolabel.cli.tags import echo_tag_schema
    from geolabel.crs import crs_label
    from geolabel.labels.schema import load_schema
    from geolabel.labels.store import create_store
    from geolabel.labels.tagschema import load_tag_schema

    schema = load_schema(schema_path)
    tag_schema = load_tag_schema(tag_schema_path) if tag_schema_path else None
    st = create_store(store, crs=crs, schema=schema, tag_schema=tag_schema, overwrite=overwrite)
    click.echo(f"created {st.uri}: CRS {crs_label(st.crs)}, {len(schema)} classes ({schema.name} schema)")
    for cls in schema:
        zh = f" / {cls.names['zh']}" if "zh" in cls.names else ""
        click.echo(f"  {cls.code:3d}  {cls.name}{zh}  priority {cls.priority}  {cls.color}")
    if tag_schema is not None:
        echo_tag_schema(st.uri, tag_schema)
    st.close()


@labels.command("import", short_help="Import polygons from vector files.")
@click.argument("store", type=STORE)
@click.argument("sources", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--class-field", help="Field holding the class (default: the first of class_code, class_name, class ...)."
)
@click.option("--class-map", help="Map source values to classes: name=class,code=class (e.g. wood=forest,11=water).")
@click.option("--class", "single_class", help="Give every feature this class (single-class sources, e.g. buildings).")
@click.option(
    "--src-crs", help="CRS of sources that declare none (never assumed): EPSG:xxxx, WKT, or a file to take it from."
)
@click.option("--layer", help="Layer to read from multi-layer sources.")
@click.option("--labeler", help="Labeler name for every imported label (default: the source's labeler field).")
@click.option("--team", help="Team for every imported label (default: the source's team field).")
@click.option(
    "--status",
    type=click.Choice(v.STATUSES),
    help="Review status of the imported labels (default: the source's status field, else draft).",
)
def import_(
    store: str,
    sources: tuple[str, ...],
    class_field: str | None,
    class_map: str | None,
    single_class: str | None,
    src_crs: str | None,
    layer: str | None,
    labeler: str | None,
    team: str | None,
    status: str | None,
) -> None:
    """Import SOURCES (GeoJSON, Shapefile, GeoPackage, FlatGeobuf) into STORE.

    Sources are reprojected to the store CRS, classes mapped to the store's schema,
    invalid polygons repaired (reported), MultiPolygons exploded into one label per part.
    Features that cannot be labels are rejected with a reason. Everything is written in
    one transaction: if any source fails, the store is unchanged.

    \b
    Examples:
      geolabel labels import out/labels.gpkg sample_data/village_labels.gpkg --labeler li --team hunan
      geolabel labels import labels.gpkg osm.geojson --class-field landuse --class-map wood=forest,meadow=grassland
    """
    from geolabel.labels.importer import import_labels
    from geolabel.labels.store import open_store

    with open_store(store) as st:
        reports = import_labels(
            st,
            list(sources),
            class_field=class_field,
            class_map=class_map,
            single_class=single_class,
            src_crs=src_crs,
            layer=layer,
            labeler=labeler,
            team=team,
            status=status,
        )
        for report in reports:
            click.echo(report.line())
            if report.classes:
                click.echo("  classes: " + report.class_line())
            if report.repairs:
                click.echo("  repairs: " + "; ".join(f"{n} {kind}" for kind, n in report.repairs.most_common()))
        click.echo(f"{st.uri}: {st.count()} labels")


@labels.command(short_help="Resolve overlaps by class priority, clean slivers.")
@click.argument("store", type=STORE)
@click.option(
    "--min-area",
    default=v.RESOLVE_MIN_AREA_M2,
    show_default=True,
    help="Minimum mapping unit, m²: smaller parts are slivers.",
)
@click.option(
    "--min-width",
    default=v.RESOLVE_MIN_WIDTH_M,
    show_default=True,
    help="Parts narrower than this (m) are spikes (0 = off).",
)
@click.option(
    "--same-class",
    type=click.Choice(v.SAME_CLASS_RULES),
    default=v.SAME_CLASS_RULES[0],
    show_default=True,
    help="Overlapping labels of the same class: merge them, or only count them.",
)
@click.option(
    "--precision", default=0.0, show_default=True, help="Snap coordinates to this grid first (CRS units, 0 = off)."
)
@click.option("--dry-run", is_flag=True, help="Report what would change without writing.")
def resolve(store: str, min_area: float, min_width: float, same_class: str, precision: float, dry_run: bool) -> None:
    """Make STORE's labels a clean partition: no overlaps, no slivers.

    Where labels of different classes overlap, the higher-priority class keeps the area
    and is cut out of the lower one (water out of farmland). Same-class overlaps are
    merged (the earliest label keeps its id). Parts smaller than --min-area join the
    neighbour that shares the longest edge with them, or are dropped if they touch no
    other label. A label cut into pieces keeps its id on the largest piece; the others
    become new labels. All changes are written in one transaction.

    \b
    Example:
      geolabel labels resolve out/labels.gpkg --min-area 2
    """
    from geolabel.labels.resolve import resolve_store
    from geolabel.labels.store import open_store

    with open_store(store) as st:
        report = resolve_store(
            st, min_area=min_area, min_width=min_width, same_class=same_class, precision=precision, dry_run=dry_run
        )
        for line in report.lines():
            click.echo(line)
        if dry_run:
            click.echo("dry run: nothing written")


@labels.command(short_help="Per-class counts and areas.")
@click.argument("store", type=STORE)
@click.option(
    "--units", type=click.Choice(v.AREA_UNITS), default=None, help="Only this area unit (default: all three)."
)
@click.option("--ellipsoidal", is_flag=True, help="Geodesic areas on the ellipsoid even in a projected CRS.")
@click.option("--lang", default=None, help="Show localized class names, e.g. zh.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def stats(store: str, units: str | None, ellipsoidal: bool, lang: str | None, as_json: bool) -> None:
    """Count and area of STORE's labels per class, in m², hectares and mu (1 mu = 666.67 m²).

    Areas are planar in the store's projected CRS (in metres), geodesic in a
    geographic CRS, or geodesic everywhere with --ellipsoidal.
    """
    from geolabel.labels.stats import class_stats
    from geolabel.labels.store import open_store

    with open_store(store) as st:
        rows = class_stats(st.query(), st.schema, st.crs, ellipsoidal=ellipsoidal)
        schema = st.schema
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in rows], ensure_ascii=False, indent=2))
        return
    cols = [units] if units else list(v.AREA_UNITS)
    header = f"{'code':>4}  {'class':<16} {'count':>7}" + "".join(f" {u:>14}" for u in cols)
    click.echo(header)
    total = {"count": 0, "m2": 0.0, "ha": 0.0, "mu": 0.0}
    for r in rows:
        cls = schema.find(r.code) if r.code >= 0 else None
        name = cls.label(lang) if cls else r.name
        values = {"m2": r.area_m2, "ha": r.area_ha, "mu": r.area_mu}
        click.echo(f"{r.code:>4}  {name:<16} {r.count:>7}" + "".join(f" {values[u]:>14,.2f}" for u in cols))
        total["count"] += r.count
        for u in v.AREA_UNITS:
            total[u] += values[u]
    click.echo(f"{'':>4}  {'total':<16} {int(total['count']):>7}" + "".join(f" {total[u]:>14,.2f}" for u in cols))


def _register() -> None:
    from geolabel.cli.copy import copy
    from geolabel.cli.deliver import deliver, merge
    from geolabel.cli.history import history, restore

    labels.add_command(history)
    labels.add_command(restore)
    labels.add_command(copy)
    labels.add_command(deliver)
    labels.add_command(merge)


_register()

"""``geolabel tags``: whole-image labels. Tag schema, tags per tile (set, import, list) and
tags derived from the polygons (suggest)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from geolabel import vocabulary as v
from geolabel.cli.options import STORE

if TYPE_CHECKING:
    from geolabel.labels.tagschema import TagSchema


@click.group(short_help="Tile tags (whole-image labels): schema, set, import, list, suggest.")
def tags() -> None:
    """Tag whole tiles with what they show ("water", "paddy", "crossroads"), beside the
    polygons: the labels of image-classification training sets."""


@tags.command(short_help="Set or change the store's tag schema.")
@click.argument("store", type=STORE)
@click.argument("schema_path", metavar="FILE", type=click.Path(dir_okay=False))
def schema(store: str, schema_path: str) -> None:
    """Make FILE (.toml or .json: tags with code, name, color, names; mode multi or single)
    STORE's tag schema. A tag given to a tile cannot be removed.

    \b
    Example:
      geolabel tags schema out/labels.gpkg sample_data/village_tags.toml
    """
    from geolabel.labels.store import open_store
    from geolabel.labels.tags import set_tag_schema
    from geolabel.labels.tagschema import load_tag_schema

    tag_schema = load_tag_schema(schema_path)
    with open_store(store) as st:  # messages show st.uri: a location's password never
        set_tag_schema(st, tag_schema)
        echo_tag_schema(st.uri, tag_schema)


def echo_tag_schema(store: str, tag_schema: TagSchema) -> None:
    """The tag schema as `tags schema` and `labels init --tag-schema` show it."""
    click.echo(f"{store}: tag schema {tag_schema.name!r}, {len(tag_schema)} tags, {tag_schema.mode}-label")
    for tag in tag_schema:
        zh = f" / {tag.names['zh']}" if "zh" in tag.names else ""
        click.echo(f"  {tag.code:3d}  {tag.name}{zh}  {tag.color}")


_LABELER = click.option("--labeler", help="Who gives the tags (default on PostGIS: your database role).")
_STATUS = click.option("--status", type=click.Choice(v.STATUSES), default="draft", show_default=True,
                       help="Review status of the tags.")  # fmt: skip


@tags.command("set", short_help="Give one tile its tags.")
@click.argument("store", type=STORE)
@click.option("--tile", "tile_id", required=True, help="The tile's id (as in the tile index).")
@click.option("--tags", "tag_list", required=True, help="Tags, comma-separated (names in any language, or codes).")
@_LABELER
@_STATUS
def set_(store: str, tile_id: str, tag_list: str, labeler: str | None, status: str) -> None:
    """Give tile ID exactly these tags from LABELER, replacing what LABELER gave it before
    (--tags "" clears them). A single-label project takes one tag.

    \b
    Example:
      geolabel tags set out/labels.gpkg --tile village_r001_c001 --tags paddy,village --labeler li
    """
    from geolabel.labels.store import open_store
    from geolabel.labels.tags import set_tile_tags, tag_name

    with open_store(store) as st:
        rows = set_tile_tags(st, tile_id, v.parse_list(tag_list), labeler=labeler, status=status)
        given = ", ".join(tag_name(st, r) for r in rows) or "no tags (cleared)"
    who = f" ({rows[0].labeler}, {status})" if rows else ""
    click.echo(f"tile {tile_id}: {given}{who}")


@tags.command("import", short_help="Import tile tags from a CSV file.")
@click.argument("store", type=STORE)
@click.argument("csv_path", metavar="FILE", type=click.Path(dir_okay=False))
@click.option("--labeler", help="Labeler of rows without one (default on PostGIS: your database role).")
@_STATUS
def import_(store: str, csv_path: str, labeler: str | None, status: str) -> None:
    """Import FILE, a CSV with columns tile_id, tags (separated by commas or semicolons)
    and optionally labeler and status. Each row replaces that labeler's tags of the tile.
    A bad row refuses the whole file (the store is unchanged).

    \b
    Example:
      geolabel tags import out/labels.gpkg tags.csv --labeler li
    """
    from geolabel.labels.tags import import_tags

    click.echo(f"{csv_path}: " + import_tags(store, csv_path, labeler=labeler, status=status).line())


@tags.command("list", short_help="Tags given to tiles.")
@click.argument("store", type=STORE)
@click.option("--tile", "tile_id", help="Only this tile.")
@click.option("--tag", help="Only this tag.")
@click.option("--labeler", help="Only this labeler's tags.")
@click.option("--format", "fmt", type=click.Choice(v.TAG_LIST_FORMATS), default="table", show_default=True)
def list_(store: str, tile_id: str | None, tag: str | None, labeler: str | None, fmt: str) -> None:
    """Every tag given to a tile: tile, tag, labeler, status and when.

    \b
    Example:
      geolabel tags list out/labels.gpkg --tag water --format csv
    """
    from geolabel.labels.tags import list_tile_tags

    rows = list_tile_tags(store, tile_id=tile_id, tag=tag, labeler=labeler)
    fields = ["tile_id", "tag", "labeler", "status", "modified"]
    if fmt == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, indent=1))
    elif fmt == "csv":
        import csv
        import io

        out = io.StringIO()
        writer = csv.DictWriter(out, fields, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        click.echo(out.getvalue(), nl=False)
    else:
        table = [fields, *([str(r[f]) for f in fields] for r in rows)]
        widths = [max(len(line[k]) for line in table) for k in range(len(fields))]
        for line in table:
            click.echo("  ".join(f"{value:<{w}}" for value, w in zip(line, widths)).rstrip())


@tags.command(short_help="Tag tiles by the share of their area a class's polygons cover.")
@click.argument("store", type=STORE)
@click.option("--tiles", required=True, type=click.Path(dir_okay=False), help="Tile index (tiles.gpkg).")
@click.option("--rule", "rules", multiple=True, required=True,
              help="CLASS>=SHARE, e.g. water>=0.2 or water>=20% (repeatable).")  # fmt: skip
@click.option("--tag", help="The tag a single rule gives (default: the tag named like its class).")
@click.option("--dry-run", is_flag=True, help="Report what would be tagged without writing.")
def suggest(store: str, tiles: str, rules: tuple[str, ...], tag: str | None, dry_run: bool) -> None:
    """Give every tile of the tile index whose area is covered by STORE's labels of a
    rule's class at least by the rule's share that rule's tag, as draft tags of labeler
    "suggest" (replacing its earlier ones), for labelers to confirm. Areas are in m².

    \b
    Example:
      geolabel tags suggest out/labels.gpkg --tiles out/chips/tiles.gpkg --rule "water>=0.2" --rule "forest>=0.5"
    """
    from geolabel.labels.tag_rules import suggest_tags

    result = suggest_tags(store, tiles, list(rules), tag=tag, dry_run=dry_run)
    for line in result.lines():
        click.echo(line)
    if dry_run:
        click.echo("dry run: nothing written")

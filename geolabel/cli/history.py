"""``geolabel labels history`` and ``geolabel labels restore``: who changed what, and undoing it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from geolabel.cli.options import STORE

if TYPE_CHECKING:
    from geolabel.labels.store import HistoryEntry

HEADER = ("time", "action", "label", "db role", "labeler", "version")


@click.command(short_help="Changes of labels: who, when, which version.")
@click.argument("store", type=STORE)
@click.option("--label", "label_id", help="Only this label (its label_id).")
@click.option("--labeler", help="Only changes of labels by this labeler.")
@click.option("--since", help="Only changes at or after this ISO date/time (UTC unless it says, e.g. +08:00).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (old geometries as WKT) instead of a table.")
def history(store: str, label_id: str | None, labeler: str | None, since: str | None, as_json: bool) -> None:
    """Every recorded insert, update and delete of STORE's labels, oldest first, whoever
    made it (geolabel, QGIS, SQL): time, action, label id, database role ('-' in a
    GeoPackage), labeler and the version before -> after.

    \b
    Examples:
      geolabel labels history out/labels.gpkg --label 3f2a9c61-...
      geolabel labels history "postgresql://li@db/labels?schema=village" --since 2024-05-01 --labeler li
    """
    from geolabel.labels.history import label_history

    entries = label_history(store, label_id=label_id, labeler=labeler, since=since)
    if as_json:
        click.echo(json.dumps([_entry_dict(e) for e in entries], ensure_ascii=False, indent=1))
        return
    for line in history_table(entries):
        click.echo(line)


def _version(value: int | None) -> str:
    return "-" if value is None else str(value)


def history_table(entries: Sequence[HistoryEntry]) -> list[str]:
    """The entries as aligned text lines under a header (widths from the content)."""
    rows: list[tuple[str, ...]] = [HEADER]
    rows += [
        (
            e.changed_at,
            e.action,
            e.label_id,
            e.db_role or "-",
            e.labeler or "-",
            f"{_version(e.old_version)} -> {_version(e.new_version)}",
        )
        for e in entries
    ]
    widths = [max(len(r[k]) for r in rows) for k in range(len(HEADER) - 1)]
    return ["  ".join([*(f"{v:<{w}}" for v, w in zip(r, widths)), r[-1]]) for r in rows]


def _entry_dict(e: HistoryEntry) -> dict[str, Any]:
    return {
        "history_id": e.history_id,
        "changed_at": e.changed_at,
        "action": e.action,
        "label_id": e.label_id,
        "db_role": e.db_role,
        "labeler": e.labeler,
        "old_version": e.old_version,
        "new_version": e.new_version,
        "old_fields": e.old_fields,
        "old_geom": None if e.old_geom is None else e.old_geom.wkt,
    }


@click.command(short_help="Bring an old version of a label back.")
@click.argument("store", type=STORE)
@click.option("--label", "label_id", required=True, help="The label (its label_id).")
@click.option("--version", "version", required=True, type=click.IntRange(min=1), help="The version to bring back.")
def restore(store: str, label_id: str, version: int) -> None:
    """Make VERSION of a label of STORE (geometry, class and other fields) its newest
    version again; a deleted label comes back with its id. The history keeps everything
    in between (see `geolabel labels history`).

    \b
    Example:
      geolabel labels restore out/labels.gpkg --label 3f2a9c61-... --version 2
    """
    from geolabel.labels.history import restore_label
    from geolabel.labels.store import open_store

    with open_store(store) as st:
        new = restore_label(st, label_id, version)
        if new == version:
            click.echo(f"{st.uri}: label {label_id} is at version {version} already; nothing to do")
        else:
            click.echo(f"{st.uri}: label {label_id}: version {version} restored as version {new}")

"""Format ``tags``: the tiles' tags (whole-image labels) as an image-classification set.

Files, beside ``images/<split>/<tile_id>.tif`` (paths relative to the dataset folder)::

    tags/classes.csv                           index, code, name, colour of each tag (schema order)
    tags/<split>.csv                           image, tile_id, tags, [tag,] labeler, status
    tags/geojson/<split>/<tile_id>.geojson     one Feature: the chip's footprint and its tags
    images_by_tag/<split>/<tag>/<tile_id>.tif  single-label projects: ImageFolder links
    stac/...                                   a ``tags`` collection of label items

``tags`` holds a tile's tag names joined by ``;`` in schema order (what ``fastai``'s
``label_delim=';'`` reads); single-label projects also get the ``tag`` column. Only chips
with tags are listed; a split's CSV has its header even when none of its chips has tags.
The ImageFolder links are relative symbolic links to the chips in ``images/`` (hard links,
else copies, where the file system has no symbolic links), so the folder can be moved.

Which tags a tile gets (:func:`choose_tags`): only rows whose review status is in the
export's ``status`` (all rows when None), then, per tile, the tags of its most trusted
labeler: the least reviewed status of a labeler's tags on the tile ranks them (accepted,
reviewed, submitted, draft, rejected), and a person outranks the suggestions derived from
polygons (labeler ``suggest``) of the same status. When several labelers share the top
rank they must agree on the whole set; if they do not, the tile is a *conflict*: left out
and counted in ``summary.json`` (``geolabel check`` lists such tiles for review).

>>> from geolabel.labels.tagschema import TagSchema, TileTag
>>> schema = TagSchema.from_dict({"tags": [{"code": 1, "name": "water"}, {"code": 2, "name": "paddy"}]})
>>> rows = [TileTag("a", 1, "li", "accepted", ""), TileTag("a", 2, "wang", "draft", ""),
...         TileTag("b", 1, "li", "draft", ""), TileTag("b", 2, "wang", "draft", "")]
>>> chosen = choose_tags(rows, schema)
>>> chosen.names("a"), chosen.tiles["a"].labelers, sorted(chosen.conflicts)
(['water'], ('li',), ['b'])
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from geolabel import vocabulary
from geolabel.errors import InputError
from geolabel.export import layout
from geolabel.export.jobs import DatasetParts, TileResult

if TYPE_CHECKING:
    from geolabel.labels.store import LabelStore
    from geolabel.labels.tagschema import TagSchema, TileTag

#: How far a review status is trusted when labelers' tags of a tile differ.
STATUS_TRUST = {"accepted": 3, "reviewed": 2, "submitted": 1, "draft": 0, "rejected": -1}
#: Columns of ``tags/<split>.csv``; ``tag`` only in single-label projects.
CSV_COLUMNS = ("image", "tile_id", "tags", "tag", "labeler", "status")


@dataclass(frozen=True)
class TileTagSet:
    """The tags a tile is exported with, who gave them and their (least reviewed) status."""

    codes: tuple[int, ...]  # in schema order
    labelers: tuple[str, ...]  # several when labelers of the same rank agree
    status: str


@dataclass(frozen=True)
class ExportTags:
    """The tags an export writes: the schema, each tagged tile's chosen tags, and the tiles
    left out because their labelers disagree."""

    schema: TagSchema
    tiles: Mapping[str, TileTagSet]
    conflicts: frozenset[str]

    def names(self, tile_id: str) -> list[str]:
        """The tag names of a tile, in schema order."""
        return [self.schema.get(c).name for c in self.tiles[tile_id].codes]


def read_export_tags(store: LabelStore, *, status: Sequence[str] | None) -> ExportTags:
    """The store's tag schema and its tiles' chosen tags (:func:`choose_tags`); a store
    without a tag schema, or with a tag code its schema lacks, is refused."""
    from geolabel.labels.schema import SchemaError

    try:
        schema = store.read_tag_schema()
    except SchemaError as exc:  # a store written by something else than geolabel
        raise InputError(f"{store.uri}: {exc}") from None
    if schema is None:
        raise InputError(
            f"{store.uri}: the store has no tag schema, which `formats='tags'` needs; set one with `set_tag_schema()`",
            params=("formats", "set_tag_schema()"),
        )
    rows = store.tile_tags()
    for r in rows:
        if r.tag_code not in schema:
            raise InputError(f"{store.uri}: tile {r.tile_id} has tag code {r.tag_code}, which the tag schema lacks")
    return choose_tags(rows, schema, status=status)


def choose_tags(rows: Iterable[TileTag], schema: TagSchema, *, status: Sequence[str] | None = None) -> ExportTags:
    """Each tile's tags from its most trusted labeler (see the module's text)."""
    by_tile: dict[str, dict[str, list[TileTag]]] = {}
    for r in rows:
        if status is None or r.status in status:
            by_tile.setdefault(r.tile_id, {}).setdefault(r.labeler, []).append(r)
    chosen: dict[str, TileTagSet] = {}
    conflicts: set[str] = set()
    for tile_id, by_labeler in sorted(by_tile.items()):
        pick = _pick(by_labeler)
        if pick is None:
            conflicts.add(tile_id)
        else:
            chosen[tile_id] = pick
    return ExportTags(schema, chosen, frozenset(conflicts))


def _pick(by_labeler: Mapping[str, list[TileTag]]) -> TileTagSet | None:
    """The tags of the top-ranked labelers of one tile, None when they disagree."""
    rank = {
        name: (min(STATUS_TRUST[r.status] for r in rows), name != vocabulary.TAG_SUGGEST_LABELER)
        for name, rows in by_labeler.items()
    }
    best = max(rank.values())
    top = sorted(name for name, r in rank.items() if r == best)
    sets = {tuple(sorted(r.tag_code for r in by_labeler[name])) for name in top}
    if len(sets) > 1:
        return None
    status = next(s for s, trust in STATUS_TRUST.items() if trust == best[0])
    return TileTagSet(sets.pop(), tuple(top), status)


def tagged_tiles(parts: DatasetParts) -> dict[str, list[TileResult]]:
    """The exported tiles with tags, by split (every split of the dataset, maybe empty)."""
    assert parts.tags is not None  # the driver reads them when "tags" is asked for
    out: dict[str, list[TileResult]] = {}
    for r in parts.tiles:
        out.setdefault(r.split, [])
        if r.tile_id in parts.tags.tiles:
            out[r.split].append(r)
    return out


def write_tags(parts: DatasetParts) -> list[str]:
    """Format ``tags``: the CSVs, the tiles' GeoJSON, ImageFolder links (single-label) and,
    unless format ``stac`` writes it, the STAC catalog with the tags collection."""
    from geolabel.export.stac import write_catalog

    assert parts.tags is not None
    folders = _tag_folders(parts.tags.schema) if parts.tags.schema.is_single else {}
    by_split = tagged_tiles(parts)
    files = [_write_classes(parts.folder, parts.tags.schema)]
    for split, tiles in by_split.items():
        files.append(_write_csv(parts.folder, split, tiles, parts.tags))
        files += [_write_feature(parts, r) for r in tiles]
    if folders:
        _link_by_tag(parts.folder, by_split, parts.tags, folders)
    if "stac" not in parts.formats:
        files += write_catalog(parts)
    return files


def _write_classes(folder: Path, schema: TagSchema) -> str:
    """``tags/classes.csv``: the class index of each tag (its place in schema order)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["index", "code", "name", "color"])
    writer.writerows([i, t.code, t.name, t.color] for i, t in enumerate(schema))
    layout.target(folder, layout.TAG_CLASSES).write_text(buf.getvalue(), encoding="utf-8")
    return layout.TAG_CLASSES


def _write_csv(folder: Path, split: str, tiles: Sequence[TileResult], tags: ExportTags) -> str:
    """``tags/<split>.csv``: one row per tagged chip of the split."""
    single = tags.schema.is_single
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([c for c in CSV_COLUMNS if single or c != "tag"])
    for r in tiles:
        chosen, names = tags.tiles[r.tile_id], tags.names(r.tile_id)
        row = [layout.image(split, r.tile_id), r.tile_id, ";".join(names)]
        writer.writerow(row + ([names[0]] if single else []) + [";".join(chosen.labelers), chosen.status])
    rel = layout.tags_csv(split)
    layout.target(folder, rel).write_text(buf.getvalue(), encoding="utf-8")
    return rel


def _write_feature(parts: DatasetParts, r: TileResult) -> str:
    """``tags/geojson/<split>/<tile_id>.geojson``: the chip's footprint (longitude/latitude)
    with its tags, the label asset STAC's tile classification asks for."""
    from geolabel.crs import reproject_geometries
    from geolabel.export.geojson import geometry_dict
    from geolabel.export.manifest import write_json

    assert parts.tags is not None
    chip = parts.chips[r.tile_id]
    footprint = reproject_geometries(chip.footprint, chip.crs, "EPSG:4326", densify=chip.edge_step)
    feature = {
        "type": "Feature",
        "geometry": geometry_dict(footprint, 10, rfc7946=True),
        "properties": tag_properties(parts.tags, r.tile_id),
    }
    rel = layout.tags_geojson(r.split, r.tile_id)
    write_json(layout.target(parts.folder, rel), {"type": "FeatureCollection", "features": [feature]})
    return rel


def tag_properties(tags: ExportTags, tile_id: str) -> dict[str, object]:
    """A tile's tags as properties: ``tags`` (a list), and ``tag`` in single-label projects."""
    names = tags.names(tile_id)
    return {"tags": names, "tag": names[0]} if tags.schema.is_single else {"tags": names}


def _tag_folders(schema: TagSchema) -> dict[int, str]:
    """The ImageFolder folder of each tag: its name, which comes from the store, so a name
    that is not a plain folder name (``../x``) is refused before anything is written."""
    from geolabel.labels.schema import check_name

    return {t.code: check_name(t.name, "images_by_tag: tag name") for t in schema}


def _link_by_tag(
    folder: Path, by_split: Mapping[str, Sequence[TileResult]], tags: ExportTags, folders: Mapping[int, str]
) -> None:
    """``images_by_tag/<split>/<tag>/<tile_id>.tif`` linked to each chip of a single-label
    project; the links take their chips' checksums (the same bytes, not read again)."""
    from geolabel.export.manifest import sha256_file

    for split, tiles in by_split.items():
        for r in tiles:
            tag = folders[tags.tiles[r.tile_id].codes[0]]
            rel, image = layout.image_by_tag(split, tag, r.tile_id), layout.image(split, r.tile_id)
            path = _link(folder, rel, image)
            r.checksums[rel] = r.checksums[image] if image in r.checksums else sha256_file(path)


def _link(folder: Path, rel: str, image: str) -> Path:
    """A relative symbolic link ``rel`` -> ``image`` (both inside ``folder``), else a hard
    link, else a copy."""
    from geolabel.files import leads_outside

    path = layout.target(folder, rel)
    source = folder / image
    try:
        os.symlink(os.path.relpath(source, path.parent), path)
    except OSError:
        try:
            os.link(source, path)
        except OSError:
            import shutil

            shutil.copyfile(source, path)
    if leads_outside(path, folder):  # the second line of defence: names are checked above
        path.unlink()
        raise InputError(f"{folder}: {rel!r} would link outside the dataset")
    return path

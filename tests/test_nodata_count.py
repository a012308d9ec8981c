"""Counting nodata pixels band by band gives what the full invalid-pixel mask gives."""

import numpy as np
import pytest

from geolabel.raster import count_nodata, invalid_pixels


@pytest.mark.parametrize(
    ("dtype", "nodata"), [("uint8", 0), ("uint8", 255), ("int16", -9999), ("float32", np.nan), ("float32", -1.0)]
)
def test_nodata_counted_band_by_band_equals_the_invalid_mask(dtype, nodata):
    rng = np.random.default_rng(3)
    data = rng.integers(0, 3, size=(4, 64, 48)).astype(dtype)
    data[data == 2] = nodata  # about a third of each band, so some pixels are nodata in every band
    data[:, :10, :] = nodata  # and a whole collar
    scratch = np.empty((2, 64, 48), dtype=bool)
    expected = int(invalid_pixels(data, nodata).sum())
    assert expected > 10 * 48
    assert count_nodata(data, nodata) == expected
    assert count_nodata(data, nodata, scratch=scratch) == expected
    assert count_nodata(data[:1], nodata) == int(invalid_pixels(data[:1], nodata).sum())

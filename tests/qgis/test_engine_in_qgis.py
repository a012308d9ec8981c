"""The engine runs in QGIS's own Python beside QGIS's GDAL bindings."""

from __future__ import annotations

import numpy as np
import rasterio

from tests.conftest import make_scene


def test_engine_tiles_inside_qgis_python(qgis_app, tmp_path):
    from osgeo import gdal, gdal_array  # Debian's GDAL bindings must survive our numpy pin
    from qgis.core import Qgis, QgsRasterLayer

    from geolabel import tile_raster

    assert Qgis.QGIS_VERSION_INT >= 32200
    scene = make_scene(tmp_path / "scene.tif", width=600, height=600, block=256)
    result = tile_raster(scene, tmp_path / "out", size=256, workers=2)
    assert len(result.chips) == 9
    chip_path = str(result.out_dir / result.chips[4].path)
    layer = QgsRasterLayer(chip_path, "chip")
    assert layer.isValid() and layer.crs().authid() == "EPSG:32649"
    assert layer.width() == 256 and layer.extent().xMinimum() == 680000.0 + 128.0
    del layer
    ds = gdal.Open(chip_path)
    arr = gdal_array.DatasetReadAsArray(ds)
    with rasterio.open(chip_path) as chip:
        np.testing.assert_array_equal(arr, chip.read())

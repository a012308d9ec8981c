"""The labeling dock against QGIS's iface: palette, digitizing, tiles, check now."""

from __future__ import annotations

import importlib

import pytest

from geolabel import tile_raster
from geolabel.labels.store import open_store
from tests.conftest import SAMPLE


@pytest.fixture
def dock(qgis_app, qgis_iface, plugin_dir, qgis_new_project):
    module = importlib.import_module("geolabel_qgis.gui.dock")
    widget = module.LabelingDock(qgis_iface)
    yield widget
    widget.close_store()
    from qgis.core import QgsProject

    QgsProject.instance().removeAllMapLayers()
    widget.deleteLater()


def add_polygon(layer, wkt):
    """Digitize like QGIS's tools do: a feature made by QgsVectorLayerUtils (defaults applied)."""
    from qgis.core import QgsGeometry, QgsVectorLayerUtils

    feature = QgsVectorLayerUtils.createFeature(layer, QgsGeometry.fromWkt(wkt), {}, layer.createExpressionContext())
    assert layer.addFeature(feature)
    return feature


def test_palette_sets_the_class_of_new_polygons_and_the_store_stays_valid(dock, tmp_path):
    from qgis.core import QgsRasterLayer

    from geolabel.qa import check_labels, load_delivery

    raster = QgsRasterLayer(str(SAMPLE / "village.tif"), "village")
    from qgis.core import QgsProject

    QgsProject.instance().addMapLayer(raster)
    dock.iface.setActiveLayer(raster)
    layer = dock.new_store(str(tmp_path / "labels.gpkg"))
    assert layer is not None and layer.crs().authid() == "EPSG:32649"  # the raster's CRS
    assert [b.text() for b in dock.palette.buttons()][:3] == ["water 水体", "farmland 耕地", "building 房屋建筑"]
    renderer = layer.renderer()
    assert renderer.type() == "categorizedSymbol" and renderer.classAttribute() == "class_code"
    assert {c.value() for c in renderer.categories()} == {0, 1, 2, 3, 4, 5, 6, 7}
    dock.labeler_edit.setText("li")
    dock.palette.button(1).click()  # water
    assert layer.isEditable()
    water = add_polygon(
        layer, "POLYGON((686100 3120400, 686130 3120400, 686130 3120430, 686100 3120430, 686100 3120400))"
    )
    # the attribute form shows the class the user picked, from the layer's default values
    assert (water["class_code"], water["class_name"], water["labeler"]) == (1, "water", "li")
    dock.set_class(2)  # farmland
    add_polygon(layer, "POLYGON((686200 3120400, 686260 3120400, 686260 3120460, 686200 3120460, 686200 3120400))")
    assert layer.commitChanges()
    with open_store(tmp_path / "labels.gpkg") as store:
        frame = store.query()
        assert sorted(zip(frame.class_code, frame.class_name)) == [(1, "water"), (2, "farmland")]
        assert set(frame.labeler) == {"li"} and set(frame.status) == {"draft"} and set(frame.source) == {"manual"}
        assert all(len(i) == 36 for i in frame.label_id)
        assert sorted(round(a) for a in frame.area) == [900, 3600]
    result = check_labels(load_delivery(tmp_path / "labels.gpkg"), require=["labeler"])
    assert result.errors == 0


def test_tile_navigator_zooms_marks_done_and_counts(dock, tmp_path):
    tiles = tile_raster(SAMPLE / "village.tif", tmp_path / "chips", size=512, workers=1)
    dock.new_store(str(tmp_path / "labels.gpkg"), crs="EPSG:32649")
    dock.open_tiles(str(tiles.index_path))
    assert dock.tile_index == 0 and dock.progress() == (0, 16)
    canvas = dock.iface.mapCanvas()
    extent = canvas.extent()
    chip = dock.chips[0]
    minx, miny, maxx, maxy = chip.footprint.bounds
    assert extent.contains(minx + 1, miny + 1) and extent.contains(maxx - 1, maxy - 1)
    dock.mark_done()
    dock.go_to_tile(1)
    dock.mark_done()
    assert dock.progress() == (2, 16)
    assert "2 of 16 tiles done" in dock.progress_label.text()
    with open_store(tmp_path / "labels.gpkg") as store:
        assert store.tile_statuses() == {"village_r000_c000": "done", "village_r000_c001": "done"}
    # new polygons remember the tile they were drawn on
    from qgis.core import QgsExpressionContextUtils, QgsProject

    scope = QgsExpressionContextUtils.projectScope(QgsProject.instance())
    assert scope.variable("geolabel_tile") == "village_r000_c001"
    # reopening the index starts at the first tile not done
    dock.open_tiles(str(tiles.index_path))
    assert dock.tile_index == 2


def test_check_now_shows_findings_and_zooms_to_them(dock, tmp_path):
    from geolabel.labels.importer import import_labels

    dock.new_store(str(tmp_path / "labels.gpkg"), crs="EPSG:32649")
    with open_store(tmp_path / "labels.gpkg") as store:
        import_labels(store, [SAMPLE / "village_labels.gpkg"])
    result = dock.check_now()
    assert result.errors == 4  # the four ponds drawn on fields
    assert dock.findings_list.count() == len(result.findings) == 12
    assert "error: overlap across classes 'water' and 'farmland'" in dock.findings_list.item(0).text()
    from qgis.core import QgsProject

    names = sorted(QgsProject.instance().mapLayer(i).name() for i in dock.findings_layers)
    assert names == ["GeoLabel findings points", "GeoLabel findings polygons"]
    dock.zoom_to_finding(0)
    center = dock.iface.mapCanvas().extent().center()
    where = result.findings[0].geometry.representative_point()
    assert abs(center.x() - where.x) < 60 and abs(center.y() - where.y) < 60


def test_check_now_with_a_tile_index_checks_completeness_of_done_tiles(dock, tmp_path):
    tiles = tile_raster(SAMPLE / "village.tif", tmp_path / "chips", size=512, workers=1)
    layer = dock.new_store(str(tmp_path / "labels.gpkg"), crs="EPSG:32649")
    dock.open_tiles(str(tiles.index_path))
    full = [k for k, c in enumerate(dock.chips) if c.nodata_fraction == 0]  # no nodata collar
    dock.go_to_tile(full[0])
    first, later = dock.chips[full[0]].footprint.bounds, dock.chips[full[1]].footprint.bounds
    dock.set_class(2)
    x, y = first[0], first[1]
    add_polygon(layer, f"POLYGON(({x} {y}, {x + 100} {y}, {x + 100} {y + 100}, {x} {y + 100}, {x} {y}))")
    dock.mark_done()
    x, y = later[0], later[1]  # a label on a tile not done yet: no finding
    add_polygon(layer, f"POLYGON(({x} {y}, {x + 50} {y}, {x + 50} {y + 50}, {x} {y + 50}, {x} {y}))")
    result = dock.check_now()  # saves the edits first
    assert layer.isEditable() and not layer.isModified()
    (gap,) = [f for f in result.findings if f.type == "gap"]
    assert gap.area_m2 == pytest.approx(256.0 * 256.0 - 100.0 * 100.0)
    assert "done tiles" in gap.message and not [f for f in result.findings if f.type == "outside"]
    assert result.region_area_m2 == pytest.approx(256.0 * 256.0)

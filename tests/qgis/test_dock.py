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


def bar_messages(dock, level):
    """What the dock told the user in the message bar (pytest-qgis records it)."""
    from qgis.core import Qgis

    return dock.iface.messageBar().get_messages(getattr(Qgis.MessageLevel, level))


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
    # chips away from the scene's edges and its nodata collar
    full = [k for k, c in enumerate(dock.chips) if c.tile_id in ("village_r001_c001", "village_r002_c002")]
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


def test_check_now_in_the_background_keeps_qgis_responsive(dock, tmp_path):
    from qgis.core import QgsApplication

    from geolabel.labels.importer import import_labels

    dock.new_store(str(tmp_path / "labels.gpkg"), crs="EPSG:32649")
    with open_store(tmp_path / "labels.gpkg") as store:
        import_labels(store, [SAMPLE / "village_labels.gpkg"])
    task = dock.check_now(background=True)
    assert task is not None and not dock.check_button.isEnabled() and dock.qa_label.text() == "checking…"
    assert dock.check_now(background=True) is None  # one check at a time
    import time

    deadline = time.time() + 60
    while dock.task is not None and time.time() < deadline:
        QgsApplication.processEvents()
        time.sleep(0.01)
    assert dock.task is None and dock.check_button.isEnabled()
    assert dock.qa_label.text().startswith("4 errors, 8 warnings")
    assert dock.findings_list.count() == 12 and len(dock.findings_layers) == 2


def test_edits_that_cannot_be_saved_are_not_checked(dock, tmp_path):
    from qgis.core import QgsGeometry, QgsVectorLayerUtils

    layer = dock.new_store(str(tmp_path / "labels.gpkg"), crs="EPSG:32649")
    dock.set_class(2)
    good = "POLYGON((686100 3120400, 686130 3120400, 686130 3120430, 686100 3120430, 686100 3120400))"
    add_polygon(layer, good)
    assert dock.check_now().n_features == 1  # saved, then checked
    two = "MULTIPOLYGON(((686200 3120400, 686210 3120400, 686210 3120410, 686200 3120400)),((686300 3120400, 686310 3120400, 686310 3120410, 686300 3120400)))"
    bad = QgsVectorLayerUtils.createFeature(layer, QgsGeometry.fromWkt(two), {}, layer.createExpressionContext())
    layer.addFeature(bad)  # a multi-part polygon: the Polygon layer refuses to save it
    assert dock.check_now() is None
    assert layer.isModified() and any("could not be saved" in m for m in bar_messages(dock, "Critical"))


def test_the_dock_survives_the_user_removing_the_labels_layer(dock, tmp_path):
    from qgis.core import QgsProject

    layer = dock.new_store(str(tmp_path / "labels.gpkg"), crs="EPSG:32649")
    QgsProject.instance().removeMapLayer(layer.id())
    assert dock.layer is None
    assert dock.check_now().n_features == 0  # no crash
    dock.set_class(1)  # picking a class brings the styled labels layer back, ready to draw
    again = dock.layer
    assert again is not None and again.isEditable() and again.renderer().type() == "categorizedSymbol"
    add_polygon(again, "POLYGON((686100 3120400, 686130 3120400, 686130 3120430, 686100 3120430, 686100 3120400))")
    assert again.commitChanges()
    with open_store(tmp_path / "labels.gpkg") as store:
        assert store.query().class_name.tolist() == ["water"]


def test_mark_done_on_a_busy_store_says_so_instead_of_freezing(dock, tmp_path):
    import sqlite3
    import time

    tiles = tile_raster(SAMPLE / "village.tif", tmp_path / "chips", size=512, workers=1)
    dock.new_store(str(tmp_path / "labels.gpkg"), crs="EPSG:32649")
    dock.open_tiles(str(tiles.index_path))
    other = sqlite3.connect(tmp_path / "labels.gpkg", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another writer holds the file (QGIS in a transaction group)
    try:
        start = time.time()
        dock.mark_done()
        assert time.time() - start < 10
        assert any("store busy (another program is writing it" in m for m in bar_messages(dock, "Warning"))
    finally:
        other.execute("ROLLBACK")
        other.close()
    dock.mark_done()  # free again: it works
    assert dock.progress() == (1, 16)


def test_tiles_and_findings_are_shown_in_the_map_crs(dock, tmp_path):
    """The map may be in another CRS than the chips and the findings: bounds are transformed."""
    import pyproj
    from qgis.core import QgsCoordinateReferenceSystem

    from geolabel.labels.importer import import_labels

    tiles = tile_raster(SAMPLE / "village.tif", tmp_path / "chips", size=512, workers=1)
    dock.new_store(str(tmp_path / "labels.gpkg"), crs="EPSG:32649")
    with open_store(tmp_path / "labels.gpkg") as store:
        import_labels(store, [SAMPLE / "village_labels.gpkg"])
    canvas = dock.iface.mapCanvas()
    canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:4326"))
    to_lonlat = pyproj.Transformer.from_crs(32649, 4326, always_xy=True)
    dock.open_tiles(str(tiles.index_path))
    lon, lat = to_lonlat.transform(*dock.chips[0].footprint.centroid.coords[0])
    center = canvas.extent().center()
    assert abs(center.x() - lon) < 1e-3 and abs(center.y() - lat) < 1e-3  # degrees, not metres
    result = dock.check_now()
    dock.zoom_to_finding(0)
    lon, lat = to_lonlat.transform(*result.findings[0].geometry.centroid.coords[0])
    center = canvas.extent().center()
    assert abs(center.x() - lon) < 1e-3 and abs(center.y() - lat) < 1e-3

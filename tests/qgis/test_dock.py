"""The labeling dock against QGIS's iface: palette, digitizing, tiles, check now."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from geolabel import tile_raster
from geolabel.labels.store import open_store
from tests.conftest import SAMPLE
from tests.qgis.conftest import add_polygon


def bar_messages(dock, level):
    """What the dock told the user in the message bar (pytest-qgis records it)."""
    from qgis.core import Qgis

    return dock.iface.messageBar().get_messages(getattr(Qgis.MessageLevel, level))


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
    assert [b.toolTip() for b in dock._palette_buttons()][:2] == [
        "Draw water 水体 (key 1)",
        "Draw farmland 耕地 (key 2)",
    ]
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
    # what a labeler acts on: type, classes and whose they are, area; the ids only in the tooltip
    first = dock.findings_list.item(0)
    assert first.text() == "Overlap · water (sample) / farmland (sample) · 1,078 m²"
    assert all(i in first.toolTip() for i in result.findings[0].feature_ids)
    uuid = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-")
    texts = [dock.findings_list.item(k).text() for k in range(dock.findings_list.count())]
    assert not [t for t in texts if uuid.search(t)]
    from qgis.core import QgsProject

    layers = [QgsProject.instance().mapLayer(i) for i in dock.findings_layers]
    assert sorted(layer.name() for layer in layers) == ["GeoLabel findings points", "GeoLabel findings polygons"]
    # next to the store, not in the temporary folder QGIS asks about on quit
    assert {Path(layer.source().split("|")[0]).parent for layer in layers} == {tmp_path / "labels_findings"}
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


def test_the_labelers_own_new_finding_comes_first_and_the_tool_stays(dock, tmp_path):
    """After "Check now" the labels layer stays active with the same map tool, and the
    finding the labeler just caused is on top, saying whose labels overlap."""
    from qgis.core import QgsProject
    from qgis.gui import QgsMapToolPan

    from geolabel.labels.importer import import_labels

    layer = dock.new_store(str(tmp_path / "labels.gpkg"), crs="EPSG:32649")
    with open_store(tmp_path / "labels.gpkg") as store:
        import_labels(store, [SAMPLE / "village_labels.gpkg"])
    dock.check_now()
    canvas = dock.iface.mapCanvas()
    tool = QgsMapToolPan(canvas)  # stands for the Add Feature tool the labeler works with
    canvas.setMapTool(tool)
    dock.labeler_edit.setText("li")
    dock.set_class(3)  # building, over a farmland field
    field = next(f for f in layer.getFeatures() if f["class_name"] == "farmland").geometry().centroid().asPoint()
    x, y = field.x(), field.y()
    add_polygon(layer, f"POLYGON(({x} {y}, {x + 8} {y}, {x + 8} {y + 8}, {x} {y + 8}, {x} {y}))")
    assert re.search(r"\b137 labels\b", dock.store_label.text())  # live, before saving
    dock.check_now()
    assert re.search(r"\b137 labels\b", dock.store_label.text())
    assert dock.iface.activeLayer().id() == layer.id() and layer.isEditable()
    assert canvas.mapTool() is tool
    first = dock.findings_list.item(0)
    assert first.text().startswith("Overlap · ") and "building (yours" in first.text()
    assert first.text().endswith("\nnew") and first.font().bold()
    assert QgsProject.instance().layerTreeRoot().children()[0].layerId() in dock.findings_layers
    # the previous check's findings file is gone, the shown one stays
    files = sorted(p.name for p in (tmp_path / "labels_findings").iterdir())
    assert len(files) == 1 and files[0].endswith("_2.gpkg")


def test_system_fields_cannot_be_typed_into(dock, tmp_path):
    layer = dock.new_store(str(tmp_path / "labels.gpkg"), crs="EPSG:32649")
    config = layer.editFormConfig()

    def index(name):
        return layer.fields().indexOf(name)

    for name in ("fid", "version"):
        assert layer.editorWidgetSetup(index(name)).type() == "Hidden"
    for name in ("fid", "label_id", "class_name", "created", "modified", "version"):
        assert config.readOnly(index(name)), name
    for name in ("class_code", "comment", "status", "labeler"):
        assert not config.readOnly(index(name)), name


def test_keys_pick_classes_walk_tiles_mark_done_and_check(dock, tmp_path):
    tiles = tile_raster(SAMPLE / "village.tif", tmp_path / "chips", size=512, workers=1)
    layer = dock.new_store(str(tmp_path / "labels.gpkg"), crs="EPSG:32649")
    dock.open_tiles(str(tiles.index_path))
    actions = dock.shortcut_actions
    tiles_keys = {
        n: a.shortcut().toString() for n, a in actions.items() if not n.startswith(("class_", "tag_", "move_"))
    }
    assert tiles_keys == {
        "previous_tile": ",",
        "next_tile": ".",
        "mark_done": "M",
        "check_now": "Q",
        "accept_tile": "A",
        "reject_tile": "R",
    }
    assert [actions[f"class_{k}"].shortcut().toString() for k in range(1, 10)] == [str(k) for k in range(1, 10)]
    assert "(key .)" in dock.next_button.toolTip() and "(key M)" in dock.done_button.toolTip()
    assert all(a in dock.iface.mainWindow().actions() for a in actions.values())
    actions["class_2"].trigger()
    assert dock._palette_buttons()[1].isChecked() and layer.isEditable()
    actions["next_tile"].trigger()
    actions["next_tile"].trigger()
    actions["previous_tile"].trigger()
    assert dock.tile_index == 1
    actions["mark_done"].trigger()
    assert dock.store.tile_statuses() == {dock.chips[1].tile_id: "done"}
    actions["check_now"].trigger()
    assert dock.task is not None  # the check runs in the background
    from qgis.core import QgsApplication

    while dock.task is not None:
        QgsApplication.processEvents()
    assert dock.qa_label.text().endswith("of done tiles labelled")
    dock.remove_shortcuts()
    assert not [a for a in dock.iface.mainWindow().actions() if a.objectName().startswith("mActionGeolabel")]


def test_the_tile_grid_is_outlines_with_tile_ids(dock, tmp_path):
    from qgis.core import QgsProject

    tiles = tile_raster(SAMPLE / "village.tif", tmp_path / "chips", size=512, workers=1)
    dock.new_store(str(tmp_path / "labels.gpkg"), crs="EPSG:32649")
    dock.open_tiles(str(tiles.index_path))
    (grid,) = [layer for layer in QgsProject.instance().mapLayers().values() if layer.name() == "Tile index"]
    symbol = grid.renderer().symbol()
    from qgis.PyQt.QtCore import Qt

    assert symbol.symbolLayer(0).brushStyle() == Qt.NoBrush
    assert grid.labelsEnabled() and grid.labeling().settings().fieldName == "tile_id"
    settings = grid.labeling().settings()
    assert settings.scaleVisibility and settings.minimumScale == pytest.approx(256.0 / 0.03, rel=1e-3)
    assert settings.centroidWhole  # the id stays at the tile's centre when zoomed into a corner
    assert dock.iface.activeLayer().id() == dock.layer.id()  # the labels stay active
    dock.open_tiles(str(tiles.index_path))  # not added twice
    assert [layer.name() for layer in QgsProject.instance().mapLayers().values()].count("Tile index") == 1


def test_findings_say_whose_label_is_newest(plugin_dir):
    from types import SimpleNamespace

    words = importlib.import_module("geolabel_qgis.gui.findings")
    finding = SimpleNamespace(
        type="overlap",
        severity="error",
        feature_ids=["a", "b"],
        message="overlap across classes 'water' and 'farmland' of 1078.37 m² between a and b",
        geometry=None,
        area_m2=1078.37,
        class_name="water/farmland",
    )
    labels = {
        "a": words.LabelInfo("water", "li", "2026-11-30T10:00:05", "village_r001_c002"),
        "b": words.LabelInfo("farmland", "wang", "2026-11-29T09:00:00", "village_r001_c002"),
    }
    shown = words.describe(0, finding, labels, "li", True, None)
    assert shown.text == "Overlap · water (yours, newest) / farmland (wang) · 1,078 m²\ntile village_r001_c002 · new"
    assert shown.mine and "label a\nlabel b" in shown.tooltip
    other = words.describe(1, finding, labels, "kim", False, None)
    assert other.text.startswith("Overlap · water (li, newest) / farmland (wang) · ") and not other.mine
    gap = SimpleNamespace(type="gap", severity="error", feature_ids=[], message="unlabelled area", geometry=None,
                          area_m2=25400.0, class_name=None)  # fmt: skip
    assert words.describe(2, gap, {}, "li", False, "village_r000_c000").text.startswith("Unlabelled gap · 2.54 ha")
    order = words.ordered([other, words.describe(3, finding, labels, "li", False, None), shown])
    assert [s.index for s in order] == [0, 3, 1]  # mine and new, mine, the rest


def test_findings_of_ended_qgis_sessions_are_removed_and_running_ones_kept(dock, tmp_path):
    from geolabel.files import HOST_TAG

    dock.new_store(str(tmp_path / "labels.gpkg"), crs="EPSG:32649")
    folder = tmp_path / "labels_findings"
    folder.mkdir()
    ended = folder / f"check_999999999-{HOST_TAG}_3.gpkg"  # no such process
    running = folder / f"check_1-{HOST_TAG}_2.gpkg"  # pid 1 runs: another QGIS still shows it
    other = folder / "notes.gpkg"  # not ours
    for path in (ended, running, other):
        path.write_bytes(b"x")
    dock.check_now()
    names = sorted(p.name for p in folder.iterdir())
    assert ended.name not in names and running.name in names and other.name in names
    assert len(names) == 3  # and this check's own file

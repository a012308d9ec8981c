"""The dock's assisted labeling in real QGIS: the Smart region map tool driven by synthesized
mouse and key events on the village scene, and the suggestions panel's Accept/Reject."""

from __future__ import annotations

import time

import geopandas as gpd
import pytest
import shapely
from shapely.ops import polylabel

from geolabel import tile_raster
from geolabel.labels.resolve import resolve_overlaps
from geolabel.labels.schema import default_schema
from geolabel.labels.store import open_store
from tests.conftest import SAMPLE

pytest.importorskip("skimage")

WATER, FARMLAND = 1, 2


@pytest.fixture(scope="module")
def tiles(tmp_path_factory):
    return tile_raster(SAMPLE / "village.tif", tmp_path_factory.mktemp("chips"), size=512, workers=1).index_path


@pytest.fixture(scope="module")
def reference():
    """The village reference as drawn (ponds on fields) and as the image shows it."""
    ref = gpd.read_file(SAMPLE / "village_labels.gpkg", layer="labels")
    res = resolve_overlaps(ref.geometry.values, ref["class_code"].to_numpy(), default_schema())
    visible = gpd.GeoDataFrame({"class_code": res.codes}, geometry=list(res.geometries), crs=ref.crs)
    return ref, visible


def iou(a, b):
    return a.intersection(b).area / a.union(b).area


def open_tile_at(dock, tiles, x, y):
    """Open the tile index at the tile holding (x, y); wait for its superpixels task."""
    from qgis.core import QgsApplication

    dock.open_tiles(str(tiles))
    k = next(k for k, c in enumerate(dock.chips) if c.footprint.covers(shapely.Point(x, y)))
    dock.go_to_tile(k)
    deadline = time.monotonic() + 60
    while dock.smart_tool.task is not None and time.monotonic() < deadline:
        QgsApplication.processEvents()
        time.sleep(0.02)
    assert dock.smart_tool.region is not None and dock.smart_tool.chip is dock.chips[k]


def click(dock, x, y, modifiers=None):
    """A left click at map point (x, y) through the tool, as the canvas delivers it."""
    from qgis.gui import QgsMapMouseEvent
    from qgis.PyQt.QtCore import QEvent, QPointF, Qt
    from qgis.PyQt.QtGui import QMouseEvent

    canvas = dock.iface.mapCanvas()
    pixel = canvas.getCoordinateTransform().transform(x, y)
    mods = modifiers if modifiers is not None else Qt.NoModifier
    event = QMouseEvent(QEvent.MouseButtonRelease, QPointF(pixel.x(), pixel.y()), Qt.LeftButton, Qt.LeftButton, mods)
    dock.smart_tool.canvasReleaseEvent(QgsMapMouseEvent(canvas, event))
    return shapely.from_wkt(dock.smart_tool.band.asGeometry().asWkt())


def key(dock, which):
    from qgis.PyQt.QtCore import QEvent, Qt
    from qgis.PyQt.QtGui import QKeyEvent

    dock.smart_tool.keyPressEvent(QKeyEvent(QEvent.KeyPress, which, Qt.NoModifier))


def start_tool(dock, code):
    from qgis.core import QgsCoordinateReferenceSystem

    # clicks and bands are in the village's CRS; an earlier test may have left another
    dock.iface.mapCanvas().setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:32649"))
    dock.iface.mapCanvas().resize(800, 800)
    dock.set_class(code)
    dock.smart_button.click()
    assert dock.iface.mapCanvas().mapTool() is dock.smart_tool


def pond_in_a_field(reference):
    """A pond drawn on a farmland label, that farmland label and the pond's middle."""
    ref, _ = reference
    fields = ref[ref.class_code == FARMLAND]
    for pond in ref[(ref.class_code == WATER) & (ref.area < 20_000)].geometry:
        under = fields[fields.intersects(pond)]
        if len(under):
            return pond, under.iloc[0], polylabel(pond, 0.5)
    raise AssertionError("the sample has ponds drawn on fields")


def test_a_pond_click_and_enter_stores_water_cut_out_of_the_farmland(dock, tmp_path, tiles, reference):
    from qgis.PyQt.QtCore import Qt

    pond, field, p = pond_in_a_field(reference)
    layer = dock.new_store(str(tmp_path / "labels.gpkg"), crs="EPSG:32649")
    with open_store(tmp_path / "labels.gpkg") as store, store.transaction():
        store.add(gpd.GeoDataFrame({"class_code": [FARMLAND], "labeler": ["sample"]}, geometry=[field.geometry],
                                   crs="EPSG:32649"))  # fmt: skip
    layer.dataProvider().reloadData()
    open_tile_at(dock, tiles, p.x, p.y)
    dock.labeler_edit.setText("li")
    start_tool(dock, WATER)
    shown = click(dock, p.x, p.y)
    assert iou(shown, pond) >= 0.8
    key(dock, Qt.Key_Return)
    assert dock.smart_tool.band.asGeometry().isEmpty()  # stored: the selection is cleared
    assert layer.commitChanges()
    with open_store(tmp_path / "labels.gpkg") as store:
        labels = store.query()
    water = labels[labels.class_code == WATER]
    farmland = labels[labels.class_code == FARMLAND]
    assert len(water) == 1 and iou(water.geometry.iloc[0], pond) >= 0.8
    assert (water.source.iloc[0], water.labeler.iloc[0], water.status.iloc[0]) == ("manual", "li", "draft")
    assert farmland.geometry.union_all().intersection(water.geometry.iloc[0]).area < 1.0  # no overlap made
    lost = field.geometry.area - farmland.geometry.area.sum()
    assert lost == pytest.approx(water.geometry.iloc[0].area, rel=0.05)  # the pond's area, now water
    assert set(farmland.labeler) == {"sample"}


def test_shift_click_adds_a_field_ctrl_click_removes_it_and_esc_clears(dock, tmp_path, tiles, reference):
    from qgis.PyQt.QtCore import Qt

    _, visible = reference
    pond, field, p = pond_in_a_field(reference)
    seen = visible[visible.class_code == FARMLAND]
    inside = seen[seen.intersects(field.geometry.buffer(-1))].geometry.iloc[0]  # the field around the pond
    f = polylabel(inside, 0.5)
    dock.new_store(str(tmp_path / "labels.gpkg"), crs="EPSG:32649")
    open_tile_at(dock, tiles, p.x, p.y)
    start_tool(dock, FARMLAND)
    alone = click(dock, f.x, f.y)
    assert iou(alone, inside) >= 0.8
    both = click(dock, p.x, p.y, Qt.ShiftModifier)
    assert both.area == pytest.approx(alone.area + pond.area, rel=0.1)
    back = click(dock, p.x, p.y, Qt.ControlModifier)
    assert back.area == pytest.approx(alone.area, rel=0.02)
    key(dock, Qt.Key_Escape)
    assert dock.smart_tool.band.asGeometry().isEmpty()
    key(dock, Qt.Key_Return)  # nothing selected: nothing stored
    assert dock.layer.featureCount() == 0


def test_suggestions_panel_lists_accepts_and_rejects_the_tiles_suggestions(dock, tmp_path, tiles, reference):
    from geolabel.suggest import suggest_water, write_suggestions
    from geolabel.suggest.review import assisted_counts

    _, _, p = pond_in_a_field(reference)
    water = suggest_water(SAMPLE / "village.tif", workers=1)
    dock.new_store(str(tmp_path / "labels.gpkg"), crs="EPSG:32649")
    write_suggestions(water.polygons, crs=water.crs, class_name="water", into=dock.store)
    dock.labeler_edit.setText("li")
    open_tile_at(dock, tiles, p.x, p.y)
    panel = dock.suggestions
    n = len(panel.ids)
    assert not panel.isHidden() and n == panel.list.count() >= 2
    assert panel.list.item(0).text().startswith("water · ")
    shown = dock.iface.mapCanvas().layers()
    assert "GeoLabel suggestions" in [layer.name() for layer in shown] or panel.layer_id is not None
    first, second = panel.ids[0], panel.ids[1]
    panel.list.item(0).setSelected(True)
    panel.accept_button.click()
    assert panel.ids[0] == second and len(panel.ids) == n - 1
    panel.list.item(0).setSelected(True)
    panel.reject_button.click()
    assert len(panel.ids) == n - 2
    panel.accept_all_button.click()
    assert panel.ids == [] and panel.isHidden()
    with open_store(tmp_path / "labels.gpkg") as store:
        assert store.query(label_ids=[second]).empty
        (accepted,) = store.query(label_ids=[first]).itertuples()
        assert (accepted.labeler, accepted.source, accepted.status) == ("li", "suggested", "draft")
    assert assisted_counts(tmp_path / "labels.gpkg") == {"li": n - 1}
    assert dock.layer.featureCount() == len(water.polygons) - 1


def test_a_click_on_a_web_mercator_canvas_gives_the_same_region(dock, tmp_path, tiles, reference):
    """A project in EPSG:3857 (a basemap under the village): the click and the band are in
    the canvas's CRS, the region is the pond all the same."""
    from pyproj import Transformer
    from qgis.core import QgsCoordinateReferenceSystem

    pond, _, p = pond_in_a_field(reference)
    dock.new_store(str(tmp_path / "labels.gpkg"), crs="EPSG:32649")
    open_tile_at(dock, tiles, p.x, p.y)
    start_tool(dock, WATER)
    canvas = dock.iface.mapCanvas()
    canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:3857"))
    try:
        to_web = Transformer.from_crs("EPSG:32649", "EPSG:3857", always_xy=True)
        back = Transformer.from_crs("EPSG:3857", "EPSG:32649", always_xy=True)
        shown = click(dock, *to_web.transform(p.x, p.y))
        assert iou(shapely.ops.transform(back.transform, shown), pond) >= 0.8
    finally:  # later tests draw in the village's CRS
        canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:32649"))

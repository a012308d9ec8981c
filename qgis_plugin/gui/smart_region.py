"""The "Smart region" map tool: click inside a field or pond, get its polygon.

The engine (:class:`geolabel.suggest.SmartRegion`) grows the region over superpixels of the
tile under the click; this tool only turns clicks and keys into its calls and shows the
result. Click: a new region; shift-click: add; ctrl-click: remove; Enter: store it with the
palette's class, fitted between the existing labels by :func:`geolabel.suggest.snap_to_labels`
(the edits go through the labels layer, as every digitizing tool's do, so undo works); Esc:
clear. The superpixels of the current tile are computed in a QGIS task when the tile opens
(about 0.5 s), so clicks take milliseconds; a cancelled task is computed at the first click.

The tile's pixels are read from its chip file, which holds exactly the tile's window of the
scene. A stored region is the labeler's own label (``source="manual"``, the engine's
``REGION_SOURCE``).
"""

from __future__ import annotations

from qgis.core import (
    QgsApplication,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsGeometry,
    QgsProject,
    QgsTask,
    QgsWkbTypes,
)
from qgis.gui import QgsMapTool, QgsRubberBand
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QColor
from qgis.PyQt.QtWidgets import QPushButton

from ..processing.common import engine_message

RUBBER_COLOR = "#ff00ff"


class SmartRegionTool(QgsMapTool):
    """Map tool of the dock; ``dock`` gives the tiles, the store's layer and the class."""

    def __init__(self, canvas, dock):
        super().__init__(canvas)
        self.dock = dock
        self.region = None  # the engine's SmartRegion of the chip clicked last
        self.chip = None  # the ChipInfo (or raster window) of ``region``
        self.task = None
        self._chip_wanted = None
        self.band = QgsRubberBand(canvas, QgsWkbTypes.PolygonGeometry)
        self.band.setColor(QColor(RUBBER_COLOR))
        self.band.setFillColor(QColor(255, 0, 255, 60))
        self.band.setWidth(3)

    # -- superpixels in the background ---------------------------------------------------

    def prepare(self, chip):
        """Start computing ``chip``'s superpixels in a QGIS task (the engine caches them);
        returns the task. A task still running for another chip is cancelled."""
        from geolabel.suggest import SmartRegion

        self.cancel()
        path, window = _source_of(chip)

        def work(task):
            region = SmartRegion.from_raster(path, window)
            return None if task.isCanceled() else region

        def finished(exception, region=None):
            if self.task is task:
                self.task = None
            if exception is None and region is not None and chip is self._chip_wanted:
                self.region, self.chip = region, chip

        self._chip_wanted = chip
        task = QgsTask.fromFunction("GeoLabel: superpixels of the tile", work, on_finished=finished)
        self.task = task
        QgsApplication.taskManager().addTask(task)
        return task

    def cancel(self):
        if self.task is not None:
            self.task.cancel()
            self.task = None

    # -- clicks and keys -------------------------------------------------------------------

    def canvasReleaseEvent(self, event):
        point = self.toMapCoordinates(event.pos())
        mods = event.modifiers()
        how = "add" if mods & Qt.ShiftModifier else "remove" if mods & Qt.ControlModifier else "region_at"
        self.click(point.x(), point.y(), how)

    def click(self, x, y, how="region_at"):
        """Grow (``region_at``), ``add`` or ``remove`` the region at map point (x, y)."""
        try:
            region = self._region_for(x, y)
            sx, sy = self._to_scene(region, x, y)
            polygon = getattr(region, how)(sx, sy)
        except Exception as exc:  # a click outside the imagery: the engine's one line
            self.dock.iface.messageBar().pushWarning("GeoLabel", engine_message(exc))
            return None
        self._show(polygon, region.crs)
        return polygon

    def keyPressEvent(self, event):
        if event.key() in (Qt.Key_Return, Qt.Key_Enter):
            self.store_region()
            event.accept()
        elif event.key() == Qt.Key_Escape:
            self.clear()
            event.accept()
        else:
            event.ignore()

    def clear(self):
        if self.region is not None:
            self.region.selected[:] = False
        if self.band is not None:
            self.band.reset(QgsWkbTypes.PolygonGeometry)

    def deactivate(self):
        if self.band is not None:
            self.band.reset(QgsWkbTypes.PolygonGeometry)
        super().deactivate()

    def release(self):
        """The dock goes away: the canvas stops using the tool and drops its rubber band."""
        self.cancel()
        canvas = self.canvas()
        if canvas.mapTool() is self:
            canvas.unsetMapTool(self)
        if self.band is not None:
            canvas.scene().removeItem(self.band)
            self.band = None

    # -- storing ---------------------------------------------------------------------------

    def store_region(self):
        """Enter: the selection as labels of the palette's class (through the labels layer);
        returns the number of new features (0 when nothing was selected or stored)."""
        from .region_edits import add_region

        layer, region = self.dock.labels_layer(), self.region
        if layer is None or region is None or self.dock.palette.checkedId() < 0:
            return 0
        polygon = region.polygon()
        if polygon.is_empty:
            return 0
        crs = QgsCoordinateReferenceSystem(region.crs)
        added = add_region(layer, polygon, crs, self.dock.palette.checkedId(), self.dock.store.schema)
        self.clear()
        return added

    # -- helpers ---------------------------------------------------------------------------

    def _region_for(self, x, y):
        """The SmartRegion of the chip under map point (x, y): the prepared one, else made now."""
        from geolabel.suggest import SmartRegion

        chip = chip_at(self.dock.chips, x, y, self.canvas().mapSettings().destinationCrs())
        if chip is None:
            raise ValueError("click inside a tile of the tile index (or open one)")
        if self.region is None or chip != self.chip:
            path, window = _source_of(chip)
            self.region, self.chip = SmartRegion.from_raster(path, window), chip
        return self.region

    def _to_scene(self, region, x, y):
        transform = self._transform(QgsCoordinateReferenceSystem(region.crs), reverse=True)
        point = transform.transform(x, y)
        return point.x(), point.y()

    def _transform(self, crs, reverse=False):
        dst = self.canvas().mapSettings().destinationCrs()
        src, dst = (dst, crs) if reverse else (crs, dst)
        return QgsCoordinateTransform(src, dst, QgsProject.instance())

    def _show(self, polygon, crs):
        if polygon.is_empty:
            self.band.reset(QgsWkbTypes.PolygonGeometry)
            return
        self.band.setToGeometry(QgsGeometry.fromWkt(polygon.wkt), QgsCoordinateReferenceSystem(crs))


def chip_at(chips, x, y, crs):
    """The chip of ``chips`` under map point (x, y) in ``crs`` (None if none)."""
    import shapely

    for chip in chips:
        to_chip = QgsCoordinateTransform(crs, QgsCoordinateReferenceSystem(chip.crs), QgsProject.instance())
        point = to_chip.transform(x, y)
        if chip.footprint.covers(shapely.Point(point.x(), point.y())):
            return chip
    return None


def _source_of(chip):
    """(raster path, pixel window) of a tile: its chip file, whole."""
    return chip.path, (0, 0, chip.width, chip.height)


def smart_region_button(dock, tool):
    """A checkable button that makes ``tool`` the map tool (and gives the previous one back)."""
    button = QPushButton("Smart region")
    button.setCheckable(True)
    # the style's pressed look is faint: a labeler must see at a glance that clicks grow regions
    button.setStyleSheet("QPushButton:checked { background: #c2185b; color: white; font-weight: bold; }")
    button.setToolTip(
        "Click inside a field or pond: its region (shift-click adds, ctrl-click removes); "
        "Enter stores it with the chosen class, Esc clears"
    )
    canvas = dock.iface.mapCanvas()

    def toggled(on):
        if on:
            if dock.palette.checkedId() >= 0:
                dock.set_class(dock.palette.checkedId())  # the labels layer in edit mode
            canvas.setMapTool(tool)
        elif canvas.mapTool() is tool:
            canvas.unsetMapTool(tool)

    button.toggled.connect(toggled)
    tool.deactivated.connect(lambda: button.setChecked(False))
    tool.setButton(button)
    return button

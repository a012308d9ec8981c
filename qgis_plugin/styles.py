"""Layer styles the dock and the Processing algorithms share."""

from __future__ import annotations

#: Custom property marking the labels layer of the store the dock opened.
STORE_PROPERTY = "geolabel/store"
TILE_COLOR = "#6a3d9a"
#: Tile ids are drawn once a tile is at least this wide on screen (metres of paper).
LABEL_MIN_TILE_WIDTH_M = 0.03


def style_tile_index(layer):
    """Tile outlines over the imagery (no fill) and tile ids, shown once tiles are large
    enough on screen to read them."""
    from qgis.core import (
        QgsFillSymbol,
        QgsPalLayerSettings,
        QgsSingleSymbolRenderer,
        QgsTextFormat,
        QgsVectorLayerSimpleLabeling,
    )
    from qgis.PyQt.QtGui import QColor

    symbol = QgsFillSymbol.createSimple({"style": "no", "outline_color": TILE_COLOR, "outline_width": "0.4"})
    layer.setRenderer(QgsSingleSymbolRenderer(symbol))
    settings = QgsPalLayerSettings()
    settings.fieldName = "tile_id"
    settings.placement = QgsPalLayerSettings.OverPoint
    settings.centroidWhole = True  # at the tile's centre, not the visible part's (it followed the view)
    text = QgsTextFormat()
    text.setColor(QColor(TILE_COLOR))
    text.setSize(9)
    buffer = text.buffer()
    buffer.setEnabled(True)
    buffer.setColor(QColor("white"))
    text.setBuffer(buffer)
    settings.setFormat(text)
    width = _tile_width_m(layer)
    if width:
        settings.scaleVisibility = True
        settings.minimumScale = width / LABEL_MIN_TILE_WIDTH_M  # the most zoomed-out scale shown
        settings.maximumScale = 0
    layer.setLabeling(QgsVectorLayerSimpleLabeling(settings))
    layer.setLabelsEnabled(True)
    layer.triggerRepaint()


def _tile_width_m(layer):
    """Width of the first tile in metres (None if unknown)."""
    from qgis.core import QgsDistanceArea, QgsFeatureRequest, QgsPointXY, QgsProject

    feature = next(layer.getFeatures(QgsFeatureRequest().setLimit(1)), None)
    if feature is None or not feature.hasGeometry():
        return None
    box = feature.geometry().boundingBox()
    measure = QgsDistanceArea()
    measure.setSourceCrs(layer.crs(), QgsProject.instance().transformContext())
    measure.setEllipsoid(layer.crs().ellipsoidAcronym() or "EPSG:7030")
    y = box.center().y()
    return measure.measureLine(QgsPointXY(box.xMinimum(), y), QgsPointXY(box.xMaximum(), y)) or None

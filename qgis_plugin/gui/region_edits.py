"""A smart region into the labels layer: fitted between the labels by the engine's
:func:`geolabel.suggest.snap_to_labels`, written as QGIS edits (one undo step).

The layer is read, not the store, so unsaved edits count too. A label cut in two keeps its
largest part; each other part becomes a new label of its class (the store holds Polygons).
"""

from __future__ import annotations

from qgis.core import (
    QgsCoordinateTransform,
    QgsFeatureRequest,
    QgsGeometry,
    QgsProject,
    QgsRectangle,
    QgsVectorLayerUtils,
)


def add_region(layer, polygon, crs, class_code, schema):
    """Add ``polygon`` (shapely, in ``crs``: a QgsCoordinateReferenceSystem) as labels of
    ``class_code`` without overlaps; returns how many features were added."""
    from geolabel.suggest import snap_to_labels

    geom = _in_layer_crs(polygon, crs, layer)
    snapped = snap_to_labels(geom, int(class_code), _labels_touching(layer, geom), schema)
    if not layer.isEditable():
        layer.startEditing()
    layer.beginEditCommand("GeoLabel smart region")
    for fid, changed in snapped.changed.items():
        _set_geometry(layer, fid, changed)
    if snapped.removed:
        layer.deleteFeatures([int(f) for f in snapped.removed])
    added = _add_polygons(layer, snapped.geometry, {"class_code": int(class_code)})
    layer.endEditCommand()
    layer.triggerRepaint()
    return added


def _in_layer_crs(polygon, crs, layer):
    import shapely

    if crs == layer.crs():
        return polygon
    geometry = QgsGeometry.fromWkt(polygon.wkt)
    geometry.transform(QgsCoordinateTransform(crs, layer.crs(), QgsProject.instance()))
    return shapely.make_valid(shapely.from_wkb(bytes(geometry.asWkb())))


def _labels_touching(layer, geom):
    """The layer's labels whose box meets ``geom``'s, as a GeoDataFrame indexed by feature id."""
    import geopandas as gpd
    import shapely

    request = QgsFeatureRequest().setFilterRect(QgsRectangle(*geom.bounds))
    fids, codes, geoms = [], [], []
    for feature in layer.getFeatures(request):
        if feature.hasGeometry() and feature["class_code"] is not None:
            fids.append(feature.id())
            codes.append(int(feature["class_code"]))
            geoms.append(shapely.from_wkb(bytes(feature.geometry().asWkb())))
    return gpd.GeoDataFrame({"class_code": codes}, geometry=geoms, index=fids)


def _set_geometry(layer, fid, geometry):
    """The largest part stays the label; the others become new labels of its class."""
    parts = _parts(geometry)
    if not parts:
        layer.deleteFeature(int(fid))
        return
    layer.changeGeometry(int(fid), QgsGeometry.fromWkt(parts[0].wkt))
    code = layer.getFeature(int(fid))["class_code"]
    for part in parts[1:]:
        _add_polygons(layer, part, {"class_code": int(code)})


def _add_polygons(layer, geometry, values):
    """Each polygon of ``geometry`` as a new feature made as QGIS's digitizing tools make
    them (the layer's defaults: labeler, tile, source ``manual``); returns the count."""
    fields = layer.fields()
    attributes = {fields.indexOf(k): v for k, v in values.items() if fields.indexOf(k) >= 0}
    parts = _parts(geometry)
    for part in parts:
        feature = QgsVectorLayerUtils.createFeature(
            layer, QgsGeometry.fromWkt(part.wkt), attributes, layer.createExpressionContext()
        )
        layer.addFeature(feature)
    return len(parts)


def _parts(geometry):
    """The Polygons of ``geometry``, largest first."""
    from geolabel.geom import polygonal_parts

    parts = [p for p in polygonal_parts([geometry])[0] if not p.is_empty]
    return sorted(parts, key=lambda p: -p.area)

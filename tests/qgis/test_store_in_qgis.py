"""The label store opens, edits and commits in QGIS 3.22 (its own GDAL), and stays valid."""

from __future__ import annotations

import shapely

from geolabel.labels.importer import import_labels
from geolabel.labels.store import create_store, open_store
from tests.conftest import SAMPLE


def test_qgis_edits_the_label_store_and_triggers_complete_the_row(qgis_app, tmp_path):
    from qgis.core import QgsGeometry, QgsVectorLayer, QgsVectorLayerUtils

    path = tmp_path / "labels.gpkg"
    store = create_store(path, crs="EPSG:32649")
    import_labels(store, [SAMPLE / "village_labels.gpkg"])
    store.close()

    layer = QgsVectorLayer(f"{path}|layername=labels", "labels", "ogr")
    assert layer.isValid(), layer.error().summary()
    assert layer.featureCount() == 136 and layer.crs().authid() == "EPSG:32649"
    assert [f.name() for f in layer.fields()][:4] == ["fid", "label_id", "class_code", "class_name"]
    assert layer.startEditing()
    feature = QgsVectorLayerUtils.createFeature(layer)
    feature.setGeometry(
        QgsGeometry.fromWkt("POLYGON((686100 3120400, 686120 3120400, 686120 3120420, 686100 3120400))")
    )
    feature.setAttribute("class_code", 1)
    assert layer.addFeature(feature)
    assert layer.commitChanges(), layer.commitErrors()
    del layer, feature

    with open_store(path) as st:
        assert st.count() == 137
        new = st.query(bbox=(686105, 3120405, 686106, 3120406), classes=[1]).iloc[0]
        assert new["class_name"] == "water" and new["status"] == "draft" and new["version"] == 1
        assert len(new["label_id"]) == 36
        assert shapely.equals(
            new.geometry, shapely.from_wkt("POLYGON((686100 3120400, 686120 3120400, 686120 3120420, 686100 3120400))")
        )

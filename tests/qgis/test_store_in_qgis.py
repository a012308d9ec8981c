"""The label store opens, edits and commits in QGIS 3.22 (its own GDAL), and stays valid."""

from __future__ import annotations

import pytest
import shapely

from geolabel.labels.importer import import_labels
from geolabel.labels.store import ConflictError, create_store, open_store
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


def test_edits_in_qgis_bump_the_version_and_the_modification_time(qgis_app, tmp_path):
    from qgis.core import QgsGeometry, QgsVectorLayer

    path = tmp_path / "labels.gpkg"
    store = create_store(path, crs="EPSG:32649")
    (label_id,) = store.add_geometries([shapely.box(686100, 3120400, 686130, 3120430)], class_codes=[2])
    before = store.query().iloc[0]
    store.close()
    layer = QgsVectorLayer(f"{path}|layername=labels", "labels", "ogr")
    feature = next(layer.getFeatures())
    assert layer.startEditing()
    # one save that moves a vertex and changes the class, as a labeler does
    layer.changeGeometry(
        feature.id(),
        QgsGeometry.fromWkt(
            "POLYGON((686100 3120400, 686140 3120400, 686140 3120430, 686100 3120430, 686100 3120400))"
        ),
    )
    layer.changeAttributeValue(feature.id(), layer.fields().indexOf("class_code"), 1)
    assert layer.commitChanges(), layer.commitErrors()
    del layer, feature
    with open_store(path) as st:
        after = st.query().iloc[0]
        assert after["class_name"] == "water" and round(after.geometry.area) == 1200
        assert after["version"] > before["version"] and after["modified"] > before["modified"]
        # optimistic locking sees the QGIS edit: a client holding the old version is refused
        with pytest.raises(ConflictError):
            st.update(label_id, expected_version=int(before["version"]), comment="stale")
        assert st.update(label_id, expected_version=int(after["version"]), comment="fresh") == after["version"] + 1

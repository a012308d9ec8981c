from __future__ import annotations

import sqlite3

import fiona
import geopandas as gpd
import pytest
import shapely

from geolabel.errors import InputError, OutputExistsError
from geolabel.labels.schema import load_schema
from geolabel.labels.store import ConflictError, NotAStoreError, create_store, open_store

from ..conftest import SAMPLE


def test_init_creates_a_geopackage_with_labels_layer_schema_and_crs(tmp_path):
    path = tmp_path / "s.gpkg"
    create_store(path, crs="EPSG:32649").close()
    assert fiona.listlayers(path) == ["labels", "geolabel_meta", "geolabel_classes", "geolabel_history"]
    with fiona.open(path, layer="labels") as layer:
        assert layer.crs.to_epsg() == 32649
        assert layer.schema["geometry"] == "Polygon"
        assert list(layer.schema["properties"]) == [
            "label_id",
            "class_code",
            "class_name",
            "labeler",
            "team",
            "status",
            "source",
            "tile_id",
            "created",
            "modified",
            "comment",
            "version",
        ]
    with sqlite3.connect(path) as conn:
        meta = dict(conn.execute("SELECT key, value FROM geolabel_meta"))
        classes = conn.execute("SELECT code, name, priority FROM geolabel_classes ORDER BY code").fetchall()
        kinds = dict(conn.execute("SELECT table_name, data_type FROM gpkg_contents"))
    assert "UTM zone 49N" in meta["crs"] and '"name": "water"' in meta["schema"]
    assert classes[1] == (1, "water", 80) and len(classes) == 8
    assert kinds == {"labels": "features", "geolabel_meta": "attributes", "geolabel_classes": "attributes", "geolabel_history": "attributes"}
    reopened = open_store(path)
    assert reopened.crs.to_epsg() == 32649 and reopened.schema.resolve("water").priority == 80
    reopened.close()


def test_custom_schema_is_kept_in_the_file(tmp_path):
    schema_file = tmp_path / "s.json"
    schema_file.write_text('{"extends": "default", "classes": [{"code": 8, "name": "greenhouse", "priority": 65}]}')
    create_store(tmp_path / "s.gpkg", crs="EPSG:4326", schema=load_schema(schema_file)).close()
    with open_store(tmp_path / "s.gpkg") as st:
        assert st.schema.resolve("greenhouse").code == 8 and st.crs.is_geographic


def test_init_never_overwrites_without_asking(tmp_path):
    path = tmp_path / "s.gpkg"
    st = create_store(path, crs="EPSG:32649")
    st.add_geometries([shapely.box(0, 0, 1, 1)], class_codes=[1])
    st.close()
    with pytest.raises(OutputExistsError, match="already exists; pass `overwrite=True`"):
        create_store(path, crs="EPSG:32649")
    with open_store(path) as again:
        assert again.count() == 1
    create_store(path, crs="EPSG:32650", overwrite=True).close()
    with open_store(path) as again:
        assert again.count() == 0 and again.crs.to_epsg() == 32650


def test_opening_a_plain_geopackage_points_to_init_and_import():
    with pytest.raises(NotAStoreError, match=r"not a geolabel label store; create one with `create_store\(\)`"):
        open_store(SAMPLE / "village_labels.gpkg")
    with pytest.raises(InputError, match="no such label store"):
        open_store("nowhere.gpkg")


def test_add_query_update_delete(store):
    field = shapely.box(0, 0, 100, 100)
    pond = shapely.box(40, 40, 60, 60)
    far = shapely.box(1000, 1000, 1010, 1010)
    ids = store.add_geometries([field, pond], class_codes=[2, 1], labeler="li", team="hunan", tile_id="t1")
    (far_id,) = store.add_geometries([far], class_codes=[3], status="submitted")
    assert store.count() == 3 and len({*ids, far_id}) == 3
    everything = store.query()
    assert list(everything["class_name"]) == ["farmland", "water", "building"]
    assert list(everything["version"]) == [1, 1, 1]
    assert everything.crs.to_epsg() == 32649
    assert shapely.equals(everything.geometry.iloc[0], field)
    assert list(store.query(bbox=(50, 50, 55, 55))["label_id"]) == ids
    assert list(store.query(bbox=(200, 200, 300, 300))["label_id"]) == []
    assert list(store.query(tile_id="t1")["label_id"]) == ids
    assert list(store.query(classes=[1, 3])["class_name"]) == ["water", "building"]
    assert list(store.query(status=["submitted"])["label_id"]) == [far_id]
    assert list(store.query(labeler="li", team="hunan")["label_id"]) == ids
    assert store.update(ids[0], expected_version=1, class_code=5, status="reviewed") == 2
    row = store.query(label_ids=[ids[0]]).iloc[0]
    assert (row["class_code"], row["class_name"], row["status"], row["version"]) == (5, "forest", "reviewed", 2)
    assert row["modified"] >= row["created"]
    for bad in ({"source": "bogus"}, {"status": "finished"}):
        with pytest.raises(InputError, match="must be one of"):
            store.update(ids[0], **bad)
    assert store.query(label_ids=[ids[0]]).iloc[0]["source"] == "manual"
    assert store.delete([ids[1], "no-such-id"]) == 1
    assert store.count() == 2


def test_optimistic_locking_refuses_a_stale_edit(store):
    (label,) = store.add_geometries([shapely.box(0, 0, 10, 10)], class_codes=[2])
    store.update(label, expected_version=1, comment="site A edited")
    with pytest.raises(ConflictError, match="changed by someone else \\(now version 2, you edited version 1\\)"):
        store.update(label, expected_version=1, comment="site B edited the old copy")
    assert store.query().iloc[0]["comment"] == "site A edited"


def test_geometries_in_another_crs_are_reprojected(store):
    import pyproj

    lonlat = pyproj.Transformer.from_crs(32649, 4326, always_xy=True).transform(686000.0, 3121000.0)
    square = shapely.Point(lonlat).buffer(0.0001, cap_style="square")
    store.add(gpd.GeoDataFrame({"class_code": [1]}, geometry=[square], crs="EPSG:4326"))
    centroid = store.query().geometry.iloc[0].centroid
    assert centroid.x == pytest.approx(686000.0, abs=0.01) and centroid.y == pytest.approx(3121000.0, abs=0.01)


@pytest.mark.parametrize(
    ("geom", "code", "message"),
    [
        (shapely.Point(0, 0), 1, "must be a Polygon"),
        (shapely.Polygon([(0, 0), (10, 10), (10, 0), (0, 10)]), 1, "invalid polygon \\(Self-intersection"),
        (shapely.box(0, 0, 1, 1), 42, "unknown class code 42"),
    ],
)
def test_bad_labels_are_refused_with_a_reason(store, geom, code, message):
    with pytest.raises(InputError, match=message):
        store.add(gpd.GeoDataFrame({"class_code": [code]}, geometry=[geom], crs=store.crs))
    assert store.count() == 0


def test_transaction_rolls_back_everything_on_error(store):
    store.add_geometries([shapely.box(0, 0, 1, 1)], class_codes=[1])
    with pytest.raises(RuntimeError), store.transaction():
        store.add_geometries([shapely.box(5, 5, 6, 6)], class_codes=[2])
        store.delete(store.query()["label_id"])
        raise RuntimeError("power cut")
    assert list(store.query()["class_code"]) == [1]


def test_features_added_by_other_tools_are_completed_by_the_store(store):
    """QGIS and ogr2ogr write through GDAL: the store's triggers fill the missing fields."""
    store.close()
    with fiona.open(store.path, "a", layer="labels") as layer:
        props = dict.fromkeys(layer.schema["properties"])
        props["class_code"] = 1
        layer.write({"geometry": shapely.geometry.mapping(shapely.box(0, 0, 5, 5)), "properties": props})
    with open_store(store.path) as st:
        row = st.query().iloc[0]
        assert row["class_name"] == "water" and row["status"] == "draft" and row["source"] == "manual"
        assert len(row["label_id"]) == 36 and row["label_id"][14] == "4" and row["version"] == 1
        assert row["created"].endswith("Z")
        assert list(st.query(bbox=(1, 1, 2, 2))["class_code"]) == [1]  # GDAL maintained the spatial index
    with fiona.open(store.path, layer="labels") as layer:
        assert len(layer) == 1


def test_edits_by_other_tools_bump_version_and_modified_once(tmp_path):
    import sqlite3
    import time

    store = create_store(tmp_path / "s.gpkg", crs="EPSG:32649")
    (label_id,) = store.add_geometries([shapely.box(0, 0, 10, 10)], class_codes=[2])
    before = store.query().iloc[0]
    store.close()
    time.sleep(0.01)
    from geolabel.labels.gpkg import register_functions

    with sqlite3.connect(tmp_path / "s.gpkg") as conn:  # what QGIS or ogr2ogr do: a plain UPDATE
        register_functions(conn)  # the GeoPackage R-tree triggers call ST_IsEmpty & co.
        conn.execute("UPDATE labels SET class_code = 1, comment = 'pond' WHERE label_id = ?", (label_id,))
    with open_store(tmp_path / "s.gpkg") as st:
        after = st.query().iloc[0]
        assert (after["class_name"], after["comment"], after["version"]) == ("water", "pond", before["version"] + 1)
        assert after["modified"] > before["modified"]
        # the store's own update is counted once too
        assert st.update(label_id, expected_version=int(after["version"]), status="reviewed") == after["version"] + 1

from __future__ import annotations

import sqlite3

import fiona
import geopandas as gpd
import pytest
import shapely

from geolabel.errors import InputError, OutputExistsError
from geolabel.labels.schema import load_schema
from geolabel.labels.store import LABEL_FIELDS, ConflictError, NotAStoreError, create_store, open_store

from ..conftest import BACKENDS, SAMPLE, location_on


def test_custom_schema_is_kept_in_the_store(tmp_path, store_location):
    schema_file = tmp_path / "s.json"
    schema_file.write_text('{"extends": "default", "classes": [{"code": 8, "name": "greenhouse", "priority": 65}]}')
    location = store_location()
    create_store(location, crs="EPSG:4326", schema=load_schema(schema_file)).close()
    with open_store(location) as st:
        assert st.schema.resolve("greenhouse").code == 8 and st.crs.is_geographic
        st.add_geometries([shapely.box(113.0, 28.0, 113.001, 28.001)], class_codes=[8])
        assert st.query().iloc[0]["class_name"] == "greenhouse"


def test_init_never_overwrites_without_asking(store_location):
    path = store_location()
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


def test_every_store_operation_round_trips(store):
    field, pond = shapely.box(0, 0, 100, 100), shapely.box(40, 40, 60, 60)
    empty = store.read()
    assert len(empty) == 0 and empty.geoms.dtype == object and empty.columns == {name: [] for name in LABEL_FIELDS}
    assert (store.count(), len(store), store.tile_statuses(), store.tile_rows(), store.history()) == (0, 0, {}, [], [])
    assert len(store.query()) == 0 and list(store.query().columns) == [*LABEL_FIELDS, "geometry"]
    ids = store.add_geometries([field, pond], class_codes=[2, 1], labeler="li", team="hunan", tile_id="t1")
    arrays = store.read(fields=["label_id", "class_code"])
    assert arrays.columns == {"label_id": ids, "class_code": [2, 1]}
    assert shapely.equals(arrays.geoms, [field, pond]).all()
    for filters, expected in [
        ({"classes": []}, []),
        ({"label_ids": [ids[1], "nope"], "classes": [1], "tile_id": "t1", "labeler": "li", "team": "hunan"}, [ids[1]]),
        ({"team": "hubei"}, []),
        ({"status": ["draft"], "bbox": (10, 10, 20, 20)}, [ids[0]]),
        ({"bbox": (99, 99, 150, 150)}, [ids[0]]),
    ]:
        assert store.read(fields=["label_id"], **filters).columns["label_id"] == expected, filters
    with pytest.raises(InputError, match=r"unknown label field\(s\) \['area'\]"):
        store.read(fields=["area"])
    assert store.update(ids[0], expected_version=1, geometry=shapely.box(100, 0, 200, 100)) == 2
    assert store.update(ids[0], comment="moved east") == 3
    assert store.update(ids[1], class_code=6, status="submitted", source="imported") == 2
    with pytest.raises(InputError, match="no label with id nope"):
        store.update("nope", comment="x")
    with pytest.raises(InputError, match=r"cannot update field\(s\) \['version'\]"):
        store.update(ids[0], version=9)
    with pytest.raises(InputError, match="new geometry must be a valid, non-empty Polygon"):
        store.update(ids[0], geometry=shapely.Point(0, 0))
    store.replace_geometries([(ids[0], field), (ids[1], shapely.box(40, 40, 50, 50))])
    store.replace_geometries([])
    frame = store.query()
    assert list(frame["version"]) == [4, 3] and list(frame["comment"]) == ["moved east", None]
    assert list(frame["class_name"]) == ["farmland", "grassland"] and list(frame["source"]) == ["manual", "imported"]
    assert list(frame.geometry.area) == [10000.0, 100.0]
    assert all(m >= c and m.endswith("Z") for c, m in zip(frame["created"], frame["modified"]))
    store.set_tile_status("t1", "in_progress", labeler="li")
    store.set_tile_status("t2", "done")
    store.set_tile_status("t1", "done", labeler="wang")
    with pytest.raises(InputError, match="must be one of"):
        store.set_tile_status("t3", "finished")
    assert store.tile_statuses() == {"t1": "done", "t2": "done"} and store.done_tiles() == ["t1", "t2"]
    assert [row[:3] for row in sorted(store.tile_rows())] == [("t1", "done", "wang"), ("t2", "done", None)]
    assert all(row[3].endswith("Z") for row in store.tile_rows())
    assert store.delete([ids[0], ids[0], "nope"]) == 1 and store.delete([]) == 0
    (record,) = list(store)
    assert record["label_id"] == ids[1] and shapely.equals(record["geometry"], shapely.box(40, 40, 50, 50))
    with open_store(store.uri) as again:
        assert again.count() == 1 and again.query().iloc[0]["version"] == 3 and again.tile_statuses()["t1"] == "done"


def test_every_change_is_one_history_row_with_its_versions(store):
    first, second = store.add_geometries([shapely.box(0, 0, 10, 10), shapely.box(20, 0, 30, 10)], class_codes=[2, 1])
    store.update(first, expected_version=1, comment="checked", class_code=3, labeler="wang")
    store.update(first, geometry=shapely.box(0, 0, 5, 5))
    store.replace_geometries([(second, shapely.box(20, 0, 25, 10))])
    store.delete([first])
    history = store.history()
    assert [(e.action, e.label_id, e.old_version, e.new_version) for e in history] == [
        ("insert", first, None, 1),
        ("insert", second, None, 1),
        ("update", first, 1, 2),
        ("update", first, 2, 3),
        ("update", second, 1, 2),
        ("delete", first, 3, None),
    ]
    assert [e.history_id for e in history] == sorted({e.history_id for e in history})
    assert all(e.changed_at.endswith("Z") for e in history)
    insert, _, fields_changed, moved, _, deleted = history
    assert insert.old_geom is None and insert.old_fields is None
    assert shapely.equals(fields_changed.old_geom, shapely.box(0, 0, 10, 10))
    old = fields_changed.old_fields
    assert (old["class_code"], old["class_name"], old["comment"], old["version"]) == (2, "farmland", None, 1)
    assert set(old) == set(LABEL_FIELDS) and fields_changed.labeler == "wang"
    assert moved.old_fields["comment"] == "checked" and shapely.equals(deleted.old_geom, shapely.box(0, 0, 5, 5))
    assert [e.action for e in store.history(label_id=second)] == ["insert", "update"]
    assert [e.action for e in store.history(labeler="wang")] == ["update", "update", "delete"]
    assert len(store.history(since="2000-01-01T00:00:00Z")) == 6 and store.history(since="2999-01-01") == []


@pytest.mark.parametrize("target", BACKENDS)
def test_a_copy_keeps_labels_history_and_tile_progress(store, target, tmp_path, request):
    """load_copy (``labels copy``) in every direction: ids, versions, times and history as they were."""
    ids = store.add_geometries([shapely.box(0, 0, 10, 10), shapely.box(20, 0, 30, 10)], class_codes=[2, 1])
    store.update(ids[0], comment="checked")
    store.delete([ids[1]])
    store.set_tile_status("t1", "done", labeler="li")
    with create_store(location_on(target, tmp_path, request, "copy"), crs=store.crs) as copy:
        labels, history, tiles = store.read(), store.history(), store.tile_rows()
        rows = [dict(zip(labels.columns, values)) for values in zip(*labels.columns.values())]
        copy.load_copy(labels.geoms, rows, history, tiles)
        assert copy.read().columns == labels.columns and shapely.equals(copy.read().geoms, labels.geoms).all()
        assert copy.tile_rows() == tiles
        copied = copy.history()
        assert [(e.history_id, e.action, e.label_id, e.old_version, e.new_version) for e in copied] == [
            (e.history_id, e.action, e.label_id, e.old_version, e.new_version) for e in history
        ]
        assert [e.changed_at for e in copied] == [e.changed_at for e in history]
        assert copied[2].old_fields == history[2].old_fields and shapely.equals(copied[3].old_geom, history[3].old_geom)
        assert copy.update(ids[0], comment="after the copy") == 3
        assert copy.history()[-1].history_id > history[-1].history_id
        with pytest.raises(InputError, match="a copy goes into an empty store; this one has labels"):
            copy.load_copy(labels.geoms, rows, history, tiles)


# -- GeoPackage only: the file itself, as QGIS, GDAL and sqlite3 see it ------------------------


def test_init_creates_a_geopackage_with_labels_layer_schema_and_crs(tmp_path):
    path = tmp_path / "s.gpkg"
    create_store(path, crs="EPSG:32649").close()
    assert fiona.listlayers(path) == [
        "labels", "geolabel_meta", "geolabel_classes", "geolabel_history", "geolabel_tasks", "geolabel_reviews"
    ]  # fmt: skip
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
    assert kinds == {
        "labels": "features",
        "geolabel_meta": "attributes",
        "geolabel_classes": "attributes",
        "geolabel_history": "attributes",
        "geolabel_tasks": "attributes",
        "geolabel_reviews": "attributes",
    }
    reopened = open_store(path)
    assert reopened.crs.to_epsg() == 32649 and reopened.schema.resolve("water").priority == 80
    reopened.close()


def test_opening_a_plain_geopackage_points_to_init_and_import():
    with pytest.raises(NotAStoreError, match=r"not a geolabel label store; create one with `create_store\(\)`"):
        open_store(SAMPLE / "village_labels.gpkg")
    with pytest.raises(InputError, match="no such label store"):
        open_store("nowhere.gpkg")


def test_features_added_by_other_tools_are_completed_by_the_store(tmp_path):
    """QGIS and ogr2ogr write through GDAL: the store's triggers fill the missing fields."""
    store = create_store(tmp_path / "s.gpkg", crs="EPSG:32649")
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
        history = st.history(label_id=label_id)
    # the plain UPDATE is one history row (not one more for the triggers' own version bump)
    assert [(e.action, e.old_version, e.new_version) for e in history] == [
        ("insert", None, 1),
        ("update", 1, 2),
        ("update", 2, 3),
    ]
    assert (history[1].old_fields["class_code"], history[1].old_fields["comment"]) == (2, None)
    assert history[1].db_role is None and shapely.equals(history[1].old_geom, shapely.box(0, 0, 10, 10))


def test_an_insert_and_delete_by_other_tools_are_one_history_row_each(tmp_path):
    from geolabel.labels.gpkg import register_functions, to_blobs

    create_store(tmp_path / "s.gpkg", crs="EPSG:32649").close()
    with sqlite3.connect(tmp_path / "s.gpkg") as conn:  # a QGIS insert leaves the fill trigger to do the rest
        register_functions(conn)
        conn.execute(
            "INSERT INTO labels (geom, class_code) VALUES (?, 1)", (to_blobs([shapely.box(0, 0, 5, 5)], 32649)[0],)
        )
        conn.execute("DELETE FROM labels")
    with open_store(tmp_path / "s.gpkg") as st:
        history = st.history()
    assert [(e.action, e.old_version, e.new_version) for e in history] == [("insert", None, 1), ("delete", 1, None)]
    assert history[0].label_id == history[1].label_id and len(history[0].label_id) == 36


# -- PostGIS only: the project schema as QGIS, psql and scripts see it -------------------------


def run_sql(location, query, args=()):
    """Run one statement as a plain client would (the superuser, no geolabel code); its rows."""
    import psycopg

    from geolabel.labels.pg_location import parse_location

    with psycopg.connect(parse_location(location).conninfo, autocommit=True) as conn:
        cur = conn.execute(query, args)
        return cur.fetchall() if cur.description else []


@pytest.fixture
def pg_store(pg_location):
    with create_store(pg_location, crs="EPSG:32649") as st:
        yield st


def test_init_creates_a_postgis_project_with_labels_table_schema_and_srid(pg_location):
    create_store(pg_location, crs="EPSG:32649").close()
    schema = pg_location.rsplit("=", 1)[1]
    tables = run_sql(pg_location, "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", (schema,))
    assert [t for (t,) in tables] == [
        "geolabel_classes", "geolabel_gold", "geolabel_gold_scores", "geolabel_history", "geolabel_members",
        "geolabel_merged_deliveries", "geolabel_meta", "geolabel_provenance", "geolabel_reference",
        "geolabel_reviews", "geolabel_tag_schema", "geolabel_tasks", "geolabel_tile_tags", "geolabel_tiles",
        "labels",
    ]  # fmt: skip
    columns = run_sql(
        pg_location,
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = 'labels' "
        "ORDER BY ordinal_position",
        (schema,),
    )
    assert [c for (c,) in columns] == ["fid", "geom", *LABEL_FIELDS, "base_version"]
    geometry = run_sql(pg_location, "SELECT type, srid FROM geometry_columns WHERE f_table_schema = %s", (schema,))
    # labels.geom, geolabel_history.old_geom, geolabel_reference.geom
    assert sorted(geometry) == [("POLYGON", 32649)] * 3
    meta = dict(run_sql(pg_location, f"SELECT key, value FROM {schema}.geolabel_meta"))
    classes = run_sql(pg_location, f"SELECT code, name, priority FROM {schema}.geolabel_classes ORDER BY code")
    assert "UTM zone 49N" in meta["crs"] and '"name": "water"' in meta["schema"] and meta["srid"] == "32649"
    assert classes[1] == (1, "water", 80) and len(classes) == 8
    with open_store(pg_location) as reopened:
        assert reopened.crs.to_epsg() == 32649 and reopened.schema.resolve("water").priority == 80


def test_a_schema_that_is_no_project_is_refused_and_left_alone(pg_location):
    with pytest.raises(NotAStoreError, match=r"no geolabel project in schema '.*'; create one with `create_store\(\)`"):
        open_store(pg_location)
    schema = pg_location.rsplit("=", 1)[1]
    run_sql(pg_location, f"CREATE SCHEMA {schema}")
    run_sql(pg_location, f"CREATE TABLE {schema}.labels (id integer)")
    with pytest.raises(NotAStoreError, match="no geolabel project in schema"):
        open_store(pg_location)
    with pytest.raises(OutputExistsError, match="is not a geolabel project; it is left alone"):
        create_store(pg_location, crs="EPSG:32649", overwrite=True)
    assert run_sql(pg_location, f"SELECT count(*) FROM {schema}.labels") == [(0,)]


def test_features_inserted_by_other_tools_are_completed_by_the_database(pg_store):
    """QGIS writes through its PostgreSQL provider: the database's triggers fill the missing fields."""
    run_sql(
        pg_store.uri,
        f"INSERT INTO {pg_store.s}.labels (geom, class_code) VALUES (ST_GeomFromText(%s, 32649), 1)",
        (shapely.box(0, 0, 5, 5).wkt,),
    )
    row = pg_store.query().iloc[0]
    assert row["class_name"] == "water" and row["status"] == "draft" and row["source"] == "manual"
    assert len(row["label_id"]) == 36 and row["label_id"][14] == "4" and row["version"] == 1
    assert row["created"].endswith("Z")
    assert list(pg_store.query(bbox=(1, 1, 2, 2))["class_code"]) == [1]
    (insert,) = pg_store.history()
    assert (insert.action, insert.label_id, insert.new_version, insert.db_role) == (
        "insert",
        row["label_id"],
        1,
        "postgres",
    )


def test_edits_by_other_tools_bump_version_once_and_are_one_history_row_each(pg_store):
    (label_id,) = pg_store.add_geometries([shapely.box(0, 0, 10, 10)], class_codes=[2])
    before = pg_store.query().iloc[0]
    labels = f"{pg_store.s}.labels"
    run_sql(pg_store.uri, f"UPDATE {labels} SET class_code = 1, comment = 'pond' WHERE label_id = %s", (label_id,))
    after = pg_store.query().iloc[0]
    assert (after["class_name"], after["comment"], after["version"]) == ("water", "pond", 2)
    assert after["modified"] > before["modified"]
    import psycopg

    with pytest.raises(psycopg.Error, match="changed by someone else \\(now version 2, you edited version 1\\)"):
        run_sql(
            pg_store.uri, f"UPDATE {labels} SET comment = 'stale', base_version = 1 WHERE label_id = %s", (label_id,)
        )
    assert pg_store.update(label_id, expected_version=2, status="reviewed") == 3
    run_sql(pg_store.uri, f"DELETE FROM {labels}")
    history = pg_store.history()
    assert [(e.action, e.old_version, e.new_version) for e in history] == [
        ("insert", None, 1),
        ("update", 1, 2),
        ("update", 2, 3),
        ("delete", 3, None),
    ]
    assert (history[1].old_fields["class_code"], history[1].old_fields["comment"]) == (2, None)
    assert (
        shapely.equals(history[1].old_geom, shapely.box(0, 0, 10, 10)) and history[3].old_fields["status"] == "reviewed"
    )

"""Bulk inserts and their bookkeeping: ids, defaults, history rows, the database's fill-ins
(what ``bench/bench_store.py`` made fast must stay right)."""

from __future__ import annotations

import uuid

import geopandas as gpd
import pytest
import shapely

from geolabel.errors import InputError
from geolabel.labels.store import create_store, new_label_ids


def boxes(n: int, x0: float = 0.0) -> list[shapely.Polygon]:
    return [shapely.box(x0 + 10 * i, 0, x0 + 10 * i + 8, 8) for i in range(n)]


def test_new_label_ids_are_distinct_version_4_uuids():
    ids = new_label_ids(500)
    parsed = [uuid.UUID(i) for i in ids]
    assert len(set(ids)) == 500 and [str(u) for u in parsed] == ids
    assert {u.version for u in parsed} == {4} and {u.variant for u in parsed} == {uuid.RFC_4122}
    assert new_label_ids(0) == []


def test_bulk_add_keeps_given_ids_and_fills_the_rest(store):
    frame = gpd.GeoDataFrame(
        {
            "label_id": ["given-1", None, " ", "given-4"],
            "class_code": [2, None, 1, 6],
            "class_name": [None, "water", None, None],
            "status": ["submitted", None, "", "draft"],
            "labeler": ["li", " wang ", None, float("nan")],
        },
        geometry=boxes(4),
        crs=store.crs,
    )
    ids = store.add(frame)
    got = store.query()
    assert list(got["label_id"]) == ids and ids[0] == "given-1" and ids[3] == "given-4"
    assert uuid.UUID(ids[1]).version == 4 and uuid.UUID(ids[2]).version == 4 and ids[1] != ids[2]
    assert list(got["class_code"]) == [2, 1, 1, 6]
    assert list(got["class_name"]) == ["farmland", "water", "water", "grassland"]
    assert list(got["status"]) == ["submitted", "draft", "draft", "draft"]
    assert list(got["labeler"]) == ["li", "wang", None, None]
    assert list(got["version"]) == [1, 1, 1, 1] and len(set(got["created"])) == 1


def test_a_bad_status_names_the_first_row_with_it(store):
    frame = gpd.GeoDataFrame({"class_code": [1, 1, 1], "status": ["draft", "done", "finished"]},
                             geometry=boxes(3), crs=store.crs)  # fmt: skip
    with pytest.raises(InputError, match="label 1: status"):
        store.add(frame)
    assert store.count() == 0


def test_every_label_of_a_bulk_add_gets_one_history_row(store):
    first = store.add_geometries(boxes(300), class_codes=[2] * 300, labeler="li")
    second = store.add_geometries(boxes(2, x0=5000), class_codes=[1, 3])
    store.update(second[0], expected_version=1, comment="checked")
    history = store.history()
    inserts = [e for e in history if e.action == "insert"]
    assert [e.label_id for e in inserts] == first + second
    assert {e.new_version for e in inserts} == {1} and {e.old_version for e in inserts} == {None}
    assert [e.labeler for e in inserts[:300]] == ["li"] * 300 and inserts[300].labeler is None
    (update,) = [e for e in history if e.action == "update"]
    assert (update.label_id, update.old_version, update.new_version) == (second[0], 1, 2)
    assert history[-1] == update and [e.history_id for e in history] == sorted(e.history_id for e in history)


# -- PostGIS: what the database does for other clients (QGIS, psql) ---------------------


@pytest.fixture
def pg_store(pg_location):
    store = create_store(pg_location, crs="EPSG:32649")
    yield store
    store.close()


def sql(store, statement: str, args=None):
    import psycopg

    with psycopg.connect(store.location.conninfo, autocommit=True) as conn:
        cur = conn.execute(statement.format(s=store.location.schema), args)
        return cur.fetchall() if cur.description else None


def test_a_single_sql_insert_is_completed_and_recorded_once(pg_store):
    sql(
        pg_store,
        "INSERT INTO {s}.labels (geom, class_code) VALUES (ST_GeomFromText('POLYGON((0 0,5 0,5 5,0 0))', 32649), 4)",
    )
    sql(pg_store, "INSERT INTO {s}.labels (geom, class_code, class_name) VALUES "
        "(ST_GeomFromText('POLYGON((9 0,14 0,14 5,9 0))', 32649), 1, 'wrong'), "
        "(ST_GeomFromText('POLYGON((20 0,25 0,25 5,20 0))', 32649), 99, 'kept')")  # fmt: skip
    got = pg_store.query()
    assert list(got["class_name"]) == ["road", "water", "kept"]  # unknown codes keep what was sent
    assert list(got["status"]) == ["draft"] * 3 and list(got["version"]) == [1] * 3
    assert all(uuid.UUID(i).version == 4 for i in got["label_id"])
    assert list(got["team"]) == [None] * 3  # the superuser is no project member
    history = pg_store.history()
    assert [(e.label_id, e.action, e.db_role, e.new_version) for e in history] == [
        (i, "insert", "postgres", 1) for i in got["label_id"]
    ]


def test_a_members_insert_gets_their_team_and_name(pg_store):
    role = f"bench_{uuid.uuid4().hex[:8]}"
    sql(pg_store, f"CREATE ROLE {role} IN ROLE {pg_store.groups['labeler']}")
    sql(pg_store, "INSERT INTO {s}.geolabel_members (role_name, team, role) VALUES (%s, 'hunan', 'labeler')", (role,))
    sql(pg_store, f"SET ROLE {role}; INSERT INTO {{s}}.labels (geom, class_code) "
        "VALUES (ST_GeomFromText('POLYGON((0 0,5 0,5 5,0 0))', 32649), 2)")  # fmt: skip
    row = pg_store.query().iloc[0]
    assert (row["team"], row["labeler"], row["class_name"]) == ("hunan", role, "farmland")
    (entry,) = pg_store.history()
    assert (entry.db_role, entry.labeler, entry.action) == ("postgres", role, "insert")


def test_a_class_change_in_sql_renames_the_class(pg_store):
    (label_id,) = pg_store.add_geometries([shapely.box(0, 0, 5, 5)], class_codes=[2])
    sql(pg_store, "UPDATE {s}.labels SET class_code = 5 WHERE label_id = %s", (label_id,))
    row = pg_store.query().iloc[0]
    assert (row["class_code"], row["class_name"], row["version"]) == (5, "forest", 2)
    pg_store.delete([label_id])
    assert [(e.action, e.old_version) for e in pg_store.history()] == [("insert", None), ("update", 1), ("delete", 2)]


def test_window_and_id_reads_match_the_full_read(pg_store):
    ids = pg_store.add_geometries(boxes(50), class_codes=[2] * 50)
    window = pg_store.read(bbox=(95, 1, 205, 2))
    assert window.columns["label_id"] == ids[9:21]
    assert shapely.equals(window.geoms, pg_store.read().take(range(9, 21)).geoms).all()
    assert pg_store.read(label_ids=[ids[3], ids[1]]).columns["label_id"] == [ids[1], ids[3]]

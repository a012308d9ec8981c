"""The change history as read by label_history, and restore_label, on both backends."""

from __future__ import annotations

import pytest
import shapely

from geolabel.errors import InputError
from geolabel.labels.history import label_history, parse_since, restore_label


def _one(store, label_id):
    arrays = store.read(label_ids=[label_id])
    assert len(arrays) == 1
    return arrays.geoms[0], {k: v[0] for k, v in arrays.columns.items()}


def test_history_has_one_entry_per_change_with_versions(store):
    a, b = store.add_geometries(
        [shapely.box(0, 0, 10, 10), shapely.box(20, 0, 30, 10)], class_codes=[2, 1], labeler="li"
    )
    store.update(a, class_code=3)
    store.update(a, geometry=shapely.box(0, 0, 8, 8), expected_version=2)
    store.delete([b])
    entries = label_history(store)
    assert [(e.label_id, e.action, e.old_version, e.new_version) for e in entries] == [
        (a, "insert", None, 1),
        (b, "insert", None, 1),
        (a, "update", 1, 2),
        (a, "update", 2, 3),
        (b, "delete", 1, None),
    ]
    assert [e.action for e in label_history(store, label_id=b)] == ["insert", "delete"]
    assert label_history(store, labeler="li") == entries and label_history(store, labeler="wang") == []
    assert entries[2].old_fields["class_code"] == 2 and entries[2].old_geom.area == pytest.approx(100)


def test_history_since_takes_iso_dates_and_zones(store):
    store.add_geometries([shapely.box(0, 0, 10, 10)], class_codes=[2])
    assert len(label_history(store, since="2000-01-01")) == 1
    assert label_history(store, since="2999-01-01T00:00+08:00") == []
    with pytest.raises(InputError, match="`since`: 'last tuesday' is not an ISO date"):
        label_history(store, since="last tuesday")


def test_parse_since_is_utc():
    assert parse_since("2024-05-01T08:30:00+08:00") == "2024-05-01T00:30:00.000Z"
    assert parse_since("2024-05-01T00:30Z") == parse_since("2024-05-01T00:30") == "2024-05-01T00:30:00.000Z"


def test_restore_brings_geometry_and_fields_back_as_a_new_version(store):
    first = shapely.box(0, 0, 10, 10)
    [a] = store.add_geometries([first], class_codes=[2], labeler="li", team="hunan", comment="field edge")
    store.update(a, geometry=shapely.box(0, 0, 4, 4), class_code=1, comment=None, team="hubei")
    store.update(a, status="submitted")
    assert restore_label(store, a, 1) == 4
    geom, row = _one(store, a)
    assert shapely.equals_exact(geom, first, tolerance=0)
    assert (row["class_code"], row["class_name"], row["team"], row["comment"], row["status"], row["version"]) == (
        2, "farmland", "hunan", "field edge", "draft", 4,
    )  # fmt: skip
    entries = label_history(store, label_id=a)
    assert [(e.action, e.old_version, e.new_version) for e in entries][-1] == ("update", 3, 4)
    assert restore_label(store, a, 2) == 5
    geom, row = _one(store, a)
    assert geom.area == pytest.approx(16) and row["class_code"] == 1 and row["team"] == "hubei"


def test_restore_of_the_current_version_changes_nothing(store):
    [a] = store.add_geometries([shapely.box(0, 0, 10, 10)], class_codes=[2])
    store.update(a, class_code=3)
    before = len(label_history(store))
    assert restore_label(store, a, 2) == 2
    assert len(label_history(store)) == before and _one(store, a)[1]["version"] == 2


def test_a_deleted_label_comes_back_with_its_id_and_the_next_version(store):
    first = shapely.Polygon([(0, 0), (10, 0), (10, 10), (3, 12), (0, 0)])
    [a] = store.add_geometries([first], class_codes=[4], labeler="li", team="hunan", tile_id="r0_c0")
    store.update(a, class_code=5)
    store.delete([a])
    assert store.count() == 0
    assert restore_label(store, a, 1) == 3
    geom, row = _one(store, a)
    assert shapely.equals_exact(geom, first, tolerance=0)
    assert (row["label_id"], row["class_code"], row["labeler"], row["tile_id"], row["version"]) == (
        a,
        4,
        "li",
        "r0_c0",
        3,
    )
    assert [(e.action, e.new_version) for e in label_history(store, label_id=a)][-1] == ("insert", 3)


def test_unknown_label_or_version_is_one_clear_error(store):
    [a] = store.add_geometries([shapely.box(0, 0, 10, 10)], class_codes=[2])
    store.update(a, class_code=3)
    with pytest.raises(InputError, match="no label with id nope"):
        restore_label(store, "nope", 1)
    with pytest.raises(InputError, match=f"label {a} has no recorded version 7; recorded versions: 1, 2"):
        restore_label(store, a, 7)

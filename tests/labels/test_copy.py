"""copy_store: a project moves between GeoPackage and PostGIS with ids, versions, history and tiles."""

from __future__ import annotations

import psycopg
import pytest
import shapely

from geolabel.errors import InputError, OutputExistsError
from geolabel.labels.copy import copy_store
from geolabel.labels.gpkg_store import GeoPackageStore
from geolabel.labels.importer import import_labels
from geolabel.labels.pg_location import parse_location
from geolabel.labels.pg_store import PostGISStore
from geolabel.labels.store import LABEL_FIELDS, create_store, open_store

from ..conftest import SAMPLE, new_pg_location


def _project(location):
    """A store with the village labels, edits, a deletion and tile progress."""
    with create_store(location, crs="EPSG:32649") as st:
        import_labels(st, [SAMPLE / "village_labels.gpkg"], labeler="li", team="hunan")
        ids = st.read(fields=["label_id"]).columns["label_id"]
        st.update(ids[0], class_code=1, comment="pond, not farmland")
        st.update(ids[1], geometry=st.read(label_ids=[ids[1]]).geoms[0].buffer(-1), expected_version=1)
        st.delete(ids[2:4])
        st.set_tile_status("r0_c0", "done", labeler="li")
        st.set_tile_status("r0_c1", "in_progress")
    return location


def _content(location):
    """Everything a copy must keep, in comparable form."""
    with open_store(location) as st:
        arrays = st.read()
        labels = {
            arrays.columns["label_id"][i]: (arrays.geoms[i], {f: arrays.columns[f][i] for f in LABEL_FIELDS})
            for i in range(len(arrays))
        }
        history = [(e, e.old_geom) for e in st.history()]
        return labels, history, sorted(st.tile_rows()), st.crs, st.schema


def assert_same_project(a, b):
    labels_a, history_a, tiles_a, crs_a, schema_a = _content(a)
    labels_b, history_b, tiles_b, crs_b, schema_b = _content(b)
    assert labels_a.keys() == labels_b.keys()
    for label_id, (geom, fields) in labels_a.items():
        assert fields == labels_b[label_id][1]
        assert shapely.equals_exact(geom, labels_b[label_id][0], tolerance=0), label_id
    assert len(history_a) == len(history_b)
    for (ea, ga), (eb, gb) in zip(history_a, history_b):
        strip = {"old_geom": None}
        assert ea.__class__(**{**ea.__dict__, **strip}) == eb.__class__(**{**eb.__dict__, **strip})
        assert (ga is None and gb is None) or shapely.equals_exact(ga, gb, tolerance=0)
    assert tiles_a == tiles_b and crs_a == crs_b and schema_a == schema_b


def test_geopackage_to_postgis_to_geopackage_is_identical(tmp_path, pg_database):
    source = _project(tmp_path / "source.gpkg")
    middle = new_pg_location(pg_database, "copy")
    back = tmp_path / "back.gpkg"
    first = copy_store(source, middle)
    assert (first.labels, first.tiles) == (134, 2) and first.history == 136 + 2 + 2
    assert first.destination == parse_location(middle).display
    assert_same_project(source, middle)
    copy_store(middle, back)
    assert_same_project(source, back)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["back.gpkg", "source.gpkg"]  # no temporaries left


@pytest.mark.parametrize("kind", ["gpkg", "postgis"])
def test_copy_within_one_backend_is_identical(kind, tmp_path, pg_database):
    def where(name):
        return tmp_path / f"{name}.gpkg" if kind == "gpkg" else new_pg_location(pg_database, name)

    source, copied = _project(where("a")), where("b")
    copy_store(source, copied)
    assert_same_project(source, copied)


def test_the_copy_keeps_working_as_a_store(tmp_path, pg_database):
    source = _project(tmp_path / "source.gpkg")
    copied = new_pg_location(pg_database, "copy")
    copy_store(source, copied)
    with open_store(copied) as st:
        st.add_geometries([shapely.box(686400, 3120900, 686410, 3120910)], class_codes=[2])
        history = st.history()
    assert history[-1].action == "insert" and history[-1].history_id == history[-2].history_id + 1


def test_existing_destination_needs_overwrite_and_must_be_a_store(tmp_path, store_location):
    source = _project(tmp_path / "source.gpkg")
    dst = store_location("dst")
    create_store(dst, crs="EPSG:4326").close()
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        copy_store(source, dst)
    with open_store(dst) as st:
        assert st.count() == 0 and st.crs.is_geographic
    result = copy_store(source, dst, overwrite=True)
    assert result.labels == 134
    assert_same_project(source, dst)
    (tmp_path / "notes.gpkg").write_text("not a store")
    with pytest.raises(OutputExistsError, match="not a geolabel label store"):
        copy_store(source, tmp_path / "notes.gpkg", overwrite=True)
    assert (tmp_path / "notes.gpkg").read_text() == "not a store"


def test_a_store_is_not_copied_onto_itself(tmp_path, pg_database):
    source = _project(tmp_path / "source.gpkg")
    with pytest.raises(InputError, match="cannot be copied onto itself"):
        copy_store(source, tmp_path / "." / "source.gpkg", overwrite=True)
    pg = new_pg_location(pg_database, "self")
    copy_store(source, pg)
    with pytest.raises(InputError, match="cannot be copied onto itself"):
        copy_store(pg, pg, overwrite=True)
    with open_store(pg) as st:
        assert st.count() == 134


def _failing_load(original):
    def load_copy(self, geoms, rows, history, tiles, **tasks_and_reviews):
        original(self, geoms, rows, history, tiles, **tasks_and_reviews)
        raise OSError(28, "No space left on device")

    return load_copy


def test_a_failed_copy_to_geopackage_leaves_nothing(tmp_path, monkeypatch):
    source = _project(tmp_path / "source.gpkg")
    monkeypatch.setattr(GeoPackageStore, "load_copy", _failing_load(GeoPackageStore.load_copy))
    with pytest.raises(OSError, match="No space left"):
        copy_store(source, tmp_path / "copy.gpkg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source.gpkg"]


def test_a_failed_copy_to_postgis_drops_the_new_project(tmp_path, pg_database, monkeypatch):
    source = _project(tmp_path / "source.gpkg")
    dst = new_pg_location(pg_database, "failed")
    monkeypatch.setattr(PostGISStore, "load_copy", _failing_load(PostGISStore.load_copy))
    with pytest.raises(OSError, match="No space left"):
        copy_store(source, dst)
    with psycopg.connect(pg_database) as conn:
        schema = parse_location(dst).schema
        assert conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone() is None


def test_a_failed_overwrite_of_a_postgis_project_leaves_the_old_one(tmp_path, pg_database, monkeypatch):
    """Replacing a project and filling it are one transaction: a failure while filling
    leaves the project that was to be replaced exactly as it was."""
    dst = new_pg_location(pg_database, "kept")
    with create_store(dst, crs="EPSG:32649") as old:
        old.add_geometries([shapely.box(0, 0, 5, 5)], class_codes=[1], labeler="old")
    before = _content(dst)
    source = _project(tmp_path / "source.gpkg")
    monkeypatch.setattr(PostGISStore, "load_copy", _failing_load(PostGISStore.load_copy))
    with pytest.raises(OSError, match="No space left"):
        copy_store(source, dst, overwrite=True)
    after = _content(dst)
    assert len(after[0]) == 1 and after[0].keys() == before[0].keys()
    monkeypatch.undo()
    copy_store(source, dst, overwrite=True)
    assert _content(dst)[0].keys() == _content(source)[0].keys()

"""A PostGIS label store in real QGIS 3.22: the dock opens it through QGIS's postgres
provider, QGIS edits it beside the engine (a stale save is refused by the database), and
the Processing algorithms take its location. The server is tests/pgserver.py's."""

from __future__ import annotations

import uuid

import pytest
import shapely

from geolabel import tile_raster
from geolabel.labels.importer import import_labels
from geolabel.labels.store import create_store, open_store
from tests.conftest import SAMPLE
from tests.qgis.conftest import add_polygon

SQUARE = "POLYGON((686100 3120400, 686130 3120400, 686130 3120430, 686100 3120430, 686100 3120400))"
WIDER = "POLYGON((686100 3120400, 686140 3120400, 686140 3120430, 686100 3120430, 686100 3120400))"
TALLER = "POLYGON((686100 3120400, 686140 3120400, 686140 3120450, 686100 3120450, 686100 3120400))"


@pytest.fixture
def pg_store(pg_location):
    """(location, label id) of a new PostGIS store holding one farmland square, version 1."""
    with create_store(pg_location, crs="EPSG:32649") as store:
        (label_id,) = store.add_geometries([shapely.from_wkt(SQUARE)], class_codes=[2])
    return pg_location, label_id


@pytest.fixture
def sample_store(pg_location):
    """Location of a new PostGIS store holding the village sample's 136 labels."""
    with create_store(pg_location, crs="EPSG:32649") as store:
        import_labels(store, [SAMPLE / "village_labels.gpkg"])
    return pg_location


def labeler_login(pg_database, location, team="team_a"):
    """A new login role in the project's labeler group and ``team``: (role, its location
    with a password in it)."""
    import psycopg

    with open_store(location) as store:
        group, schema = store.groups["labeler"], store.location.schema
    role, password = f"li_{uuid.uuid4().hex[:8]}", f"pw {uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}' IN ROLE {group}")
        conn.execute(f"INSERT INTO {schema}.geolabel_members VALUES (%s, %s, 'labeler')", (role, team))
    host = pg_database.split("@", 1)[1]
    return role, f"postgresql://{role}:{password.replace(' ', '%20')}@{host}?schema={schema}", password


def feature_of(layer, label_id):
    from qgis.core import QgsFeatureRequest

    request = QgsFeatureRequest().setFilterExpression(f"\"label_id\" = '{label_id}'")
    return next(layer.getFeatures(request))


def row_of(location, label_id):
    with open_store(location) as store:
        return store.query(label_ids=[label_id]).iloc[0]


def test_dock_opens_a_postgis_store_through_the_postgres_provider(dock, sample_store):
    from geolabel_qgis.styles import STORE_PROPERTY

    layer = dock.open_store(sample_store)
    with open_store(sample_store) as store:
        count, shown = store.count(), store.uri
    assert layer is not None and layer.providerType() == "postgres"
    assert layer.featureCount() == count == 136 and layer.crs().authid() == "EPSG:32649"
    assert layer.customProperty(STORE_PROPERTY) == shown
    schema, database = dock.store.location.schema, shown.split("?")[0]
    assert dock.store_label.text() == f"{schema} · {database}: 136 labels (WGS 84 / UTM zone 49N)"
    assert dock.store_label.toolTip() == shown
    assert [b.text() for b in dock.palette.buttons()][:2] == ["water 水体", "farmland 耕地"]
    # stale-save protection: every edit carries the version it started from, hidden in the form
    fields = layer.fields()
    default = layer.defaultValueDefinition(fields.indexOf("base_version"))
    assert default.expression() == 'coalesce("base_version", "version")' and default.applyOnUpdate()
    assert layer.editorWidgetSetup(fields.indexOf("base_version")).type() == "Hidden"
    # check now: the engine reads the same store; findings stay out of the temporary folder
    result = dock.check_now()
    assert result.errors == 4 and dock.findings_list.count() == len(result.findings) == 12
    assert "_findings" in dock.qa_dir and not dock.qa_dir.startswith("/tmp/geolabel-check-")


def test_tiles_marked_done_in_the_dock_go_to_the_postgis_store(dock, pg_store, tmp_path):
    location, _ = pg_store
    tiles = tile_raster(SAMPLE / "village.tif", tmp_path / "chips", size=512, workers=1)
    dock.open_store(location)
    dock.open_tiles(str(tiles.index_path))
    dock.mark_done()
    assert dock.progress() == (1, 16) and "1 of 16 tiles done" in dock.progress_label.text()
    with open_store(location) as store:
        assert store.tile_statuses() == {"village_r000_c000": "done"}


def test_a_stale_geometry_save_is_refused_and_the_engines_change_stays(dock, pg_store):
    from qgis.core import QgsGeometry

    location, label_id = pg_store
    layer = dock.open_store(location)
    assert layer.startEditing()
    layer.changeGeometry(feature_of(layer, label_id).id(), QgsGeometry.fromWkt(WIDER))
    with open_store(location) as engine:  # meanwhile a reviewer's tool changes the label
        assert engine.update(label_id, status="submitted") == 2
    assert not layer.commitChanges()
    errors = " ".join(layer.commitErrors())
    assert f"label {label_id} was changed by someone else (now version 2, you edited version 1)" in errors
    assert layer.rollBack()
    row = row_of(location, label_id)
    assert (row["version"], row["status"]) == (2, "submitted")
    assert shapely.equals(row.geometry, shapely.from_wkt(SQUARE))  # not overwritten


def test_an_edit_session_keeps_the_version_it_started_from(dock, pg_store):
    """Editing the feature again after someone else saved it does not make the stale
    session current: the first edit's version is the one the save is checked against."""
    from qgis.core import QgsGeometry

    location, label_id = pg_store
    layer = dock.open_store(location)
    fid = feature_of(layer, label_id).id()
    assert layer.startEditing()
    # the attribute form saves through changeAttributeValues
    assert layer.changeAttributeValues(fid, {layer.fields().indexOf("comment"): "check the edge"})
    with open_store(location) as engine:
        engine.update(label_id, class_code=1)
    layer.changeGeometry(fid, QgsGeometry.fromWkt(WIDER))
    assert not layer.commitChanges()
    assert "changed by someone else" in " ".join(layer.commitErrors())
    assert layer.rollBack()
    row = row_of(location, label_id)
    assert (row["version"], row["class_name"], row["comment"]) == (2, "water", None)


def test_qgis_edits_without_conflict_bump_the_version_once_each_and_are_recorded(dock, pg_store):
    from qgis.core import QgsGeometry

    location, label_id = pg_store
    layer = dock.open_store(location)
    fid = feature_of(layer, label_id).id()
    assert layer.startEditing()  # geometry and class in one save: one UPDATE
    layer.changeGeometry(fid, QgsGeometry.fromWkt(WIDER))
    layer.changeAttributeValue(fid, layer.fields().indexOf("class_code"), 1)
    assert layer.commitChanges(), layer.commitErrors()
    row = row_of(location, label_id)
    assert (row["version"], row["class_name"], round(row.geometry.area)) == (2, "water", 1200)
    assert layer.startEditing()  # geometry only
    layer.changeGeometry(fid, QgsGeometry.fromWkt(TALLER))
    assert layer.commitChanges(), layer.commitErrors()
    row = row_of(location, label_id)
    assert (row["version"], round(row.geometry.area)) == (3, 2000)
    with open_store(location) as store:
        history = store.history(label_id=label_id)
    assert [(e.action, e.old_version, e.new_version) for e in history] == [
        ("insert", None, 1),
        ("update", 1, 2),
        ("update", 2, 3),
    ]
    assert history[1].old_fields["class_name"] == "farmland"
    assert shapely.equals(history[1].old_geom, shapely.from_wkt(SQUARE))
    assert round(history[2].old_geom.area) == 1200


def test_a_labeler_drawing_in_qgis_gets_id_team_and_times_from_the_database(dock, pg_store, pg_database, tmp_path):
    from qgis.core import QgsProject

    location, _ = pg_store
    role, typed, password = labeler_login(pg_database, location)
    layer = dock.open_store(typed)  # a password typed into the location: this session only
    assert layer is not None and layer.isValid()
    dock.palette.button(1).click()  # water; the labeler's name is left empty
    add_polygon(layer, WIDER.replace("686100", "686300").replace("686140", "686340"))
    assert layer.commitChanges(), layer.commitErrors()
    with open_store(location) as store:
        new = store.query(classes=[1]).iloc[0]
        history = store.history(label_id=new["label_id"])
    assert len(new["label_id"]) == 36 and (new["team"], new["labeler"], new["version"]) == ("team_a", role, 1)
    assert (new["class_name"], new["status"], new["source"]) == ("water", "draft", "manual")
    assert new["created"] == new["modified"] and new["created"].endswith("Z")
    assert [(e.action, e.db_role) for e in history] == [("insert", role)]
    # neither the layer nor the saved project holds the password
    assert password not in layer.source() and "pw%20" not in layer.source()
    project_file = tmp_path / "project.qgs"
    assert QgsProject.instance().write(str(project_file))
    text = project_file.read_text()
    assert role in text and password not in text and password.replace(" ", "%20") not in text


def test_open_dialog_lists_the_projects_of_a_saved_qgis_connection(dock, pg_store, pg_database):
    from geolabel_qgis.gui.open_store import CONNECTION, LOCATION, OpenStoreDialog
    from qgis.core import QgsDataSourceUri, QgsProviderRegistry
    from qgis.PyQt.QtTest import QTest

    location, _ = pg_store
    role, _, password = labeler_login(pg_database, location)
    host, port = pg_database.split("@", 1)[1].split("/")[0].split(":")
    uri = QgsDataSourceUri()
    uri.setConnection(host, port, "geolabel_test", role, password)
    metadata = QgsProviderRegistry.instance().providerMetadata("postgres")
    name = f"team center {role}"
    metadata.saveConnection(
        metadata.createConnection(uri.uri(False), {"saveUsername": True, "savePassword": True}), name
    )
    try:
        dialog = OpenStoreDialog()
        dialog.connection_box.setCurrentText(name)
        schema = location.rsplit("=", 1)[1]
        assert [dialog.schema_box.itemText(k) for k in range(dialog.schema_box.count())] == [schema]
        assert dialog.kind.checkedId() == CONNECTION
        layer = dock.open_store(dialog.location())
        assert layer is not None and layer.providerType() == "postgres" and layer.featureCount() == 1
        assert dock.store.location.schema == schema and password not in dock.store_label.text()
        QTest.keyClicks(dialog.location_edit, location)  # typing a location chooses that row
        assert dialog.kind.checkedId() == LOCATION and dialog.location() == location
    finally:
        metadata.deleteConnection(name)


def test_processing_algorithms_take_a_postgis_location(processing, dock, pg_location, tmp_path):
    import json

    import processing as qgs_processing

    from geolabel.labels.pg_location import parse_location

    create_store(pg_location, crs="EPSG:32649").close()
    shown = parse_location(pg_location).display
    imported = qgs_processing.run(
        "geolabel:import_labels", {"STORE": pg_location, "INPUT": [str(SAMPLE / "village_labels.gpkg")]}
    )
    assert (imported["IMPORTED"], imported["STORE"]) == (136, shown)
    layer = dock.open_store(pg_location)
    checked = qgs_processing.run("geolabel:check", {"INPUT": layer, "OUTPUT": str(tmp_path / "qa")})
    assert checked["ERRORS"] == 4  # the four ponds drawn on fields, as in the GeoPackage
    resolved = qgs_processing.run("geolabel:resolve", {"STORE": pg_location, "MIN_AREA": 1.0, "MIN_WIDTH": 0.0})
    assert (resolved["CUT"], resolved["LABELS_OUT"]) == (4, 136)
    with open_store(pg_location) as store:  # the database recorded the cuts
        assert sum(e.action == "update" for e in store.history()) >= 4
    rechecked = qgs_processing.run("geolabel:check", {"INPUT": layer, "OUTPUT": str(tmp_path / "qa2")})
    assert rechecked["ERRORS"] == 0  # QGIS's layer reads the resolved labels
    tiles = tile_raster(SAMPLE / "village.tif", tmp_path / "chips", size=512, workers=1)
    params = {"STORE": pg_location, "TILES": str(tiles.index_path), "FORMATS": [2], "OUTPUT": str(tmp_path / "ds")}
    assert qgs_processing.run("geolabel:export", params)["TILES_EXPORTED"] == 16
    summary = json.loads((tmp_path / "ds" / "summary.json").read_text())
    assert sum(summary["split"]["tiles"].values()) == 16
    assert len(sorted((tmp_path / "ds" / "labels" / "masks").rglob("*.tif"))) == 16


def test_processing_store_parameters_default_to_the_docks_store_without_its_password(
    processing, dock, pg_store, pg_database, tmp_path
):
    from qgis.core import QgsApplication

    location, _ = pg_store
    _, typed, password = labeler_login(pg_database, location)
    dock.open_store(typed)
    registry = QgsApplication.processingRegistry()
    for name in ("import_labels", "resolve", "export"):
        algorithm = registry.createAlgorithmById(f"geolabel:{name}")
        default = algorithm.parameterDefinition("STORE").defaultValue()
        assert default == dock.store.uri and password.split()[1] not in default
    # run with that default, the engine connects with the password typed this session
    import processing as qgs_processing

    resolved = qgs_processing.run("geolabel:resolve", {"STORE": dock.store.uri})
    assert (resolved["STORE"], resolved["LABELS_OUT"]) == (dock.store.uri, 1)
    assert qgs_processing.run("geolabel:check", {"INPUT": dock.layer, "OUTPUT": str(tmp_path / "qa")})["ERRORS"] == 0

"""The dock's tasks in real QGIS: a labeler's "my tiles" (rejected first, with the comment),
*Submit tile* refused while the tile's checks find errors, and the review mode, driven
through the dock's widgets and keyboard actions.

With ``GEOLABEL_SCREENSHOTS=DIR`` the README's screenshots of both are written to DIR
(``docs/``); they always go to the test's folder.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from geolabel import tile_raster
from geolabel.labels.store import create_store, open_store
from geolabel.tasks import assign_tiles, review_tiles, start_tile, submit_tile
from tests.conftest import SAMPLE

REJECTED, STARTED, OVERLAP = "village_r000_c000", "village_r000_c001", "village_r007_c003"
WANGS = "village_r001_c000"


@pytest.fixture(scope="module")
def tiles(tmp_path_factory):
    return tile_raster(SAMPLE / "village.tif", tmp_path_factory.mktemp("village") / "chips", size=256, workers=1)


@pytest.fixture
def village(tmp_path):
    """A GeoPackage store with the village labels (four pond/field overlaps unresolved)."""
    from geolabel.labels.importer import import_labels

    path = tmp_path / "labels.gpkg"
    with create_store(path, crs="EPSG:32649") as store:
        import_labels(store, [SAMPLE / "village_labels.gpkg"])
    return str(path)


def assign(village, tiles, labeler, tile_ids):
    quoted = ", ".join(f"'{t}'" for t in tile_ids)
    assign_tiles(village, tiles.index_path, team="hunan", labeler=labeler, where=f"tile_id in ({quoted})")


def task_status(village, tile_id):
    with open_store(village) as store:
        return [t.status for t in store.tasks(tile_ids=[tile_id])]


def texts(widget):
    return [widget.item(k).text() for k in range(widget.count())]


def answer_dialog(text):
    """Type ``text`` into the next modal input dialog and press OK (as a reviewer would)."""
    from qgis.PyQt.QtCore import QTimer
    from qgis.PyQt.QtWidgets import QApplication, QInputDialog

    def answer():
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, QInputDialog):
            QTimer.singleShot(20, answer)
            return
        dialog.setTextValue(text)
        dialog.accept()

    QTimer.singleShot(0, answer)


def screenshot(dock, tmp_path, name):
    from qgis.PyQt.QtWidgets import QApplication

    dock.resize(440, 1000)
    dock.show()  # laid out as QGIS shows it (a hidden widget's layout waits)
    QApplication.processEvents()
    path = tmp_path / name
    assert dock.widget().grab().save(str(path), "PNG")
    if os.environ.get("GEOLABEL_SCREENSHOTS"):
        shutil.copyfile(path, Path(os.environ["GEOLABEL_SCREENSHOTS"]) / name)
    return path


def test_my_tiles_rejected_first_with_the_comment_then_in_progress_then_assigned(dock, village, tiles, tmp_path):
    assign(village, tiles, "li", [REJECTED, STARTED, OVERLAP])
    assign(village, tiles, "wang", [WANGS])
    start_tile(village, REJECTED, labeler="li")
    submit_tile(village, REJECTED, labeler="li")
    review_tiles(village, [REJECTED], accept=False, comment="pond edge missed on the east side", reviewer="zhao")
    start_tile(village, STARTED, labeler="li")
    dock.open_store(village)
    assert not dock.work.isHidden() and dock.done_button.isHidden() and not dock.work.submit_button.isHidden()
    assert dock.work.summary_label.text() == "type your name above to see your tiles"
    dock.labeler_edit.setText("li")
    assert texts(dock.work.tasks_list) == [
        f"{REJECTED} · rejected by zhao: pond edge missed on the east side",
        f"{STARTED} · in progress",
        f"{OVERLAP} · assigned",
    ]
    assert dock.tile_label.text() == f"tile 1/3: {REJECTED} (rejected)"
    assert dock.work.summary_label.text() == "3 tiles to do · 0 submitted, 0 accepted"
    screenshot(dock, tmp_path, "screenshot_my_tiles.png")
    assert shows_tile(dock, village, REJECTED)
    dock.next_button.click()
    dock.next_button.click()
    # opening the assigned tile starts it
    assert task_status(village, OVERLAP) == ["in_progress"]
    assert texts(dock.work.tasks_list)[2] == f"{OVERLAP} · in progress"
    assert not dock.next_button.isEnabled()


def test_submit_is_refused_while_the_tile_has_an_overlap_and_goes_through_after_the_fix(dock, village, tiles):
    from geolabel.labels.resolve import resolve_store

    assign(village, tiles, "li", [STARTED, OVERLAP])
    dock.open_store(village)
    dock.labeler_edit.setText("li")
    dock.work.tasks_list.itemClicked.emit(dock.work.tasks_list.item(1))  # a click on the tile in the list
    assert dock.work.current().tile_id == OVERLAP
    dock.work.submit_button.click()
    assert task_status(village, OVERLAP) == ["in_progress"]
    shown = texts(dock.findings_list)
    assert len(shown) == 1 and shown[0].startswith("Overlap · water (sample) / farmland (sample)")
    assert dock.qa_label.text().startswith("1 errors")
    assert [layer.name() for layer in map(dock_layer, dock.findings_layers)] == ["GeoLabel findings polygons"]
    assert "not submitted: 1 error to fix" in bar_texts(dock, "Warning")[-1]
    with open_store(village) as store:
        resolve_store(store)  # the fix: the pond cut out of the field
    dock.work.submit_button.click()
    assert task_status(village, OVERLAP) == ["submitted"]
    assert texts(dock.work.tasks_list) == [f"{STARTED} · in progress"]
    assert dock.work.current().tile_id == STARTED  # moved on to the next tile
    # the key that finishes a tile submits assigned work (Mark done is for stores without tasks)
    dock.shortcut_actions["mark_done"].trigger()
    assert task_status(village, STARTED) == ["submitted"]
    assert dock.work.queue == [] and dock.tile_label.text() == "no tile to do"
    with open_store(village) as store:
        assert [(r.tile_id, r.decision, r.labeler) for r in store.reviews()] == [
            (OVERLAP, "submitted", "li"),
            (STARTED, "submitted", "li"),
        ]
        assert store.tile_statuses() == {}  # nothing marked done by the old way


def test_review_mode_accepts_and_rejects_with_a_comment_by_buttons_and_keys(dock, village, tiles, tmp_path):
    from geolabel.labels.resolve import resolve_store

    with open_store(village) as store:
        resolve_store(store)
    first, second, third = REJECTED, STARTED, "village_r000_c002"
    assign(village, tiles, "li", [first, second, third, OVERLAP])
    for tile in (first, second, third):
        submit_tile(village, tile, labeler="li")
    dock.open_store(village)
    dock.labeler_edit.setText("zhao")
    dock.work.review_check.click()
    assert dock.work.title() == "Review" and dock.work.submit_button.isHidden()
    assert not dock.work.accept_button.isHidden() and not dock.work.reject_button.isHidden()
    assert texts(dock.work.tasks_list) == [f"{t} · li · submitted" for t in (first, second, third)]
    assert dock.qa_label.text().startswith("0 errors")  # the tile's findings, as a check shows them
    dock.shortcut_actions["next_tile"].trigger()
    assert dock.work.current().tile_id == second
    screenshot(dock, tmp_path, "screenshot_review.png")
    dock.shortcut_actions["previous_tile"].trigger()
    dock.work.accept_button.click()
    assert dock.work.current().tile_id == second
    answer_dialog("")  # a rejection without a comment is refused
    dock.work.reject_button.click()
    assert task_status(village, second) == ["submitted"]
    assert "a rejection needs a comment saying what to fix" in bar_texts(dock, "Warning")[-1]
    answer_dialog("the road edge is missed")
    dock.shortcut_actions["reject_tile"].trigger()
    dock.shortcut_actions["accept_tile"].trigger()
    with open_store(village) as store:
        decided = [(r.tile_id, r.decision, r.reviewer, r.comment) for r in store.reviews() if r.reviewer]
        (rejected,) = store.tasks(tile_ids=[second])
    assert decided == [
        (first, "accepted", "zhao", None),
        (second, "rejected", "zhao", "the road edge is missed"),
        (third, "accepted", "zhao", None),
    ]
    assert (rejected.status, rejected.comment) == ("rejected", "the road edge is missed")
    assert dock.work.queue == [] and dock.tile_label.text() == "no tile to review"
    # back as the labeler: the rejected tile comes first, with the comment
    dock.work.review_check.click()
    dock.labeler_edit.setText("li")
    assert texts(dock.work.tasks_list) == [
        f"{second} · rejected by zhao: the road edge is missed",
        f"{OVERLAP} · assigned",
    ]


def test_mark_done_stays_for_a_store_without_tasks(dock, village, tiles):
    dock.open_store(village)
    dock.open_tiles(str(tiles.index_path))
    assert dock.work.isHidden() and not dock.done_button.isHidden()
    dock.shortcut_actions["mark_done"].trigger()
    with open_store(village) as store:
        assert store.tile_statuses() == {"village_r000_c000": "done"}


def dock_layer(layer_id):
    from qgis.core import QgsProject

    return QgsProject.instance().mapLayer(layer_id)


def bar_texts(dock, level):
    from qgis.core import Qgis

    return dock.iface.messageBar().get_messages(getattr(Qgis.MessageLevel, level))


def member_login(pg_database, location, role, team="team_a"):
    """A new login in the project's ``role`` group and ``team``: (name, location with its password)."""
    import uuid

    import psycopg

    with open_store(location) as store:
        group, schema = store.groups[role], store.location.schema
    name, password = f"{role[:3]}_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:12]
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{password}' IN ROLE {group}")
        conn.execute(f"INSERT INTO {schema}.geolabel_members VALUES (%s, %s, %s)", (name, team, role))
    return name, f"postgresql://{name}:{password}@{pg_database.split('@', 1)[1]}?schema={schema}"


def test_on_postgis_my_tiles_are_the_logins_and_a_reviewer_gets_the_review_mode(dock, pg_location, pg_database, tiles):
    create_store(pg_location, crs="EPSG:32649").close()
    labeler, as_labeler = member_login(pg_database, pg_location, "labeler")
    reviewer, as_reviewer = member_login(pg_database, pg_location, "reviewer")
    assign_tiles(pg_location, tiles.index_path, team="team_a", labeler=labeler, where=f"tile_id in ('{STARTED}')")
    assign_tiles(pg_location, tiles.index_path, team="team_a", where=f"tile_id in ('{REJECTED}')")
    dock.open_store(as_labeler)  # no name typed: the database role is the labeler
    assert not dock.work.review_check.isChecked()
    assert texts(dock.work.tasks_list) == [f"{STARTED} · in progress", f"{REJECTED} · assigned to the team"]
    dock.work.submit_button.click()
    assert dock.work.current().tile_id == REJECTED  # taken from the team by opening it
    dock.work.submit_button.click()
    with open_store(pg_location) as store:
        assert {(t.tile_id, t.status, t.labeler) for t in store.tasks()} == {
            (STARTED, "submitted", labeler),
            (REJECTED, "submitted", labeler),
        }
    dock.open_store(as_reviewer)
    assert dock.work.review_check.isChecked() and dock.work.title() == "Review"
    assert [t.tile_id for t in dock.work.queue] == [STARTED, REJECTED]  # oldest submission first
    dock.shortcut_actions["accept_tile"].trigger()
    with open_store(pg_location) as store:
        assert [(r.tile_id, r.decision, r.reviewer) for r in store.reviews() if r.reviewer] == [
            (STARTED, "accepted", reviewer)
        ]


def shows_tile(dock, village, tile_id):
    """The map shows the task's tile, whatever CRS the map is in (an earlier test may have
    left the project in WGS 84: the dock zooms in the map's CRS)."""
    from qgis.core import QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsProject, QgsRectangle

    canvas = dock.iface.mapCanvas()
    with open_store(village) as store:
        (task,) = store.tasks(tile_ids=[tile_id])
        crs = QgsCoordinateReferenceSystem(store.crs.to_wkt())
    tile = QgsRectangle(task.minx + 1, task.miny + 1, task.maxx - 1, task.maxy - 1)
    to_map = QgsCoordinateTransform(crs, canvas.mapSettings().destinationCrs(), QgsProject.instance())
    return canvas.extent().contains(to_map.transformBoundingBox(tile))

"""The dock's tile tags: toggle buttons from the store's tag schema, number keys, Enter to
move on; keys pressed through QTest on the dock, tags read back through the engine."""

from __future__ import annotations

import pytest

from geolabel import tile_raster
from geolabel.labels.store import create_store, open_store
from geolabel.labels.tags import list_tile_tags
from geolabel.labels.tagschema import TagSchema, load_tag_schema
from tests.conftest import SAMPLE


@pytest.fixture(scope="module")
def tiles(tmp_path_factory):
    return tile_raster(SAMPLE / "village.tif", tmp_path_factory.mktemp("chips"), size=512, workers=1).index_path


@pytest.fixture
def window(dock):
    """The main window shown and active: window shortcuts fire only in the active window."""
    from qgis.PyQt.QtWidgets import QApplication

    win = dock.iface.mainWindow()
    win.show()
    QApplication.setActiveWindow(win)
    QApplication.processEvents()
    yield win
    win.hide()


def tagging_dock(dock, tmp_path, tiles, mode="multi", labeler="li"):
    schema = load_tag_schema(SAMPLE / "village_tags.toml")
    if mode != "multi":
        schema = TagSchema.from_dict({**schema.to_dict(), "mode": mode})
    create_store(tmp_path / "labels.gpkg", crs="EPSG:32649", tag_schema=schema).close()
    dock.labeler_edit.setText(labeler)
    dock.open_store(str(tmp_path / "labels.gpkg"))
    dock.open_tiles(str(tiles))
    return dock


def press(dock, key, modifier=None):
    from qgis.PyQt.QtCore import Qt
    from qgis.PyQt.QtTest import QTest

    QTest.keyClick(dock, getattr(Qt, f"Key_{key}"), modifier or Qt.NoModifier)


def stored(path, tile_id):
    return [(r["tag"], r["labeler"], r["status"]) for r in list_tile_tags(path, tile_id=tile_id)]


def checked(dock):
    return [b.text() for b in dock.tags.buttons.values() if b.isChecked()]


def test_the_bar_shows_the_schemas_tags_in_order_with_keys_and_colours(dock, tmp_path, tiles):
    tagging_dock(dock, tmp_path, tiles)
    bar = dock.tags
    assert not bar.isHidden() and bar.title() == "Tile tags (any tags)"
    texts = [b.text() for b in bar.buttons.values()]
    assert texts == [
        "1 water 水体",
        "2 paddy 水田",
        "3 village 村庄",
        "4 road 道路",
        "5 forest 林地",
        "6 crossroads 十字路口",
    ]
    assert bar.buttons[1].toolTip() == "water 水体: a river, pond or canal is visible (key 1)"
    assert "#2b7bd6" in bar.buttons[1].styleSheet() and "#ff7f0e" in bar.buttons[6].styleSheet()
    # the class palette gives the bare number keys to the tags
    assert dock._palette_buttons()[0].toolTip() == "Draw water 水体 (key Alt+1)"
    assert bar.next_button.toolTip().endswith("(key Return)")
    assert [k.toString() for k in dock.shortcut_actions["move_on"].shortcuts()] == ["Return", "Enter"]


def test_number_keys_toggle_tags_and_enter_saves_marks_done_and_moves_on(dock, window, tmp_path, tiles):
    from qgis.PyQt.QtCore import Qt

    tagging_dock(dock, tmp_path, tiles)
    first, second = dock.chips[0].tile_id, dock.chips[1].tile_id
    assert dock.tags.tile_id == first
    press(dock, 1)
    press(dock, 4)
    assert checked(dock) == ["1 water 水体", "4 road 道路"]
    assert dock.tile_label.text() == f"tile 1/16: {first} (in_progress)"
    press(dock, 4)  # again: off
    press(dock, 2, Qt.KeypadModifier)  # the number pad's keys too
    assert checked(dock) == ["1 water 水体", "2 paddy 水田"]
    press(dock, "Return")
    path = tmp_path / "labels.gpkg"
    assert stored(path, first) == [("water", "li", "draft"), ("paddy", "li", "draft")]
    assert dock.tile_index == 1 and dock.tags.tile_id == second and checked(dock) == []
    press(dock, 6)
    press(dock, "Enter", Qt.KeypadModifier)  # the keypad's Enter: tagging with one hand
    assert dock.tile_index == 2
    with open_store(path) as store:
        assert store.tile_statuses() == {first: "done", second: "done"}
    assert stored(path, second) == [("crossroads", "li", "draft")]
    assert dock.progress() == (2, 16)
    # Alt+number still picks a class; the bare number did not
    assert not any(b.isChecked() for b in dock._palette_buttons())
    press(dock, 2, Qt.AltModifier)
    assert dock._palette_buttons()[1].isChecked() and dock.layer.isEditable()
    # back on a tagged tile, its tags are shown again
    dock.go_to_tile(0)
    assert checked(dock) == ["1 water 水体", "2 paddy 水田"]


def test_single_label_tags_behave_as_radio_buttons(dock, window, tmp_path, tiles):
    tagging_dock(dock, tmp_path, tiles, mode="single")
    tile = dock.chips[0].tile_id
    assert dock.tags.title() == "Tile tags (one tag per tile)"
    press(dock, 1)
    press(dock, 3)
    assert checked(dock) == ["3 village 村庄"]
    press(dock, 3)  # a radio button stays picked
    assert checked(dock) == ["3 village 村庄"]
    assert stored(tmp_path / "labels.gpkg", tile) == [("village", "li", "draft")]


def test_tags_are_per_labeler_and_others_are_named(dock, window, tmp_path, tiles):
    from geolabel.labels.tags import set_tile_tags

    tagging_dock(dock, tmp_path, tiles)
    tile = dock.chips[0].tile_id
    press(dock, 5)
    set_tile_tags(tmp_path / "labels.gpkg", tile, ["water", "paddy"], labeler="suggest")
    dock.go_to_tile(0)
    assert checked(dock) == ["5 forest 林地"]
    assert dock.tags.summary.text() == "li: forest (draft)\nsuggest: water, paddy"
    dock.labeler_edit.setText("wang")  # another labeler: their own (no) tags
    assert checked(dock) == [] and dock.tags.summary.text().startswith("wang: no tag yet")


def test_without_a_name_nothing_is_written_and_the_labeler_is_told(dock, window, tmp_path, tiles):
    from qgis.core import Qgis

    tagging_dock(dock, tmp_path, tiles, labeler="")
    press(dock, 1)
    assert checked(dock) == []
    assert list_tile_tags(tmp_path / "labels.gpkg") == []
    warnings = dock.iface.messageBar().get_messages(Qgis.MessageLevel.Warning)
    assert any("type your name" in w for w in warnings)


def test_enter_in_a_text_field_stays_the_fields(dock, window, tmp_path, tiles):
    tagging_dock(dock, tmp_path, tiles)
    returned = []
    dock.labeler_edit.returnPressed.connect(lambda: returned.append(True))
    dock.labeler_edit.setFocus()
    press(dock.labeler_edit, 3)  # typed into the name, not a tag
    press(dock.labeler_edit, "Return")
    assert dock.labeler_edit.text() == "li3" and returned == [True]
    assert dock.tile_index == 0 and list_tile_tags(tmp_path / "labels.gpkg") == []


def test_a_store_without_tag_schema_shows_no_tag_bar_and_numbers_pick_classes(dock, window, tmp_path, tiles):
    tagging_dock(dock, tmp_path, tiles)
    assert not dock.tags.isHidden()
    dock.new_store(str(tmp_path / "plain.gpkg"), crs="EPSG:32649")  # no tag schema
    assert dock.tags.isHidden() and dock.tags.schema is None
    actions = dock.shortcut_actions
    assert [actions[f"class_{k}"].shortcut().toString() for k in range(1, 10)] == [str(k) for k in range(1, 10)]
    assert not any(actions[f"tag_{k}"].isEnabled() for k in range(1, 10)) and not actions["move_on"].isEnabled()
    assert dock._palette_buttons()[0].toolTip() == "Draw water 水体 (key 1)"
    press(dock, 3)
    assert dock._palette_buttons()[2].isChecked()
    index = dock.tile_index
    press(dock, "Return")
    assert dock.tile_index == index


def test_enter_stores_a_smart_region_selection_before_it_moves_on(dock, window, tmp_path, tiles):
    import numpy as np

    tagging_dock(dock, tmp_path, tiles)
    tool = dock.smart_tool
    stored_regions = []
    tool.store_region = lambda: stored_regions.append(True)
    dock.smart_button.click()
    assert dock.iface.mapCanvas().mapTool() is tool
    tool.cancel()  # the tile's superpixels would replace the region set here
    tool.region = type("Region", (), {"selected": np.array([False, True])})()
    press(dock, "Return")  # the tool's: the selection is stored, the tile stays
    assert stored_regions == [True] and dock.tile_index == 0
    tool.region.selected[:] = False
    press(dock, "Return")  # nothing selected: move on
    assert stored_regions == [True] and dock.tile_index == 1
    tool.region = None
    dock.smart_button.click()


def test_with_assigned_tiles_enter_submits_the_tile_and_opens_the_next(dock, window, tmp_path, tiles):
    from geolabel.tasks import assign_tiles

    schema = load_tag_schema(SAMPLE / "village_tags.toml")
    path = tmp_path / "labels.gpkg"
    create_store(path, crs="EPSG:32649", tag_schema=schema).close()
    first, second = "village_r000_c000", "village_r000_c001"
    assign_tiles(path, tiles, team="hunan", labeler="li", where=f"tile_id in ('{first}', '{second}')")
    dock.labeler_edit.setText("li")
    dock.open_store(str(path))
    assert dock.work.active and dock.tags.tile_id == first
    press(dock, 3)
    press(dock, "Return")
    with open_store(path) as store:
        assert {t.tile_id: t.status for t in store.tasks()} == {first: "submitted", second: "in_progress"}
    assert stored(path, first) == [("village", "li", "submitted")]  # the tags go with the submitted tile
    assert dock.tags.tile_id == second and checked(dock) == []

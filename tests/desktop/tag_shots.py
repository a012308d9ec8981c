"""Screenshot of the dock's tile tags in the real QGIS window, tagged by real key presses
(xdotool through the X server): ``qgis --nologo --noversioncheck --code tag_shots.py``
under Xvfb with GEOLABEL_SHOTS (a JSON file: worktree, site, plugins, work folder, docs
folder). Not a test: it draws the README's picture and writes ``tag_shots.json`` (what the
keys did, who else binds them, how long a move-on took) into the work folder;
tests/qgis/test_tag_bar.py checks the behaviour."""

import json
import os
import subprocess
import sys
import time

with open(os.environ["GEOLABEL_SHOTS"], encoding="utf-8") as _f:
    CONFIG = json.load(_f)
sys.path[:0] = [CONFIG["plugins"], CONFIG["site"], CONFIG["worktree"]]

import qgis.utils  # noqa: E402
from geolabel_qgis import engine  # noqa: E402
from qgis.core import QgsApplication, QgsProject, QgsRasterLayer  # noqa: E402
from qgis.PyQt.QtCore import Qt, QTimer  # noqa: E402
from qgis.PyQt.QtGui import QKeySequence  # noqa: E402
from qgis.PyQt.QtWidgets import QAction, QShortcut  # noqa: E402

assert engine.missing_dependency() is None  # the wheels' libraries bound before any use
from geolabel import tile_raster  # noqa: E402
from geolabel.labels.store import create_store  # noqa: E402
from geolabel.labels.tags import list_tile_tags, set_tile_tags  # noqa: E402
from geolabel.labels.tagschema import load_tag_schema  # noqa: E402

iface = qgis.utils.iface
SAMPLE = os.path.join(CONFIG["worktree"], "sample_data")
work = CONFIG["work"]
STORE = os.path.join(work, "labels.gpkg")
TILE = "village_r002_c002"  # river, paddy fields and houses
KEYS = ["1", "Alt+1", "9", "Alt+9", "Return", "Enter"]
report = {}


def shot(name):
    QgsApplication.processEvents()
    path = os.path.join(CONFIG["docs"], name)
    subprocess.run(["import", "-display", os.environ["DISPLAY"], "-window", "root", path], check=True, timeout=30)


def xkey(*keys):
    subprocess.run(["xdotool", "key", "--delay", "80", *keys], check=True, timeout=30)


def setup():
    from geolabel_qgis.gui.dock import LabelingDock

    iface.mainWindow().setGeometry(0, 0, 1600, 1000)
    QgsProject.instance().addMapLayer(QgsRasterLayer(os.path.join(SAMPLE, "village.tif"), "village"))
    tiles = tile_raster(os.path.join(SAMPLE, "village.tif"), os.path.join(work, "chips"), size=512, workers=1)
    schema = load_tag_schema(os.path.join(SAMPLE, "village_tags.toml"))
    create_store(STORE, crs="EPSG:32649", tag_schema=schema).close()
    dock = LabelingDock(iface)
    iface.addDockWidget(Qt.RightDockWidgetArea, dock)
    dock.labeler_edit.setText("li")
    dock.open_store(STORE)
    dock.open_tiles(str(tiles.index_path))
    k = next(k for k, c in enumerate(dock.chips) if c.tile_id == TILE)
    dock.go_to_tile(k)
    set_tile_tags(STORE, TILE, ["water"], labeler="suggest")  # as `geolabel tags suggest` would
    state.update(dock=dock, k=k)
    QTimer.singleShot(3000, tag_by_keys)


def bindings():
    """Enabled actions and shortcuts of the main window per key of KEYS."""
    mw, bound = iface.mainWindow(), {}
    for action in mw.findChildren(QAction):
        for seq in action.shortcuts():
            key = seq.toString(QKeySequence.PortableText)
            if key in KEYS and action.isEnabled():
                bound.setdefault(key, []).append(action.objectName() or action.text())
    for sc in mw.findChildren(QShortcut):
        key = sc.key().toString(QKeySequence.PortableText)
        if key in KEYS and sc.isEnabled():
            bound.setdefault(key, []).append(sc.objectName())
    return bound


def tag_by_keys():
    dock = state["dock"]
    report["bindings"] = bindings()
    mw = iface.mainWindow()
    mw.activateWindow()
    iface.mapCanvas().setFocus()
    dock.go_to_tile(state["k"])  # the canvas has its size now
    QgsApplication.processEvents()
    xkey("1", "2", "3")  # water, paddy, village
    QTimer.singleShot(1500, after_keys)


def after_keys():
    dock = state["dock"]
    report["checked"] = [b.text() for b in dock.tags.buttons.values() if b.isChecked()]
    report["stored"] = [(r["tag"], r["labeler"], r["status"]) for r in list_tile_tags(STORE, tile_id=TILE)]
    report["palette_tooltip"] = dock._palette_buttons()[0].toolTip()
    iface.mapCanvas().refreshAllLayers()
    QTimer.singleShot(2500, lambda: (shot("dock_tags.png"), move_on()))


def move_on():
    dock = state["dock"]
    start = time.perf_counter()
    xkey("Return")
    QgsApplication.processEvents()
    report["move_on_seconds_incl_xdotool"] = round(time.perf_counter() - start, 3)
    report["tile_after_enter"] = dock.chips[dock.tile_index].tile_id
    report["statuses"] = dock.store.tile_statuses()
    report["load"] = os.getloadavg()
    with open(os.path.join(work, "tag_shots.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, ensure_ascii=False, indent=1)
    QTimer.singleShot(500, quit_)


def quit_():
    QgsProject.instance().setDirty(False)
    QgsProject.instance().removeAllMapLayers()
    os._exit(0)


state = {}
QTimer.singleShot(2000, setup)

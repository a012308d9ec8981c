"""Screenshots of the dock's Smart region tool and suggestions panel in the real QGIS window:
``qgis --nologo --noversioncheck --code assist_shots.py`` under Xvfb with GEOLABEL_SHOTS
(a JSON file: worktree, site-packages, work folder, docs folder). Not a test: it only
draws the README's pictures; tests/qgis/test_assist_dock.py checks the behaviour."""

import json
import os
import subprocess
import sys

with open(os.environ["GEOLABEL_SHOTS"], encoding="utf-8") as _f:
    CONFIG = json.load(_f)
sys.path[:0] = [CONFIG["plugins"], CONFIG["site"], CONFIG["worktree"]]

import qgis.utils  # noqa: E402
from geolabel_qgis import engine  # noqa: E402
from qgis.core import QgsApplication, QgsProject, QgsRasterLayer  # noqa: E402
from qgis.PyQt.QtCore import Qt, QTimer  # noqa: E402

assert engine.missing_dependency() is None  # the wheels' libraries bound before any use
import geopandas as gpd  # noqa: E402
import shapely  # noqa: E402
from shapely.ops import polylabel  # noqa: E402

from geolabel import tile_raster  # noqa: E402
from geolabel.suggest import suggest_water, write_suggestions  # noqa: E402

iface = qgis.utils.iface
SAMPLE = os.path.join(CONFIG["worktree"], "sample_data")
work = CONFIG["work"]


def shot(name):
    QgsApplication.processEvents()
    path = os.path.join(CONFIG["docs"], name)
    subprocess.run(["import", "-display", os.environ["DISPLAY"], "-window", "root", path], check=True, timeout=30)


def setup():
    from geolabel_qgis.gui.dock import LabelingDock

    iface.mainWindow().setGeometry(0, 0, 1600, 1000)
    raster = QgsRasterLayer(os.path.join(SAMPLE, "village.tif"), "village")
    QgsProject.instance().addMapLayer(raster)
    tiles = tile_raster(os.path.join(SAMPLE, "village.tif"), os.path.join(work, "chips"), size=512, workers=1)
    dock = LabelingDock(iface)
    iface.addDockWidget(Qt.RightDockWidgetArea, dock)
    dock.new_store(os.path.join(work, "labels.gpkg"), crs="EPSG:32649")
    water = suggest_water(os.path.join(SAMPLE, "village.tif"), workers=1)
    write_suggestions(water.polygons, crs=water.crs, class_name="water", into=dock.store)
    dock.layer.dataProvider().reloadData()
    dock._show_count()
    dock.labeler_edit.setText("li")
    ref = gpd.read_file(os.path.join(SAMPLE, "village_labels.gpkg"), layer="labels")
    pond = polylabel(ref[(ref.class_code == 1) & (ref.area < 20_000)].geometry.iloc[3], 0.5)
    dock.open_tiles(str(tiles.index_path))
    k = next(k for k, c in enumerate(dock.chips) if c.footprint.covers(shapely.Point(pond.x, pond.y)))
    dock.go_to_tile(k)
    state.update(dock=dock, pond=pond)
    QTimer.singleShot(3000, suggestions_shot)


def suggestions_shot():
    dock = state["dock"]
    dock.suggestions.list.item(0).setSelected(True)
    dock.go_to_tile(dock.tile_index)  # the canvas has its size now
    iface.mapCanvas().refreshAllLayers()
    QTimer.singleShot(3000, lambda: (shot("dock_suggestions.png"), smart_region()))


def smart_region():
    dock, pond = state["dock"], state["pond"]
    dock.suggestions.reject(list(dock.suggestions.ids))  # the map shows the tool's band alone
    iface.messageBar().clearWidgets()
    dock.set_class(1)
    dock.smart_button.click()
    dock._zoom((pond.x - 120, pond.y - 90, pond.x + 120, pond.y + 90), "EPSG:32649")
    QTimer.singleShot(2500, lambda: click(pond))


def click(pond):
    dock = state["dock"]
    dock.smart_tool.click(pond.x, pond.y)
    QTimer.singleShot(1500, lambda: (shot("dock_smart_region.png"), quit_()))


def quit_():
    QgsProject.instance().setDirty(False)
    QgsProject.instance().removeAllMapLayers()
    os._exit(0)


state = {}
QTimer.singleShot(2000, setup)

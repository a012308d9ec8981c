"""Render the README's QGIS screenshots from the sample project, headless (QGIS offscreen).

Run with a Python that has QGIS and geolabel: ``.venv/bin/python docs/make_screenshots.py
[--out docs]``. Builds the sample project in a temporary folder (village raster, chips,
label store resolved from the sample labels plus one deliberate mistake, QA findings),
then renders:

- ``screenshot_map.png``: the village raster, labels styled by class, the tile grid;
- ``screenshot_finding.png``: zoomed to a QA finding (an overlap) over the labels;
- ``screenshot_dock.png``: the GeoLabel labeling dock (palette, tile navigator, findings).

The same screenshots taken in the real QGIS window (plus ``screenshot_toolbox.png`` and
``screenshot_dialog.png``) come from the desktop test, which drives QGIS under Xvfb:
``GEOLABEL_SCREENSHOTS=docs .venv/bin/python -m pytest tests/desktop -p no:pytest_qgis``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("GDAL_PAM_ENABLED", "NO")  # no statistics .aux.xml next to the sample raster
sys.path.insert(0, str(ROOT))


def render(layers, extent, path, size=(1000, 1000)):
    from qgis.core import QgsMapRendererParallelJob, QgsMapSettings
    from qgis.PyQt.QtCore import QSize
    from qgis.PyQt.QtGui import QColor

    settings = QgsMapSettings()
    settings.setLayers(layers)
    settings.setDestinationCrs(layers[-1].crs())
    settings.setExtent(extent)
    settings.setOutputSize(QSize(*size))
    settings.setBackgroundColor(QColor("white"))
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    image = job.renderedImage()
    if not image.save(str(path), "PNG"):
        raise OSError(f"could not write {path}")
    return image


def build_project(work: Path):
    """The sample project the screenshots show; returns the paths."""
    import shapely

    from geolabel import tile_raster
    from geolabel.labels.edit import resolve_store
    from geolabel.labels.importer import import_labels
    from geolabel.labels.store import create_store
    from geolabel.qa import check_labels, load_delivery
    from geolabel.report import write_findings_gpkg

    tiles = tile_raster(ROOT / "sample_data" / "village.tif", work / "chips", size=512, workers=1)
    store = create_store(work / "labels.gpkg", crs="EPSG:32649")
    import_labels(store, [ROOT / "sample_data" / "village_labels.gpkg"], labeler="li", team="hunan")
    resolve_store(store)
    # one labeler's mistake for the QA screenshot: a house drawn twice, shifted by 3 m
    house = store.query(classes=[3]).geometry.iloc[10]
    store.add_geometries([shapely.affinity.translate(house, 3, 2)], class_codes=[3], labeler="wang")
    store.set_tile_status(tiles.chips[0].tile_id, "done")
    store.close()
    result = check_labels(load_delivery(work / "labels.gpkg"))
    write_findings_gpkg(result, work / "findings.gpkg")
    return tiles.index_path, work / "labels.gpkg", work / "findings.gpkg", result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "docs"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from qgis.core import QgsApplication, QgsProject, QgsRasterLayer, QgsRectangle, QgsVectorLayer

    app = QgsApplication([], False)
    app.initQgis()
    try:
        from geolabel.labels.store import open_store
        from qgis_plugin.gui.dock import LabelingDock, style_labels_layer

        work = Path(tempfile.mkdtemp(prefix="geolabel-shots-"))
        index, store_path, findings_path, result = build_project(work)
        raster = QgsRasterLayer(str(ROOT / "sample_data" / "village.tif"), "village")
        labels = QgsVectorLayer(f"{store_path}|layername=labels", "labels", "ogr")
        with open_store(store_path) as store:
            style_labels_layer(labels, store.schema)
        grid = QgsVectorLayer(f"{index}|layername=tiles", "tiles", "ogr")
        from qgis.core import QgsFillSymbol, QgsSingleSymbolRenderer

        grid.setRenderer(
            QgsSingleSymbolRenderer(
                QgsFillSymbol.createSimple({"style": "no", "outline_color": "255,0,255,255", "outline_width": "0.6"})
            )
        )
        findings = QgsVectorLayer(f"{findings_path}|layername=findings_polygons", "findings", "ogr")
        findings.loadDefaultStyle()
        for layer in (raster, labels, grid, findings):
            assert layer.isValid(), layer.name()
            QgsProject.instance().addMapLayer(layer)
        render([grid, labels, raster], raster.extent(), out / "screenshot_map.png")
        overlap = next(f for f in result.findings if f.type in ("overlap", "duplicate"))
        minx, miny, maxx, maxy = overlap.geometry.buffer(25).bounds
        render(
            [findings, grid, labels, raster],
            QgsRectangle(minx, miny, maxx, maxy),
            out / "screenshot_finding.png",
            size=(700, 700),
        )

        class Iface:  # the dock only needs the map canvas and a message bar here
            def __init__(self, active):
                from qgis.gui import QgsMapCanvas, QgsMessageBar
                from qgis.PyQt.QtWidgets import QMainWindow

                self.active = active
                self.canvas = QgsMapCanvas()
                self.bar = QgsMessageBar()
                self.window = QMainWindow()

            def mainWindow(self):
                return self.window

            def registerMainWindowAction(self, action, key):
                return True

            def unregisterMainWindowAction(self, action):
                return True

            def mapCanvas(self):
                return self.canvas

            def messageBar(self):
                return self.bar

            def activeLayer(self):
                return self.active

            def setActiveLayer(self, layer):
                return True

        dock = LabelingDock(Iface(raster))
        dock.open_store(str(store_path))
        dock.labeler_edit.setText("li")
        dock.set_class(1)
        dock.open_tiles(str(index))
        dock.check_now()
        dock.resize(360, 820)
        dock.widget().resize(360, 800)
        dock.grab().save(str(out / "screenshot_dock.png"), "PNG")
        dock.close_store()
        QgsProject.instance().removeAllMapLayers()
        del raster, labels, grid, findings, dock
        print(f"wrote {out / 'screenshot_map.png'}, {out / 'screenshot_finding.png'}, {out / 'screenshot_dock.png'}")
    finally:
        app.exitQgis()


if __name__ == "__main__":
    main()

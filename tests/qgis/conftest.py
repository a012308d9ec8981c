"""Tests inside real QGIS (Debian's python3-qgis 3.22, headless), with pytest-qgis fixtures.

The plugin folder ``qgis_plugin/`` is installed, as QGIS sees it, under the name
``geolabel_qgis`` in a temporary plugin directory.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.append("/usr/share/qgis/python/plugins")  # QGIS's Processing framework
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# QGIS computes raster statistics when rendering; keep its .aux.xml files out of sample_data/
os.environ["GDAL_PAM_ENABLED"] = "NO"


@pytest.fixture(scope="session")
def plugin_dir(tmp_path_factory):
    """A QGIS plugin directory holding the plugin under its installed name."""
    import qgis.utils

    root = tmp_path_factory.mktemp("plugins")
    (root / "geolabel_qgis").symlink_to(ROOT / "qgis_plugin", target_is_directory=True)
    sys.path.insert(0, str(root))
    if str(root) not in qgis.utils.plugin_paths:
        qgis.utils.plugin_paths.insert(0, str(root))
    qgis.utils.updateAvailablePlugins()
    assert "geolabel_qgis" in qgis.utils.available_plugins
    return root


@pytest.fixture(scope="session")
def processing(qgis_app, plugin_dir):
    """QGIS Processing initialised, with the GeoLabel provider loaded through the plugin."""
    import qgis.utils
    from processing.core.Processing import Processing

    Processing.initialize()
    assert qgis.utils.loadPlugin("geolabel_qgis")
    assert qgis.utils.startPlugin("geolabel_qgis")
    yield
    qgis.utils.unloadPlugin("geolabel_qgis")


@pytest.fixture
def dock(qgis_app, qgis_iface, plugin_dir, qgis_new_project):
    """The labeling dock on pytest-qgis's iface, in a new project; its store closed after."""
    import importlib

    module = importlib.import_module("geolabel_qgis.gui.dock")
    widget = module.LabelingDock(qgis_iface)
    yield widget
    widget.remove_shortcuts()
    widget.close_store()
    from qgis.core import QgsProject

    QgsProject.instance().removeAllMapLayers()
    widget.deleteLater()


def add_polygon(layer, wkt):
    """Digitize like QGIS's tools do: a feature made by QgsVectorLayerUtils (defaults applied)."""
    from qgis.core import QgsGeometry, QgsVectorLayerUtils

    feature = QgsVectorLayerUtils.createFeature(layer, QgsGeometry.fromWkt(wkt), {}, layer.createExpressionContext())
    assert layer.addFeature(feature)
    return feature


@pytest.fixture
def unloaded_plugin(qgis_app, qgis_iface, plugin_dir):
    """The plugin unloaded for a lifecycle test, and restarted afterwards if it was active
    (the session's ``processing`` fixture may have started it)."""
    import qgis.utils

    was_active = "geolabel_qgis" in qgis.utils.active_plugins
    if was_active:
        qgis.utils.unloadPlugin("geolabel_qgis")
    yield
    if "geolabel_qgis" in qgis.utils.active_plugins:
        qgis.utils.unloadPlugin("geolabel_qgis")
    if was_active:
        assert qgis.utils.loadPlugin("geolabel_qgis") and qgis.utils.startPlugin("geolabel_qgis")

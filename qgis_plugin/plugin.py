"""The plugin object QGIS loads: registers the Processing provider and the labeling dock."""

from __future__ import annotations

import os

from qgis.core import Qgis, QgsApplication, QgsMessageLog

from .engine import help_message, missing_dependency

PLUGIN_DIR = os.path.dirname(__file__)
LOG_TAG = "GeoLabel"


class GeolabelPlugin:
    """QGIS plugin: ``initProcessing`` for the provider, ``initGui`` for the dock and menu."""

    def __init__(self, iface):
        self.iface = iface
        self.provider = None
        self.dock = None
        self.action = None
        self.missing = missing_dependency()

    # -- Processing (also called by qgis_process without a GUI) ---------------------

    def initProcessing(self):
        if self.provider is not None:  # QGIS may call both initProcessing and initGui
            return
        if self.missing is not None:
            QgsMessageLog.logMessage(help_message(self.missing), LOG_TAG, Qgis.Critical)
            return
        from .processing.provider import GeolabelProvider

        self.provider = GeolabelProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)

    # -- GUI --------------------------------------------------------------------------

    def initGui(self):
        from qgis.PyQt.QtGui import QIcon
        from qgis.PyQt.QtWidgets import QAction

        self.initProcessing()
        icon = QIcon(os.path.join(PLUGIN_DIR, "icon.png"))
        self.action = QAction(icon, "GeoLabel labeling", self.iface.mainWindow())
        self.action.setCheckable(True)
        self.action.toggled.connect(self._toggle_dock)
        self.iface.addPluginToMenu("&GeoLabel", self.action)
        self.iface.addToolBarIcon(self.action)
        if self.missing is not None:
            self.iface.messageBar().pushMessage("GeoLabel", help_message(self.missing), level=Qgis.Critical, duration=0)

    def _toggle_dock(self, visible):
        if self.missing is not None:
            from qgis.PyQt.QtWidgets import QMessageBox

            QMessageBox.critical(self.iface.mainWindow(), "GeoLabel", help_message(self.missing))
            self.action.setChecked(False)
            return
        if self.dock is None:
            from qgis.PyQt.QtCore import Qt

            from .gui.dock import LabelingDock

            self.dock = LabelingDock(self.iface)
            self.iface.addDockWidget(Qt.RightDockWidgetArea, self.dock)
            self.dock.visibilityChanged.connect(self.action.setChecked)  # closed with its X: unchecked
        self.dock.setVisible(visible)

    def unload(self):
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        if self.action is not None:
            self.iface.removePluginMenu("&GeoLabel", self.action)
            self.iface.removeToolBarIcon(self.action)
            self.action = None
        if self.dock is not None:
            self.iface.removeDockWidget(self.dock)
            self.dock.remove_shortcuts()
            self.dock.close_store()
            self.dock.deleteLater()
            self.dock = None

"""The dock's suggestions: the pending suggested labels of the current tile, on the map in
a dashed style, with *Accept*, *Accept all in tile* and *Reject*.

What pending, accepted and rejected mean is the engine's (:mod:`geolabel.suggest.review`):
pending = ``source="suggested"`` at version 1; *Accept* names the dock's labeler and keeps
the source, so the label still shows it was assisted; *Reject* deletes it (the store's
history keeps it). The panel saves the labeler's edits first (the engine writes to the
store), then reloads the labels layer.
"""

from __future__ import annotations

from qgis.core import QgsFillSymbol, QgsProject, QgsSingleSymbolRenderer
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
)

from .. import stores

#: The pending suggestions on the map: the labels layer's rows the engine counts as pending.
PENDING_FILTER = '"source" = \'suggested\' AND "version" = 1'
OUTLINE = "#00e5ff"


class SuggestionsPanel(QGroupBox):
    """ "Suggestions" box of the labeling dock."""

    def __init__(self, dock):
        super().__init__("Suggestions", dock)
        self.dock = dock
        self.layer_id = None
        self.ids = []  # label ids listed, in list order
        self.bounds = None  # the current tile's box in the store's CRS (None: everywhere)
        layout = QVBoxLayout(self)
        self.summary = QLabel("")
        self.list = QListWidget()
        self.list.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.list.setMaximumHeight(120)
        self.list.itemDoubleClicked.connect(self._zoom_to)
        row = QHBoxLayout()
        self.accept_button = QPushButton("Accept")
        self.accept_all_button = QPushButton("Accept all in tile")
        self.reject_button = QPushButton("Reject")
        self.accept_button.clicked.connect(lambda: self.accept(self.selected_ids()))
        self.accept_all_button.clicked.connect(lambda: self.accept(list(self.ids)))
        self.reject_button.clicked.connect(lambda: self.reject(self.selected_ids()))
        for button in (self.accept_button, self.accept_all_button, self.reject_button):
            row.addWidget(button)
        layout.addWidget(self.summary)
        layout.addWidget(self.list)
        layout.addLayout(row)
        self.setVisible(False)

    def refresh(self, bounds=False):
        """List the pending suggestions in ``bounds`` (the tile's box in the store's CRS;
        None: all; left out: the last bounds given); hidden while there are none."""
        from geolabel.suggest.review import pending_suggestions

        if bounds is not False:
            self.bounds = None if bounds is None else tuple(bounds)
        frame = None
        if self.dock.store is not None:
            frame = self.dock._store_call(pending_suggestions, self.dock.store, self.bounds)
        self.ids = [] if frame is None else [str(i) for i in frame.label_id]
        self._fill(frame)
        self._show_layer(bool(self.ids))
        self.setVisible(bool(self.ids))

    def selected_ids(self):
        return [item.data(Qt.UserRole) for item in self.list.selectedItems()]

    def accept(self, ids):
        """Accept ``ids`` as the dock's labeler's labels; returns how many."""
        from geolabel.suggest.review import accept_suggestions

        labeler = self.dock.labeler_edit.text().strip() or None
        return self._decide(accept_suggestions, ids, "accepted", labeler=labeler)

    def reject(self, ids):
        """Delete the suggestions ``ids``; returns how many."""
        from geolabel.suggest.review import reject_suggestions

        return self._decide(reject_suggestions, ids, "rejected")

    def clear(self):
        self.ids, self.bounds = [], None
        self.list.clear()
        self._show_layer(False)
        self.setVisible(False)

    # -- helpers ---------------------------------------------------------------------------

    def _decide(self, func, ids, word, **kwargs):
        if not ids or self.dock.store is None or not self.dock.save_edits(f"nothing {word}"):
            return 0
        count = self.dock._store_call(func, self.dock.store, ids, **kwargs) or 0
        layer = self.dock.layer
        if layer is not None:
            layer.dataProvider().reloadData()
            layer.triggerRepaint()
        self.dock._show_count()
        self.dock.iface.messageBar().pushSuccess("GeoLabel", f"{count} suggestions {word}")
        self.refresh()
        return count

    def _fill(self, frame):
        self.list.clear()
        if frame is None:
            self.summary.setText("")
            return
        for label_id, name, area in zip(frame.label_id, frame.class_name, frame.geometry.area):
            item = QListWidgetItem(f"{name} · {area:,.0f} m²")
            item.setData(Qt.UserRole, str(label_id))
            self.list.addItem(item)
        self.summary.setText(f"{len(frame)} suggestions on this tile; double-click one to zoom")

    def _zoom_to(self, item):
        label_id = item.data(Qt.UserRole)
        frame = self.dock.store.query(label_ids=[label_id])
        if len(frame):
            self.dock._zoom(frame.geometry.iloc[0].buffer(20).bounds, self.dock.store.crs.to_wkt())

    def _show_layer(self, on):
        """The pending suggestions as dashed outlines over the labels (one layer, kept)."""
        project = QgsProject.instance()
        layer = project.mapLayer(self.layer_id) if self.layer_id else None
        if not on:
            if layer is not None:
                project.removeMapLayer(layer.id())
            self.layer_id = None
            return
        if layer is None:
            layer = stores.labels_layer(self.dock.store_path, "GeoLabel suggestions")
            layer.setSubsetString(PENDING_FILTER)
            layer.setRenderer(QgsSingleSymbolRenderer(_dashed_symbol()))
            with self.dock._keeping_the_tool():
                project.addMapLayer(layer, False)
                project.layerTreeRoot().insertLayer(0, layer)
            self.layer_id = layer.id()
        layer.dataProvider().reloadData()
        layer.triggerRepaint()


def _dashed_symbol():
    return QgsFillSymbol.createSimple(
        {"style": "no", "outline_color": OUTLINE, "outline_width": "0.8", "outline_style": "dash"}
    )

"""The labeling dock: store, class palette, tile navigator, "check now".

No labeling logic lives here: the store, the schema, tile progress and the checks are the
engine's (``geolabel``). The dock wires them to QGIS: it styles the labels layer by class,
sets field defaults so that every digitizing tool (snapping, tracing and undo keep
working) creates features of the chosen class, and shows findings on the map.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path

from qgis.core import (
    QgsApplication,
    QgsCategorizedSymbolRenderer,
    QgsCoordinateTransform,
    QgsDefaultValue,
    QgsEditorWidgetSetup,
    QgsExpressionContextUtils,
    QgsFillSymbol,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
    QgsRendererCategory,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QColor, QKeySequence
from qgis.PyQt.QtWidgets import (
    QAbstractItemView,
    QAction,
    QButtonGroup,
    QDockWidget,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .. import stores
from ..processing.common import engine_message
from ..styles import STORE_PROPERTY, style_tile_index
from . import findings as words
from .open_store import OpenStoreDialog
from .smart_region import SmartRegionTool, smart_region_button
from .suggestions import SuggestionsPanel
from .tag_bar import TagBar
from .tasks_panel import TaskPanel

CLASS_VARIABLE = "geolabel_class"
LABELER_VARIABLE = "geolabel_labeler"
TILE_VARIABLE = "geolabel_tile"
#: Seconds the dock waits for a store another writer holds (QGIS saving) before it says so.
STORE_TIMEOUT = 3.0
#: Keyboard shortcuts (Settings > Keyboard Shortcuts can change them); 1-9 pick the classes
#: (Alt+1-9 while the store's tile tags take 1-9: see tag_bar).
SHORTCUTS = {"previous_tile": ",", "next_tile": ".", "mark_done": "M", "check_now": "Q", "accept_tile": "A",
             "reject_tile": "R"}  # fmt: skip
CLASS_KEYS = 9
#: Fields the store and its triggers fill: hidden, or shown read-only in the attribute form.
HIDDEN_FIELDS = ("fid", "version", "base_version")
READ_ONLY_FIELDS = ("label_id", "class_name", "created", "modified")
#: A PostGIS store's edits carry the version they started from; the database refuses a save
#: whose row changed since (someone else's edit). QGIS re-evaluates this default on every
#: edit of a feature (geometry or attributes) and sends it in the same UPDATE; the first
#: edit of an editing session fixes it (the database keeps base_version NULL).
BASE_VERSION = 'coalesce("base_version", "version")'
#: Each check's findings file, in a folder next to the store (``<store>_findings``):
#: ``check_<pid>-<host>_<n>.gpkg``, the writer as in the engine's temporary names.
FINDINGS_NAME = "check_{writer}_{n}.gpkg"


def style_labels_layer(layer, schema):
    """Categorized style by class colour, value-map editor for the class, field defaults."""
    categories = []
    for cls in schema:
        symbol = QgsFillSymbol.createSimple(
            {"color": QColor(cls.color).name() + "80", "outline_color": cls.color, "outline_width": "0.4"}
        )
        color = QColor(cls.color)
        color.setAlpha(110)
        symbol.setColor(color)
        symbol.symbolLayer(0).setStrokeColor(QColor(cls.color))
        categories.append(QgsRendererCategory(cls.code, symbol, f"{cls.code} {cls.name}"))
    layer.setRenderer(QgsCategorizedSymbolRenderer("class_code", categories))
    fields = layer.fields()

    def default(name, expression, on_update=False):
        idx = fields.indexOf(name)
        if idx >= 0:
            layer.setDefaultValueDefinition(idx, QgsDefaultValue(expression, on_update))

    default("class_code", f"@{CLASS_VARIABLE}")
    # QGIS has only the searched CASE form (CASE WHEN cond THEN ...)
    cases = " ".join(f"""WHEN "class_code" = {cls.code} THEN '{cls.name.replace("'", "''")}'""" for cls in schema)
    default("class_name", f"CASE {cases} END", True)
    default("labeler", f"nullif(@{LABELER_VARIABLE}, '')")  # none typed: a PostGIS store names the login
    default("base_version", BASE_VERSION, True)
    default("tile_id", f"@{TILE_VARIABLE}")
    default("status", "'draft'")
    default("source", "'manual'")
    idx = fields.indexOf("class_code")
    if idx >= 0:
        value_map = {f"{cls.code} {cls.name}": cls.code for cls in schema}
        layer.setEditorWidgetSetup(idx, QgsEditorWidgetSetup("ValueMap", {"map": value_map}))
    _protect_system_fields(layer)
    layer.triggerRepaint()


def _protect_system_fields(layer):
    """The attribute form offers only what a labeler may change (class, comment, status, ...)."""
    fields = layer.fields()
    config = layer.editFormConfig()
    for name in HIDDEN_FIELDS + READ_ONLY_FIELDS:
        idx = fields.indexOf(name)
        if idx < 0:
            continue
        config.setReadOnly(idx, True)
        if name in HIDDEN_FIELDS:
            layer.setEditorWidgetSetup(idx, QgsEditorWidgetSetup("Hidden", {}))
    layer.setEditFormConfig(config)


class LabelingDock(QDockWidget):
    """Dock widget of the GeoLabel plugin."""

    def __init__(self, iface, parent=None):
        super().__init__("GeoLabel", parent or iface.mainWindow())
        self.setObjectName("GeolabelDock")
        self.iface = iface
        self.store = None
        self.store_path = None
        self.layer_id = None
        self.task = None  # the running background check
        self.qa_dir = None  # where findings files go (next to the store)
        self.findings_files = []  # this session's findings files, newest last
        self.seen = set()  # finding keys of the previous check ("new" is what it did not find)
        self.check_state = None  # the engine's state of the last check: the next one reuses it
        self.checks = 0
        self.chips = []
        self.tiles_path = None
        self.tile_index = -1
        self.findings_layers = []
        self.findings = []
        self._findings_crs = None
        body = QWidget()
        layout = QVBoxLayout(body)

        store_box = QGroupBox("Label store")
        sl = QVBoxLayout(store_box)
        self.store_label = QLabel("no store open")
        self.store_label.setWordWrap(True)
        row = QHBoxLayout()
        self.open_button = QPushButton("Open store…")
        self.new_button = QPushButton("New store…")
        self.open_button.clicked.connect(self._ask_open)
        self.new_button.clicked.connect(self._ask_new)
        row.addWidget(self.open_button)
        row.addWidget(self.new_button)
        self.labeler_edit = QLineEdit()
        self.labeler_edit.setPlaceholderText("your name (labeler)")
        self.labeler_edit.textChanged.connect(self._set_labeler)
        sl.addWidget(self.store_label)
        sl.addLayout(row)
        sl.addWidget(self.labeler_edit)
        layout.addWidget(store_box)

        self.palette_box = QGroupBox("Class")
        self.palette_layout = QGridLayout(self.palette_box)
        self.palette = QButtonGroup(self)
        self.palette.setExclusive(True)
        self.palette.idClicked.connect(self.set_class)
        layout.addWidget(self.palette_box)
        self.smart_tool = SmartRegionTool(iface.mapCanvas(), self)
        self.smart_button = smart_region_button(self, self.smart_tool)
        layout.addWidget(self.smart_button)

        tiles_box = QGroupBox("Tiles")
        tl = QVBoxLayout(tiles_box)
        self.tiles_button = QPushButton("Open tile index…")
        self.tiles_button.clicked.connect(self._ask_tiles)
        self.tile_label = QLabel("no tile index")
        self.tile_label.setWordWrap(True)
        self.progress_label = QLabel("")
        nav = QHBoxLayout()
        self.prev_button = QPushButton("◀ Previous")
        self.next_button = QPushButton("Next ▶")
        self.done_button = QPushButton("Mark done")
        self.prev_button.clicked.connect(lambda: self.step(-1))
        self.next_button.clicked.connect(lambda: self.step(1))
        self.done_button.clicked.connect(self.mark_done)
        for b in (self.prev_button, self.next_button, self.done_button):
            nav.addWidget(b)
        tl.addWidget(self.tiles_button)
        tl.addWidget(self.tile_label)
        tl.addLayout(nav)
        tl.addWidget(self.progress_label)
        layout.addWidget(tiles_box)
        self.tags = TagBar(self)  # while the store has a tag schema
        layout.addWidget(self.tags)
        self.work = TaskPanel(self)  # "my tiles" / review, while the store has tasks
        layout.addWidget(self.work)
        self.suggestions = SuggestionsPanel(self)  # while the tile has pending suggestions
        layout.addWidget(self.suggestions)

        qa_box = QGroupBox("Quality")
        ql = QVBoxLayout(qa_box)
        self.check_button = QPushButton("Check now")
        self.check_button.clicked.connect(lambda: self.check_now(background=True))
        self.qa_label = QLabel("")
        self.qa_label.setWordWrap(True)
        self.findings_list = QListWidget()
        self.findings_list.setWordWrap(True)  # long entries wrap: no horizontal scrolling
        self.findings_list.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.findings_list.setTextElideMode(Qt.ElideRight)
        self.findings_list.setVerticalScrollMode(QAbstractItemView.ScrollPerPixel)
        self.findings_list.setResizeMode(QListWidget.Adjust)
        self.findings_list.setSpacing(2)
        self.findings_list.setAlternatingRowColors(True)
        self.findings_list.setMinimumHeight(160)
        self.findings_list.setToolTip("Double-click a finding to zoom to it")
        self.findings_list.itemDoubleClicked.connect(self._zoom_to_finding)
        ql.addWidget(self.check_button)
        ql.addWidget(self.qa_label)
        ql.addWidget(self.findings_list)
        layout.addWidget(qa_box, 1)  # the findings list takes the dock's free height
        self.setWidget(body)
        self.shortcut_actions = {}
        self._add_shortcuts()
        self._enable(False)

    # -- keyboard -----------------------------------------------------------------------

    def _add_shortcuts(self):
        """Main-window actions, so the keys work while the map has the focus (a text field
        keeps its typed characters); registered with QGIS's shortcut manager."""
        tips = {
            "previous_tile": (self.prev_button, "Previous tile", lambda: self.step(-1)),
            "next_tile": (self.next_button, "Next tile", lambda: self.step(1)),
            "mark_done": (self.done_button, "Mark the tile done", self._done_key),
            "check_now": (self.check_button, "Save the edits and check the labels", self._check_key),
            "accept_tile": (self.work.accept_button, "Accept the tile", self._accept_key),
            "reject_tile": (self.work.reject_button, "Reject the tile with a comment", self._reject_key),
        }
        for name, (button, text, slot) in tips.items():
            action = self._shortcut(name, f"GeoLabel: {text.lower()}", SHORTCUTS[name], slot)
            button.setToolTip(f"{text} (key {action.shortcut().toString()})")
        done_key = self.shortcut_actions["mark_done"].shortcut().toString()
        self.work.submit_button.setToolTip(f"Save, check and submit the tile for review (key {done_key})")
        for k in range(CLASS_KEYS):
            self._shortcut(f"class_{k + 1}", f"GeoLabel: class {k + 1} of the palette", str(k + 1), self._class_key(k))
        self.tags.add_shortcuts()  # 1..9 go to the tags while a tag schema is shown

    def _shortcut(self, name, text, key, slot):
        window = self.iface.mainWindow()
        action = QAction(text, window)
        action.setObjectName(f"mActionGeolabel_{name}")
        action.setShortcut(QKeySequence(key))
        action.setShortcutContext(Qt.WindowShortcut)
        action.triggered.connect(slot)
        window.addAction(action)
        self.iface.registerMainWindowAction(action, key)
        self.shortcut_actions[name] = action
        return action

    def _class_key(self, k):
        def pick():
            buttons = self._palette_buttons()
            if self.store is not None and k < len(buttons):
                buttons[k].click()

        return pick

    def _check_key(self):
        if self.check_button.isEnabled():
            self.check_now(background=True)

    def _done_key(self):
        """The key that finishes a tile: *Submit tile* for assigned work, else *Mark done*."""
        if self.work.active:
            if not self.work.reviewing and self.work.submit_button.isEnabled():
                self.work.submit()
        else:
            self.mark_done()

    def _accept_key(self):
        if self.work.reviewing and self.work.accept_button.isEnabled():
            self.work.accept()

    def _reject_key(self):
        if self.work.reviewing and self.work.reject_button.isEnabled():
            self.work.reject()

    def remove_shortcuts(self):
        self.smart_tool.release()  # the plugin unloads (this is its last call before close_store)
        window = self.iface.mainWindow()
        for action in self.shortcut_actions.values():
            self.iface.unregisterMainWindowAction(action)
            window.removeAction(action)
            action.deleteLater()
        self.shortcut_actions = {}

    # -- store ------------------------------------------------------------------------

    def _enable(self, on):
        for w in (self.palette_box, self.tiles_button, self.check_button, self.labeler_edit, self.smart_button):
            w.setEnabled(on)
        for w in (self.prev_button, self.next_button, self.done_button):
            w.setEnabled(on and bool(self.chips))
        self.done_button.setVisible(not self.work.active)  # assigned work is submitted instead

    def _ask_open(self):
        dialog = OpenStoreDialog(self)
        location = dialog.location() if dialog.exec_() else None
        if location:
            self.open_store(location)

    def _ask_new(self):
        path, _ = QFileDialog.getSaveFileName(self, "New label store", "", "GeoPackage (*.gpkg)")
        if path:
            self.new_store(path if path.endswith(".gpkg") else path + ".gpkg")

    def _current_crs_wkt(self):
        layer = self.iface.activeLayer()
        if isinstance(layer, QgsRasterLayer) and layer.crs().isValid():
            return layer.crs().toWkt()
        return QgsProject.instance().crs().toWkt() or "EPSG:4326"

    def new_store(self, path, crs=None):
        """Create a store in the CRS of the active raster (else the project's) and open it."""
        from geolabel.labels.store import create_store

        try:
            create_store(path, crs=crs or self._current_crs_wkt()).close()
        except Exception as exc:  # engine errors are one line; show them
            self.iface.messageBar().pushCritical("GeoLabel", engine_message(exc))
            return None
        return self.open_store(path)

    def open_store(self, location):
        """Open a store (a ``.gpkg`` path or a PostgreSQL location), add its labels layer
        styled by class, build the palette."""
        from geolabel.labels.store import open_store

        location = str(location)
        try:
            store = open_store(location, timeout=STORE_TIMEOUT)
        except Exception as exc:
            self.iface.messageBar().pushCritical("GeoLabel", engine_message(exc))
            return None
        # QGIS edits it from now on: they are versioned only with the store's triggers (a
        # read-only or busy store is still shown)
        with contextlib.suppress(Exception):
            store.restore_triggers()
        self.close_store()
        self.store, self.store_path = store, location
        layer = self.labels_layer()
        if layer is None:
            self.iface.messageBar().pushCritical("GeoLabel", f"{store}: QGIS cannot open the labels layer")
            self.close_store()
            return None
        self.iface.setActiveLayer(layer)
        self._show_count()
        self.tags.set_store(store)  # before the palette: its keys may move to Alt+1..9
        self._build_palette(store.schema)
        self._enable(True)
        self.work.set_review_for_role()
        self.work.refresh()
        self.suggestions.refresh()
        return layer

    def labels_layer(self):
        """The store's labels layer in the project; added again (styled) if the user removed it."""
        if self.store is None:
            return None
        project = QgsProject.instance()
        layer = project.mapLayer(self.layer_id) if self.layer_id else None
        if layer is None:
            layer = stores.labels_layer(self.store_path)
            if not layer.isValid():
                return None
            style_labels_layer(layer, self.store.schema)
            # Processing dialogs default to it; the project keeps no password
            layer.setCustomProperty(STORE_PROPERTY, stores.shown(self.store_path))
            for signal in (
                layer.featureAdded,
                layer.featuresDeleted,
                layer.afterCommitChanges,
                layer.afterRollBack,
            ):
                signal.connect(self._show_count)
            project.addMapLayer(layer)
            self.layer_id = layer.id()
        return layer

    def _show_count(self, *args):
        """ "labels.gpkg: 137 labels (WGS 84 / UTM zone 49N)", kept live by the layer's signals
        (a PostGIS store is named by its schema and database, never with a password)."""
        layer, store = self.layer, self.store
        if store is None:
            return
        count = layer.featureCount() if layer is not None else store.count()
        name = os.path.basename(self.store_path)
        if stores.is_postgres(self.store_path):  # "project_a · postgresql://li@db:5432/labels"
            name = f"{store.location.schema} · {str(store).split('?')[0]}"
        self.store_label.setText(f"{name}: {count} labels ({store.crs.name})")
        self.store_label.setToolTip(stores.shown(self.store_path))

    @property
    def layer(self):
        """The labels layer if it is in the project (None otherwise; nothing is re-added)."""
        return QgsProject.instance().mapLayer(self.layer_id) if self.layer_id else None

    def close_store(self):
        if self.store is not None:
            self.store.close()
        self.store = None
        self.layer_id = None
        self.work.clear()
        self.suggestions.clear()
        self.tags.clear()
        self.smart_tool.cancel()
        if self.qa_dir is not None and Path(self.qa_dir).name.startswith("geolabel-check-"):
            shutil.rmtree(self.qa_dir, ignore_errors=True)  # the temporary fallback folder
        self.qa_dir = None  # findings next to a store stay (a saved project may show them)
        self.seen = set()
        self.check_state = None

    def _store_call(self, func, *args, **kwargs):
        """A store write from the GUI: a busy or read-only store gives a message, not a freeze
        (the engine gives up after STORE_TIMEOUT seconds: StoreBusyError, OutputError)."""
        from geolabel.errors import GeolabelError

        try:
            return func(*args, **kwargs)
        except Exception as exc:  # engine errors name the store; anything else gets its name
            text = engine_message(exc) if isinstance(exc, GeolabelError) else f"{self.store}: {exc}"
            self.iface.messageBar().pushWarning(
                "GeoLabel", f"{text} (save or stop editing the labels layer, then try again)"
            )
            return None

    def _set_labeler(self, text):
        QgsExpressionContextUtils.setProjectVariable(QgsProject.instance(), LABELER_VARIABLE, text)
        if self.work.active and not self.work.reviewing:
            self.work.refresh()  # the tiles of the labeler now named
        if self.tags.tile_id is not None:
            self.tags.show_tile(self.tags.tile_id)  # the tags of the labeler now named

    # -- palette ----------------------------------------------------------------------

    def _build_palette(self, schema):
        for button in self.palette.buttons():
            self.palette.removeButton(button)
            button.deleteLater()
        for k, cls in enumerate(c for c in schema if c.code != 0):
            zh = f" {cls.names['zh']}" if "zh" in cls.names else ""
            button = QPushButton(f"{cls.name}{zh}")
            button.setCheckable(True)
            key = f" (key {self.tags.key_text(f'class_{k + 1}')})" if k < CLASS_KEYS else ""
            button.setToolTip(f"Draw {cls.name}{zh}{key}")
            text = "#000000" if QColor(cls.color).lightness() > 128 else "#ffffff"
            # the same border width checked or not: the text never moves or gets clipped
            button.setStyleSheet(
                f"QPushButton {{background-color: {cls.color}; color: {text}; padding: 3px 6px;"
                f" border: 3px solid {cls.color}; border-radius: 3px}}"
                f"QPushButton:checked {{border: 3px solid #000}}"
            )
            button.setMinimumHeight(button.fontMetrics().height() + 14)
            self.palette.addButton(button, cls.code)
            self.palette_layout.addWidget(button, k // 2, k % 2)

    def _palette_buttons(self):
        """The palette's buttons in the order shown (the number keys' order)."""
        items = (self.palette_layout.itemAt(k) for k in range(self.palette_layout.count()))
        return [item.widget() for item in items if item is not None and item.widget() in self.palette.buttons()]

    def set_class(self, code):
        """Newly digitized polygons get this class (through the class_code default value)."""
        QgsExpressionContextUtils.setProjectVariable(QgsProject.instance(), CLASS_VARIABLE, int(code))
        button = self.palette.button(int(code))
        if button is not None and not button.isChecked():
            button.setChecked(True)
        layer = self.labels_layer()
        if layer is not None:
            self.iface.setActiveLayer(layer)
            if not layer.isEditable():
                layer.startEditing()

    # -- tiles ------------------------------------------------------------------------

    def _ask_tiles(self):
        path, _ = QFileDialog.getOpenFileName(self, "Open tile index", "", "Tile index (tiles.gpkg *.gpkg)")
        if path:
            self.open_tiles(path)

    def open_tiles(self, path):
        from geolabel.tileindex import load_chips

        try:
            self.chips = load_chips(path)
        except Exception as exc:
            self.iface.messageBar().pushCritical("GeoLabel", engine_message(exc))
            return
        self.tiles_path = path
        self.check_state = None  # other tiles to cover: the next check starts over
        self._show_tile_grid(path)
        self._enable(self.store is not None)
        statuses = self._statuses()
        first_open = next((k for k, c in enumerate(self.chips) if statuses.get(c.tile_id) != "done"), 0)
        if not self.work.active:  # with tasks, the navigator stays on the labeler's tiles
            self.go_to_tile(first_open)

    def _show_tile_grid(self, path):
        """The tile index on the map as outlines with tile ids, unless the project shows it."""
        project = QgsProject.instance()
        source = f"{path}|layername=tiles"
        if any(layer.source() == source for layer in project.mapLayers().values()):
            return
        layer = QgsVectorLayer(source, "Tile index", "ogr")
        if not layer.isValid():
            return
        style_tile_index(layer)
        with self._keeping_the_tool():
            project.addMapLayer(layer, False)
            labels = project.layerTreeRoot().findLayer(self.layer_id) if self.layer_id else None
            children = project.layerTreeRoot().children()
            project.layerTreeRoot().insertLayer(children.index(labels) + 1 if labels in children else 0, layer)

    def go_to_tile(self, index):
        """Zoom the map to chip ``index`` and make it the tile new labels belong to."""
        if not self.chips:
            return
        self.tile_index = max(0, min(index, len(self.chips) - 1))
        chip = self.chips[self.tile_index]
        self._zoom(chip.footprint.bounds, chip.crs)
        QgsExpressionContextUtils.setProjectVariable(QgsProject.instance(), TILE_VARIABLE, chip.tile_id)
        self._show_tile_state()
        self._assist_tile(chip.tile_id, None)

    def step(self, delta):
        """Previous/Next: through the tasks while the store has them, else the chips."""
        if self.work.active:
            self.work.go(self.work.index + delta)
        else:
            self.go_to_tile(self.tile_index + delta)

    def tasks_changed(self):
        """The task panel changed mode or list: Mark done only without tasks."""
        self._enable(self.store is not None)
        if self.work.active and not self.work.queue:
            self.tile_label.setText("no tile to review" if self.work.reviewing else "no tile to do")
            self.progress_label.setVisible(False)

    def show_task_state(self, index, total, task):
        """The tile label and Previous/Next for task ``index`` of ``total``."""
        from .task_queue import WORDS

        self.tile_label.setText(f"tile {index + 1}/{total}: {task.tile_id} ({WORDS.get(task.status, task.status)})")
        self.progress_label.setVisible(False)  # the task panel counts the tiles
        self.prev_button.setEnabled(index > 0)
        self.next_button.setEnabled(index < total - 1)
        self._assist_tile(task.tile_id, task.bounds)

    def _assist_tile(self, tile_id, bounds):
        """A tile opened: its superpixels computed in the background, its suggestions listed
        (``bounds``: the tile's box in the store's CRS; None: the chip's)."""
        chip = next((c for c in self.chips if c.tile_id == tile_id), None)
        if chip is not None:
            self.smart_tool.prepare(chip)
        if bounds is None and chip is not None and self.store is not None:
            from geolabel.crs import reproject_geometries

            bounds = reproject_geometries([chip.footprint], chip.crs, self.store.crs)[0].bounds
        self.suggestions.refresh(bounds)
        self.tags.show_tile(tile_id)

    def mark_done(self):
        if self.store is None or not self.chips:
            return
        chip = self.chips[self.tile_index]
        labeler = self.labeler_edit.text() or None
        self._store_call(self.store.set_tile_status, chip.tile_id, "done", labeler=labeler)
        self._show_tile_state()

    def _statuses(self):
        return (self._store_call(self.store.tile_statuses) or {}) if self.store is not None else {}

    def progress(self, statuses=None):
        """(tiles done, tiles in the index)."""
        statuses = self._statuses() if statuses is None else statuses
        done = sum(1 for c in self.chips if statuses.get(c.tile_id) == "done")
        return done, len(self.chips)

    def _show_tile_state(self):
        chip = self.chips[self.tile_index]
        statuses = self._statuses()
        state = statuses.get(chip.tile_id, "todo")
        self.tile_label.setText(f"tile {self.tile_index + 1}/{len(self.chips)}: {chip.tile_id} ({state})")
        done, total = self.progress(statuses)
        self.progress_label.setText(f"{done} of {total} tiles done")
        self.progress_label.setVisible(True)
        self.prev_button.setEnabled(self.tile_index > 0)
        self.next_button.setEnabled(self.tile_index < len(self.chips) - 1)

    # -- quality ----------------------------------------------------------------------

    def check_now(self, background=False):
        """Save the edits, run the engine's checks on the store, show the findings.

        ``background``: run the check as a QGIS task so the map stays usable (the button
        does this); returns the task. Otherwise returns the result (None on failure).
        The first check keeps the engine's state; later ones recheck only what changed
        since (another store or tile index starts over).
        """
        from geolabel.qa import check_changed, load_delivery
        from geolabel.report import write_findings_gpkg

        if self.store_path is None or self.task is not None:
            return None
        if not self.save_edits("not checked"):
            return None
        # with a tile index open: labels must lie on the chips' imagery, done tiles be covered
        tiles = self.tiles_path if self.chips else None
        out_path = self._next_findings_path()
        store_path, previous = self.store_path, self.check_state

        def work(task=None):
            from concurrent.futures import ThreadPoolExecutor

            # threads, never forked processes, inside QGIS; GEOS releases the GIL. After the
            # first check the engine rechecks only the labels changed since ``previous``.
            with ThreadPoolExecutor(2) as pool:
                delivery = load_delivery(store_path)
                result, state = check_changed(
                    delivery, previous, tiles=tiles, done_only=tiles is not None, executor=pool
                )
            write_findings_gpkg(result, out_path)
            return result, state

        def keep(state):
            """The state for the next click, unless the store or tiles changed meanwhile."""
            if self.store_path == store_path and (self.tiles_path if self.chips else None) == tiles:
                self.check_state = state
                self.qa_label.setToolTip(state.how)

        if not background:
            try:
                result, state = work()
            except Exception as exc:
                self.iface.messageBar().pushCritical("GeoLabel", engine_message(exc))
                return None
            keep(state)
            return self._show_findings(result, out_path)
        from qgis.core import QgsApplication, QgsTask

        def finished(exception, done=None):
            self.task = None
            self.check_button.setEnabled(self.store is not None)
            if exception is not None or done is None:
                self.qa_label.setText("check failed")
                self.iface.messageBar().pushCritical("GeoLabel", f"check failed: {exception}")
                return
            keep(done[1])
            self._show_findings(done[0], out_path)

        self.task = QgsTask.fromFunction("GeoLabel: checking labels", work, on_finished=finished)
        self.check_button.setEnabled(False)
        self.qa_label.setText("checking…")
        QgsApplication.taskManager().addTask(self.task)
        return self.task

    def save_edits(self, otherwise):
        """Commit the labels layer's edits, staying in edit mode; False (said) if refused."""
        layer = self.layer
        if layer is not None and layer.isModified() and not layer.commitChanges(False):
            errors = "; ".join(layer.commitErrors())
            self.iface.messageBar().pushCritical("GeoLabel", f"your edits could not be saved, so {otherwise}: {errors}")
            return False
        return True

    def show_tile_findings(self, findings, bounds):
        """Findings of one tile (the engine's, e.g. a refused submission's) in the list and
        on the map, as *Check now* shows them; measured in the metric CRS the checks use."""
        from geolabel.crs import metric_crs_for
        from geolabel.qa.findings import QAResult
        from geolabel.report import write_findings_gpkg

        crs = metric_crs_for(self.store.crs, tuple(bounds))
        result = QAResult(str(self.store), crs, 0, list(findings), {}, {}, {})
        out_path = self._next_findings_path()
        write_findings_gpkg(result, out_path)
        return self._show_findings(result, out_path)

    # -- findings ---------------------------------------------------------------------

    def _next_findings_path(self):
        """A new findings file in ``<store>_findings/`` next to the store, so the project
        keeps no layer in the temporary folder (QGIS would ask about it on quit); in a
        temporary folder only when the store's folder cannot be written."""
        from geolabel.files import writer_tag

        if self.qa_dir is None:
            folder = self._findings_folder()
            try:
                folder.mkdir(parents=True, exist_ok=True)
                if folder.is_symlink() or not os.access(folder, os.W_OK):
                    raise PermissionError(f"{folder}: not writable")
                self.qa_dir = str(folder)
            except OSError:
                self.qa_dir = tempfile.mkdtemp(prefix="geolabel-check-")
        self.checks += 1
        return Path(self.qa_dir) / FINDINGS_NAME.format(writer=writer_tag(), n=self.checks)

    def _findings_folder(self):
        """``<store>_findings`` next to a GeoPackage; for a PostGIS store, ``<schema>_<digest
        of the location>_findings`` in the project's folder (QGIS's profile folder while the
        project is unsaved)."""
        if not stores.is_postgres(self.store_path):
            store = Path(self.store_path)
            return store.with_name(f"{store.stem}_findings")
        home = QgsProject.instance().homePath() or str(Path(QgsApplication.qgisSettingsDirPath()) / "geolabel")
        digest = hashlib.sha256(str(self.store).encode()).hexdigest()[:8]
        return Path(home) / f"{self.store.location.schema}_{digest}_findings"

    def _remove_old_findings(self, keep):
        """This session's earlier findings files, and those of QGIS sessions that have ended
        (the engine's rule for temporary files), unless a layer of this project shows them;
        only files named as we name them, in our folder."""
        from geolabel.files import WRITER, is_abandoned, writer_tag

        pattern = re.compile(FINDINGS_NAME.format(writer=WRITER, n=r"\d+").replace(".gpkg", r"\.gpkg"))
        shown = {layer.source().split("|")[0] for layer in QgsProject.instance().mapLayers().values()}
        for path in Path(self.qa_dir).iterdir():
            match = pattern.fullmatch(path.name)
            if match is None or str(path) in (str(keep), *shown) or path.is_symlink():
                continue
            own = f"{match['pid']}-{match['host']}" == writer_tag()
            if own or is_abandoned(match, str(path)):
                with contextlib.suppress(OSError):
                    path.unlink()

    def _show_findings(self, result, out_path):
        """Findings on the map (labels stay the active layer, the map tool stays) and in the list."""
        with self._keeping_the_tool():
            self._show_findings_layers(out_path)
        self._remove_old_findings(keep=out_path)
        self.findings = list(result.findings)
        self._findings_crs = result.crs.to_wkt() if result.crs is not None else None
        self._fill_findings_list()
        summary = f"{result.errors} errors, {result.warnings} warnings"
        if result.completeness is not None:
            summary += f"; {result.completeness:.1%} of {'done tiles' if self.chips else 'the area'} labelled"
        self.qa_label.setText(summary)
        return result

    @contextlib.contextmanager
    def _keeping_the_tool(self):
        """Layers added inside do not take the active layer nor the map tool from the labeler."""
        canvas = self.iface.mapCanvas()
        tool = canvas.mapTool()
        active = self.iface.activeLayer()
        active_id = active.id() if active is not None else None
        yield
        if active_id is not None and QgsProject.instance().mapLayer(active_id) is not None:
            self.iface.setActiveLayer(QgsProject.instance().mapLayer(active_id))
        if tool is not None and canvas.mapTool() is not tool:
            canvas.setMapTool(tool)

    def _show_findings_layers(self, out_path):
        project = QgsProject.instance()
        for old in self.findings_layers:
            if project.mapLayer(old) is not None:
                project.removeMapLayer(old)
        self.findings_layers = []
        for name in ("findings_polygons", "findings_points"):
            layer = QgsVectorLayer(f"{out_path}|layername={name}", f"GeoLabel {name.replace('_', ' ')}", "ogr")
            if layer.isValid() and layer.featureCount() > 0:
                layer.loadDefaultStyle()
                project.addMapLayer(layer, False)  # on top of the layer tree, not made current
                project.layerTreeRoot().insertLayer(0, layer)
                self.findings_layers.append(layer.id())

    def _fill_findings_list(self):
        me = self.labeler_edit.text().strip()
        labels = self._label_infos({i for f in self.findings for i in f.feature_ids})
        keys = [words.finding_key(f) for f in self.findings]
        shown = [
            words.describe(k, f, labels, me, bool(self.seen) and keys[k] not in self.seen, self._tile_of(f))
            for k, f in enumerate(self.findings)
        ]
        self.seen = set(keys)
        self.findings_list.clear()
        for entry in words.ordered(shown):
            finding = self.findings[entry.index]
            item = QListWidgetItem(entry.text)
            item.setData(Qt.UserRole, entry.index)
            item.setToolTip(entry.tooltip)
            item.setForeground(QColor("#e31a1c" if finding.severity == "error" else "#ff7f00"))
            if entry.mine and entry.new:
                font = item.font()
                font.setBold(True)
                item.setFont(font)
            self.findings_list.addItem(item)

    def _label_infos(self, ids):
        """label_id -> LabelInfo for the labels findings name (read from the labels layer)."""
        from qgis.core import QgsFeatureRequest

        layer = self.layer
        if layer is None or not ids:
            return {}
        quoted = ",".join("'" + i.replace("'", "''") + "'" for i in sorted(ids))
        request = QgsFeatureRequest().setFilterExpression(f'"label_id" IN ({quoted})')
        request.setFlags(QgsFeatureRequest.NoGeometry)
        infos = {}
        for feature in layer.getFeatures(request):
            modified = feature["modified"]
            infos[feature["label_id"]] = words.LabelInfo(
                _text(feature["class_name"]),
                _text(feature["labeler"]),
                modified.toString(Qt.ISODate) if hasattr(modified, "toString") else _text(modified) or "",
                _text(feature["tile_id"]),
            )
        return infos

    def _tile_of(self, finding):
        """The chip a finding lies on (for findings without labels, e.g. gaps), or None."""
        if not self.chips or finding.geometry is None or finding.geometry.is_empty:
            return None
        from geolabel.crs import same_crs

        if self._findings_crs is None or not same_crs(self._findings_crs, self.chips[0].crs):
            return None  # the check measured in another CRS than the chips'
        point = finding.geometry.representative_point()
        return next((c.tile_id for c in self.chips if c.footprint.contains(point)), None)

    def _zoom_to_finding(self, item):
        self.zoom_to_finding(item.data(Qt.UserRole))

    def zoom_to_finding(self, k):
        finding = self.findings[k]
        if finding.geometry is None or finding.geometry.is_empty:
            return
        self._zoom(finding.geometry.buffer(10).bounds, self._findings_crs)

    def _zoom(self, bounds, crs):
        """Show ``bounds`` (in ``crs``: EPSG code or WKT) on the map, in the map's CRS."""
        from qgis.core import QgsCoordinateReferenceSystem

        rect = QgsRectangle(*bounds)
        canvas = self.iface.mapCanvas()
        src = QgsCoordinateReferenceSystem(crs) if crs else QgsCoordinateReferenceSystem()
        dst = canvas.mapSettings().destinationCrs()
        if src.isValid() and dst.isValid() and src != dst:
            rect = QgsCoordinateTransform(src, dst, QgsProject.instance()).transformBoundingBox(rect)
        canvas.setExtent(rect)
        canvas.refresh()


def _text(value):
    """A QGIS attribute as text (None for NULL)."""
    return None if value is None or (hasattr(value, "isNull") and value.isNull()) else str(value)

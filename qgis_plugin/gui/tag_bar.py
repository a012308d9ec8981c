"""The dock's tile tags: the current tile's tags (whole-image labels) as toggle buttons,
number keys to toggle them and one key to move on.

Shown only while the store has a tag schema (``geolabel tags schema``). The buttons follow
the schema's order and colours; a single-label project behaves as radio buttons (a key
picks that tag, replacing the other). Every toggle is written at once through the engine
(:func:`geolabel.labels.tags.set_tile_tags`: the dock's labeler, status draft), so nothing
is lost when the labeler leaves the tile another way. A tile tagged for the first time is
recorded as ``in_progress`` (the engine takes tags only for tiles it knows).

Keys: tagging is keyboard-only work (look, press 1..9, press Enter), so the tags take the
bare number keys while the bar is shown and the class palette moves to Alt+1..9 (drawing
polygons keeps a hand on the mouse anyway). The move-on key (Enter, also the keypad's)
does what *Mark done* and *Next* do for polygons, the same workflow: the tile is marked
done (with tasks: submitted, after the engine's checks) and the next one opens.
"""

from __future__ import annotations

from qgis.gui import QgsMapToolCapture
from qgis.PyQt.QtCore import QEvent, Qt
from qgis.PyQt.QtGui import QColor, QKeyEvent, QKeySequence
from qgis.PyQt.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QGridLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTextEdit,
    QVBoxLayout,
)

from ..processing.common import warn_on_error

TAG_KEYS = 9
#: The move-on key, and the keypad's Enter beside it (number pad only tagging).
MOVE_ON_KEY = "Return"
MOVE_ON_KEYPAD = "Enter"
#: The class palette's modifier while the tags have the number keys.
CLASS_MODIFIER = Qt.AltModifier
COLUMNS = 3
#: Fields where Enter stays the field's (the locator, a filter, the labeler's name).
TEXT_INPUTS = (QLineEdit, QAbstractSpinBox, QComboBox, QTextEdit, QPlainTextEdit)


class TagBar(QGroupBox):
    """ "Tile tags" box of the labeling dock."""

    def __init__(self, dock):
        super().__init__("Tile tags", dock)
        self.dock = dock
        self.schema = None
        self.tile_id = None
        self.codes = []  # the dock's labeler's tags of the tile, as stored
        self.buttons = {}  # tag code -> button, in schema order
        layout = QVBoxLayout(self)
        self.grid = QGridLayout()
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.next_button = QPushButton("Done, next ▶")
        self.next_button.clicked.connect(self.move_on)
        layout.addLayout(self.grid)
        layout.addWidget(self.summary)
        layout.addWidget(self.next_button)
        self.class_keys = {}  # class action name -> its own key, while the tags have it
        self.setVisible(False)

    # -- keys ------------------------------------------------------------------------------

    def add_shortcuts(self):
        """The tag keys 1..9 and the move-on key, as the dock's main-window actions
        (disabled while no tag schema is shown, so they never clash with the palette's)."""
        for k in range(TAG_KEYS):
            self.dock._shortcut(f"tag_{k + 1}", f"GeoLabel: tile tag {k + 1}", str(k + 1), self._tag_key(k))
        action = self.dock._shortcut(
            "move_on", "GeoLabel: save the tile's tags, mark it done, next tile", MOVE_ON_KEY, self._move_on_key
        )
        action.setShortcuts([action.shortcut(), QKeySequence(MOVE_ON_KEYPAD)])
        self._route_keys(False)

    def _tag_key(self, k):
        def press():
            codes = list(self.buttons)
            if self.tile_id is not None and k < len(codes):
                self.toggle(codes[k])

        return press

    def _move_on_key(self):
        target = self._enter_target()
        if target is None:
            self.move_on()
            return
        action = self.dock.shortcut_actions["move_on"]
        action.setEnabled(False)  # a key sent to a widget is tried as a shortcut first
        try:
            for kind in (QEvent.KeyPress, QEvent.KeyRelease):
                QApplication.sendEvent(target, QKeyEvent(kind, Qt.Key_Return, Qt.NoModifier))
        finally:
            action.setEnabled(True)

    def _enter_target(self):
        """Who Enter belongs to when it is not "move on": a text field with the focus (the
        locator, a filter, the labeler's name), or a map tool in the middle of its work (a
        polygon being digitized, a Smart region selection to store)."""
        focus = QApplication.focusWidget()
        if isinstance(focus, TEXT_INPUTS):
            return focus
        canvas = self.dock.iface.mapCanvas()
        tool = canvas.mapTool()
        if isinstance(tool, QgsMapToolCapture) and tool.isCapturing():
            return canvas
        smart = self.dock.smart_tool
        if tool is smart and smart.region is not None and smart.region.selected.any():
            return canvas
        return None

    def _route_keys(self, tags):
        """Number keys to the tags (``tags``) or to the class palette; a class key the tags
        take gets the Alt modifier, and its own key back when the bar goes."""
        actions = self.dock.shortcut_actions
        for name, action in actions.items():
            if name.startswith("tag_") or name == "move_on":
                action.setEnabled(tags)
        taken = {action.shortcut() for name, action in actions.items() if name.startswith("tag_")}
        for k in range(TAG_KEYS):
            name = f"class_{k + 1}"
            action = actions.get(name)
            if action is None:
                continue
            if tags and name not in self.class_keys and action.shortcut() in taken:
                self.class_keys[name] = action.shortcut()
                key = action.shortcut()[0]
                action.setShortcut(QKeySequence(int(CLASS_MODIFIER) | key))
            elif not tags and name in self.class_keys:
                action.setShortcut(self.class_keys.pop(name))

    def key_text(self, name):
        """The key of the dock's action ``name`` as the tooltips say it ("3", "Alt+2")."""
        action = self.dock.shortcut_actions.get(name)
        return action.shortcut().toString() if action is not None else ""

    # -- store and tile --------------------------------------------------------------------

    def set_store(self, store):
        """Build the buttons from the store's tag schema; hidden (keys to the palette)
        without one."""
        self.schema = None if store is None else self._call(store.read_tag_schema)
        self._build()
        self._route_keys(self.schema is not None)
        self.setVisible(self.schema is not None)
        mode = "one tag per tile" if self.schema is not None and self.schema.is_single else "any tags"
        self.setTitle(f"Tile tags ({mode})")
        self.setEnabled(False)  # until a tile is shown
        move_key = self.key_text("move_on")
        self.next_button.setToolTip(f"Save the tile's tags, mark it done and go to the next tile (key {move_key})")

    def clear(self):
        self.set_store(None)
        self.tile_id, self.codes = None, []

    def show_tile(self, tile_id):
        """The bar shows ``tile_id``'s tags: the dock's labeler's checked, others' named."""
        self.tile_id = tile_id
        if self.schema is None:
            return
        self.setEnabled(True)
        rows = self._call(self.dock.store.tile_tags, tile_id=tile_id) or []
        me = self._labeler()
        self.codes = sorted(r.tag_code for r in rows if r.labeler == me)
        for code, button in self.buttons.items():
            button.setChecked(code in self.codes)
        self.summary.setText(self._summary(rows, me))

    # -- tagging ---------------------------------------------------------------------------

    def toggle(self, code):
        """Toggle tag ``code`` on the tile (single-label: pick it) and write the tile's tags."""
        if self.tile_id is None or self.schema is None:
            return
        if self.schema.is_single:
            codes = [code]
        else:
            codes = sorted(set(self.codes) ^ {code})
        self._write(codes)
        self.show_tile(self.tile_id)

    def move_on(self):
        """Finish the tile as *Mark done* (with tasks: *Submit tile*) does, then the next one."""
        dock = self.dock
        if self.tile_id is None or dock.store is None:
            return
        if dock.work.active:
            if not dock.work.reviewing:
                dock.work.submit()  # the next tile opens once submitted
            return
        dock.mark_done()
        dock.step(1)

    # -- helpers ---------------------------------------------------------------------------

    def _write(self, codes):
        from geolabel.labels.tags import set_tile_tags

        store, labeler = self.dock.store, self._labeler()
        if not labeler:  # a GeoPackage has no logins
            self.dock.iface.messageBar().pushWarning("GeoLabel", "type your name (labeler) first: tags are per labeler")
            return
        self._call(set_tile_tags, store, self.tile_id, [str(c) for c in codes], labeler=labeler, start=True)
        if not self.dock.work.active:
            self.dock._show_tile_state()  # "(in_progress)" beside the tile's id once started

    def _labeler(self):
        """Whose tags the bar shows: the dock's name, else the database role (PostGIS)."""
        store = self.dock.store
        return self.dock.labeler_edit.text().strip() or (store.member_name() if store is not None else "") or ""

    def _build(self):
        for button in self.buttons.values():
            self.grid.removeWidget(button)
            button.deleteLater()
        self.buttons = {}
        for k, tag in enumerate(self.schema or ()):
            zh = f" {tag.names['zh']}" if "zh" in tag.names else ""
            button = QPushButton(f"{k + 1} {tag.name}{zh}" if k < TAG_KEYS else f"{tag.name}{zh}")
            button.setCheckable(True)
            key = f" (key {self.key_text(f'tag_{k + 1}')})" if k < TAG_KEYS else ""
            about = f": {tag.description}" if tag.description else ""
            button.setToolTip(f"{tag.name}{zh}{about}{key}")
            text = "#000000" if QColor(tag.color).lightness() > 128 else "#ffffff"
            # unchecked: the colour as a frame; checked: filled, so a glance reads the tile's tags
            button.setStyleSheet(
                f"QPushButton {{background-color: palette(button); color: palette(button-text);"
                f" padding: 3px 6px; border: 3px solid {tag.color}; border-radius: 3px}}"
                f"QPushButton:checked {{background-color: {tag.color}; color: {text}; border: 3px solid #000}}"
            )
            button.setMinimumHeight(button.fontMetrics().height() + 14)
            button.clicked.connect(lambda _checked=False, code=tag.code: self.toggle(code))
            self.grid.addWidget(button, k // COLUMNS, k % COLUMNS)
            self.buttons[tag.code] = button

    def _summary(self, rows, me):
        mine = ", ".join(self.schema.get(c).name for c in self.codes) or "no tag yet"
        status = next((r.status for r in rows if r.labeler == me), None)
        text = f"{me or 'you'}: {mine}" + (f" ({status})" if status else "")
        others = {}
        for r in rows:
            if r.labeler != me and r.tag_code in self.schema:
                others.setdefault(r.labeler, []).append(self.schema.get(r.tag_code).name)
        for name, tags in sorted(others.items()):
            text += f"\n{name}: {', '.join(tags)}"
        return text

    def _call(self, func, *args, **kwargs):
        """An engine call; its one-line error goes to the message bar (None returned)."""
        return warn_on_error(self.dock.iface, func, *args, **kwargs)

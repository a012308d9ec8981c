"""The labeler's path through the real QGIS main window, run inside QGIS by test_desktop.py:
``qgis --nologo --noversioncheck --code drive.py`` with GEOLABEL_DESKTOP_CONFIG naming a JSON
file (paths, the polygon to draw, the display).

Every step is a generator driven by Qt timers (the event loop never blocks; a nested
``exec()`` of a modal form keeps the timers running): ``yield 200`` waits 200 ms,
``yield until(cond, 10, "what")`` polls ``cond`` until it is true or raises TimeoutError
into the step after 10 s. Each step records its checks (name, ok, details) in the results
JSON, rewritten after every record, so a crash still leaves the checks done before it; an
exception in a step fails that step's checks only and the next step runs.

Real input: map clicks and key presses go through the X server (xdotool), widget clicks
through ``QAbstractButton.click()``, typing through ``QTest.keyClicks``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import traceback
from pathlib import Path

import qgis.utils
from qgis.core import Qgis, QgsApplication, QgsFeatureRequest, QgsProject, QgsRectangle, QgsVectorLayer
from qgis.PyQt import sip
from qgis.PyQt.QtCore import QPoint, Qt, QTimer
from qgis.PyQt.QtGui import QFontMetrics, QKeySequence
from qgis.PyQt.QtTest import QTest
from qgis.PyQt.QtWidgets import (
    QAbstractButton,
    QAction,
    QApplication,
    QCheckBox,
    QDialogButtonBox,
    QDockWidget,
    QMessageBox,
    QProgressBar,
    QScrollArea,
    QShortcut,
)

with open(os.environ["GEOLABEL_DESKTOP_CONFIG"], encoding="utf-8") as _f:
    CONFIG = json.load(_f)
iface = qgis.utils.iface
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-")
#: The dock's keys: palette classes 1-9 (k-th button), then the navigator and the check.
NAV_KEYS = {"next": ".", "previous": ",", "done": "M", "check": "Q"}
XDOTOOL_KEYS = {".": "period", ",": "comma", "M": "m", "Q": "q"}

results: dict = {"checks": [], "started": time.time()}
state: dict = {}


# -- results and log ------------------------------------------------------------------


def save_results():
    tmp = CONFIG["results"] + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1, default=str)
    os.replace(tmp, CONFIG["results"])


def record(name, ok, details=""):
    results["checks"].append({"name": name, "ok": bool(ok), "details": details})
    save_results()


def recorded(name):
    return any(c["name"] == name for c in results["checks"])


_log = open(CONFIG["log"], "a", encoding="utf-8")  # noqa: SIM115 (open until QGIS quits)


def log_message(message, tag, level):
    _log.write(json.dumps({"tag": tag, "level": int(level), "message": message}) + "\n")
    _log.flush()


QgsApplication.messageLog().messageReceived.connect(log_message)


# -- input, screenshots ---------------------------------------------------------------


def xdotool(*args):
    subprocess.run(["xdotool", *map(str, args)], check=True, timeout=10, env={**os.environ})


def click_screen(point, button=1, repeat=1):
    # no --sync: xdotool then waits for the pointer to move, forever when it is there already
    xdotool("mousemove", point.x(), point.y(), "click", "--repeat", repeat, "--delay", 80, button)


def press(key):
    xdotool("key", XDOTOOL_KEYS.get(key, key))


def screen_point(widget, x, y):
    return widget.mapToGlobal(QPoint(round(x), round(y)))


def map_to_screen(x, y):
    """A map coordinate as a screen pixel of the canvas (through the canvas's own transform)."""
    canvas = iface.mapCanvas()
    pixel = canvas.getCoordinateTransform().transform(x, y)
    return screen_point(canvas.viewport(), pixel.x(), pixel.y())


def shot(name, widget=None, docs_name=None):
    """A screenshot of the whole screen (``import``), or of a widget (``QWidget.grab``);
    ``docs_name``: also the README screenshot of that name when asked for."""
    path = os.path.join(CONFIG["shots"], name)
    if widget is None:
        subprocess.run(["import", "-display", os.environ["DISPLAY"], "-window", "root", path], check=True, timeout=30)
    elif not widget.grab().save(path, "PNG"):
        raise OSError(f"could not write {path}")
    if docs_name and CONFIG.get("docs_shots"):
        import shutil

        shutil.copyfile(path, os.path.join(CONFIG["docs_shots"], docs_name))
    return path


def until(cond, timeout=10.0, what="condition"):
    return ("until", cond, timeout, what)


_refreshes = [0]
iface.mapCanvas().mapCanvasRefreshed.connect(lambda: _refreshes.__setitem__(0, _refreshes[0] + 1))


def map_drawn():
    """Wait until the canvas has drawn: a refresh requested just before starts on a timer, so
    idle means a refresh finished since this call, or none started within a second."""
    canvas, count, t0 = iface.mapCanvas(), _refreshes[0], time.monotonic()

    def drawn():
        return not canvas.isDrawing() and (_refreshes[0] > count or time.monotonic() - t0 > 1.0)

    return until(drawn, 20, "the map canvas finishes drawing")


# -- the step runner ------------------------------------------------------------------


class Runner:
    def __init__(self, steps):
        self.steps = list(steps)  # (generator function, names of the checks it records)
        self.gen = None
        self.names = []

    def start(self):
        QTimer.singleShot(0, self.next_step)

    def next_step(self):
        if not self.steps:
            return
        func, self.names = self.steps.pop(0)
        results["current"] = func.__name__
        save_results()
        try:
            self.gen = func()
        except Exception:
            self.fail_rest(traceback.format_exc())
            QTimer.singleShot(50, self.next_step)
            return
        self.advance()

    def fail_rest(self, text):
        for name in self.names:
            if not recorded(name):
                record(name, False, text)

    def advance(self, throw=None):
        try:
            wait = self.gen.throw(throw) if throw is not None else next(self.gen)
        except StopIteration:
            self.fail_rest("the step ended without recording this check")
            QTimer.singleShot(50, self.next_step)
            return
        except Exception:
            self.fail_rest(traceback.format_exc())
            QTimer.singleShot(50, self.next_step)
            return
        if isinstance(wait, tuple) and wait[0] == "until":
            self.poll(wait[1], time.monotonic() + wait[2], wait[3])
        else:
            QTimer.singleShot(int(wait or 0), self.advance)

    def poll(self, cond, deadline, what):
        try:
            done = cond()
        except Exception as exc:
            QTimer.singleShot(0, lambda e=exc: self.advance(e))  # `exc` is unbound after the block
            return
        if done:
            QTimer.singleShot(0, self.advance)
        elif time.monotonic() > deadline:
            exc = TimeoutError(f"timed out waiting until {what}")
            QTimer.singleShot(0, lambda e=exc: self.advance(e))
        else:
            QTimer.singleShot(50, lambda: self.poll(cond, deadline, what))


# -- helpers on the plugin ------------------------------------------------------------


def plugin():
    return qgis.utils.plugins["geolabel_qgis"]


def dock():
    return plugin().dock


def labels_layer():
    d = dock()
    return QgsProject.instance().mapLayer(d.layer_id) if d.layer_id else None


def same_object(a, b):
    return a is not None and b is not None and sip.unwrapinstance(a) == sip.unwrapinstance(b)


def read_store():
    """The store's labels as the engine reads them (a connection of its own)."""
    from geolabel.labels.store import open_store

    with open_store(CONFIG["store"]) as store:
        return store.query()


def palette_buttons():
    """The palette's buttons in layout order (row by row), as the keys 1-9 count them."""
    d = dock()
    layout = d.palette_layout
    ours = {sip.unwrapinstance(b) for b in d.palette.buttons()}
    cells = []
    for i in range(layout.count()):
        widget = layout.itemAt(i).widget()
        if widget is not None and sip.unwrapinstance(widget) in ours:
            row, col, _, _ = layout.getItemPosition(i)
            cells.append((row, col, widget))
    return [w for _, _, w in sorted(cells, key=lambda c: (c[0], c[1]))]


def item_finding(item):
    """The dock's finding behind a list item (its index in dock.findings is the item's data)."""
    k = item.data(Qt.UserRole)
    try:
        return dock().findings[int(k)]
    except (TypeError, ValueError, IndexError):
        return None


def form_fields(form_widget, layer):
    """{field name: (shown, editable)} of the editor widgets in an attribute form."""
    from qgis.gui import QgsEditorWidgetWrapper

    out = {}
    for wrapper in form_widget.findChildren(QgsEditorWidgetWrapper):
        widget = wrapper.widget()
        name = layer.fields().at(wrapper.fieldIdx()).name()
        if widget is not None:
            # a read-only text field keeps an enabled QLineEdit set read-only
            read_only = getattr(widget, "isReadOnly", lambda: False)()
            out[name] = (widget.isVisibleTo(form_widget), widget.isEnabled() and not read_only)
    return out


def form_problems(fields):
    bad = []
    for name in ("fid", "label_id", "created", "modified", "version"):
        if fields.get(name, (False, False)) == (True, True):
            bad.append(f"{name} is editable in the form")
    for name in ("class_code", "comment", "status"):
        if fields.get(name) != (True, True):
            bad.append(f"{name} is not editable in the form ({fields.get(name, 'missing')})")
    return bad


def attribute_dialog():
    """The visible attribute form window (modal or not) as a QgsAttributeDialog, if any (sip
    types the one QGIS opens as a plain QDialog, and findChild(QgsAttributeForm) finds nothing)."""
    from qgis.gui import QgsAttributeDialog

    for widget in [QApplication.activeModalWidget(), *QApplication.topLevelWidgets()]:
        if widget is not None and widget.isVisible() and widget.metaObject().className() == "QgsAttributeDialog":
            return sip.cast(widget, QgsAttributeDialog)
    return None


def activate_main_window():
    mw = iface.mainWindow()
    mw.raise_()
    mw.activateWindow()
    xdotool("windowfocus", "--sync", int(mw.winId()))


def modal_text(widget):
    text = widget.windowTitle()
    if isinstance(widget, QMessageBox):
        text += f": {widget.text()} {widget.informativeText()}".rstrip()
    return text


# -- the steps ------------------------------------------------------------------------


def setup():
    mw = iface.mainWindow()
    mw.move(0, 0)
    mw.resize(1600, 1000)
    plugin().action.trigger()
    yield until(lambda: dock() is not None and dock().isVisible(), 5, "the dock shows")
    d = dock()
    iface.addRasterLayer(CONFIG["raster"], "village")  # the labeler opens the scene first
    yield map_drawn()
    yield 300
    d.open_store(CONFIG["store"])
    d.open_tiles(CONFIG["tiles"])
    yield 500
    yield map_drawn()
    tiles = [
        lay
        for lay in QgsProject.instance().mapLayers().values()
        if lay.source().split("|")[0] == CONFIG["tiles"] and lay.name() != "labels"
    ]
    if not tiles:  # the tile grid on the map, as outlines (unless the dock adds it)
        from qgis.core import QgsFillSymbol, QgsSingleSymbolRenderer

        grid = QgsVectorLayer(f"{CONFIG['tiles']}|layername=tiles", "tiles", "ogr")
        grid.setRenderer(
            QgsSingleSymbolRenderer(
                QgsFillSymbol.createSimple({"style": "no", "outline_color": "255,0,255,255", "outline_width": "0.6"})
            )
        )
        QgsProject.instance().addMapLayer(grid)
        tiles = [grid]
        yield map_drawn()
    state["tiles_layer_id"] = tiles[0].id()
    activate_main_window()
    yield until(mw.isActiveWindow, 5, "the QGIS main window is active")
    yield 300
    shot("01-start.png")
    layer = labels_layer()
    ok = layer is not None and layer.name() == "labels" and d.tile_index >= 0
    record("setup", ok, f"labels layer {layer and layer.name()!r}, tile {d.tile_index}, {d.store_label.text()!r}")
    chip = d.chips[d.tile_index]
    extent = iface.mapCanvas().extent()
    shown = extent.contains(QgsRectangle(*chip.footprint.bounds))
    record(
        "open_tiles_shows_tile",
        shown and extent.width() < 3 * (chip.footprint.bounds[2] - chip.footprint.bounds[0]),
        f"map extent {extent.toString(1)}, tile {chip.tile_id} {chip.footprint.bounds}",
    )
    # the README's map: the whole scene, labels by class, the tile grid; then back to the tile
    canvas = iface.mapCanvas()
    canvas.setExtent(QgsProject.instance().mapLayersByName("village")[0].extent())
    canvas.refresh()
    yield map_drawn()
    shot("map.png", canvas, "screenshot_map.png")
    d.go_to_tile(d.tile_index)
    yield map_drawn()


def digitize():
    d, layer = dock(), labels_layer()
    canvas = iface.mapCanvas()
    before = read_store()
    state["count_before"] = len(before)
    QTest.keyClicks(d.labeler_edit, CONFIG["labeler"])
    d.palette.button(CONFIG["class_code"]).click()
    yield 100
    iface.actionAddFeature().trigger()
    yield 200
    tool = canvas.mapTool()
    state["digitizing"] = (
        f"editable {layer.isEditable()}, Add Feature enabled {iface.actionAddFeature().isEnabled()}, "
        f"tool {type(tool).__name__ if tool else None}, extent {canvas.extent().toString(1)}"
    )
    tile_id = d.chips[d.tile_index].tile_id
    points = [map_to_screen(x, y) for x, y in CONFIG["polygon"]]
    for p in points:
        click_screen(p)
        yield 150
    shot("02-drawing.png")
    click_screen(points[-1], button=3)  # a right click ends the polygon: QGIS opens the attribute form
    state["digitizing"] += f", rubber band had {len(points)} clicks"
    form = None
    try:  # QGIS 3.22 opens the add-feature form non-modal (the map stays usable)
        yield until(lambda: attribute_dialog() is not None, 5, "the attribute form opens")
        form = attribute_dialog()
    except TimeoutError:
        pass  # the form may be switched off
    if form is None:
        shot("03-no-form.png")
        tops = [f"{type(w).__name__} {w.windowTitle()!r}" for w in QApplication.topLevelWidgets() if w.isVisible()]
        bar = iface.messageBar().currentItem()
        state["digitizing"] += f", windows {tops}, message bar {bar.text() if bar else None!r}"
    form_note = "no attribute form appeared"
    if form is not None:
        form_note = f"form {type(form).__name__} {form.windowTitle()!r}"
        state["add_form_fields"] = form_fields(form.attributeForm(), layer)
        shot("03-attribute-form.png")
        buttons = form.findChild(QDialogButtonBox)
        ok_button = buttons.button(QDialogButtonBox.Ok) if buttons is not None else None
        if ok_button is None:
            raise RuntimeError(f"{form_note}: no OK button")
        ok_button.click()
        yield 300
    added = len(layer.editBuffer().addedFeatures()) if layer.editBuffer() else None
    state["digitizing"] += f", {added} feature(s) in the edit buffer"
    iface.actionSaveActiveLayerEdits().trigger()
    yield 300
    after = read_store()
    new = after[~after.label_id.isin(before.label_id)]
    details = f"{state['digitizing']}; {form_note}; {len(before)} -> {len(after)} labels"
    if len(new) != 1:
        record("digitize", False, f"{details}: {len(new)} new labels")
        return
    row = new.iloc[0]
    state["new_id"] = row.label_id
    state["new_class"] = row.class_name
    got = (int(row.class_code), row.labeler, row.tile_id)
    want = (CONFIG["class_code"], CONFIG["labeler"], tile_id)
    record("digitize", got == want, f"{details}; new label (class_code, labeler, tile_id) = {got}, expected {want}")
    shot("04-drawn.png")


def live_count():
    d = dock()
    want = re.compile(rf"\b{state['count_before'] + 1} labels\b")
    try:
        yield until(lambda: want.search(d.store_label.text()), 3, "the store label shows the new count")
        record("live_count", True, d.store_label.text())
    except TimeoutError:
        record("live_count", False, f"store label says {d.store_label.text()!r}, expected /{want.pattern}/")


def check_keeps_editing():
    d, layer, canvas = dock(), labels_layer(), iface.mapCanvas()
    tool, checks = canvas.mapTool(), d.checks
    d.check_button.click()
    yield until(lambda: d.task is None and d.checks > checks, 60, "the check task ends")
    yield 300
    yield map_drawn()
    active = iface.activeLayer()
    problems = []
    if not same_object(active, layer):
        problems.append(f"active layer is {active.name() if active else None!r}, not the labels layer")
    if not same_object(canvas.mapTool(), tool):
        now = canvas.mapTool()
        problems.append(f"map tool changed from {type(tool).__name__} to {type(now).__name__ if now else None}")
    if not iface.actionAddFeature().isEnabled():
        problems.append("Add Polygon Feature is disabled")
    if layer is None or not layer.isEditable():
        problems.append("the labels layer left edit mode")
    record("check_keeps_editing", not problems, "; ".join(problems) or f"qa: {d.qa_label.text()!r}")
    shot("05-checked.png")
    shot("dock.png", d, "screenshot_dock.png")


def findings_text():
    d = dock()
    lst = d.findings_list
    items = [lst.item(i) for i in range(lst.count())]
    problems = []
    if not items:
        problems.append("no findings listed")
    for k, item in enumerate(items):
        if UUID.search(item.text()):
            problems.append(f"item {k} shows an id: {item.text()!r}")
        finding = item_finding(item)
        ids = finding.feature_ids if finding is not None else []
        missing = [i for i in ids if i not in item.toolTip()]
        if finding is None:
            problems.append(f"item {k}: no finding behind it (data {item.data(Qt.UserRole)!r})")
        elif missing:
            problems.append(f"item {k}: tooltip lacks ids {missing}")
    if lst.horizontalScrollBar().isVisible():
        problems.append("the findings list shows a horizontal scrollbar")
    new_id = state.get("new_id")
    own = [f for f in d.findings if new_id in (f.feature_ids or []) and "overlap" in f.type]
    if not own:
        problems.append(f"no overlap finding involves the new label {new_id}")
    elif items:
        first = item_finding(items[0])
        if first is None or new_id not in first.feature_ids:
            problems.append(f"the first finding is not the new label's overlap: {items[0].text()!r}")
        else:
            store = read_store()
            names = set(store[store.label_id.isin(first.feature_ids)].class_name)
            text = items[0].text()
            absent = [n for n in names if n not in text]
            if absent:
                problems.append(f"first finding does not name class(es) {absent}: {text!r}")
            if not re.search(r"\d\s*(m²|m2|ha|square met)", text):
                problems.append(f"first finding does not give an area: {text!r}")
    sample = [items[0].text()] if items else []
    record("findings_text", not problems, "; ".join(problems) or f"{len(items)} findings, first {sample}")
    yield 0


def zoom_to_finding():
    d, canvas = dock(), iface.mapCanvas()
    lst = d.findings_list
    item = lst.item(0)
    lst.scrollToItem(item)
    yield 100
    rect = lst.visualItemRect(item)
    click_screen(screen_point(lst.viewport(), rect.center().x(), rect.center().y()), repeat=2)
    yield 500
    yield map_drawn()
    finding = item_finding(item)
    if finding is None or finding.geometry is None:
        record("zoom_to_finding", False, "the first item has no finding with a geometry")
        return
    minx, miny, maxx, maxy = finding.geometry.bounds
    extent = canvas.extent()
    ok = extent.contains(QgsRectangle(minx, miny, maxx, maxy))
    record("zoom_to_finding", ok, f"extent {extent.toString(1)}, finding bounds {finding.geometry.bounds}")
    yield 200
    shot("06-finding.png")
    shot("finding.png", canvas, "screenshot_finding.png")


def attribute_form():
    layer = labels_layer()
    problems = []
    config = layer.editFormConfig()
    fields = layer.fields()

    def locked(name):
        idx = fields.indexOf(name)
        return idx >= 0 and (layer.editorWidgetSetup(idx).type() == "Hidden" or config.readOnly(idx))

    for name in ("fid", "label_id", "created", "modified", "version"):
        if not locked(name):
            problems.append(f"layer config: {name} is editable (not Hidden, not read-only)")
    for name in ("class_code", "comment", "status"):
        idx = fields.indexOf(name)
        if idx < 0 or layer.editorWidgetSetup(idx).type() == "Hidden" or config.readOnly(idx):
            problems.append(f"layer config: {name} cannot be edited")
    add_form = state.get("add_form_fields")
    if add_form is not None:
        problems += [f"add form: {p}" for p in form_problems(add_form)]
    request = QgsFeatureRequest().setFilterExpression(f"\"label_id\" = '{state.get('new_id')}'")
    feature = next(layer.getFeatures(request), None)
    if feature is None:
        problems.append("the new label is not in the layer")
    else:
        dialog = iface.getFeatureForm(layer, feature)
        dialog.show()
        yield 400
        shot("07-feature-form.png")
        problems += [f"feature form: {p}" for p in form_problems(form_fields(dialog.attributeForm(), layer))]
        dialog.reject()
        dialog.deleteLater()
        yield 100
    record("attribute_form", not problems, "; ".join(problems))


def keys():
    d, canvas = dock(), iface.mapCanvas()
    activate_main_window()
    centre = screen_point(canvas.viewport(), canvas.viewport().width() / 2, canvas.viewport().height() / 2)
    xdotool("mousemove", centre.x(), centre.y())
    canvas.setFocus()
    yield 200
    # the shortcut keys and who else binds them
    buttons = palette_buttons()
    wanted = [str(k + 1) for k in range(min(9, len(buttons)))] + list(NAV_KEYS.values())
    bound = {}
    mw = iface.mainWindow()
    for action in mw.findChildren(QAction):
        for seq in action.shortcuts():
            key = seq.toString(QKeySequence.PortableText)
            if key in wanted and action.isEnabled():
                bound.setdefault(key, []).append(f"QAction {action.text()!r} ({action.objectName()})")
    for sc in mw.findChildren(QShortcut):
        key = sc.key().toString(QKeySequence.PortableText)
        if key in wanted and sc.isEnabled():
            bound.setdefault(key, []).append(f"QShortcut {sc.objectName()!r}")
    conflicts = {k: v for k, v in bound.items() if len(v) > 1}
    unbound = [k for k in wanted if k not in bound]
    problems = [f"{k!r} bound {len(v)} times: {v}" for k, v in conflicts.items()]
    if unbound:
        problems.append(f"no enabled QAction or QShortcut has the keys {unbound}")
    record("no_shortcut_conflicts", not problems, "; ".join(problems) or str(bound))
    # tooltips name the keys
    named = [(d.prev_button, NAV_KEYS["previous"]), (d.next_button, NAV_KEYS["next"])]
    named += [(d.done_button, NAV_KEYS["done"]), (d.check_button, NAV_KEYS["check"])]
    named += [(b, str(k + 1)) for k, b in enumerate(buttons[:9])]
    missing = [f"{b.text()!r} ({k}): {b.toolTip()!r}" for b, k in named if not names_key(b.toolTip(), k)]
    record("tooltips_name_keys", not missing, "tooltip lacks its key: " + "; ".join(missing) if missing else "")
    # 1..9: the k-th palette button ("1" last: its class may be the one already picked)
    wrong = []
    order = list(enumerate(buttons[:9]))
    for k, button in order[1:] + order[:1]:
        press(str(k + 1))
        yield 150
        checked = d.palette.checkedButton()
        if not same_object(checked, button):
            wrong.append(f"{k + 1} -> {checked.text() if checked else None!r}, expected {button.text()!r}")
    record("keys_palette", bool(buttons) and not wrong, "; ".join(wrong) or f"{len(buttons)} classes")
    # . and , : next and previous tile
    start = d.tile_index
    press(NAV_KEYS["next"])
    yield 300
    after_next = d.tile_index
    press(NAV_KEYS["previous"])
    yield 300
    after_prev = d.tile_index
    ok = after_next == start + 1 and after_prev == start
    record("keys_tiles", ok, f"tile index {start} -> '.' {after_next} -> ',' {after_prev}")
    # M: mark the current tile done
    tile_id = d.chips[d.tile_index].tile_id
    press(NAV_KEYS["done"])
    yield 300
    status = d.store.tile_statuses().get(tile_id)
    record("key_mark_done", status == "done", f"{tile_id}: {status!r} after 'M'")
    # Q: check now
    checks = d.checks
    press(NAV_KEYS["check"])
    try:
        yield until(lambda: d.checks > checks, 2, "a check starts")
        yield until(lambda: d.task is None, 60, "the check ends")
        record("key_check_now", True, f"checks {checks} -> {d.checks}")
    except TimeoutError as exc:
        record("key_check_now", False, f"{exc}; checks {checks} -> {d.checks}")
    yield map_drawn()
    shot("08-keys.png")


def names_key(tooltip, key):
    """Whether a tooltip names a key: a letter or digit as a word of its own, punctuation in
    brackets or quotes or after "key"/"shortcut" ("Next tile (.)", "shortcut: ,")."""
    if key.isalnum():
        return re.search(rf"(?<![\w]){re.escape(key)}(?![\w])", tooltip or "") is not None
    k = re.escape(key)
    pattern = rf"[(\[«“‘'\"<]\s*{k}\s*[)\]»”’'\">]|\b(key|shortcut)\s*:?\s*{k}(\W|$)"
    return re.search(pattern, tooltip or "", re.I) is not None


def toolbox():
    from qgis.gui import QgsProcessingToolboxTreeView

    mw = iface.mainWindow()
    box = mw.findChild(QDockWidget, "ProcessingToolbox")
    dock().hide()  # the toolbox gets the dock column's height (same width) for the screenshot
    box.show()
    box.raise_()
    yield 400
    provider = QgsApplication.processingRegistry().providerById("geolabel")
    problems = []
    algs = provider.algorithms()
    nested = [a.id() for a in algs if a.group() == provider.name()]
    if nested:
        problems.append(f"algorithms in a group named like the provider ({provider.name()!r}): {nested}")
    long_names = [a.displayName() for a in algs if len(a.displayName()) > 30]
    if long_names:
        problems.append(f"display names over 30 characters: {long_names}")
    tree = box.findChild(QgsProcessingToolboxTreeView)
    model = tree.model()
    top = [model.index(r, 0) for r in range(model.rowCount())]
    node = next((i for i in top if i.data() in (provider.name(), provider.longName())), None)
    if node is None:
        problems.append(f"no {provider.name()!r} node in the toolbox: {[i.data() for i in top]}")
    else:
        tree.scrollTo(node, tree.PositionAtTop)
        tree.expand(node)
        yield 100
        rows = []

        def walk(index, depth):
            for r in range(model.rowCount(index)):
                child = model.index(r, 0, index)
                rows.append((child, depth))
                tree.expand(child)
                walk(child, depth + 1)

        walk(node, 1)
        yield 100
        tree.scrollTo(node, tree.PositionAtTop)
        yield 300
        groups = [i.data() for i, _ in rows if model.rowCount(i) > 0]
        if provider.name() in groups:
            problems.append(f"the toolbox shows {provider.name()} → {provider.name()}")
        fm = QFontMetrics(tree.font())
        width = tree.viewport().width()
        for index, _ in rows:
            rect = tree.visualRect(index)
            need = rect.left() + tree.iconSize().width() + 8 + fm.horizontalAdvance(index.data() or "")
            if rect.isValid() and need > width:
                problems.append(f"{index.data()!r} needs {need} px, the tree shows {width}")
        state["toolbox_rows"] = [("  " * depth) + str(i.data()) for i, depth in rows]
    shot("09-toolbox.png")
    shot("toolbox.png", box, "screenshot_toolbox.png")
    record("toolbox_groups", not problems, "; ".join(problems) or "\n".join(state.get("toolbox_rows", [])))
    box.hide()
    dock().show()
    yield 200


def parameter_value(dialog, name):
    """What a parameter's widget holds (layer id, source or layer)."""
    wrapper = dialog.mainWidget().wrappers[name]
    for getter in ("parameterValue", "value"):
        if hasattr(wrapper, getter):
            return getattr(wrapper, getter)()
    return None


def check_dialog():
    import processing

    layer = labels_layer()
    grid = QgsProject.instance().mapLayer(state["tiles_layer_id"])
    iface.setActiveLayer(grid)
    yield 100
    dialog = processing.createAlgorithmDialog("geolabel:check")
    dialog.show()
    yield 600
    problems = []
    value = parameter_value(dialog, "INPUT")
    if hasattr(value, "id"):
        value = value.id()
    if value not in (layer.id(), layer.source(), layer.name()):
        problems.append(f"Labels parameter holds {value!r}, not the labels layer ({layer.id()})")
    for area in dialog.findChildren(QScrollArea):
        if area.isVisible() and area.horizontalScrollBar().isVisible():
            problems.append(f"horizontal scrollbar in {area.objectName() or type(area).__name__}")
    for box in dialog.findChildren(QCheckBox):
        if box.isVisible() and box.sizeHint().width() > box.width():
            problems.append(f"checkbox cut: {box.text()!r} needs {box.sizeHint().width()} px, has {box.width()}")
    shot("10-check-dialog.png")
    shot("dialog.png", dialog, "screenshot_dialog.png")
    record("check_dialog", not problems, "; ".join(problems) or f"Labels = {value!r}")
    dialog.close()
    dialog.deleteLater()
    iface.setActiveLayer(layer)


def tile_dialog():
    import processing
    from qgis.core import QgsRenderContext

    raster = QgsProject.instance().mapLayersByName("village")[0]
    params = {"INPUT": [raster], "SIZE": 512, "OUTPUT": CONFIG["tile_out"]}
    dialog = processing.createAlgorithmDialog("geolabel:tile", params)
    dialog.show()
    yield 400
    button = dialog.runButton() if hasattr(dialog, "runButton") else dialog.buttonBox().button(QDialogButtonBox.Ok)
    bar = dialog.findChild(QProgressBar, "progressBar")
    seen = []
    bar.valueChanged.connect(lambda v: seen.append((v, bar.maximum())))
    button.click()
    project = QgsProject.instance()
    out = str(Path(CONFIG["tile_out"]))

    def loaded():
        return [layer for layer in project.mapLayers().values() if layer.source().startswith(out)]

    yield until(lambda: dialog.wasExecuted() or loaded(), 90, "the tile run ends")
    yield 500
    problems = []
    # QGIS resets the bar to 0 when the run ends and the dialog stays open: judge the values
    # it showed up to then
    reached = max((v for v, m in seen if m > 0 and v == m), default=None)
    if reached is None:
        problems.append(f"progress bar never reached its maximum; it showed {seen[-8:]} (value, maximum)")
    # the layer this run loaded (the dock shows the grid of the tile index it opened, too)
    layers = loaded()
    if [layer.name() for layer in layers] != ["Tile index"]:
        problems.append(f"the run loaded {[layer.name() for layer in layers]}, not one 'Tile index' layer")
    else:
        layer = layers[0]
        renderer = layer.renderer()
        context = QgsRenderContext()
        filled = []
        for symbol in renderer.symbols(context) if renderer is not None else []:
            for k in range(symbol.symbolLayerCount()):
                sl = symbol.symbolLayer(k)
                brush = getattr(sl, "brushStyle", lambda: Qt.NoBrush)()
                fill = sl.fillColor() if hasattr(sl, "fillColor") else None
                if brush != Qt.NoBrush and fill is not None and fill.alpha() > 0:
                    filled.append(f"{sl.layerType()} fill {fill.name()} alpha {fill.alpha()}")
        if filled:
            problems.append(f"tile index drawn filled: {filled}")
        if not layer.labelsEnabled():
            problems.append("tile index has no labels")
        else:
            field = layer.labeling().settings().fieldName
            if field != "tile_id":
                problems.append(f"tile index labelled by {field!r}, not tile_id")
    shot("11-tile-dialog.png")
    record("tile_dialog", not problems, "; ".join(problems) or f"progress bar showed {seen[-4:]} (value, maximum)")
    dialog.close()
    dialog.deleteLater()
    yield map_drawn()
    shot("12-tile-index.png")


def quit_qgis():
    prompts = []

    def watch():
        widget = QApplication.activeModalWidget()
        if widget is not None:
            prompts.append(modal_text(widget))
            record("quit_without_prompt", False, f"prompt on quit: {prompts[-1]}")
            dismiss(widget)
        QTimer.singleShot(100, watch)

    def dismiss(widget):
        """Answer so that QGIS still quits: Yes / Discard / OK, whatever the prompt offers."""
        if isinstance(widget, QMessageBox):
            for role in (QMessageBox.YesRole, QMessageBox.DestructiveRole, QMessageBox.AcceptRole):
                for b in widget.buttons():
                    if widget.buttonRole(b) == role:
                        b.click()
                        return
        for b in widget.findChildren(QAbstractButton):
            if b.text().replace("&", "").lower() in ("yes", "discard", "ok", "don't save", "close without saving"):
                b.click()
                return
        widget.reject()

    def finished():
        if not prompts:
            record("quit_without_prompt", True, "")
        _log.close()

    QgsApplication.instance().aboutToQuit.connect(finished)
    QgsProject.instance().setDirty(False)
    results["quit_started"] = time.time()
    save_results()
    QTimer.singleShot(100, watch)
    iface.actionExit().trigger()
    yield 0


STEPS = [
    (setup, ["setup", "open_tiles_shows_tile"]),
    (digitize, ["digitize"]),
    (live_count, ["live_count"]),
    (check_keeps_editing, ["check_keeps_editing"]),
    (findings_text, ["findings_text"]),
    (zoom_to_finding, ["zoom_to_finding"]),
    (attribute_form, ["attribute_form"]),
    (
        keys,
        [
            "no_shortcut_conflicts",
            "tooltips_name_keys",
            "keys_palette",
            "keys_tiles",
            "key_mark_done",
            "key_check_now",
        ],
    ),
    (toolbox, ["toolbox_groups"]),
    (check_dialog, ["check_dialog"]),
    (tile_dialog, ["tile_dialog"]),
    (quit_qgis, []),
]

log_message(f"GeoLabel desktop driver starting in QGIS {Qgis.QGIS_VERSION}", "geolabel-desktop", Qgis.Info)
runner = Runner(STEPS)
QTimer.singleShot(1500, runner.start)

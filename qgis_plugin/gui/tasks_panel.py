"""The dock's tasks: "my tiles" for a labeler (submit a tile), the review mode for reviewers.

The workflow is the engine's (``geolabel.tasks``: start, submit after the tile's checks,
accept or reject with a comment); this panel lists the tasks, calls the engine and shows
what it answered. The dock's Previous/Next (and their keys) walk this list while the store
has tasks.
"""

from __future__ import annotations

import contextlib

from qgis.core import QgsExpressionContextUtils, QgsProject
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QColor
from qgis.PyQt.QtWidgets import (
    QCheckBox,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
)

from .. import stores
from ..processing.common import warn_on_error
from . import task_queue

#: Colours of the statuses in the list.
COLORS = {"rejected": "#e31a1c", "in_progress": "#ff7f00", "assigned": "#404040", "submitted": "#1f78b4"}


class TaskPanel(QGroupBox):
    """ "My tiles" / "Review" box of the labeling dock."""

    def __init__(self, dock):
        super().__init__("My tiles", dock)
        self.dock = dock
        self.tasks = []  # every task the store shows this login
        self.queue = []  # the tasks the navigator walks
        self.index = -1
        layout = QVBoxLayout(self)
        self.review_check = QCheckBox("Review (walk the team's submitted tiles)")
        self.review_check.toggled.connect(lambda _on: self.refresh())
        self.summary_label = QLabel("")
        self.tasks_list = QListWidget()
        self.tasks_list.setMinimumHeight(90)
        self.tasks_list.setWordWrap(True)  # a long comment wraps: no horizontal scrolling
        self.tasks_list.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.tasks_list.itemClicked.connect(lambda item: self.go(self.tasks_list.row(item)))
        self.submit_button = QPushButton("Submit tile")
        self.submit_button.clicked.connect(self.submit)
        self.accept_button = QPushButton("Accept")
        self.accept_button.clicked.connect(self.accept)
        self.reject_button = QPushButton("Reject with comment…")
        self.reject_button.clicked.connect(lambda: self.reject())
        buttons = QHBoxLayout()
        for b in (self.submit_button, self.accept_button, self.reject_button):
            buttons.addWidget(b)
        for w in (self.review_check, self.summary_label, self.tasks_list):
            layout.addWidget(w)
        layout.addLayout(buttons)
        self.setVisible(False)

    # -- state -----------------------------------------------------------------------

    @property
    def active(self):
        """True while the open store has tasks: the navigator walks them."""
        return bool(self.tasks)

    @property
    def reviewing(self):
        return self.active and self.review_check.isChecked()

    def name(self):
        """The labeler or reviewer: the name typed in the dock, else the database role."""
        store = self.dock.store
        typed = self.dock.labeler_edit.text().strip()
        return typed or (store.member_name() if store is not None else None) or ""

    def clear(self):
        self.tasks, self.queue, self.index = [], [], -1
        self.tasks_list.clear()
        self.setVisible(False)

    def set_review_for_role(self):
        """Review mode for a reviewer of a PostGIS project (their member row says so)."""
        from geolabel.labels.team import list_members

        store = self.dock.store
        if store is None or not stores.is_postgres(self.dock.store_path):
            return
        with contextlib.suppress(Exception):  # an old project without members: no role
            me = store.member_name()
            roles = {m.user: m.role for m in list_members(store)}
            self.review_check.setChecked(roles.get(me) == "reviewer")

    def refresh(self, keep=None):
        """Read the tasks again and rebuild the list; go to ``keep`` (a position), else
        stay on the current tile if it is still listed."""
        store = self.dock.store
        current = self.queue[self.index].task_id if 0 <= self.index < len(self.queue) else None
        self.tasks = (self._call(store.tasks) or []) if store is not None else []
        if not self.tasks:
            self.clear()
            self.dock.tasks_changed()
            return
        self.setVisible(True)
        self.setTitle("Review" if self.reviewing else "My tiles")
        if self.reviewing:
            self.queue = self._call(task_queue.review_order, store, self.tasks) or []
        else:
            self.queue = task_queue.my_tiles(self.tasks, self.name())
        self._fill_list()
        ids = [t.task_id for t in self.queue]
        self.index = -1
        self.dock.tasks_changed()
        if keep is None and current in ids:
            keep = ids.index(current)
        if self.queue:
            self.go(keep or 0)

    def _fill_list(self):
        self.tasks_list.clear()
        for task in self.queue:
            item = QListWidgetItem(task_queue.entry(task, reviewing=self.reviewing))
            item.setForeground(QColor(COLORS.get(task.status, "#000000")))
            item.setToolTip(f"{item.text()}\ntask {task.task_id}, team {task.team}")
            self.tasks_list.addItem(item)
        name = self.name()
        if self.reviewing:
            text = f"{len(self.queue)} submitted tile{'s' if len(self.queue) != 1 else ''} to review"
        elif not name:
            text = "type your name above to see your tiles"
        else:
            text = task_queue.summary(self.tasks, name, len(self.queue))
        self.summary_label.setText(text)
        self._enable_buttons()

    def _enable_buttons(self):
        has = 0 <= self.index < len(self.queue)
        self.submit_button.setVisible(not self.reviewing)
        self.accept_button.setVisible(self.reviewing)
        self.reject_button.setVisible(self.reviewing)
        for b in (self.submit_button, self.accept_button, self.reject_button):
            b.setEnabled(has)

    # -- moving ----------------------------------------------------------------------

    def go(self, index):
        """Show task ``index``: zoom to its tile, make it the tile new labels belong to;
        a labeler's assigned tile is started, a reviewer sees the tile's findings."""
        if not self.queue:
            return
        self.index = max(0, min(index, len(self.queue) - 1))
        task = self.queue[self.index]
        if not self.reviewing and task.status == "assigned":
            task = self._start(task)
        dock = self.dock
        dock._zoom(task.bounds, dock.store.crs.to_wkt())
        QgsExpressionContextUtils.setProjectVariable(QgsProject.instance(), "geolabel_tile", task.tile_id)
        self.tasks_list.setCurrentRow(self.index)
        self._enable_buttons()
        dock.show_task_state(self.index, len(self.queue), task)
        if self.reviewing:
            from geolabel.tasks import tile_findings

            findings = self._call(tile_findings, dock.store, task)
            if findings is not None:
                dock.show_tile_findings(findings, task.bounds)

    def _start(self, task):
        from geolabel.tasks import start_tile

        started = self._call(start_tile, self.dock.store, task.tile_id, labeler=self.name() or None)
        if started is None:
            return task
        self.queue[self.index] = started
        self.tasks = [started if t.task_id == started.task_id else t for t in self.tasks]
        item = self.tasks_list.item(self.index)
        item.setText(task_queue.entry(started))
        item.setForeground(QColor(COLORS["in_progress"]))
        return started

    # -- decisions -------------------------------------------------------------------

    def current(self):
        return self.queue[self.index] if 0 <= self.index < len(self.queue) else None

    def submit(self):
        """Save the edits, submit the tile through the engine (its checks first): refused
        while errors remain (they are listed and shown on the map), else the next tile."""
        from geolabel.tasks import submit_tile

        task = self.current()
        if task is None or self.reviewing or not self.dock.save_edits("not submitted"):
            return None
        result = self._call(submit_tile, self.dock.store, task.tile_id, labeler=self.name() or None)
        if result is None:
            return None
        if not result.submitted:
            self.dock.show_tile_findings(result.errors, task.bounds)
            n = len(result.errors)
            self.dock.iface.messageBar().pushWarning(
                "GeoLabel", f"tile {task.tile_id} not submitted: {n} error{'s' if n != 1 else ''} to fix (listed)"
            )
            return result
        self.dock.iface.messageBar().pushSuccess("GeoLabel", f"tile {task.tile_id} submitted for review")
        self.refresh(keep=self.index)
        return result

    def accept(self):
        return self._decide(accept=True)

    def reject(self, comment=None):
        """Reject with a comment (asked for when not given; a rejection needs one)."""
        task = self.current()
        if task is None or not self.reviewing:
            return None
        if comment is None:
            comment, ok = QInputDialog.getMultiLineText(
                self, "Reject tile", f"What should {task.labeler or 'the labeler'} fix on {task.tile_id}?"
            )
            if not ok:
                return None
        if not comment.strip():
            self.dock.iface.messageBar().pushWarning("GeoLabel", "a rejection needs a comment saying what to fix")
            return None
        return self._decide(accept=False, comment=comment)

    def _decide(self, *, accept, comment=None):
        from geolabel.tasks import review_tiles

        task = self.current()
        if task is None or not self.reviewing:
            return None
        results = self._call(
            review_tiles, self.dock.store, [task.tile_id], accept=accept, comment=comment, reviewer=self.name() or None
        )
        if results is None:
            return None
        word = "accepted" if accept else "rejected"
        self.dock.iface.messageBar().pushSuccess("GeoLabel", f"tile {task.tile_id} {word}")
        self.refresh(keep=self.index)
        return results

    def _call(self, func, *args, **kwargs):
        """An engine call; its one-line error goes to the message bar (None returned)."""
        return warn_on_error(self.dock.iface, func, *args, **kwargs)

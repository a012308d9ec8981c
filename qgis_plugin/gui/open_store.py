"""The "Open label store" dialog: a GeoPackage file, a project in one of QGIS's saved
PostgreSQL connections, or a typed PostgreSQL location. It only answers "where"; the
dock opens the store."""

from __future__ import annotations

from qgis.PyQt.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QGridLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
)

from .. import stores

FILE, CONNECTION, LOCATION = range(3)
LOCATION_HINT = "postgresql://user@host:5432/database?schema=NAME"


class OpenStoreDialog(QDialog):
    """Asks where the labels are; :meth:`location` is the answer (None: nothing chosen)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Open label store")
        self.kind = QButtonGroup(self)
        grid = QGridLayout()
        self.file_edit = QLineEdit()
        self.file_edit.setPlaceholderText("labels.gpkg")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.connection_box = QComboBox()
        self.connection_box.addItems(stores.saved_connections())
        self.connection_box.currentTextChanged.connect(self.list_projects)
        self.schema_box = QComboBox()
        self.location_edit = QLineEdit()
        self.location_edit.setPlaceholderText(LOCATION_HINT)
        self.location_edit.setToolTip("a password is better kept in ~/.pgpass or a service file")
        rows = (
            (FILE, "GeoPackage file", self.file_edit, browse),
            (CONNECTION, "PostgreSQL connection", self.connection_box, None),
            (None, "project (schema)", self.schema_box, None),
            (LOCATION, "PostgreSQL location", self.location_edit, None),
        )
        for row, (kind, text, field, extra) in enumerate(rows):
            grid.addWidget(self._choice(kind, text) if kind is not None else QLabel(f"    {text}"), row, 0)
            grid.addWidget(field, row, 1)
            if extra is not None:
                grid.addWidget(extra, row, 2)
        self.message = QLabel("" if self.connection_box.count() else "no saved PostgreSQL connection in QGIS")
        self.message.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        self.kind.button(FILE).setChecked(True)
        self.list_projects(self.connection_box.currentText())
        # typing or picking in a row chooses that row
        self.file_edit.textEdited.connect(lambda: self.kind.button(FILE).setChecked(True))
        self.schema_box.activated.connect(lambda: self.kind.button(CONNECTION).setChecked(True))
        self.location_edit.textEdited.connect(lambda: self.kind.button(LOCATION).setChecked(True))

    def _choice(self, kind, text):
        button = QRadioButton(text)
        self.kind.addButton(button, kind)
        return button

    def _browse(self):
        path, _ = QFileDialog.getOpenFileName(self, "Open label store", "", "GeoPackage (*.gpkg)")
        if path:
            self.file_edit.setText(path)
            self.kind.button(FILE).setChecked(True)

    def list_projects(self, name):
        """The label-store projects (schemas) in connection ``name``'s database."""
        from qgis.core import QgsException, QgsProviderConnectionException

        self.schema_box.clear()
        if not name:
            return
        try:
            schemas = stores.store_schemas(name)
        except (QgsException, QgsProviderConnectionException) as exc:  # 3.22 raises the former
            problem = str(exc).splitlines()[0] if str(exc) else "cannot connect"
            self.message.setText(f"{name}: {stores.without_password(problem)}")
            return
        self.schema_box.addItems(schemas)
        self.message.setText("" if schemas else f"{name}: no label store in this database")
        self.kind.button(CONNECTION).setChecked(bool(schemas))

    def location(self):
        """The chosen store: a file path or a PostgreSQL location (None if left empty)."""
        kind = self.kind.checkedId()
        if kind == FILE:
            return self.file_edit.text().strip() or None
        if kind == CONNECTION:
            name, schema = self.connection_box.currentText(), self.schema_box.currentText()
            return stores.connection_location(name, schema) if name and schema else None
        return self.location_edit.text().strip() or None

"""Tests that run inside real QGIS (Debian's python3-qgis, headless)."""

from __future__ import annotations

import os
import sys

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.append("/usr/share/qgis/python/plugins")  # Processing framework


@pytest.fixture(scope="session")
def qgis_app():
    """A QgsApplication for the whole session (no GUI)."""
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    yield app
    app.exitQgis()

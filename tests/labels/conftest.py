from __future__ import annotations

import pytest

from geolabel.labels.store import create_store


@pytest.fixture
def store(tmp_path):
    st = create_store(tmp_path / "labels.gpkg", crs="EPSG:32649")
    yield st
    st.close()

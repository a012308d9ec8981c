from __future__ import annotations

import pytest

from geolabel.labels.store import create_store


@pytest.fixture
def store(store_location):
    """An empty store in EPSG:32649 on each backend."""
    st = create_store(store_location(), crs="EPSG:32649")
    yield st
    st.close()

"""Reviewing suggestions in a store (both backends): pending ones listed by area, accept
names the labeler and keeps the source, reject deletes with history, counts per labeler
reach `geolabel tasks status`."""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely

from geolabel.labels.store import create_store, open_store
from geolabel.suggest import write_suggestions
from geolabel.suggest.review import accept_suggestions, assisted_counts, pending_suggestions, reject_suggestions

CRS = "EPSG:32649"
X, Y = 686000.0, 3120000.0


@pytest.fixture
def store_with_suggestions(store_location):
    """Three water suggestions (300, 200, 100 m²) and one manual farmland label."""
    location = store_location("review")
    create_store(location, crs=CRS).close()
    boxes = [shapely.box(X + 100 * k, Y, X + 100 * k + 10 * (3 - k), Y + 10) for k in range(3)]
    write_suggestions(boxes, crs=CRS, class_name="water", into=location)
    with open_store(location) as st, st.transaction():
        farmland = gpd.GeoDataFrame({"class_code": [2]}, geometry=[shapely.box(X, Y + 50, X + 40, Y + 90)], crs=CRS)
        st.add(farmland)
    return location


def test_pending_suggestions_are_the_untouched_ones_biggest_first(store_with_suggestions):
    pending = pending_suggestions(store_with_suggestions)
    assert [round(a) for a in pending.geometry.area] == [300, 200, 100]
    assert set(pending.source) == {"suggested"} and set(pending.status) == {"draft"}
    inside = pending_suggestions(store_with_suggestions, bbox=(X + 90, Y - 5, X + 250, Y + 20))
    assert [round(a) for a in inside.geometry.area] == [200, 100]


def test_accept_names_the_labeler_keeps_the_source_and_counts(store_with_suggestions):
    first, second, third = pending_suggestions(store_with_suggestions).label_id
    assert accept_suggestions(store_with_suggestions, [first, second], labeler="li") == 2
    assert accept_suggestions(store_with_suggestions, [first], labeler="wang") == 0  # not pending any more
    assert list(pending_suggestions(store_with_suggestions).label_id) == [third]
    with open_store(store_with_suggestions) as st:
        accepted = st.query(label_ids=[first, second])
        assert set(accepted.labeler) == {"li"} and set(accepted.source) == {"suggested"}
        assert set(accepted.status) == {"draft"} and set(accepted.version) == {2}
    assert assisted_counts(store_with_suggestions) == {"li": 2}


def test_reject_deletes_only_pending_suggestions_and_history_keeps_them(store_with_suggestions):
    pending = list(pending_suggestions(store_with_suggestions).label_id)
    with open_store(store_with_suggestions) as st:
        (manual,) = st.query(classes=[2]).label_id
    assert reject_suggestions(store_with_suggestions, [pending[0], manual]) == 1  # the manual label stays
    with open_store(store_with_suggestions) as st:
        assert st.count() == 3
        (deleted,) = [h for h in st.history(label_id=pending[0]) if h.action == "delete"]
        assert deleted.old_fields is not None and deleted.old_fields["source"] == "suggested"
    assert assisted_counts(store_with_suggestions) == {}

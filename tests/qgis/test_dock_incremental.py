"""Check now, clicked again after edits on one tile, rechecks only what changed and shows
what a full check shows."""

from __future__ import annotations

import math

import geopandas as gpd
import pytest

from geolabel import tile_raster
from geolabel.labels.store import open_store
from geolabel.qa import check_labels, load_delivery
from geolabel.report import write_findings_gpkg
from tests.conftest import SAMPLE
from tests.qgis.conftest import add_polygon


def findings_rows(path):
    """Each findings layer of a findings GeoPackage as comparable rows (type, ids, area, ...)."""
    rows = {}
    for name in ("findings_polygons", "findings_points"):
        try:
            frame = gpd.read_file(path, layer=name)
        except Exception:  # an empty layer may be absent
            continue
        rows[name] = sorted(
            (r.finding_id, r.type, r.severity, r.feature_ids, r.message,
             None if math.isnan(r.area_m2) else round(r.area_m2, 3), round(r.geometry.area, 3))
            for r in frame.itertuples()
        )  # fmt: skip
    return rows


def shown_file(dock):
    from qgis.core import QgsProject

    (path,) = {QgsProject.instance().mapLayer(i).source().split("|")[0] for i in dock.findings_layers}
    return path


def edit_one_tile(layer, chip):
    """Through the layer, as a labeler does: reshape a label on ``chip``, change another's
    class, delete a third, draw a new one overlapping them."""
    on_tile = [f for f in layer.getFeatures() if _inside(f.geometry().boundingBox(), chip.footprint.bounds)]
    assert len(on_tile) >= 3
    first, second, third = on_tile[:3]
    assert layer.deleteFeature(third.id())  # leaves a gap on the tile
    assert layer.changeGeometry(first.id(), first.geometry().buffer(3.0, 4))
    other = 1 if second["class_code"] != 1 else 3
    assert layer.changeAttributeValue(second.id(), layer.fields().indexOf("class_code"), other)
    c = second.geometry().centroid().asPoint()
    add_polygon(layer, f"POLYGON(({c.x()} {c.y()}, {c.x() + 20} {c.y()}, {c.x() + 20} {c.y() + 20}, {c.x()} {c.y()})")


def test_check_now_again_after_edits_on_one_tile_rechecks_only_them(dock, tmp_path):
    from geolabel.labels.importer import import_labels

    tiles = tile_raster(SAMPLE / "village.tif", tmp_path / "chips", size=512, workers=1)
    layer = dock.new_store(str(tmp_path / "labels.gpkg"), crs="EPSG:32649")
    with open_store(tmp_path / "labels.gpkg") as store:
        import_labels(store, [SAMPLE / "village_labels.gpkg"])
    dock.open_tiles(str(tiles.index_path))
    counts = {
        chip.tile_id: sum(1 for f in layer.getFeatures() if _inside(f.geometry().boundingBox(), chip.footprint.bounds))
        for chip in dock.chips
    }
    busiest = max(dock.chips, key=lambda c: counts[c.tile_id])
    dock.go_to_tile(dock.chips.index(busiest))
    dock.mark_done()  # the gaps of a done tile are checked too
    dock.check_now()
    assert dock.check_state.how == "full: no earlier check"
    dock.set_class(2)  # edit mode, as a labeler starts drawing
    edit_one_tile(layer, busiest)
    result = dock.check_now()  # saves the edits, then rechecks
    how = dock.check_state.how
    assert how.startswith("incremental: 3 labels changed, 1 deleted")
    assert dock.qa_label.toolTip() == how
    delivery = load_delivery(tmp_path / "labels.gpkg")
    full = check_labels(delivery, tiles=str(tiles.index_path), done_only=True, workers=1)
    write_findings_gpkg(full, tmp_path / "full.gpkg")
    assert [f.type for f in result.findings] == [f.type for f in full.findings]
    assert {"overlap", "gap"} <= {f.type for f in full.findings}
    assert findings_rows(shown_file(dock)) == findings_rows(tmp_path / "full.gpkg")
    assert result.gap_area_m2 == pytest.approx(full.gap_area_m2)


def test_another_tile_index_or_store_starts_the_checks_over(dock, tmp_path):
    tiles = tile_raster(SAMPLE / "village.tif", tmp_path / "chips", size=512, workers=1)
    dock.new_store(str(tmp_path / "labels.gpkg"), crs="EPSG:32649")
    dock.check_now()
    assert dock.check_state is not None
    dock.open_tiles(str(tiles.index_path))
    assert dock.check_state is None
    dock.check_now()
    dock.check_now()
    assert dock.check_state.how.startswith("incremental: 0 labels changed")
    dock.new_store(str(tmp_path / "other.gpkg"), crs="EPSG:32649")
    assert dock.check_state is None


def _inside(rect, box):
    return (
        rect.xMinimum() >= box[0]
        and rect.yMinimum() >= box[1]
        and rect.xMaximum() <= box[2]
        and rect.yMaximum() <= box[3]
    )

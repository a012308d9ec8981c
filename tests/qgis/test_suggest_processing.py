"""geolabel:suggest_water and geolabel:suggest_classes inside real QGIS: the same polygons
as the CLI and the engine, a cancel leaves nothing."""

from __future__ import annotations

import shutil
from collections import Counter

import geopandas as gpd
import pytest

from tests.badinput import run_geolabel
from tests.conftest import SAMPLE, VILLAGE_TRAINING, village_training_store

VILLAGE = SAMPLE / "village.tif"


@pytest.fixture(scope="module")
def cli_water(tmp_path_factory):
    """What `geolabel suggest water` writes for the village scene."""
    out = tmp_path_factory.mktemp("cli") / "water.gpkg"
    result = run_geolabel("suggest", "water", VILLAGE, "--out", out, "--workers", "1", "-q", cwd=out.parent)
    assert result.code == 0, result.stderr
    return gpd.read_file(out, layer="suggestions")


def recorder(cancel_above=None):
    """A Processing feedback that records every progress value and log line (and cancels above one)."""
    from qgis.core import QgsProcessingFeedback

    class Recorder(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.values = []
            self.log = []

        def pushInfo(self, info):
            self.log.append(info)
            super().pushInfo(info)

        def setProgress(self, value):
            self.values.append(value)
            super().setProgress(value)
            if cancel_above is not None and value > cancel_above:
                self.cancel()

    return Recorder()


def test_suggest_water_writes_the_polygons_the_cli_writes(processing, cli_water, tmp_path):
    import processing as qgs_processing
    from qgis.core import QgsVectorLayer

    out = tmp_path / "water.gpkg"
    feedback = recorder()
    result = qgs_processing.run(
        "geolabel:suggest_water", {"INPUT": str(VILLAGE), "OUTPUT": str(out)}, feedback=feedback
    )
    got = gpd.read_file(out, layer="suggestions")
    assert result["OUTPUT"] == str(out) and result["COUNT"] == len(got) == len(cli_water) == 11
    assert got.crs == cli_water.crs and got.crs.to_epsg() == 32649
    assert got.area.sum() == pytest.approx(cli_water.area.sum(), rel=1e-6)
    assert result["AREA_M2"] == pytest.approx(got["area_m2"].sum(), rel=1e-9)
    assert set(got["source"]) == {"suggested"} and set(got["class_name"]) == {"water"}
    assert 0.17 < result["THRESHOLD_USED"] < 0.19  # the 3-class Otsu threshold, as the CLI's doctest says
    assert feedback.values == sorted(feedback.values) and feedback.values[-1] == 100
    layer = QgsVectorLayer(f"{out}|layername=suggestions", "water", "ogr")
    assert layer.isValid() and layer.featureCount() == 11 and layer.crs().authid() == "EPSG:32649"
    del layer


def test_suggest_water_adds_drafts_to_a_store_given_instead(processing, tmp_path):
    import processing as qgs_processing

    from geolabel.labels.store import create_store

    store = tmp_path / "labels.gpkg"
    create_store(store, crs="EPSG:32649").close()
    result = qgs_processing.run("geolabel:suggest_water", {"INPUT": str(VILLAGE), "INTO": str(store)})
    labels = gpd.read_file(store, layer="labels")
    assert result["OUTPUT"] is None and result["COUNT"] == len(labels) == 11
    assert set(labels["source"]) == {"suggested"} and set(labels["status"]) == {"draft"}


def test_a_cancel_early_stops_the_run_and_writes_no_file(processing, tmp_path):
    import processing as qgs_processing
    from qgis.core import QgsProcessingException

    out = tmp_path / "water.gpkg"
    feedback = recorder(cancel_above=5)
    with pytest.raises(QgsProcessingException, match="cancelled"):
        qgs_processing.run("geolabel:suggest_water", {"INPUT": str(VILLAGE), "OUTPUT": str(out)}, feedback=feedback)
    # stopped before any polygon was made: the first pass (the histogram, 0 to 40 %) had its
    # four 1024 px windows queued already, the second pass never started
    assert 0 < max(feedback.values) <= 40
    assert list(tmp_path.iterdir()) == []


def test_engine_errors_name_the_dialog_parameters(processing, tmp_path):
    import processing as qgs_processing
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match="“Threshold \\(otsu or a value\\)”"):
        qgs_processing.run(
            "geolabel:suggest_water", {"INPUT": str(VILLAGE), "THRESHOLD": "high", "OUTPUT": str(tmp_path / "w.gpkg")}
        )
    with pytest.raises(QgsProcessingException, match="give a label store .* or an output GeoPackage"):
        qgs_processing.run("geolabel:suggest_water", {"INPUT": str(VILLAGE)})
    assert list(tmp_path.iterdir()) == []


TRAINING = VILLAGE_TRAINING


@pytest.fixture(scope="module")
def village_store(tmp_path_factory):
    """(tile index, store with the reference labels and the diagonal tiles done)."""
    index, store = village_training_store(tmp_path_factory.mktemp("classes"))
    return str(index), store


@pytest.fixture(scope="module")
def engine_classes(village_store):
    """What the engine suggests with the default seed (on threads, as inside QGIS)."""
    from concurrent.futures import ThreadPoolExecutor

    from geolabel.suggest import suggest_classes

    index, store = village_store
    with ThreadPoolExecutor(1) as pool:
        return suggest_classes(VILLAGE, store=store, tiles=index, executor=pool)


def test_suggest_classes_writes_the_polygons_the_engine_suggests(processing, village_store, engine_classes, tmp_path):
    import processing as qgs_processing

    index, store = village_store
    out = tmp_path / "classes.gpkg"
    feedback = recorder()
    params = {"INPUT": str(VILLAGE), "FROM": str(store), "TILES": index, "OUTPUT": str(out)}
    result = qgs_processing.run("geolabel:suggest_classes", params, feedback=feedback)
    got = gpd.read_file(out, layer="suggestions")
    assert result["OUTPUT"] == str(out) and result["COUNT"] == len(got) == len(engine_classes.polygons)
    assert Counter(got["class_name"]) == Counter(engine_classes.class_names)
    assert got.area.sum() == pytest.approx(engine_classes.area_m2.sum(), rel=1e-6)
    assert result["AREA_M2"] == pytest.approx(got["area_m2"].sum(), rel=1e-9)
    assert got.crs.to_epsg() == 32649 and set(got["source"]) == {"suggested"}
    held = engine_classes.accuracy
    assert result["ACCURACY"] == pytest.approx(held.overall) and result["ACCURACY"] >= 0.95
    assert result["IOU"] == ", ".join(f"{name} {iou:.3f}" for name, iou in held.iou.items())
    assert f"water {held.iou['water']:.3f}" in result["IOU"]
    assert f"held-out accuracy on 1 of 4 training tiles ({held.sites[0]}; 50000 pixels)" in "\n".join(feedback.log)
    assert f"  water        IoU {held.iou['water']:.3f}  ({held.labelled['water']:,} labelled px)" in feedback.log
    assert feedback.values == sorted(feedback.values) and feedback.values[-1] == 100


def test_suggest_classes_adds_drafts_to_a_store_given_instead(processing, village_store, tmp_path):
    import processing as qgs_processing

    from geolabel.labels.store import open_store

    index, store = village_store
    shutil.copy(store, tmp_path / "labels.gpkg")
    labels = str(tmp_path / "labels.gpkg")
    params = {"INPUT": str(VILLAGE), "FROM": labels, "TILES": index, "CLASSES": "water,farmland", "INTO": labels}
    result = qgs_processing.run("geolabel:suggest_classes", params)
    with open_store(labels) as s:
        drafts = s.query(status=["draft"])
    drafts = drafts[drafts.source == "suggested"]
    assert result["OUTPUT"] is None and result["COUNT"] == len(drafts) > 0
    assert set(drafts.class_name) == {"water", "farmland"}
    assert list(tmp_path.iterdir()) == [tmp_path / "labels.gpkg"]


def test_a_cancel_while_sampling_stops_suggest_classes_and_writes_no_file(processing, village_store, tmp_path):
    import processing as qgs_processing
    from qgis.core import QgsProcessingException

    index, store = village_store
    out = tmp_path / "classes.gpkg"
    feedback = recorder(cancel_above=1)
    params = {"INPUT": str(VILLAGE), "FROM": str(store), "TILES": index, "OUTPUT": str(out)}
    with pytest.raises(QgsProcessingException, match="cancelled"):
        qgs_processing.run("geolabel:suggest_classes", params, feedback=feedback)
    assert 0 < max(feedback.values) <= 20  # the site sampling (0 to 20 %): no forest fitted, no window
    assert list(tmp_path.iterdir()) == []


def test_suggest_classes_errors_are_said_in_the_dialogs_words(processing, village_store, tmp_path):
    import processing as qgs_processing
    from qgis.core import QgsProcessingException

    from geolabel.labels.store import create_store

    index, store = village_store
    with create_store(tmp_path / "empty.gpkg", crs="EPSG:32649") as s:
        s.set_tile_status(TRAINING[0], "done")
    out = str(tmp_path / "s.gpkg")
    base = {"INPUT": str(VILLAGE), "TILES": index, "OUTPUT": out}
    with pytest.raises(QgsProcessingException, match="empty.gpkg: nothing to learn from"):
        qgs_processing.run("geolabel:suggest_classes", {**base, "FROM": str(tmp_path / "empty.gpkg")})
    with pytest.raises(QgsProcessingException, match="“Suggest only these classes .*”: unknown class 'paddy'"):
        qgs_processing.run("geolabel:suggest_classes", {**base, "FROM": str(store), "CLASSES": "water,paddy"})
    with pytest.raises(QgsProcessingException, match="give a label store .* or an output GeoPackage"):
        qgs_processing.run("geolabel:suggest_classes", {"INPUT": str(VILLAGE), "FROM": str(store), "TILES": index})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.gpkg"]

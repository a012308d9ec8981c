"""geolabel:suggest_water inside real QGIS: the same polygons as the CLI, a cancel leaves nothing."""

from __future__ import annotations

import geopandas as gpd
import pytest

from tests.badinput import run_geolabel
from tests.conftest import SAMPLE

VILLAGE = SAMPLE / "village.tif"


@pytest.fixture(scope="module")
def cli_water(tmp_path_factory):
    """What `geolabel suggest water` writes for the village scene."""
    out = tmp_path_factory.mktemp("cli") / "water.gpkg"
    result = run_geolabel("suggest", "water", VILLAGE, "--out", out, "--workers", "1", "-q", cwd=out.parent)
    assert result.code == 0, result.stderr
    return gpd.read_file(out, layer="suggestions")


def recorder(cancel_above=None):
    """A Processing feedback that records every progress value (and cancels above one)."""
    from qgis.core import QgsProcessingFeedback

    class Recorder(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.values = []

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

"""The GeoLabel plugin inside real QGIS: loader, provider, every algorithm, the dock."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import rasterio

from tests.conftest import SAMPLE

ALGORITHMS = {"tile", "create_store", "import_labels", "resolve", "check", "score", "export"}


def test_plugin_loads_and_unloads_through_the_qgis_plugin_loader(unloaded_plugin):
    import qgis.utils
    from qgis.core import QgsApplication

    registry = QgsApplication.processingRegistry()
    assert registry.providerById("geolabel") is None
    assert qgis.utils.loadPlugin("geolabel_qgis")
    assert qgis.utils.startPlugin("geolabel_qgis")
    provider = registry.providerById("geolabel")
    assert provider is not None and provider.name() == "GeoLabel"
    assert {a.name() for a in provider.algorithms()} == ALGORITHMS
    plugin = qgis.utils.plugins["geolabel_qgis"]
    assert plugin.action is not None and plugin.missing is None
    assert qgis.utils.unloadPlugin("geolabel_qgis")
    assert registry.providerById("geolabel") is None


def test_metadata_declares_a_processing_provider_for_qgis_3_22():
    import configparser

    from tests.conftest import ROOT

    meta = configparser.ConfigParser()
    meta.read(ROOT / "qgis_plugin" / "metadata.txt")
    general = meta["general"]
    for key in ("name", "qgisMinimumVersion", "description", "about", "version", "author", "email", "repository"):
        assert general.get(key), key
    assert general["qgisMinimumVersion"] == "3.22" and general["hasProcessingProvider"] == "yes"
    assert (ROOT / "qgis_plugin" / general["icon"]).exists() and (ROOT / "qgis_plugin" / "LICENSE").exists()


def test_missing_engine_keeps_the_plugin_loadable_and_says_what_to_install(unloaded_plugin, monkeypatch, tmp_path):
    import importlib

    import qgis.utils
    from qgis.core import QgsApplication

    engine = importlib.import_module("geolabel_qgis.engine")
    monkeypatch.setitem(sys.modules, "geolabel", None)  # `import geolabel` now fails
    missing = engine.missing_dependency()
    assert missing is not None and missing.startswith("geolabel")
    message = engine.help_message(missing)
    # a development checkout has no bundled wheel: install from the repository
    assert "-m pip install --user --break-system-packages /path/to/geolabel" in message  # Debian: PEP 668
    assert "restart QGIS" in message
    # the packaged plugin names the exact wheel it carries
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "geolabel-0.1.0-py3-none-any.whl").write_bytes(b"")
    monkeypatch.setattr(engine, "PLUGIN_DIR", str(tmp_path))
    assert engine.install_command().endswith(
        f'install --user --break-system-packages "{wheels}/geolabel-0.1.0-py3-none-any.whl"'
    )
    assert qgis.utils.loadPlugin("geolabel_qgis") and qgis.utils.startPlugin("geolabel_qgis")
    plugin = qgis.utils.plugins["geolabel_qgis"]
    assert plugin.missing is not None
    assert QgsApplication.processingRegistry().providerById("geolabel") is None  # nothing half-registered


def run(alg, params):
    import processing

    return processing.run(f"geolabel:{alg}", params)


@pytest.fixture(scope="module")
def pipeline(processing, tmp_path_factory):
    """Every algorithm once, in the order a user runs them, on the sample data."""
    from qgis.core import QgsProject, QgsVectorLayer

    root = tmp_path_factory.mktemp("qgis-pipeline")
    out = {}
    out["tile"] = run(
        "tile",
        {
            "INPUT": [str(SAMPLE / "village.tif")],
            "SIZE": 512,
            "OVERLAP": 0,
            "EDGE": 0,
            "MAX_NODATA": 0.9,
            "FORMAT": 0,
            "COMPRESS": 0,
            "OUTPUT": str(root / "chips"),
        },
    )
    out["create_store"] = run("create_store", {"CRS": "EPSG:32649", "OUTPUT": str(root / "labels.gpkg")})
    sample = QgsVectorLayer(str(SAMPLE / "village_labels.gpkg"), "sample", "ogr")
    QgsProject.instance().addMapLayer(sample)
    out["import_labels"] = run(
        "import_labels", {"STORE": str(root / "labels.gpkg"), "INPUT": [sample], "LABELER": "li", "TEAM": "hunan"}
    )
    out["resolve"] = run(
        "resolve", {"STORE": str(root / "labels.gpkg"), "MIN_AREA": 1.0, "MIN_WIDTH": 0.0, "SAME_CLASS": 0}
    )
    labels = QgsVectorLayer(f"{root / 'labels.gpkg'}|layername=labels", "labels", "ogr")
    QgsProject.instance().addMapLayer(labels)
    out["check"] = run(
        "check",
        {"INPUT": labels, "MIN_AREA": 1.0, "MIN_WIDTH": 0.5, "REQUIRE": "labeler,team", "OUTPUT": str(root / "qa")},
    )
    out["check_tiles"] = run(
        "check",
        {"INPUT": labels, "TILES": out["tile"]["INDEX"], "DONE_ONLY": False, "OUTPUT": str(root / "qa_tiles")},
    )
    out["score"] = run(
        "score",
        {"SUBMISSION": labels, "REFERENCE": sample, "IOU": 0.5, "TOLERANCE": 1.0, "OUTPUT": str(root / "score.json")},
    )
    out["export"] = run(
        "export",
        {
            "STORE": str(root / "labels.gpkg"),
            "TILES": out["tile"]["INDEX"],
            "FORMATS": [0, 2],
            "SPLIT": "0.75,0.25",
            "SEED": 2,
            "MIN_OVERLAP": 0.0,
            "OUTPUT": str(root / "dataset"),
        },
    )
    yield root, out
    QgsProject.instance().removeAllMapLayers()


def test_tile_algorithm_writes_exact_chips_and_index(pipeline):
    from qgis.core import QgsVectorLayer

    root, out = pipeline
    assert out["tile"]["CHIPS"] == 16
    index = QgsVectorLayer(f"{out['tile']['INDEX']}|layername=tiles", "tiles", "ogr")
    assert index.isValid() and index.featureCount() == 16 and index.crs().authid() == "EPSG:32649"
    feature = next(f for f in index.getFeatures() if f["tile_id"] == "village_r001_c002")
    with rasterio.open(SAMPLE / "village.tif") as src, rasterio.open(root / "chips" / feature["path"]) as chip:
        window = rasterio.windows.Window(feature["col_off"], feature["row_off"], 512, 512)
        np.testing.assert_array_equal(chip.read(), src.read(window=window))
        assert chip.transform == src.window_transform(window)
    del index


def test_store_import_and_resolve_algorithms(pipeline):
    from qgis.core import QgsVectorLayer

    root, out = pipeline
    assert out["import_labels"]["IMPORTED"] == 136 and out["import_labels"]["REJECTED"] == 0
    assert out["resolve"]["CUT"] == 4 and out["resolve"]["LABELS_OUT"] == 136
    layer = QgsVectorLayer(f"{root / 'labels.gpkg'}|layername=labels", "labels", "ogr")
    assert layer.crs().authid() == "EPSG:32649" and layer.featureCount() == 136
    classes = sorted({f["class_name"] for f in layer.getFeatures()})
    assert classes == ["building", "farmland", "forest", "grassland", "road", "water"]
    assert {f["labeler"] for f in layer.getFeatures()} == {"li"}
    del layer


def test_check_score_and_export_algorithms(pipeline):
    from qgis.core import QgsVectorLayer

    root, out = pipeline
    assert out["check"]["ERRORS"] == 0 and out["check"]["WARNINGS"] == 8
    points = QgsVectorLayer(out["check"]["FINDINGS_POINTS"], "findings", "ogr")
    assert points.isValid() and points.featureCount() == 8
    assert {f["type"] for f in points.getFeatures()} == {"spike"}
    assert "Findings by type" in (root / "qa" / "report.html").read_text()
    # against the tile grid: the labels cover the image data (the nodata collar needs none)
    assert out["check_tiles"]["ERRORS"] == 0 and out["check_tiles"]["COMPLETENESS"] == pytest.approx(1.0, abs=1e-9)
    assert out["check"]["COMPLETENESS"] is None  # no AOI, no tiles: nothing to be complete against
    del points
    assert out["score"]["QUALITY"] == pytest.approx(0.9967, abs=1e-4)
    assert json.loads((root / "score.json").read_text())["objects_overall"]["tp"] == 136
    assert out["export"]["TILES_EXPORTED"] == 16
    summary = json.loads((root / "dataset" / "summary.json").read_text())
    assert set(summary["split"]["tiles"]) == {"train", "val"} and sum(summary["split"]["tiles"].values()) == 16
    masks = sorted((root / "dataset" / "labels" / "masks").rglob("*.tif"))
    assert len(masks) == 16
    with rasterio.open(masks[0]) as m:
        assert m.crs.to_epsg() == 32649 and m.nodata == 255


def test_algorithms_report_progress_and_honour_cancel(processing, tmp_path):
    import processing as qgs_processing
    from qgis.core import QgsProcessingFeedback

    class Recorder(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.values = []

        def setProgress(self, value):
            self.values.append(value)
            super().setProgress(value)
            if value > 30:
                self.cancel()

    feedback = Recorder()
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match="cancelled"):
        qgs_processing.run(
            "geolabel:tile",
            {"INPUT": [str(SAMPLE / "village.tif")], "SIZE": 128, "OUTPUT": str(tmp_path / "chips")},
            feedback=feedback,
        )
    assert feedback.values and 0 < max(feedback.values) < 100
    chips = list((tmp_path / "chips" / "village").glob("*.tif"))
    assert 0 < len(chips) < 240  # stopped part-way; the chips written are complete
    # and a rerun resumes to the end
    result = qgs_processing.run(
        "geolabel:tile", {"INPUT": [str(SAMPLE / "village.tif")], "SIZE": 128, "OUTPUT": str(tmp_path / "chips")}
    )
    assert result["CHIPS"] == 240  # 16 x 16 grid; 16 chips inside the nodata collar hold no data


def test_engine_errors_become_processing_errors(processing, tmp_path):
    import processing as qgs_processing
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match="overlap .* must be smaller than the chip size"):
        qgs_processing.run(
            "geolabel:tile",
            {"INPUT": [str(SAMPLE / "village.tif")], "SIZE": 64, "OVERLAP": 64, "OUTPUT": str(tmp_path / "x")},
        )
    with pytest.raises(QgsProcessingException, match="not a geolabel label store"):
        qgs_processing.run("geolabel:resolve", {"STORE": str(SAMPLE / "village_labels.gpkg")})

"""The GeoLabel plugin inside real QGIS: loader, provider, every algorithm, the dock."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import rasterio

from geolabel import tile_raster
from geolabel import vocabulary as v
from geolabel.labels.store import create_store
from tests.conftest import SAMPLE

ALGORITHMS = {
    "tile",
    "create_store",
    "import_labels",
    "resolve",
    "check",
    "score",
    "export",
    "suggest_water",
    "suggest_classes",
}


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
    import numpy
    import pyproj

    # Debian (PEP 668); QGIS's own numpy and pyproj are kept, whatever pip would prefer
    keep = f'"numpy=={numpy.__version__}" "pyproj=={pyproj.__version__}"'
    assert f"-m pip install --user --break-system-packages {keep} /path/to/geolabel" in message
    assert "restart QGIS" in message
    # the packaged plugin names the exact wheel it carries
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "geolabel-0.1.0-py3-none-any.whl").write_bytes(b"")
    monkeypatch.setattr(engine, "PLUGIN_DIR", str(tmp_path))
    assert engine.install_command().endswith(f'{keep} "{wheels}/geolabel-0.1.0-py3-none-any.whl"')
    assert qgis.utils.loadPlugin("geolabel_qgis") and qgis.utils.startPlugin("geolabel_qgis")
    plugin = qgis.utils.plugins["geolabel_qgis"]
    assert plugin.missing is not None
    assert QgsApplication.processingRegistry().providerById("geolabel") is None  # nothing half-registered


FORMAT_INDEX = {f: i for i, f in enumerate(v.ALL_EXPORT_FORMATS)}


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


def test_export_algorithm_writes_tags_when_asked(pipeline):
    """The dialog offers `tags` (not chosen by default): with a tag schema and tags in the
    store, the tags CSVs list the tagged chips with their split."""
    import csv

    from geolabel.labels import load_tag_schema
    from geolabel.labels.tags import set_tag_schema, set_tile_tags
    from tests.conftest import SAMPLE

    root, out = pipeline
    store = str(root / "labels.gpkg")
    set_tag_schema(store, load_tag_schema(SAMPLE / "village_tags.toml"))
    set_tile_tags(store, "village_r001_c001", ["paddy", "road"], labeler="li")
    formats = [FORMAT_INDEX["geojson"], FORMAT_INDEX["tags"]]
    params = {"STORE": store, "TILES": out["tile"]["INDEX"], "FORMATS": formats, "OUTPUT": str(root / "tagged")}
    assert run("export", params)["TILES_EXPORTED"] == 16
    rows = [r for f in sorted((root / "tagged" / "tags").glob("*.csv")) if f.name != "classes.csv"
            for r in csv.DictReader(f.open(encoding="utf-8"))]  # fmt: skip
    assert [(r["tile_id"], r["tags"], r["labeler"]) for r in rows] == [("village_r001_c001", "paddy;road", "li")]


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


def test_algorithms_report_progress_and_honour_cancel(processing, tmp_path):
    import processing as qgs_processing

    feedback = recorder(cancel_above=30)
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

    # the dialog's own parameter labels, no backquoted API names or CLI flags
    message = r"“Overlap \(pixels\)” must be 0 or more pixels and smaller than “Chip size \(pixels\)” \(64\); got 64"
    with pytest.raises(QgsProcessingException, match=message):
        qgs_processing.run(
            "geolabel:tile",
            {"INPUT": [str(SAMPLE / "village.tif")], "SIZE": 64, "OVERLAP": 64, "OUTPUT": str(tmp_path / "x")},
        )
    with pytest.raises(QgsProcessingException, match="not a geolabel label store"):
        qgs_processing.run("geolabel:resolve", {"STORE": str(SAMPLE / "village_labels.gpkg")})
    # the engine's API names are said as the dialog's parameters, not as Python or CLI flags
    naip = {"INPUT": [str(SAMPLE / "naip_northdakota_2020.tif")], "OUTPUT": str(tmp_path / "n")}
    qgs_processing.run("geolabel:tile", {**naip, "SIZE": 256})
    with pytest.raises(QgsProcessingException) as caught:
        qgs_processing.run("geolabel:tile", {**naip, "SIZE": 128})
    message = str(caught.value)
    assert "use another “Output folder” or pass “Replace an output made with other options”" in message
    assert "`" not in message and "--" not in message
    # an engine bug becomes one line too (traceback in the log), not a Python dump
    import geolabel.qa

    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    original = geolabel.qa.check_labels
    geolabel.qa.check_labels = broken
    try:
        with pytest.raises(QgsProcessingException, match="unexpected ZeroDivisionError in geolabel: division by zero"):
            qgs_processing.run(
                "geolabel:check", {"INPUT": str(SAMPLE / "village_labels.gpkg"), "OUTPUT": str(tmp_path / "qa")}
            )
    finally:
        geolabel.qa.check_labels = original


def test_check_never_replaces_a_folder_it_did_not_write(processing, tmp_path):
    import processing as qgs_processing
    from qgis.core import QgsProcessingException

    project = tmp_path / "project"
    project.mkdir()
    (project / "survey.qgz").write_text("mine")
    params = {"INPUT": str(SAMPLE / "village_labels.gpkg"), "OUTPUT": str(project)}
    with pytest.raises(QgsProcessingException, match="already exists"):
        qgs_processing.run("geolabel:check", params)
    with pytest.raises(QgsProcessingException, match="not a QA report made by geolabel"):
        qgs_processing.run("geolabel:check", {**params, "OVERWRITE": True})
    assert sorted(p.name for p in project.iterdir()) == ["survey.qgz"]
    qa = {"INPUT": str(SAMPLE / "village_labels.gpkg"), "OUTPUT": str(tmp_path / "qa")}
    assert qgs_processing.run("geolabel:check", qa)["ERRORS"] == 4
    assert qgs_processing.run("geolabel:check", {**qa, "OVERWRITE": True})["ERRORS"] == 4  # its own report


def test_memory_filtered_and_multi_layer_inputs_reach_the_engine(processing, tmp_path):
    """Layers that are not a plain file go through a temporary GeoPackage, filter applied."""
    import shutil

    import processing as qgs_processing
    from qgis.core import QgsProject, QgsVectorLayer

    copy = tmp_path / "labels.gpkg"  # QGIS may touch the bytes of a GeoPackage it filters
    shutil.copyfile(SAMPLE / "village_labels.gpkg", copy)
    sample = QgsVectorLayer(str(copy), "sample", "ogr")
    water = QgsVectorLayer(str(copy), "water", "ogr")
    water.setSubsetString("class_name = 'water'")
    from qgis.core import QgsFeatureRequest

    memory = sample.materialize(QgsFeatureRequest().setFilterExpression("class_name = 'building'"))
    # a GeoPackage with two polygon layers: the reference and a shifted copy
    import geopandas as gpd

    frame = gpd.read_file(SAMPLE / "village_labels.gpkg")
    multi = tmp_path / "two.gpkg"
    frame.to_file(multi, layer="reference")
    shifted = frame.copy()
    shifted["geometry"] = shifted.translate(1.0, 0.0)
    shifted.to_file(multi, layer="shifted")
    ref = QgsVectorLayer(f"{multi}|layername=reference", "reference", "ogr")
    sub = QgsVectorLayer(f"{multi}|layername=shifted", "shifted", "ogr")
    for layer in (sample, water, memory, ref, sub):
        assert layer.isValid()
        QgsProject.instance().addMapLayer(layer)
    n_water, n_building = water.featureCount(), memory.featureCount()
    assert 0 < n_water < 136 and 0 < n_building < 136

    qgs_processing.run("geolabel:create_store", {"CRS": "EPSG:32649", "OUTPUT": str(tmp_path / "s.gpkg")})
    imported = qgs_processing.run(
        "geolabel:import_labels", {"STORE": str(tmp_path / "s.gpkg"), "INPUT": [water, memory]}
    )
    assert imported["IMPORTED"] == n_water + n_building  # the filter held; the memory layer was read
    checked = qgs_processing.run("geolabel:check", {"INPUT": water, "OUTPUT": str(tmp_path / "qa")})
    assert json.loads((tmp_path / "qa" / "findings.json").read_text())["features"] == n_water
    assert checked["ERRORS"] == 0
    scored = qgs_processing.run(
        "geolabel:score", {"SUBMISSION": sub, "REFERENCE": ref, "OUTPUT": str(tmp_path / "score.json")}
    )
    assert 0.9 < scored["QUALITY"] < 1.0  # a 1 m shift: both layers of one file were told apart
    for layer in (sample, water, memory, ref, sub):
        QgsProject.instance().removeMapLayer(layer.id())


def test_import_is_one_transaction_and_export_honours_cancel(processing, tmp_path):
    import processing as qgs_processing
    from qgis.core import QgsProcessingException, QgsProcessingFeedback

    from geolabel import tile_raster
    from geolabel.labels.store import open_store

    store = str(tmp_path / "s.gpkg")
    qgs_processing.run("geolabel:create_store", {"CRS": "EPSG:32649", "OUTPUT": store})
    broken = tmp_path / "no_crs.geojson"
    broken.write_text(
        '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"class_name": "water"}, "geometry": {"type": "Polygon", "coordinates": [[[686100, 3120400], [686110, 3120400], [686110, 3120410], [686100, 3120400]]]}}]}'
    )
    with pytest.raises(QgsProcessingException):
        qgs_processing.run(
            "geolabel:import_labels", {"STORE": store, "INPUT": [str(SAMPLE / "village_labels.gpkg"), str(broken)]}
        )
    with open_store(store) as st:
        assert st.count() == 0  # the first layer's 136 labels were not committed alone
    qgs_processing.run("geolabel:import_labels", {"STORE": store, "INPUT": [str(SAMPLE / "village_labels.gpkg")]})

    tiles = tile_raster(SAMPLE / "village.tif", tmp_path / "chips", size=128, workers=1)

    class CancelAt(QgsProcessingFeedback):
        def setProgress(self, value):
            super().setProgress(value)
            if value > 5:
                self.cancel()

    with pytest.raises(QgsProcessingException, match="cancelled"):
        qgs_processing.run(
            "geolabel:export",
            {"STORE": store, "TILES": str(tiles.index_path), "OUTPUT": str(tmp_path / "ds")},
            feedback=CancelAt(),
        )
    assert not (tmp_path / "ds").exists() or not any((tmp_path / "ds").iterdir())  # nothing half-written
    assert not list(tmp_path.glob(".ds*"))  # and no temporary folder left behind


def test_toolbox_groups_names_and_dialog_defaults(processing, tmp_path):
    """The toolbox shows GeoLabel → Imagery/Label store/Quality/Training data (not GeoLabel →
    GeoLabel), names fit the tree, and dialogs default to the store the labeler works on."""
    from qgis.core import QgsApplication, QgsProject, QgsVectorLayer

    provider = QgsApplication.processingRegistry().providerById("geolabel")
    algorithms = provider.algorithms()
    assert {a.group() for a in algorithms} == {"Imagery", "Label store", "Quality", "Suggestions", "Training data"}
    assert max(len(a.displayName()) for a in algorithms) <= 30
    registry = QgsApplication.processingRegistry()
    QgsProject.instance().removeAllMapLayers()
    assert registry.createAlgorithmById("geolabel:check").parameterDefinition("INPUT").defaultValue() is None
    tiles = tile_raster(SAMPLE / "village.tif", tmp_path / "chips", size=512, workers=1)
    grid = QgsVectorLayer(f"{tiles.index_path}|layername=tiles", "Tile index", "ogr")
    other = QgsVectorLayer(str(SAMPLE / "village_labels.gpkg"), "village_labels", "ogr")
    create_store(tmp_path / "labels.gpkg", crs="EPSG:32649").close()
    labels = QgsVectorLayer(f"{tmp_path / 'labels.gpkg'}|layername=labels", "labels", "ogr")
    QgsProject.instance().addMapLayers([grid, other, labels])
    try:
        check = registry.createAlgorithmById("geolabel:check")
        assert check.parameterDefinition("INPUT").defaultValue() == labels.id()
        assert check.parameterDefinition("TILES").defaultValue() == str(tiles.index_path)
        export = registry.createAlgorithmById("geolabel:export")
        assert export.parameterDefinition("STORE").defaultValue() == str(tmp_path / "labels.gpkg")
        assert max(len(check.parameterDefinition(n).description()) for n in ("DONE_ONLY", "OVERWRITE")) <= 40
    finally:
        QgsProject.instance().removeAllMapLayers()


def test_tile_index_loads_as_outlines_and_progress_ends_at_100(processing, tmp_path):
    import processing as qgs_processing
    from qgis.core import QgsProcessingContext, QgsProject
    from qgis.PyQt.QtCore import Qt

    params = {"INPUT": [str(SAMPLE / "village.tif")], "SIZE": 512, "OUTPUT": str(tmp_path / "chips")}
    qgs_processing.run("geolabel:tile", params)
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    feedback = recorder()
    qgs_processing.run("geolabel:tile", params, context=context, feedback=feedback)  # all resumed
    assert feedback.values[-1] == 100
    ((path, details),) = context.layersToLoadOnCompletion().items()
    assert details.name == "Tile index" and details.postProcessor() is not None
    from qgis.core import QgsVectorLayer

    layer = QgsVectorLayer(path, "Tile index", "ogr")
    details.postProcessor().postProcessLayer(layer, context, feedback)
    assert layer.renderer().symbol().symbolLayer(0).brushStyle() == Qt.NoBrush
    assert layer.labelsEnabled() and layer.labeling().settings().fieldName == "tile_id"


def test_dialogs_offer_the_command_lines_choices_defaults_and_limits(processing):
    """One vocabulary: a QGIS user sees the choices, defaults and limits a CLI user sees."""
    import click
    from qgis.core import QgsApplication

    from geolabel import vocabulary as v
    from geolabel.cli import main

    registry = QgsApplication.processingRegistry()
    algorithms = {}  # kept alive: the parameter definitions belong to them

    def dialog(alg, name):
        algorithms.setdefault(alg, registry.createAlgorithmById(f"geolabel:{alg}"))
        return algorithms[alg].parameterDefinition(name)

    def flag(command, name):
        cmd = main.get_command(click.Context(main), command[0])
        for sub in command[1:]:
            cmd = cmd.commands[sub]
        return next(p for p in cmd.params if p.name == name)

    assert dialog("tile", "EDGE").options() == list(flag(["tile"], "edge").type.choices)
    assert dialog("tile", "FORMAT").options() == list(flag(["tile"], "fmt").type.choices)
    assert dialog("tile", "COMPRESS").options()[1:] == list(flag(["tile"], "compress").type.choices)
    assert dialog("tile", "RESAMPLING").options() == list(flag(["tile"], "resampling").type.choices)
    assert dialog("tile", "SIZE").defaultValue() == flag(["tile"], "size").default == v.CHIP_SIZE
    assert dialog("tile", "SIZE").minimum() == v.MIN_CHIP_SIZE
    assert dialog("check", "MIN_AREA").defaultValue() == flag(["check"], "min_area").default
    assert dialog("check", "MIN_WIDTH").defaultValue() == flag(["check"], "min_width").default
    assert dialog("resolve", "MIN_WIDTH").defaultValue() == flag(["labels", "resolve"], "min_width").default
    assert dialog("resolve", "SAME_CLASS").options() == list(flag(["labels", "resolve"], "same_class").type.choices)
    assert dialog("score", "IOU").defaultValue() == flag(["score"], "iou").default
    formats = dialog("export", "FORMATS")
    assert [formats.options()[i] for i in formats.defaultValue()] == flag(["export"], "formats").default.split(",")
    assert formats.options() == list(v.ALL_EXPORT_FORMATS)  # tags offered, not chosen by default
    assert dialog("export", "SPLIT").defaultValue() == flag(["export"], "split").default
    assert dialog("export", "STATUS").options() == list(flag(["labels", "import"], "status").type.choices)
    assert dialog("suggest_classes", "MIN_AREA").defaultValue() == flag(["suggest", "classes"], "min_area").default
    assert dialog("suggest_classes", "SEED").defaultValue() == flag(["suggest", "classes"], "seed").default == v.SEED

"""qgis_process, the model designer, the plugin zip and the README screenshots."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from tests.conftest import ROOT, SAMPLE

QGIS_PROCESS = shutil.which("qgis_process.bin") or "/usr/bin/qgis_process.bin"


def qgis_process_env(tmp_path, plugin_dir):
    # a clean environment: what this QGIS session set (profile paths, prefix) must not leak in
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TMPDIR")}
    site = next((ROOT / ".venv" / "lib").glob("python3*/site-packages"), None)
    env.update(
        QT_QPA_PLATFORM="offscreen",
        HOME=str(tmp_path / "home"),  # a fresh QGIS profile
        GDAL_PAM_ENABLED="NO",  # no .aux.xml files next to the sample rasters
        QGIS_PLUGINPATH=str(plugin_dir),
        PYTHONPATH=os.pathsep.join(p for p in (str(site) if site else "", str(ROOT)) if p),
    )
    (tmp_path / "home").mkdir(exist_ok=True)
    return env


@pytest.mark.skipif(not os.path.exists(QGIS_PROCESS), reason="qgis_process (Debian package qgis) is not installed")
def test_qgis_process_lists_and_runs_the_algorithms(tmp_path, plugin_dir):
    env = qgis_process_env(tmp_path, plugin_dir)
    # exit 1 only means "already enabled"; the listing below is what counts
    subprocess.run([QGIS_PROCESS, "plugins", "enable", "geolabel_qgis"], env=env, capture_output=True)
    listing = subprocess.run([QGIS_PROCESS, "list"], env=env, check=True, capture_output=True, text=True).stdout
    for alg in ("tile", "create_store", "import_labels", "resolve", "check", "score", "export"):
        assert f"geolabel:{alg}" in listing
    run = subprocess.run(
        [
            QGIS_PROCESS,
            "--json",
            "run",
            "geolabel:tile",
            "--",
            f"INPUT={SAMPLE / 'naip_northdakota_2020.tif'}",
            "SIZE=256",
            "EDGE=1",
            f"OUTPUT={tmp_path / 'chips'}",
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    results = json.loads(run.stdout)["results"]
    assert results["CHIPS"] == 12 and results["INDEX"].endswith("tiles.gpkg")
    import rasterio

    with rasterio.open(SAMPLE / "naip_northdakota_2020.tif") as src:
        full = src.read()
    chips = sorted((tmp_path / "chips" / "naip_northdakota_2020").glob("*.tif"))
    with rasterio.open(chips[-1]) as chip:  # the shifted bottom-right chip ends at the scene edge
        np.testing.assert_array_equal(chip.read(), full[:, -256:, -256:])

    # the whole labeling path in the QGIS binary itself: there QGIS's own GEOS, GDAL and
    # PROJ are loaded first and their symbols are global, unlike in a Python process
    def run(alg, *params):
        done = subprocess.run(
            [QGIS_PROCESS, "--json", "run", f"geolabel:{alg}", "--", *params], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        return json.loads(done.stdout)["results"]

    store = tmp_path / "labels.gpkg"
    village = run("tile", f"INPUT={SAMPLE / 'village.tif'}", "SIZE=512", f"OUTPUT={tmp_path / 'village'}")
    run("create_store", "CRS=EPSG:32649", f"OUTPUT={store}")
    imported = run(
        "import_labels", f"STORE={store}", f"INPUT={SAMPLE / 'village_labels.gpkg'}", "LABELER=li", "TEAM=hunan"
    )
    assert imported["IMPORTED"] == 136
    assert run("resolve", f"STORE={store}", "MIN_AREA=1")["CUT"] == 4
    checked = run("check", f"INPUT={store}", f"TILES={village['INDEX']}", f"OUTPUT={tmp_path / 'qa'}")
    assert checked["ERRORS"] == 0 and checked["COMPLETENESS"] == pytest.approx(1.0)
    scored = run(
        "score", f"SUBMISSION={store}", f"REFERENCE={SAMPLE / 'village_labels.gpkg'}", f"OUTPUT={tmp_path / 's.json'}"
    )
    assert scored["QUALITY"] > 0.99
    exported = run("export", f"STORE={store}", f"TILES={village['INDEX']}", "FORMATS=0,2", f"OUTPUT={tmp_path / 'ds'}")
    assert exported["TILES_EXPORTED"] == 16
    summary = json.loads((tmp_path / "ds" / "summary.json").read_text())
    assert sum(summary["split"]["tiles"].values()) == 16


def test_algorithms_run_in_batch_mode(processing, tmp_path):
    """Batch mode: a fresh instance of the algorithm per row, each with its own parameters."""
    from qgis.core import QgsApplication, QgsProcessingAlgorithm, QgsProcessingContext, QgsProcessingFeedback

    registry = QgsApplication.processingRegistry()
    for alg in registry.providerById("geolabel").algorithms():
        assert alg.flags() & QgsProcessingAlgorithm.FlagSupportsBatch, alg.id()
        assert alg.flags() & QgsProcessingAlgorithm.FlagCanCancel, alg.id()
    rows = [
        {"INPUT": [str(SAMPLE / "village.tif")], "SIZE": 512, "OUTPUT": str(tmp_path / "a")},
        {"INPUT": [str(SAMPLE / "naip_northdakota_2020.tif")], "SIZE": 300, "EDGE": 2, "OUTPUT": str(tmp_path / "b")},
    ]
    results = []
    for params in rows:
        alg = registry.createAlgorithmById("geolabel:tile")
        context, feedback = QgsProcessingContext(), QgsProcessingFeedback()
        ok, _ = alg.checkParameterValues(params, context)
        assert ok
        result, ok = alg.run(params, context, feedback)
        assert ok, feedback.textLog()
        results.append(result)
    assert [r["CHIPS"] for r in results] == [16, 6]  # NAIP 934 x 723 px: 3 x 2 whole 300 px chips, edges dropped
    assert len(list((tmp_path / "b" / "naip_northdakota_2020").glob("*.tif"))) == 6


def test_algorithms_chain_in_a_processing_model(processing, tmp_path):
    from qgis.core import (
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelChildParameterSource,
        QgsProcessingModelOutput,
    )

    model = QgsProcessingModelAlgorithm("label store from a delivery", "GeoLabel")
    create = QgsProcessingModelChildAlgorithm("geolabel:create_store")
    create.setChildId("create")
    create.addParameterSources("CRS", [QgsProcessingModelChildParameterSource.fromStaticValue("EPSG:32649")])
    create.addParameterSources(
        "OUTPUT", [QgsProcessingModelChildParameterSource.fromStaticValue(str(tmp_path / "model.gpkg"))]
    )
    model.addChildAlgorithm(create)
    load = QgsProcessingModelChildAlgorithm("geolabel:import_labels")
    load.setChildId("import")
    load.addParameterSources("STORE", [QgsProcessingModelChildParameterSource.fromChildOutput("create", "OUTPUT")])
    load.addParameterSources(
        "INPUT", [QgsProcessingModelChildParameterSource.fromStaticValue([str(SAMPLE / "village_labels.gpkg")])]
    )
    load.addParameterSources("TEAM", [QgsProcessingModelChildParameterSource.fromStaticValue("hunan")])
    output = QgsProcessingModelOutput("imported", "Imported")
    output.setChildOutputName("IMPORTED")
    output.setChildId("import")
    load.setModelOutputs({"imported": output})
    model.addChildAlgorithm(load)
    import processing

    results = processing.run(model, {})
    assert results["import:imported"] == 136
    from geolabel.labels.store import open_store

    with open_store(tmp_path / "model.gpkg") as store:
        assert store.count() == 136 and set(store.query().team) == {"hunan"}


def test_plugin_zip_has_one_top_level_folder(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "qgis_plugin" / "package.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
    assert {n.split("/")[0] for n in names} == {"geolabel_qgis"}
    for required in (
        "metadata.txt",
        "__init__.py",
        "plugin.py",
        "icon.png",
        "LICENSE",
        "processing/provider.py",
        "gui/dock.py",
    ):
        assert f"geolabel_qgis/{required}" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    # the engine travels as a wheel; the missing-engine message installs exactly that file
    (wheel,) = [n for n in names if n.startswith("geolabel_qgis/wheels/") and n.endswith(".whl")]
    assert wheel.endswith("geolabel-0.1.0-py3-none-any.whl")
    with zipfile.ZipFile(out) as zf:
        zf.extractall(tmp_path / "plugins")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(tmp_path / "site"),
            tmp_path / "plugins" / wheel,
        ],
        check=True,
        capture_output=True,
    )
    probe = "import geolabel, geolabel.cli, geolabel.qa; print(geolabel.__file__)"
    where = subprocess.run(
        [sys.executable, "-c", probe],
        env=dict(os.environ, PYTHONPATH=str(tmp_path / "site")),
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert where.startswith(str(tmp_path / "site"))
    assert not (ROOT / "build").exists()  # the wheel build left nothing in the checkout

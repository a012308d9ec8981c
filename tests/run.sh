#!/usr/bin/env bash
# Install everything (Debian packages incl. QGIS, the pinned Python stack) and run all checks:
# ruff, mypy and the whole pytest suite (engine tests, CLI tests, tests inside headless QGIS).
# Extra arguments go to pytest, e.g. `bash tests/run.sh -k tiling`.
set -euo pipefail
cd "$(dirname "$0")/.."
.ci/setup.sh --dev
export QT_QPA_PLATFORM=offscreen
echo "== ruff"
.venv/bin/ruff check geolabel tests bench sample_data qgis_plugin docs
.venv/bin/ruff format --check geolabel tests bench sample_data qgis_plugin docs
echo "== mypy"
.venv/bin/mypy
echo "== pytest (engine, CLI, benchmarks' helpers)"
.venv/bin/python -m pytest "$@" || [ $? -eq 5 ]
echo "== pytest inside QGIS $(/usr/bin/python3 -c 'import qgis.core as q; print(q.Qgis.QGIS_VERSION)' 2>/dev/null) (plugin, Processing, dock, qgis_process)"
# exit code 5 = every test deselected by the extra arguments (e.g. `-k tiling`): not a failure
.venv/bin/python -m pytest tests/qgis -o addopts="-ra -p no:cacheprovider" --qgis_disable_gui "$@" || [ $? -eq 5 ]

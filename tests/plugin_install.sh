#!/usr/bin/env bash
# The README's "Use in QGIS -> Install" steps for Debian 12, run exactly as a QGIS user
# runs them (keep the two in step), then the plugin from its zip in a fresh QGIS profile:
# qgis_process runs geolabel:tile and geolabel:check on the sample data and the outputs
# are read back. Then the README's Teams install (psycopg for QGIS's Python, built against
# Debian's libpq) and a PostGIS server: qgis_process imports the sample labels into a
# PostGIS store, read back through the engine. `tests/fresh_machine.sh --plugin` runs this as root in a fresh Debian root
# that has nothing but what this script installs.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
export DEBIAN_FRONTEND=noninteractive

echo "== what a QGIS user already has: Debian's QGIS"
apt-get update -qq
apt-get install -y -qq --no-install-recommends qgis python3-qgis qgis-providers >/dev/null

echo "== README step 1: install the engine into QGIS's Python"
apt-get install -y -qq python3-pip libproj-dev proj-bin python3-dev gcc >/dev/null
python3 -m pip install --user --break-system-packages "cython==3.0.12" setuptools wheel
python3 -m pip install --user --break-system-packages --no-build-isolation --no-binary pyproj "pyproj==3.6.1"
python3 -m pip install --user --break-system-packages -c .ci/constraints.txt .

echo "== README step 2: build the plugin zip"
zip=$(python3 qgis_plugin/package.py)
echo "$zip"

echo "== README step 3: install the zip into a QGIS profile and enable it"
plugins="$HOME/.local/share/QGIS/QGIS3/profiles/default/python/plugins"
mkdir -p "$plugins"
python3 -m zipfile -e "$zip" "$plugins/"
export QT_QPA_PLATFORM=offscreen
qgis_process.bin plugins enable geolabel_qgis >/dev/null 2>&1 || true # exit 1: already enabled
qgis_process.bin list | grep "geolabel:"

echo "== qgis_process runs the plugin's algorithms"
out=/root/plugin-check
rm -rf "$out"
qgis_process.bin --json run geolabel:tile -- INPUT="$repo/sample_data/village.tif" SIZE=512 OUTPUT="$out/chips" \
  >"$out.tile.json"
qgis_process.bin --json run geolabel:check -- INPUT="$repo/sample_data/village_labels.gpkg" \
  TILES="$out/chips/tiles.gpkg" OUTPUT="$out/qa" >"$out.check.json"
python3 - "$out" <<'EOF'
import json
import sys
from pathlib import Path

import fiona
import rasterio

out = Path(sys.argv[1])
tile = json.loads(Path(f"{out}.tile.json").read_text())["results"]
chips = sorted((out / "chips" / "village").glob("*.tif"))
assert tile["CHIPS"] == len(chips) == 16, (tile, len(chips))
with rasterio.open(chips[0]) as chip:
    assert chip.crs.to_epsg() == 32649 and chip.width == chip.height == 512, chip.profile
check = json.loads(Path(f"{out}.check.json").read_text())["results"]
with fiona.open(out / "qa" / "findings.gpkg", layer="findings_polygons") as layer:
    overlaps = sum(f.properties["type"] == "overlap" for f in layer)
assert (out / "qa" / "report.html").exists() and overlaps == 4, (check, overlaps)
print(f"plugin install: OK: {len(chips)} chips in EPSG:32649, check found the {overlaps} pond/field overlaps")
EOF

echo "== README Teams -> Install: psycopg for QGIS's Python, against Debian's libpq"
apt-get install -y -qq libpq-dev gcc python3-dev >/dev/null
python3 -m pip install --user --break-system-packages --no-binary psycopg-c "psycopg[c]==3.3.9"

echo "== a PostGIS server (Debian's packages) and a project on it"
apt-get install -y -qq --no-install-recommends postgresql-15-postgis-3 >/dev/null
pg=$(mktemp -d /tmp/plugin-pg.XXXXXX)
trap 'python3 -m tests.pgserver stop "$pg"' EXIT
url=$(python3 -m tests.pgserver start "$pg")
store="$url?schema=plugin_check"
python3 -m geolabel labels init "$store" --crs EPSG:32649
qgis_process.bin --json run geolabel:import_labels -- STORE="$store" \
  INPUT="$repo/sample_data/village_labels.gpkg" >"$out.pg.json"
python3 - "$store" <<'EOF'
import sys

import psycopg

from geolabel.labels import open_store

with open_store(sys.argv[1]) as store:
    n, history = store.count(), len(store.history())
assert psycopg.pq.__impl__ == "c" and n == history == 136, (psycopg.pq.__impl__, n, history)
print(f"plugin install: OK: qgis_process imported {n} labels into PostGIS (psycopg {psycopg.pq.__impl__}, libpq {psycopg.pq.version()})")
EOF

#!/usr/bin/env bash
# The main job on the bundled sample data, on a fresh Debian 12 / Ubuntu machine:
# installs geolabel into ./.venv (see .ci/setup.sh), then cuts the village scene and the
# real NAIP scene into 512 px georeferenced chips, and says where everything is.
#   bash sample_data/run_demo.sh [OUT_DIR]      (default: out/demo)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-out/demo}"
.ci/setup.sh
GL=.venv/bin/geolabel

echo "== 1. tile the scenes into 512 px chips (edge chips shifted inside; skip chips over half nodata)"
$GL tile sample_data/village.tif sample_data/naip_northdakota_2020.tif \
  --out "$OUT/chips" --size 512 --edge shift --max-nodata 0.5

echo
echo "Outputs:"
echo "  chips:       $OUT/chips/village/*.tif, $OUT/chips/naip_northdakota_2020/*.tif"
echo "  tile index:  $OUT/chips/tiles.gpkg (layers 'tiles' and 'skipped_tiles'; open it in QGIS)"

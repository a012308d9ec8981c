#!/usr/bin/env bash
# The main job on the bundled sample data, on a fresh Debian 12 / Ubuntu machine:
# installs geolabel into ./.venv (see .ci/setup.sh), cuts the village scene and the real
# NAIP scene into 512 px georeferenced chips, imports the village's land-cover labels into
# a label store, resolves their overlaps, prints per-class areas, checks them, exports a training set
# with spatial splits, and says where everything is.
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
echo "== 2. create a label store and import the village's land-cover polygons"
$GL labels init "$OUT/labels.gpkg" --crs EPSG:32649 --overwrite > /dev/null
$GL labels import "$OUT/labels.gpkg" sample_data/village_labels.gpkg --labeler sample --team demo

echo
echo "== 3. resolve overlaps (ponds drawn on fields are cut out of the fields)"
$GL labels resolve "$OUT/labels.gpkg" --min-area 1

echo
echo "== 4. per-class areas"
$GL labels stats "$OUT/labels.gpkg"

echo
echo "== 5. quality control of the resolved labels (exit 0: no errors)"
$GL check "$OUT/labels.gpkg" --out "$OUT/qa" --overwrite -q

echo
echo "== 6. export a training set: GeoJSON per chip, COCO, class masks, STAC, spatial train/val/test splits"
$GL export "$OUT/labels.gpkg" --tiles "$OUT/chips/tiles.gpkg" --out "$OUT/dataset" --overwrite --seed 1

echo
echo "Outputs:"
echo "  chips:       $OUT/chips/village/*.tif, $OUT/chips/naip_northdakota_2020/*.tif"
echo "  tile index:  $OUT/chips/tiles.gpkg (layers 'tiles' and 'skipped_tiles'; open it in QGIS)"
echo "  labels:      $OUT/labels.gpkg (layer 'labels', resolved; open it in QGIS)"
echo "  QA report:   $OUT/qa/report.html (findings.gpkg styled for QGIS, findings.json)"
echo "  dataset:     $OUT/dataset/ (labels/geojson, labels/geojson_px, labels/masks, coco/, stac/catalog.json,"
echo "               images/, summary.json, manifest.json)"

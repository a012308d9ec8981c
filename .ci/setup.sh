#!/usr/bin/env bash
# Install what geolabel needs on Debian 12 / Ubuntu, idempotently, into ./.venv.
#   .ci/setup.sh          engine only (for the sample-data demo)
#   .ci/setup.sh --dev    engine + test tools + QGIS 3.22 with qgis_process (Debian packages) + GDAL tools
# The venv is made from Debian's /usr/bin/python3 with --system-site-packages so the
# same environment can import QGIS (python3-qgis); pinned versions in
# .ci/constraints.txt keep numpy at Debian's 1.24 (see ../shared/QGIS_TESTING.md).
set -euo pipefail
cd "$(dirname "$0")/.."
DEV=0
[ "${1:-}" = "--dev" ] && DEV=1

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# libproj-dev: pyproj is built against Debian's PROJ, the one QGIS links, so the engine
# and QGIS never load two PROJ libraries into one process (that crashes QGIS on exit).
apt_pkgs=(python3 python3-venv python3-pip python3-dev gcc libproj-dev proj-bin)
if [ "$DEV" = 1 ]; then
  apt_pkgs+=(python3-qgis qgis-providers qgis gdal-bin fonts-wqy-microhei)
fi
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=/usr/bin/python3
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv from $PY" >&2
  $PY -m venv --system-site-packages .venv
fi

extras=""
[ "$DEV" = 1 ] && extras="[dev]"
stamp=".venv/.geolabel-installed-$DEV-$(cat pyproject.toml .ci/constraints.txt | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  echo "setup: installing Python packages into .venv (pinned by .ci/constraints.txt)" >&2
  log=.venv/pip-install.log
  pip=(.venv/bin/python -m pip install --disable-pip-version-check -c .ci/constraints.txt)
  # pyproj is compiled against Debian's PROJ 9.1 (see libproj-dev above) with Cython 3.0
  if ! { .venv/bin/python -m pip install --disable-pip-version-check --upgrade "pip>=23" &&
         "${pip[@]}" "cython==3.0.12" setuptools wheel numpy &&
         "${pip[@]}" --no-build-isolation --no-binary pyproj pyproj &&
         "${pip[@]}" -e ".${extras}"; } >"$log" 2>&1; then
    tail -30 "$log" >&2
    echo "setup: pip install failed; full log in $log" >&2
    exit 1
  fi
  .venv/bin/python -c "import geolabel, rasterio, shapely, geopandas, pyogrio" # fail loudly if broken
  rm -f .venv/.geolabel-installed-"$DEV"-*
  touch "$stamp"
fi

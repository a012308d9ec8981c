#!/usr/bin/env bash
# Install what geolabel needs on Debian 12 / Ubuntu, idempotently, into ./.venv.
#   .ci/setup.sh          engine only (for the sample-data demo)
#   .ci/setup.sh --dev    engine + test tools + QGIS 3.22 with qgis_process (Debian packages) + GDAL tools
#                         + PostgreSQL 15 with PostGIS (the tests' throwaway server) + psycopg
# The venv is made from Debian's /usr/bin/python3 (the interpreter QGIS 3.22 runs) with
# --system-site-packages, so the same environment can import QGIS (python3-qgis). Facts
# this relies on (measured on Debian 12 with QGIS 3.22.16):
# - Unpinned pip pulls numpy 2, which shadows Debian's numpy 1.24 and breaks QGIS's GDAL
#   bindings (`from osgeo import gdal_array`: "_ARRAY_API not found"); .ci/constraints.txt
#   keeps numpy==1.24.2 and picks engine dependencies that support it.
# - affine 3 beside Debian's attrs 22.2 fails on any transform ("No '__dict__' attribute on
#   'Affine' instance"): the constraints pin a newer attrs.
# - pyproj is built from source against Debian's PROJ 9.1, the PROJ QGIS links: a pyproj
#   wheel brings a second PROJ into QGIS's process. The build runs the `proj` program to
#   find PROJ, which only the proj-bin package installs (libproj-dev does not).
# - Never set PROJ_DATA/PROJ_LIB to /usr/share/proj for the rasterio/fiona wheels: their
#   own PROJ rejects Debian's older proj.db.
# - psycopg (PostGIS stores, extra [postgis]) is psycopg's C implementation (psycopg-c)
#   built from source against Debian's libpq, the libpq QGIS's PostgreSQL provider loads:
#   psycopg-binary's wheel bundles a second libpq (and its own OpenSSL) into QGIS's process,
#   as a pyproj wheel would a second PROJ. The build runs pg_config, which libpq-dev installs.
#   The plain engine install needs neither PostgreSQL nor psycopg.
set -euo pipefail
cd "$(dirname "$0")/.."
DEV=0
[ "${1:-}" = "--dev" ] && DEV=1

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# libproj-dev + proj-bin: pyproj is built against Debian's PROJ, the one QGIS links, so the
# engine and QGIS never load two PROJ libraries into one process (that crashes QGIS on exit).
apt_pkgs=(python3 python3-venv python3-pip python3-dev gcc libproj-dev proj-bin)
if [ "$DEV" = 1 ]; then
  # xvfb, xdotool, imagemagick: the desktop test (tests/desktop) drives the real QGIS window
  apt_pkgs+=(python3-qgis qgis-providers qgis gdal-bin fonts-wqy-microhei xvfb xdotool imagemagick)
  # postgresql-15-postgis-3: the tests' throwaway PostGIS server (tests/pgserver.py);
  # libpq-dev: psycopg-c is compiled against Debian's libpq, the one QGIS loads
  apt_pkgs+=(postgresql-15-postgis-3 libpq-dev)
fi
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  if ! { $SUDO apt-get update -qq &&
         DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }; then
    echo "setup: could not install the Debian packages above. Check that apt works (apt-get update)" >&2
    echo "setup: and that you are root or may use sudo, then run this command again." >&2
    exit 1
  fi
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
         "${pip[@]}" --no-binary psycopg-c -e ".${extras}"; } >"$log" 2>&1; then
    tail -30 "$log" >&2
    echo "setup: pip install failed; full log in $log" >&2
    if grep -q "proj executable not found" "$log"; then
      echo "setup: pyproj's build did not find the proj program: install proj-bin (apt-get install proj-bin) and rerun" >&2
    elif grep -q "pg_config" "$log"; then
      echo "setup: psycopg-c's build did not find pg_config: install libpq-dev (apt-get install libpq-dev) and rerun" >&2
    else
      echo "setup: pyproj is built from source: it needs gcc, python3-dev, libproj-dev and proj-bin. If those are" >&2
      echo "setup: installed, check that pip reaches PyPI (pip download numpy), then run this command again." >&2
    fi
    exit 1
  fi
  .venv/bin/python -c "import geolabel, rasterio, shapely, geopandas, pyogrio" # fail loudly if broken
  if [ "$DEV" = 1 ]; then  # psycopg's C implementation, not its pure-Python fallback
    .venv/bin/python -c "import psycopg; assert psycopg.pq.__impl__ == 'c', psycopg.pq.__impl__"
  fi
  rm -f .venv/.geolabel-installed-"$DEV"-*
  touch "$stamp"
fi

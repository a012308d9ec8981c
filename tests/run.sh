#!/usr/bin/env bash
# Install everything (Debian packages incl. QGIS, the pinned Python stack) and run all checks:
# ruff, mypy and the whole pytest suite (engine tests, CLI tests, tests inside headless QGIS, the
# real QGIS desktop under Xvfb).
# Every part runs even when an earlier one fails; the summary at the end lists each part's
# result, and the exit code is non-zero if any part failed.
# Extra arguments go to pytest, e.g. `bash tests/run.sh -k tiling`.
# One throwaway PostgreSQL/PostGIS server (tests/pgserver.py) serves every pytest part
# (GEOLABEL_TEST_PG); it is stopped and deleted at the end, also after a failure or Ctrl-C.
# A server that cannot start is a failed part with its reason, never skipped tests.
set -uo pipefail
cd "$(dirname "$0")/.."
.ci/setup.sh --dev || exit 1
export QT_QPA_PLATFORM=offscreen

results=()
failed=0
part() {  # part NAME COMMAND...: run one part, remember how it ended
  local name=$1 t0 rc
  shift
  echo "== $name"
  t0=$(date +%s)
  "$@"
  rc=$?
  if [ "$rc" -eq 5 ] && [ "$1" = pytest_part ]; then rc=0; fi  # 5: every test deselected by -k
  results+=("$(printf '%-40s %s (%s s)' "$name" "$([ "$rc" -eq 0 ] && echo passed || echo "FAILED, exit $rc")" "$(($(date +%s) - t0))")")
  [ "$rc" -eq 0 ] || failed=1
}
pytest_part() { .venv/bin/python -m pytest "$@"; }
lint() {
  local dirs=(geolabel tests bench sample_data qgis_plugin)
  .venv/bin/ruff check "${dirs[@]}" && .venv/bin/ruff format --check "${dirs[@]}"
}

pg_dir=$(mktemp -d "${TMPDIR:-/tmp}/geolabel-pg.XXXXXX") || exit 1
stop_pg_server() { .venv/bin/python -m tests.pgserver stop "$pg_dir"; }
trap stop_pg_server EXIT
trap 'exit 130' INT TERM  # through the EXIT trap
pg_reason=""
pg_server() {  # start the server, export its superuser URL; its reason when it cannot start
  local url
  if ! url=$(.venv/bin/python -m tests.pgserver start "$pg_dir" 2>"$pg_dir.err"); then
    pg_reason=$(tail -c 300 "$pg_dir.err" | tr '\n' ' ')
    echo "$pg_reason" >&2
    rm -f "$pg_dir.err"
    return 1
  fi
  rm -f "$pg_dir.err"
  export GEOLABEL_TEST_PG=$url
  echo "PostgreSQL/PostGIS test server: $url"
}

qgis_version=$(/usr/bin/python3 -c 'import qgis.core as q; print(q.Qgis.QGIS_VERSION)' 2>/dev/null)
part "PostgreSQL/PostGIS test server" pg_server
[ -z "$pg_reason" ] || results+=("  $pg_reason")
part "ruff" lint
part "mypy" .venv/bin/mypy
part "pytest (engine, CLI)" pytest_part "$@"
part "pytest inside QGIS ${qgis_version:-?}" pytest_part tests/qgis -o addopts="-ra -p no:cacheprovider" --qgis_disable_gui "$@"
# the real QGIS main window under Xvfb (its own display; QT_QPA_PLATFORM is not passed on)
GEOLABEL_DESKTOP_REQUIRED=1 part "QGIS desktop (Xvfb)" pytest_part tests/desktop -o addopts="-ra -p no:cacheprovider -p no:pytest_qgis" "$@"

echo
echo "== summary"
printf '  %s\n' "${results[@]}"
exit $failed

"""The real QGIS desktop: the plugin installed from its zip into a scratch profile, the labeling
dock driven like a labeler (real map clicks and key presses through the X server) in the QGIS
main window under Xvfb, by ``drive.py`` running inside QGIS.

QGIS runs once per session (about half a minute); each check the driver records is a test
of its own here, so the report lists exactly which behaviours fail. Screenshots of the last
run stay in ``out/desktop/`` (git-ignored); with ``GEOLABEL_SCREENSHOTS=DIR`` the README's
screenshots are written to DIR too (``docs/`` to update them).

Run: ``.venv/bin/python -m pytest tests/desktop -p no:pytest_qgis`` (tests/run.sh does).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_data"
LAST_RUN = ROOT / "out" / "desktop"  # /out/ is git-ignored
PLUGIN = "geolabel_qgis"
#: What the driver records, in the order it walks (see drive.py).
CHECKS = [
    "setup",
    "open_tiles_shows_tile",
    "digitize",
    "live_count",
    "check_keeps_editing",
    "findings_text",
    "zoom_to_finding",
    "attribute_form",
    "no_shortcut_conflicts",
    "tooltips_name_keys",
    "keys_palette",
    "keys_tiles",
    "key_mark_done",
    "key_check_now",
    "toolbox_groups",
    "check_dialog",
    "tile_dialog",
    "quit_without_prompt",
]
QGIS_TIMEOUT = 150  # s for the whole QGIS session
QUIT_LIMIT = 20  # s from the exit action to the end of the process
LABELER = "desktop-tester"
WATER = 1  # drawn as a pond on a field: an overlap across classes the check must find

TOOLS = ("qgis", "Xvfb", "xdotool", "import")
missing_tools = [t for t in TOOLS if shutil.which(t) is None]
#: tests/run.sh sets it: after its setup the tools are there, so a missing one fails, never skips
REQUIRED = os.environ.get("GEOLABEL_DESKTOP_REQUIRED") == "1"
pytestmark = pytest.mark.skipif(
    bool(missing_tools) and not REQUIRED,
    reason=f"needs {missing_tools} (.ci/setup.sh --dev installs qgis xvfb xdotool imagemagick)",
)


def free_display():
    for n in range(77, 200):
        if not Path(f"/tmp/.X{n}-lock").exists() and not Path(f"/tmp/.X11-unix/X{n}").exists():
            return n
    raise RuntimeError("no free X display between :77 and :199")


def start_xvfb():
    """Xvfb on a free display; returns (process, display number)."""
    for _ in range(5):
        n = free_display()
        proc = subprocess.Popen(
            ["Xvfb", f":{n}", "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            if Path(f"/tmp/.X11-unix/X{n}").exists():
                return proc, n
            time.sleep(0.05)
        stop(proc)  # lost a race for the display, or it did not start
    raise RuntimeError("Xvfb did not start")


def stop(proc, grace=5.0):
    """End a process this module started (by its PID)."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def install_plugin(home: Path, dist: Path):
    """The plugin zip (as users install it) unzipped into the profile, and enabled there."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "qgis_plugin" / "package.py"), "--out", str(dist)],
        check=True,
        capture_output=True,
        text=True,
    )
    zip_path = Path(out.stdout.strip().splitlines()[-1])
    profile = home / ".local/share/QGIS/QGIS3/profiles/default"
    plugins = profile / "python" / "plugins"
    plugins.mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(plugins)
    assert (plugins / PLUGIN / "metadata.txt").is_file(), f"{zip_path} has no {PLUGIN}/ folder"
    (profile / "QGIS").mkdir()
    (profile / "QGIS" / "QGIS3.ini").write_text(
        f"[PythonPlugins]\n{PLUGIN}=true\n\n[core]\nNewsFeed\\httpsfeedqgisorg\\disabled=true\n", encoding="utf-8"
    )


def prepare_data(work: Path, store_at):
    """The sample scene, its 512 px tile index, a store with the sample labels (at
    ``store_at``: a .gpkg path or a PostGIS location), and a pond to draw on a field of the
    first tile (inside it, in map coordinates)."""
    import shapely

    from geolabel import tile_raster
    from geolabel.labels.importer import import_labels
    from geolabel.labels.store import create_store
    from geolabel.tileindex import load_chips

    raster = work / "village.tif"
    shutil.copyfile(SAMPLE / "village.tif", raster)
    tiles = tile_raster(raster, work / "chips", size=512, workers=1)
    with create_store(store_at, crs="EPSG:32649") as store:
        import_labels(store, [SAMPLE / "village_labels.gpkg"], labeler="sample", team="demo")
        labels = store.query()
    first = shapely.box(*load_chips(tiles.index_path)[0].footprint.bounds).buffer(-20)
    fields = labels[(labels.class_name == "farmland") & labels.intersects(first)]
    assert len(fields), "no field in the first tile"
    field = max(fields.geometry.intersection(first), key=lambda g: g.area)
    centre = field.buffer(-5).representative_point()
    for half in (14, 10, 7, 5, 3):
        pond = shapely.Polygon(
            [
                (centre.x - half, centre.y - half),
                (centre.x + half, centre.y - half * 0.8),
                (centre.x + half * 0.9, centre.y + half),
                (centre.x - half * 0.8, centre.y + half * 0.9),
            ]
        )
        if field.contains(pond):
            break
    else:
        raise AssertionError("no room for a pond in the field")
    return raster, tiles.index_path, store_at, [list(p) for p in pond.exterior.coords[:-1]]


@pytest.fixture(scope="module", params=["gpkg", "postgis"])
def desktop(request):
    """Run the driver in real QGIS once per store backend (a GeoPackage, then a PostGIS
    store on the test server, read by QGIS's postgres provider); returns {check name:
    [records]}, the log and timings. The README's screenshots come from the GeoPackage run."""
    postgis = request.param == "postgis"
    # Not under /tmp or QGIS's TMPDIR: QGIS calls layers there temporary and asks on quit.
    scratch = Path(tempfile.mkdtemp(prefix="geolabel-desktop-", dir="/var/tmp"))
    work, home, tmp, runtime, run = (scratch / d for d in ("work", "home", "tmp", "runtime", "run"))
    for d in (work, home, tmp, runtime, run):
        d.mkdir(mode=0o700)
    docs_shots = None if postgis else os.environ.get("GEOLABEL_SCREENSHOTS")
    last_run = LAST_RUN.with_name(LAST_RUN.name + "-postgis") if postgis else LAST_RUN
    if docs_shots:
        Path(docs_shots).mkdir(parents=True, exist_ok=True)
    xvfb = qgis = None
    t0 = time.monotonic()
    try:
        install_plugin(home, scratch / "dist")
        if postgis:
            from tests.conftest import new_pg_location

            store_at = new_pg_location(request.getfixturevalue("pg_database"), "desktop")
        else:
            store_at = work / "labels.gpkg"
        raster, tiles, store, pond = prepare_data(work, store_at)
        results, log = run / "results.json", run / "messages.jsonl"
        config = {
            "results": str(results),
            "log": str(log),
            "shots": str(run),
            "docs_shots": str(Path(docs_shots).resolve()) if docs_shots else None,
            "raster": str(raster),
            "tiles": str(tiles),
            "store": str(store),
            "tile_out": str(work / "tiled"),
            "polygon": pond,
            "class_code": WATER,
            "labeler": LABELER,
        }
        (scratch / "config.json").write_text(json.dumps(config), encoding="utf-8")
        xvfb, display = start_xvfb()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("QT_", "QGIS_", "PYTHON"))}
        env.update(
            HOME=str(home),
            TMPDIR=str(tmp),
            XDG_RUNTIME_DIR=str(runtime),
            DISPLAY=f":{display}",
            PYTHONPATH=f"{ROOT}:{ROOT}/.venv/lib/python3.11/site-packages",
            GEOLABEL_DESKTOP_CONFIG=str(scratch / "config.json"),
            GDAL_PAM_ENABLED="NO",
            LANG="C.UTF-8",
            LC_ALL="C.UTF-8",
        )
        with open(run / "qgis-output.txt", "wb") as output:
            qgis = subprocess.Popen(
                ["qgis", "--nologo", "--noversioncheck", "--code", str(ROOT / "tests/desktop/drive.py")],
                env=env,
                cwd=work,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
            try:
                rc = qgis.wait(QGIS_TIMEOUT)
            except subprocess.TimeoutExpired:
                rc = None
                stop(qgis)
            ended = time.time()
        stop(xvfb)
        keep_last_run(run, last_run)  # concurrent runs write to scratch folders of their own
        data = json.loads(results.read_text(encoding="utf-8")) if results.exists() else {"checks": []}
        messages = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()] if log.exists() else []
        records = {}
        for check in data["checks"]:
            records.setdefault(check["name"], []).append(check)
        yield {
            "records": records,
            "rc": rc,
            "current": data.get("current"),
            "quit_seconds": ended - data["quit_started"] if "quit_started" in data else None,
            "messages": messages,
            "last_run": last_run,
        }
    finally:
        stop(qgis)
        stop(xvfb)
        if not os.environ.get("GEOLABEL_DESKTOP_KEEP"):
            shutil.rmtree(scratch, ignore_errors=True)
        shots = ", ".join(sorted(p.name for p in last_run.glob("*.png")))
        say(
            request,
            f"QGIS desktop run ({request.param}): {time.monotonic() - t0:.0f} s; screenshots in {last_run}/ ({shots})"
            + (f"; README screenshots in {docs_shots}" if docs_shots else ""),
        )


def keep_last_run(run: Path, last_run: Path):
    """The screenshots, results, message log and QGIS output of this run in out/desktop[-postgis]/."""
    shutil.rmtree(last_run, ignore_errors=True)
    shutil.copytree(run, last_run)


def say(request, line):
    """A line on the terminal, past pytest's output capture."""
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line("\n" + line)


@pytest.mark.parametrize("name", CHECKS)
def test_labeler_path(desktop, name):
    records = desktop["records"].get(name)
    assert records, (
        f"{name}: not recorded (the driver was in step {desktop['current']!r}; QGIS exit code {desktop['rc']}, "
        f"see {desktop['last_run']}/qgis-output.txt)"
    )
    failed = [r["details"] for r in records if not r["ok"]]
    assert not failed, f"{name}:\n" + "\n".join(failed)


def test_qgis_quits_cleanly_and_quickly(desktop):
    assert desktop["rc"] == 0, f"QGIS exit code {desktop['rc']} (None: killed after {QGIS_TIMEOUT} s)"
    assert desktop["quit_seconds"] is not None, "the driver never reached the quit step"
    assert desktop["quit_seconds"] < QUIT_LIMIT, f"QGIS took {desktop['quit_seconds']:.1f} s to quit"


def test_message_log_has_no_python_errors(desktop):
    errors = [
        m
        for m in desktop["messages"]
        if m["tag"] == "Python error" or "Traceback" in m["message"] or (m["level"] == 2 and m["tag"] == "GeoLabel")
    ]
    assert not errors, "QGIS message log:\n" + "\n".join(f"[{m['tag']}] {m['message']}" for m in errors)


def test_every_check_the_driver_records_is_asserted(desktop):
    """The driver and CHECKS name the checks apart: a check missing here would go unasserted."""
    assert sorted(set(desktop["records"]) - set(CHECKS)) == []

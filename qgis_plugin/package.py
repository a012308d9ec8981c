"""Build an installable plugin zip: ``python qgis_plugin/package.py [--out dist]``.

The zip holds a single top-level folder ``geolabel_qgis/`` (the plugin's name in QGIS; it
must differ from the engine package ``geolabel``, which the plugin imports), with the
engine built as a wheel in ``geolabel_qgis/wheels/``: when the engine is missing, the
plugin shows the one pip command that installs exactly that wheel.
"""

from __future__ import annotations

import argparse
import configparser
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLUGIN_NAME = "geolabel_qgis"
SKIP = {"__pycache__", "package.py", "wheels"}


def engine_wheel(work: Path) -> Path:
    """Build the engine (this repository) as a pure-Python wheel, without dependencies."""
    build_dir = HERE.parent / "build"  # setuptools' scratch folder; leave no trace of it
    had_build_dir = build_dir.exists()
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(work)]
    try:
        subprocess.run([*cmd, str(HERE.parent)], check=True, capture_output=True, text=True)
    finally:
        if not had_build_dir:
            shutil.rmtree(build_dir, ignore_errors=True)
    (wheel,) = work.glob("geolabel-*.whl")
    return wheel


def build(out_dir: Path) -> Path:
    meta = configparser.ConfigParser()
    meta.read(HERE / "metadata.txt")
    version = meta["general"]["version"]
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{PLUGIN_NAME}-{version}.zip"
    tmp = target.with_suffix(".zip.tmp")
    with tempfile.TemporaryDirectory() as work, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        wheel = engine_wheel(Path(work))
        zf.write(wheel, f"{PLUGIN_NAME}/wheels/{wheel.name}")
        for path in sorted(HERE.rglob("*")):
            rel = path.relative_to(HERE)
            if path.is_dir() or SKIP & set(rel.parts) or path.suffix == ".pyc":
                continue
            zf.write(path, f"{PLUGIN_NAME}/{rel.as_posix()}")
    tmp.replace(target)
    return target


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(HERE.parent / "dist"), help="output folder (default: dist/)")
    print(build(Path(parser.parse_args().out)))

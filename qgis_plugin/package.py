"""Build an installable plugin zip: ``python qgis_plugin/package.py [--out dist]``.

The zip holds a single top-level folder ``geolabel_qgis/`` (the plugin's name in QGIS; it
must differ from the engine package ``geolabel``, which the plugin imports).
"""

from __future__ import annotations

import argparse
import configparser
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLUGIN_NAME = "geolabel_qgis"
SKIP = {"__pycache__", "package.py"}


def build(out_dir: Path) -> Path:
    meta = configparser.ConfigParser()
    meta.read(HERE / "metadata.txt")
    version = meta["general"]["version"]
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{PLUGIN_NAME}-{version}.zip"
    tmp = target.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
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

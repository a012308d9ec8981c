"""Helpers that describe what a run left on disk (chips, index status, datasets), shared by
the interruption and kill tests."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import fiona


def dead_pid() -> int:
    """The id of a process that has ended (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def index_status(path: Path) -> str:
    with fiona.open(path, layer="tiles") as src:
        return src.tags()["GEOLABEL_STATUS"]


def chip_bytes(folder: Path) -> dict[str, str]:
    """sha256 of every chip (hidden temporaries left out)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("[!.]*.tif"))}


def identity(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_ino, st.st_mtime_ns


def dataset_state(folder: Path) -> dict[str, str]:
    """sha256 of every file, JSON files with their timestamps blanked."""
    stamp = re.compile(rb'"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[^"]*"')
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            if p.suffix == ".json":
                data = stamp.sub(b'"<time>"', data)
                if p.name == "manifest.json":  # the checksums of JSON files include their timestamps
                    doc = json.loads(data)
                    doc["files"] = {k: v for k, v in doc["files"].items() if not k.endswith(".json")}
                    data = json.dumps(doc, sort_keys=True).encode()
            out[str(p.relative_to(folder))] = hashlib.sha256(data).hexdigest()
    return out

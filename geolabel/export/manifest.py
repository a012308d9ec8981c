"""Checksummed files, the dataset's ``summary.json`` and its ``manifest.json``."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from geolabel.export import layout


def sha256_file(path: Path) -> tuple[str, int]:
    """The sha256 and size of a file."""
    import hashlib

    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def write_json(path: Path, doc: Any) -> tuple[str, int]:
    """Write ``doc`` as compact UTF-8 JSON (numpy coordinate arrays included); return its
    sha256 and size. The whole dataset folder is renamed into place at the end, so single
    files need no temporary names of their own."""
    import hashlib

    import orjson

    data = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    with open(path, "wb") as fh:
        fh.write(data)
    return hashlib.sha256(data).hexdigest(), len(data)


def write_summary(folder: Path, summary: Mapping[str, Any]) -> str:
    """Write ``summary.json``; returns its relative path."""
    (folder / layout.SUMMARY).write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return layout.SUMMARY


def write_manifest(folder: Path, checksums: Iterable[Mapping[str, tuple[str, int]]], more_files: Iterable[str]) -> int:
    """Write ``manifest.json``: the sha256 and size of every file, from the ``checksums``
    the tile writers reported and by reading ``more_files``. Returns the number of files
    of the dataset, the manifest included."""
    files: dict[str, tuple[str, int]] = {}
    for tile_checksums in checksums:
        files.update(tile_checksums)
    for rel in more_files:
        files[rel] = sha256_file(folder / rel)
    manifest = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "generator": "geolabel",
        "files": {rel: {"sha256": h, "bytes": n} for rel, (h, n) in sorted(files.items())},
    }
    (folder / layout.MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return len(files) + 1

"""Checksummed files, the dataset's ``summary.json`` and its ``manifest.json``."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping, Sequence
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


class BackgroundHashes:
    """The sha256 and size of files, computed in a thread for as long as it is let run.

    An export starts it on the chips while it reads the labels (a core is idle then) and
    stops it before its workers start; they hash what is left. ``hashlib`` releases the
    GIL while it hashes, so the reading goes on at full speed.
    """

    def __init__(self, paths: Sequence[str]) -> None:
        self._paths = list(paths)
        self._done: dict[str, tuple[str, int]] = {}
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="geolabel-hashes", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for path in self._paths:
            if self._stopping.is_set():
                return
            try:
                self._done[path] = sha256_file(Path(path))
            except OSError:  # the worker that links the file hashes it again and reports
                return

    def stop(self) -> dict[str, tuple[str, int]]:
        """Stop after the file in hand; the files hashed so far, by path."""
        self._stopping.set()
        self._thread.join()
        return dict(self._done)


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

"""A :class:`~geolabel.qa.incremental.CheckState` saved in a report folder and read back.

The folder may come from elsewhere, so nothing in it is executed: the file is a NumPy
``.npz`` read with ``allow_pickle=False``, holding a JSON document (numbers, strings,
digests in hex) and the geometries as WKB in one byte array. Reading validates the
shape of every part; a state that does not read (damaged, foreign, another version)
is None with the reason, and the check then starts over.

>>> import tempfile, shapely
>>> from geolabel.labels.store import create_store
>>> from geolabel.qa import load_delivery
>>> from geolabel.qa.incremental import check_changed
>>> folder = tempfile.mkdtemp()
>>> store = create_store(f"{folder}/labels.gpkg", crs="EPSG:32649")
>>> _ = store.add_geometries([shapely.box(0, 0, 10, 10)], class_codes=[2]); store.close()
>>> _, state = check_changed(load_delivery(f"{folder}/labels.gpkg"), None, workers=1)
>>> save_check_state(state, folder)
>>> again, note = load_check_state(folder)
>>> sorted(again.labels) == sorted(state.labels), note
(True, None)
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from geolabel.qa.findings import Finding
from geolabel.qa.incremental import CheckState, LabelState
from geolabel.qa.partition import CellGrid

#: The state's file in a report folder.
STATE_NAME = "check_state.npz"
FORMAT = "geolabel-check-state/2"


def save_check_state(state: CheckState, folder: str | Path) -> None:
    """Write ``state`` into ``folder`` (replacing the file at once)."""
    from geolabel.files import atomic_file

    blobs = _Blobs()
    doc = _document(state, blobs)
    buffer = io.BytesIO()
    np.savez(buffer, doc=np.frombuffer(json.dumps(doc).encode(), dtype=np.uint8), **blobs.arrays())
    with atomic_file(Path(folder) / STATE_NAME) as tmp:
        tmp.write_bytes(buffer.getvalue())


def load_check_state(folder: str | Path, **options: Any) -> tuple[CheckState | None, str | None]:
    """(the state saved in ``folder``, None) or (None, why it cannot be used); its options
    are taken as ``options`` (those of :func:`~geolabel.qa.check_labels`) when they were
    the same, so :func:`~geolabel.qa.incremental.check_changed` can compare them."""
    from geolabel.qa.check import check_options

    path = Path(folder) / STATE_NAME
    if not path.is_file():
        return None, f"no saved check state in {folder}"
    try:
        with np.load(path, allow_pickle=False) as data:
            doc = json.loads(bytes(data["doc"]).decode())
            blobs = _Blobs.read(data["wkb"], data["offsets"])
        state = _state(doc, blobs)
    except Exception as exc:  # whatever a damaged or foreign file raises: the check starts over
        return None, f"the saved check state in {folder} is unusable ({type(exc).__name__}: {exc})"
    opts = check_options(**options)
    state.options = opts if doc["options"] == plain_options(opts) else {"saved": doc["options"]}
    return state, None


def plain_options(opts: dict[str, Any]) -> str:
    """The options as comparable text (a CRS as WKT, paths as text)."""

    def text(value: Any) -> Any:
        return value.to_wkt() if hasattr(value, "to_wkt") else str(value)

    return json.dumps(opts, default=text, sort_keys=True)


class _Blobs:
    """WKB geometries in one byte array, referred to by position."""

    def __init__(self, items: list[bytes] | None = None) -> None:
        self.items = items or []

    def add(self, wkb: bytes | None) -> int:
        if wkb is None:
            return -1
        self.items.append(bytes(wkb))
        return len(self.items) - 1

    def geom(self, geom: Any) -> int:
        import shapely

        return -1 if geom is None else self.add(shapely.to_wkb(geom))

    def arrays(self) -> dict[str, Any]:
        sizes = np.array([len(b) for b in self.items], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        return {"wkb": np.frombuffer(b"".join(self.items), dtype=np.uint8), "offsets": offsets}

    @classmethod
    def read(cls, wkb: Any, offsets: Any) -> _Blobs:
        _expect(wkb.dtype == np.uint8 and offsets.dtype == np.int64 and offsets.ndim == 1, "geometry arrays")
        _expect(offsets[0] == 0 and offsets[-1] == len(wkb) and bool(np.all(np.diff(offsets) >= 0)), "offsets")
        raw = wkb.tobytes()
        return cls([raw[a:b] for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())])

    def wkb(self, k: int) -> bytes | None:
        _expect(isinstance(k, int) and -1 <= k < len(self.items), "geometry reference")
        return None if k == -1 else self.items[k]

    def shape(self, k: int) -> Any:
        import shapely

        wkb = self.wkb(k)
        return None if wkb is None else shapely.from_wkb(wkb)


def _expect(ok: bool, what: str) -> None:
    if not ok:
        raise ValueError(f"bad {what}")


def _document(state: CheckState, blobs: _Blobs) -> dict[str, Any]:
    grid = state.grid
    return {
        "format": FORMAT,
        "options": plain_options(state.options),
        "source": state.source,
        "crs_wkt": state.crs_wkt,
        "metric_wkt": state.metric_wkt,
        "labels": {i: _label_doc(s, blobs) for i, s in state.labels.items()},
        "file_findings": [_tagged_doc(t, blobs) for t in state.file_findings],
        "pairs": [[a, b, *_finding_doc(f, blobs)] for (a, b), f in state.pairs.items()],
        "grid": None if grid is None else [grid.x0, grid.y0, grid.size, grid.nx, grid.ny],
        "region": blobs.add(state.region_wkb),
        "cells": [
            [ix, iy, [blobs.add(c) for c in closed], [[n, blobs.add(b)] for n, b in border]]
            for (ix, iy), (closed, border) in state.cells.items()
        ],
        "regions": [blobs.geom(r) for r in state.regions],
        "regions_key": state.regions_key,
        "how": state.how,
        "merged": [[key.hex(), blobs.add(wkb)] for key, wkb in state.merged.items()],
    }


def _label_doc(s: LabelState, blobs: _Blobs) -> list[Any]:
    bounds = None if s.bounds is None else [float(b) for b in s.bounds]
    return [s.signature.hex(), [_tagged_doc(t, blobs) for t in s.findings], blobs.geom(s.geom), s.area, bounds]


def _tagged_doc(tagged: tuple[Any, Finding], blobs: _Blobs) -> list[Any]:
    key, f = tagged
    return [list(key), *_finding_doc(f, blobs)]


def _finding_doc(f: Finding, blobs: _Blobs) -> list[Any]:
    return [f.type, f.severity, list(f.feature_ids), f.message, blobs.geom(f.geometry), f.area_m2, f.class_name]


def _state(doc: dict[str, Any], blobs: _Blobs) -> CheckState:
    _expect(doc.get("format") == FORMAT, "format")
    grid = doc["grid"]
    _expect(grid is None or (len(grid) == 5 and all(isinstance(v, (int, float)) for v in grid)), "cell grid")
    return CheckState(
        options={},
        source=_text(doc["source"]),
        crs_wkt=_text_or_none(doc["crs_wkt"]),
        metric_wkt=_text_or_none(doc["metric_wkt"]),
        labels={_text(i): _label(v, blobs) for i, v in doc["labels"].items()},
        file_findings=[_tagged(t, blobs) for t in doc["file_findings"]],
        pairs={(_text(a), _text(b)): _finding(rest, blobs) for a, b, *rest in doc["pairs"]},
        grid=None
        if grid is None
        else CellGrid(float(grid[0]), float(grid[1]), float(grid[2]), int(grid[3]), int(grid[4])),
        region_wkb=blobs.wkb(doc["region"]),
        cells={
            (_int(ix), _int(iy)): ([_wkb(blobs, c) for c in closed], [(_int(n), _wkb(blobs, b)) for n, b in border])
            for ix, iy, closed, border in doc["cells"]
        },
        regions=(blobs.shape(doc["regions"][0]), blobs.shape(doc["regions"][1])),
        regions_key=_tuples(doc["regions_key"]),
        how=_text(doc["how"]),
        merged={bytes.fromhex(_text(key)): _wkb(blobs, k) for key, k in doc.get("merged", [])},
    )


def _label(v: list[Any], blobs: _Blobs) -> LabelState:
    signature, findings, geom, area, bounds = v
    _expect(bounds is None or (len(bounds) == 4 and all(isinstance(b, (int, float)) for b in bounds)), "bounds")
    return LabelState(
        bytes.fromhex(_text(signature)),
        [_tagged(t, blobs) for t in findings],
        blobs.shape(geom),
        float(area),
        None if bounds is None else np.array(bounds, dtype=float),
    )


def _tagged(v: list[Any], blobs: _Blobs) -> tuple[Any, Finding]:
    key, *rest = v
    _expect(len(key) == 4 and all(isinstance(k, int) for k in key), "finding key")
    return tuple(key), _finding(rest, blobs)


def _finding(v: list[Any], blobs: _Blobs) -> Finding:
    type_, severity, ids, message, geom, area, class_name = v
    return Finding(
        _text(type_), _text(severity), [_text(i) for i in ids], _text(message), blobs.shape(geom),
        None if area is None else float(area), _text_or_none(class_name),
    )  # fmt: skip


def _wkb(blobs: _Blobs, k: int) -> bytes:
    wkb = blobs.wkb(k)
    _expect(wkb is not None, "gap piece")
    assert wkb is not None
    return wkb


def _text(value: Any) -> str:
    _expect(isinstance(value, str), "text")
    return str(value)


def _text_or_none(value: Any) -> str | None:
    return None if value is None else _text(value)


def _int(value: Any) -> int:
    _expect(isinstance(value, int) and not isinstance(value, bool), "integer")
    return int(value)


def _tuples(value: Any) -> Any:
    """JSON's lists back to the tuples the state compares."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value

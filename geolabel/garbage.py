"""Python's cyclic garbage collector, run less often while geolabel builds large results.

A check of 50,000 labels creates millions of objects (findings, their geometries and
messages) that all live until the report is written. Each full collection walks every
live object, so the default thresholds made the collector take a third of such a check
(a full check inside QGIS: 6.5 s with the defaults, 4.1 s with these). Reference counting
still frees everything else at once; cycles are collected too, only later.

The thresholds are process-wide: the command line sets them for its whole run; the engine
raises them only for the duration of its large jobs (:func:`fewer_collections`), since it
also runs inside QGIS, and puts back what it found when the last such job ends. It then
collects once: the objects the job left alive are due for a full collection, which would
otherwise fall on whatever runs next (the dock's next "Check now" took 1.6 s instead of
0.9 s when it did).

>>> import gc
>>> before = gc.get_threshold()
>>> with fewer_collections():
...     gc.get_threshold()[0] >= THRESHOLDS[0]
True
>>> gc.get_threshold() == before
True
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: Allocations between young collections, and how many of those make an older one.
THRESHOLDS = (50_000, 20, 100)

_lock = threading.Lock()
_active = 0
_saved: tuple[int, int, int] | None = None  # the thresholds found, when they were raised
#: What :func:`keep_to_exit` keeps; the list refers to itself (see there).
_kept: list[Any] = []
_kept.append(_kept)
_keeping = False


@contextmanager
def fewer_collections() -> Iterator[None]:
    """The collector at :data:`THRESHOLDS` (unless it already runs less often) inside the
    block; jobs on several threads share it, and the last one out restores the thresholds."""
    global _active, _saved
    with _lock:
        if _active == 0 and gc.get_threshold()[0] < THRESHOLDS[0]:
            _saved = gc.get_threshold()
            gc.set_threshold(*THRESHOLDS)
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            restore = _saved if _active == 0 else None
            if _active == 0:
                _saved = None
        if restore is not None:
            gc.set_threshold(*restore)
            gc.collect()


def keep_from_now() -> None:
    """Called by the ``geolabel`` program as it starts (not when the CLI runs inside
    Python: tests, click's runner): from now on :func:`keep_to_exit` keeps what it gets."""
    global _keeping
    _keeping = True


def keep_to_exit(*objects: Any) -> None:
    """Keep ``objects`` until the process ends, when the ``geolabel`` program runs (else
    nothing): the operating system takes the memory back at once, where Python would free
    them object by object as the command returns (a check's 105,969 findings and their
    geometries: 0.3 to 0.4 s after the report was written). The list holding them refers
    to itself and is frozen at exit with everything else (:mod:`geolabel.cli`), so neither
    reference counting nor Python's last collection frees it. For plain data only: no
    open file or connection."""
    if _keeping:
        _kept.extend(objects)

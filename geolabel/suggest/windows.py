"""Window arithmetic for streaming a scene: pure functions on pixel boxes, no I/O.

A box is ``(col_off, row_off, width, height)`` in the scene's pixel grid. Windows
partition the scene (or the part of it a limit covers); each is read with a margin so
that neighbourhood operations (morphology) see the same pixels whatever the window size.
:func:`run_windows` runs a task per window as one batch.

>>> scene_windows(5, 3, size=2)
[(0, 0, 2, 2), (2, 0, 2, 2), (4, 0, 1, 2), (0, 2, 2, 1), (2, 2, 2, 1), (4, 2, 1, 1)]
>>> with_margin((2, 0, 2, 2), margin=1, width=5, height=3)
(1, 0, 4, 3)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

Box = tuple[int, int, int, int]


def scene_windows(
    width: int, height: int, *, size: int, limit: tuple[float, float, float, float] | None = None
) -> list[Box]:
    """Windows of ``size`` pixels partitioning a ``width`` x ``height`` scene, row by row;
    with ``limit`` (pixel bounds ``col_min, row_min, col_max, row_max``) only those that
    overlap it."""
    if size < 1:
        raise ValueError(f"window size must be at least 1 pixel, got {size}")
    boxes = [
        (col, row, min(size, width - col), min(size, height - row))
        for row in range(0, height, size)
        for col in range(0, width, size)
    ]
    if limit is None:
        return boxes
    c0, r0, c1, r1 = limit
    return [b for b in boxes if b[0] < c1 and b[0] + b[2] > c0 and b[1] < r1 and b[1] + b[3] > r0]


def with_margin(box: Box, *, margin: int, width: int, height: int) -> Box:
    """``box`` grown by ``margin`` pixels on every side, within the scene."""
    col, row, w, h = box
    c0, r0 = max(0, col - margin), max(0, row - margin)
    c1, r1 = min(width, col + w + margin), min(height, row + h + margin)
    return (c0, r0, c1 - c0, r1 - r0)


def pixel_limit(bounds: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """Bounds in pixel coordinates widened to whole pixels (the ``limit`` of :func:`scene_windows`).

    >>> pixel_limit((0.5, 1.2, 3.1, 4.0))
    (0, 1, 4, 4)
    """
    c0, r0, c1, r1 = bounds
    return (math.floor(c0), math.floor(r0), math.ceil(c1), math.ceil(r1))


def run_windows(
    fn: Callable[[Box], Any],
    boxes: list[Box],
    *,
    span: tuple[float, float],
    executor: Executor | None,
    workers: int | None,
    progress: Callable[[float], None] | None,
    is_cancelled: Callable[[], bool] | None = None,
) -> list[Any]:
    """``fn`` over ``boxes`` as one batch (:func:`geolabel.parallel.run_batch`); results in
    window order; progress reported within ``span``; ``is_cancelled`` stops it between
    windows."""
    from geolabel.parallel import run_batch

    results: dict[Box, Any] = {}

    def collect(box: Box, result: Any) -> None:
        results[box] = result
        if progress is not None:
            progress(span[0] + (span[1] - span[0]) * len(results) / len(boxes))

    run_batch(fn, boxes, on_result=collect, executor=executor, workers=workers, is_cancelled=is_cancelled)
    return [results[box] for box in boxes]

"""Tile grid arithmetic: where chips go in a scene. Pure functions, no I/O.

A grid cuts a ``width`` x ``height`` pixel scene into square chips of ``size`` pixels
that step by ``stride = size - overlap``. What happens at the right and bottom edges,
where the last chip would stick out of the scene, is the *edge policy*:

``pad``
    keep the overhanging chip; the part outside the scene is filled with nodata.
``shift``
    move the last row/column of chips inward so it ends exactly at the scene edge
    (it then overlaps its neighbour more than ``overlap``). A scene smaller than one
    chip cannot be shifted and is padded instead.
``drop``
    leave out chips that would stick out; the right/bottom margin is not covered.

Row and column numbers count chips (not pixels) from the top-left and are the basis of
stable tile ids: the same grid gives the same ids on every run.

>>> grid = TileGrid(width=1000, height=600, size=512, overlap=0, edge="pad")
>>> grid.shape
(2, 2)
>>> [t.col_off for t in grid.tiles() if t.row == 0]
[0, 512]
>>> TileGrid(width=1000, height=600, size=512, edge="shift").col_offsets
(0, 488)
>>> TileGrid(width=1000, height=600, size=512, edge="drop").shape
(1, 1)
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from geolabel.errors import InputError, check_choice
from geolabel.vocabulary import EDGES

EDGE_POLICIES = EDGES


def pixel_corners(transform: Sequence[float], width: int, height: int) -> list[tuple[float, float]]:
    """The four corners of a ``width`` x ``height`` pixel grid under an affine ``transform``
    (a, b, c, d, e, f), clockwise from the top-left."""
    a, b, c, d, e, f = transform[:6]
    return [
        (c + a * col + b * row, f + d * col + e * row)
        for col, row in ((0, 0), (width, 0), (width, height), (0, height))
    ]


def axis_offsets(length: int, size: int, stride: int, edge: str) -> tuple[int, ...]:
    """Offsets (in pixels) of the chips along one axis of ``length`` pixels.

    >>> axis_offsets(1000, 512, 512, "pad")
    (0, 512)
    >>> axis_offsets(1000, 512, 384, "shift")
    (0, 384, 488)
    >>> axis_offsets(1000, 512, 512, "drop")
    (0,)
    """
    if length <= 0:
        raise InputError(f"the scene has no pixels along one axis (length {length})")
    if edge == "drop":
        if length < size:
            return ()
        return tuple(k * stride for k in range((length - size) // stride + 1))
    if length <= size:
        return (0,)
    n = math.ceil((length - size) / stride) + 1
    offsets = [k * stride for k in range(n)]
    if edge == "shift":
        offsets[-1] = length - size
    return tuple(offsets)


@dataclass(frozen=True)
class Tile:
    """One chip of a grid: its grid position and its pixel window in the scene.

    ``row_off``/``col_off`` are the scene pixel offsets of the chip's top-left corner;
    ``height``/``width`` are the chip's size. The chip may extend past the scene edge
    (``pad`` policy); :attr:`valid_height`/:attr:`valid_width` say how much lies inside.
    """

    row: int
    col: int
    row_off: int
    col_off: int
    height: int
    width: int
    valid_height: int
    valid_width: int

    @property
    def is_partial(self) -> bool:
        """True when part of the chip lies outside the scene (it needs padding)."""
        return self.valid_height < self.height or self.valid_width < self.width


@dataclass(frozen=True)
class TileGrid:
    """A regular grid of square chips over a ``width`` x ``height`` pixel scene."""

    width: int
    height: int
    size: int
    overlap: int = 0
    edge: str = "pad"

    def __post_init__(self) -> None:
        check_choice(self.edge, EDGE_POLICIES, "edge policy")
        if self.size < 1:
            raise InputError(f"chip size must be a positive number of pixels; got {self.size}")
        if self.overlap < 0:
            raise InputError(f"overlap must be 0 or more pixels; got {self.overlap}")
        if self.overlap >= self.size:
            raise InputError(f"overlap ({self.overlap} px) must be smaller than the chip size ({self.size} px)")
        if self.width < 1 or self.height < 1:
            raise InputError(f"the scene has no pixels ({self.width} x {self.height})")

    @property
    def stride(self) -> int:
        """Distance in pixels between the origins of neighbouring chips."""
        return self.size - self.overlap

    @property
    def col_offsets(self) -> tuple[int, ...]:
        return axis_offsets(self.width, self.size, self.stride, self.edge)

    @property
    def row_offsets(self) -> tuple[int, ...]:
        return axis_offsets(self.height, self.size, self.stride, self.edge)

    @property
    def shape(self) -> tuple[int, int]:
        """Number of chip rows and columns."""
        return len(self.row_offsets), len(self.col_offsets)

    def __len__(self) -> int:
        rows, cols = self.shape
        return rows * cols

    def tiles(self) -> Iterator[Tile]:
        """Chips in row-major order (top row first, left to right)."""
        cols = self.col_offsets
        for row, row_off in enumerate(self.row_offsets):
            valid_h = min(self.size, self.height - row_off)
            for col, col_off in enumerate(cols):
                valid_w = min(self.size, self.width - col_off)
                yield Tile(row, col, row_off, col_off, self.size, self.size, valid_h, valid_w)


_UNSAFE = re.compile(r"[^\w.-]+")  # \w keeps letters of every script (水体, Ärzte)


def safe_name(name: str) -> str:
    """A file-system and id friendly version of a scene name (``my scene.tif`` -> ``my_scene``)."""
    cleaned = _UNSAFE.sub("_", name).strip("_.")
    return cleaned or "scene"


def tile_id(scene: str, row: int, col: int, *, digits: int = 3) -> str:
    """Stable, readable id of a chip: ``<scene>_r<row>_c<col>``, zero-padded to ``digits``
    (at least 3; more for grids of 1000+ rows or columns, so ids sort in grid order).

    >>> tile_id("village", 2, 11)
    'village_r002_c011'
    """
    return f"{scene}_r{row:0{digits}d}_c{col:0{digits}d}"

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from geolabel.errors import InputError
from geolabel.grid import TileGrid, axis_offsets, safe_name, tile_id


@pytest.mark.parametrize(
    ("length", "size", "overlap", "edge", "expected"),
    [
        (1024, 512, 0, "pad", (0, 512)),
        (1000, 512, 0, "pad", (0, 512)),
        (1025, 512, 0, "pad", (0, 512, 1024)),
        (1000, 512, 0, "shift", (0, 488)),
        (1000, 512, 0, "drop", (0,)),
        (1000, 256, 64, "pad", (0, 192, 384, 576, 768)),
        (1000, 256, 64, "shift", (0, 192, 384, 576, 744)),
        (1000, 256, 64, "drop", (0, 192, 384, 576)),
        (300, 512, 0, "pad", (0,)),
        (300, 512, 0, "shift", (0,)),
        (300, 512, 0, "drop", ()),
        (512, 512, 0, "drop", (0,)),
    ],
)
def test_axis_offsets_for_each_edge_policy(length, size, overlap, edge, expected):
    assert axis_offsets(length, size, size - overlap, edge) == expected


def test_grid_counts_and_partial_edge_tiles():
    grid = TileGrid(width=1000, height=700, size=256, overlap=0, edge="pad")
    assert grid.shape == (3, 4)
    tiles = list(grid.tiles())
    assert len(tiles) == len(grid) == 12
    last = tiles[-1]
    assert (last.row, last.col, last.row_off, last.col_off) == (2, 3, 512, 768)
    assert (last.valid_height, last.valid_width) == (700 - 512, 1000 - 768)
    assert last.is_partial and not tiles[0].is_partial


@pytest.mark.parametrize(("size", "overlap"), [(256, 256), (256, 300), (0, 0), (256, -1)])
def test_impossible_size_or_overlap_is_refused(size, overlap):
    with pytest.raises(InputError, match="overlap|size"):
        TileGrid(width=1000, height=1000, size=size, overlap=overlap)


def test_unknown_edge_policy_lists_the_allowed_ones():
    with pytest.raises(InputError, match="pad, shift, drop"):
        TileGrid(width=10, height=10, size=4, edge="wrap")


def test_tile_ids_are_readable_and_stable():
    assert tile_id("village", 0, 7) == "village_r000_c007"
    ids1 = [tile_id("s", t.row, t.col) for t in TileGrid(width=900, height=900, size=256).tiles()]
    ids2 = [tile_id("s", t.row, t.col) for t in TileGrid(width=900, height=900, size=256).tiles()]
    assert ids1 == ids2 and len(set(ids1)) == 16


def test_safe_name_makes_file_friendly_scene_names():
    assert safe_name("my scene (2).tif") == "my_scene_2_.tif"
    assert safe_name("...") == "scene"


@given(
    length=st.integers(1, 5000),
    size=st.integers(1, 1024),
    overlap_frac=st.floats(0, 0.95),
    edge=st.sampled_from(["pad", "shift", "drop"]),
)
def test_grid_invariants(length, size, overlap_frac, edge):
    overlap = min(int(size * overlap_frac), size - 1)
    stride = size - overlap
    offsets = axis_offsets(length, size, stride, edge)
    assert list(offsets) == sorted(set(offsets)), "offsets strictly increase"
    if edge in ("pad", "shift"):
        assert offsets[0] == 0
        assert offsets[-1] + size >= length, "every pixel is covered"
        gaps = [b - a for a, b in zip(offsets, offsets[1:])]
        assert all(g <= stride for g in gaps), "no gap larger than the stride"
    if edge == "shift" and length >= size:
        assert offsets[-1] + size == length, "shifted chips end exactly at the edge"
    if edge == "drop":
        assert all(o + size <= length for o in offsets), "dropped grids never overhang"
        assert len(offsets) == (0 if length < size else (length - size) // stride + 1)
    if edge == "pad":
        assert all(o % stride == 0 for o in offsets)
        assert offsets[-1] < max(length - overlap, 1), "no chip starts inside the previous chip's overlap only"

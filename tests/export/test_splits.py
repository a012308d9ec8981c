"""Spatial splits: neighbours that only share an edge never count as a leak, whatever the
floating point rounding of their coordinates; real overlaps and the guard distance do."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from geolabel import tile_raster
from geolabel.export import export_dataset
from geolabel.export.splits import PixelBox, leaks, spatial_split
from geolabel.labels.store import create_store
from geolabel.tileindex import load_chips

from ..conftest import BACKENDS, REAL, location_on

ELKTON = REAL / "rasterframes_landsat8_elkton_naip" / "L8-B4_3_2-Elkton-VA.tiff"
FRACTIONS = {"train": 0.6, "val": 0.2, "test": 0.2}


@pytest.fixture(scope="module", params=BACKENDS)
def elkton(request, tmp_path_factory):
    """The real Landsat 8 scene (186 x 169 px of 29.906 m) in 64 px chips: 3 x 3, padded; an
    empty store on each backend: (folder, tiles, store location)."""
    root = tmp_path_factory.mktemp("elkton")
    tiles = tile_raster(ELKTON, root / "chips", size=64, workers=1)
    location = location_on(request.param, root, request)
    create_store(location, crs="EPSG:32617").close()
    return root, tiles, location


def test_the_real_scenes_neighbouring_chips_overlap_by_float_rounding(elkton):
    """The premise of the next test: geometrically, neighbours overlap by an ulp."""
    _, tiles, _ = elkton
    chips = {c.tile_id: c for c in load_chips(tiles.index_path)}
    left = chips["L8-B4_3_2-Elkton-VA_r000_c001"].footprint
    right = chips["L8-B4_3_2-Elkton-VA_r000_c002"].footprint
    assert shapely.relate_pattern(left, right, "T********")  # interiors meet
    assert shapely.intersection(left, right).area < 1e-6  # by a sliver, not a pixel


@pytest.mark.filterwarnings("ignore::geolabel.errors.EmptySplitWarning")  # few chips, three splits
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_every_chip_of_the_real_scene_is_exported_whatever_the_seed(elkton, seed):
    root, tiles, location = elkton
    out = root / f"ds{seed}"
    result = export_dataset(
        location, tiles.index_path, out, formats="geojson", split="0.6,0.2,0.2", seed=seed, workers=1
    )
    assert result.excluded_tiles == []
    assert sum(result.tiles.values()) == 9
    images = sorted(p.stem for p in (out / "images").rglob("*.tif"))
    assert images == sorted(c.tile_id for c in tiles.chips) and len(images) == 9
    assert len(result.tiles) >= 2  # the neighbours really are in different splits


def _grid(cols: int, rows: int, *, pixel: float, size: int, overlap: int = 0, x0: float = 707000.0):
    """Chips of one grid whose origins are computed like a tiler's (origin + col * pixel)."""
    step = size - overlap
    boxes, footprints = [], []
    for r in range(rows):
        for c in range(cols):
            transform = (pixel, 0.0, x0 + c * step * pixel, 0.0, -pixel, 4254601.867 - r * step * pixel)
            boxes.append(PixelBox.of("EPSG:32617", transform, r * step, c * step, size, size))
            a, _, x, _, e, y = transform
            footprints.append(shapely.box(x, y + e * size, x + a * size, y))
    return footprints, boxes


def _forced_ulp_overlap(footprints):
    """Move every chip's left and top edge one ulp into its neighbour."""
    out = []
    for fp in footprints:
        x0, y0, x1, y1 = fp.bounds
        out.append(shapely.box(np.nextafter(x0, -np.inf), y0, x1, np.nextafter(y1, np.inf)))
    return out


@pytest.mark.parametrize("with_boxes", ["same grid", "other grids", "no boxes"])
def test_chips_that_share_an_edge_by_an_ulp_are_never_a_leak(with_boxes):
    footprints, boxes = _grid(6, 6, pixel=29.906, size=64)
    footprints = _forced_ulp_overlap(footprints)
    assert shapely.relate_pattern(footprints[0], footprints[1], "T********")  # the rounding is there
    pixel_boxes: list[PixelBox] | None = boxes
    if with_boxes == "other grids":  # e.g. two scenes: decided by geometry, with a pixel tolerance
        pixel_boxes = [PixelBox((k,), 0, 0, 64, 64) for k in range(len(boxes))]
    elif with_boxes == "no boxes":
        pixel_boxes = None
    for seed in range(1, 11):
        result = spatial_split(
            footprints, fractions=FRACTIONS, block_size=64 * 29.906, seed=seed, pixel_boxes=pixel_boxes
        )
        assert result.excluded == [], seed
        assert len(set(result.splits)) == 3
        assert leaks(footprints, result.splits, pixel_boxes=pixel_boxes) == []


@pytest.mark.filterwarnings("ignore::geolabel.errors.EmptySplitWarning")  # few chips, three splits
@pytest.mark.parametrize("with_boxes", ["same grid", "other grids"])
def test_chips_that_overlap_by_one_pixel_in_different_splits_are_a_leak(with_boxes):
    footprints, boxes = _grid(6, 6, pixel=29.906, size=64, overlap=1)
    pixel_boxes = boxes
    if with_boxes == "other grids":
        pixel_boxes = [PixelBox((k,), 0, 0, 64, 64) for k in range(len(boxes))]
    for seed in range(1, 6):
        result = spatial_split(
            footprints, fractions=FRACTIONS, block_size=64 * 29.906, seed=seed, pixel_boxes=pixel_boxes
        )
        assert result.excluded, seed
        kept = [s for s in result.splits if s is not None]
        assert len(kept) == 36 - len(result.excluded)
        assert leaks(footprints, result.splits, pixel_boxes=pixel_boxes) == []
        everything = [s or "excluded" for s in result.splits]
        assert leaks(footprints, everything, pixel_boxes=pixel_boxes)  # without exclusions they would leak


@pytest.mark.filterwarnings("ignore::geolabel.errors.EmptySplitWarning")  # few chips, three splits
def test_the_guard_distance_still_keeps_splits_apart():
    """Two chips 3 pixels apart: a guard of 2 pixels allows them, a guard of 4 does not."""
    pixel = 29.906
    a = PixelBox.of("EPSG:32617", (pixel, 0.0, 707000.0, 0.0, -pixel, 4254601.867), 0, 0, 64, 64)
    b = PixelBox.of("EPSG:32617", (pixel, 0.0, 707000.0 + 67 * pixel, 0.0, -pixel, 4254601.867), 0, 67, 64, 64)
    fa = shapely.box(707000.0, 4254601.867 - 64 * pixel, 707000.0 + 64 * pixel, 4254601.867)
    fb = shapely.box(707000.0 + 67 * pixel, 4254601.867 - 64 * pixel, 707000.0 + 131 * pixel, 4254601.867)
    assert a.grid == b.grid and not a.overlaps(b)
    assert leaks([fa, fb], ["train", "test"], guard=2 * pixel, pixel_boxes=[a, b]) == []
    assert leaks([fa, fb], ["train", "test"], guard=3 * pixel, pixel_boxes=[a, b]) == []  # not closer than 3 px
    assert leaks([fa, fb], ["train", "test"], guard=4 * pixel, pixel_boxes=[a, b]) == [(0, 1)]
    result = spatial_split([fa, fb], fractions={"train": 0.5, "test": 0.5}, block_size=1.0, guard=4 * pixel)
    assert result.excluded == [0]  # the train chip gives way


def test_a_split_that_gets_no_chips_is_said():
    """Nine chips in one block cannot be dealt to three splits: the empty ones are named."""
    import shapely

    from geolabel.errors import EmptySplitWarning
    from geolabel.export.splits import spatial_split

    chips = [shapely.box(x, y, x + 10, y + 10) for x in range(0, 30, 10) for y in range(0, 30, 10)]
    with pytest.warns(EmptySplitWarning) as caught:
        result = spatial_split(chips, fractions={"train": 0.6, "val": 0.2, "test": 0.2}, block_size=100, seed=1)
    assert result.counts() == {"train": 9}
    assert sorted(str(w.message).split("'")[1] for w in caught) == ["test", "val"]


def test_a_split_emptied_by_the_guard_is_said_with_its_reason():
    import shapely

    from geolabel.errors import EmptySplitWarning
    from geolabel.export.splits import spatial_split

    chips = [shapely.box(0, 0, 10, 10), shapely.box(5, 0, 15, 10)]  # half of each other: a leak if apart
    with pytest.warns(EmptySplitWarning, match="split 'train' got no chips: all 1 of its chips were left out"):
        result = spatial_split(chips, fractions={"train": 0.5, "test": 0.5}, block_size=4, seed=1)
    assert result.counts() == {"test": 1} and len(result.excluded) == 1

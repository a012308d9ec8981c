"""Where the class suggester learns: training sites cut from a label store.

A site is a piece of the scene whose labels are trusted, with those labels in scene
pixel coordinates:

- every tile the store marks ``done`` (its footprint from the tile index): all its
  labels, except rejected ones and suggestions nobody has looked at (drafts with source
  ``suggested``);
- accepted labels elsewhere, grouped by the scene's 512-pixel blocks they lie in.

Sites are the unit of the spatial hold-out (:func:`split_sites`): pixels of one field
are alike, so holding out random pixels would measure how well the classifier remembers
fields it has seen, not how it does on new tiles.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from geolabel import vocabulary as v
from geolabel.errors import InputError
from geolabel.suggest.windows import Box, scene_windows

#: Side (pixels) of the blocks accepted labels outside done tiles are grouped in.
BLOCK = v.CHIP_SIZE


@dataclass(frozen=True)
class Site:
    """A piece of the scene to learn from: ``box`` in scene pixels and its labels as
    (WKB polygon in scene pixel coordinates, class code), lowest priority first (so a
    rasterizer burning them in order lets the higher-priority class win overlaps)."""

    key: str  # the tile id, or block_rROW_cCOL for accepted labels outside done tiles
    box: Box
    shapes: tuple[tuple[bytes, int], ...]


@dataclass(frozen=True)
class Training:
    """The sites, the classes they hold, and the area their labels cover (scene CRS)."""

    sites: list[Site]
    codes: list[int]
    covered: Any  # the done tiles and accepted labels: where suggestions would only repeat labels
    done: frozenset[str]  # tile ids the store marks done


def training_sites(store: Any, info: Any, *, tiles: str | os.PathLike[str] | None) -> Training:
    """The training sites of scene ``info`` (a :class:`~geolabel.raster.SceneInfo`) in
    ``store`` (an open label store); ``tiles``: the tile index naming the done tiles."""
    import shapely

    from geolabel.suggest.area import chip_footprints

    done = frozenset(store.done_tiles())
    geoms, codes, status = _trusted_labels(store, info.crs_wkt)
    every = chip_footprints(tiles, info.crs_wkt) if tiles is not None else {}
    footprints = {tile_id: fp for tile_id, fp in every.items() if tile_id in done}
    on_done = [np.flatnonzero(shapely.intersects(geoms, fp)) for fp in footprints.values()]
    done_union = shapely.union_all(list(footprints.values())) if footprints else shapely.Polygon()
    accepted = np.flatnonzero(status == "accepted")
    elsewhere = shapely.difference(geoms[accepted], done_union)
    if not sum(len(i) for i in on_done) and not len(accepted):
        raise InputError(f"{store.uri}: {_nothing_to_learn(len(done), tiles)}", params=("tiles",))
    priority = np.array([store.schema.priority(int(c)) for c in codes]) if len(codes) else np.zeros(0)
    sites = [
        _site(key, shapely.intersection(geoms[i], fp), codes[i], priority[i], info)
        for (key, fp), i in zip(footprints.items(), on_done)
    ]
    sites += _block_sites(elsewhere, codes[accepted], priority[accepted], info)
    sites = [s for s in sites if s.shapes]
    if not sites:
        raise InputError(f"{info.path}: the scene does not overlap the store's training labels ({store.uri})")
    covered = shapely.union_all(np.concatenate([np.array([done_union]), geoms[accepted]]))
    return Training(sites, sorted({code for s in sites for _, code in s.shapes}), covered, done)


def _nothing_to_learn(n_done: int, tiles: Any) -> str:
    """Why no label can be trusted, and what would change that."""
    if n_done and tiles is None:
        return (
            f"nothing to learn from: no accepted labels, and the {n_done} tiles marked done need "
            "their tile index (`tiles`)"
        )
    if n_done:
        return f"nothing to learn from: no accepted labels and no labels on the {n_done} tiles marked done"
    return (
        "nothing to learn from: no accepted labels and no tiles marked done (mark the tiles you trust "
        "done in the QGIS dock, or accept submitted tiles with `geolabel review --accept`)"
    )


def _trusted_labels(store: Any, crs: Any) -> tuple[Any, Any, Any]:
    """(geometries in ``crs``, class codes, statuses) of the labels that may be learnt
    from: not rejected, and not suggestions still waiting for a look."""
    from geolabel.crs import reproject_geometries, same_crs

    arrays = store.read(fields=["class_code", "status", "source"])
    status = np.array(arrays.columns["status"], dtype=object)
    source = np.array(arrays.columns["source"], dtype=object)
    keep = (status != "rejected") & ~((source == "suggested") & (status == "draft"))
    geoms = arrays.geoms[keep]
    if len(geoms) and not same_crs(store.crs, crs):
        geoms = reproject_geometries(geoms, store.crs, crs, densify="auto")
    codes = np.array(arrays.columns["class_code"], dtype=int)[keep]
    return geoms, codes, status[keep]


def _site(key: str, geoms: Any, codes: Any, priority: Any, info: Any) -> Site:
    """A site of the labels ``geoms`` (scene CRS) within the scene's pixel box around them."""
    import shapely

    from geolabel.geom import to_pixels

    keep = ~shapely.is_empty(geoms) & (shapely.area(geoms) > 0)
    pixels = to_pixels(geoms[keep], tuple(info.transform))
    if not len(pixels):
        return Site(key, (0, 0, 0, 0), ())
    c0, r0, c1, r1 = shapely.total_bounds(pixels)
    col, row = max(0, int(np.floor(c0))), max(0, int(np.floor(r0)))
    box = (col, row, min(info.width, int(np.ceil(c1))) - col, min(info.height, int(np.ceil(r1))) - row)
    if box[2] <= 0 or box[3] <= 0:
        return Site(key, box, ())
    order = np.argsort(priority[keep], kind="stable")
    return Site(key, box, tuple((shapely.to_wkb(pixels[i]), int(codes[keep][i])) for i in order))


def _block_sites(geoms: Any, codes: Any, priority: Any, info: Any) -> list[Site]:
    """Sites of accepted labels (scene CRS), one per scene block they reach."""
    import shapely

    from geolabel.geom import to_pixels

    if not len(geoms):
        return []
    tree = shapely.STRtree(to_pixels(geoms, tuple(info.transform)))
    sites = []
    for col, row, w, h in scene_windows(info.width, info.height, size=BLOCK):
        block_px = shapely.box(col, row, col + w, row + h)
        hit = np.sort(tree.query(block_px, predicate="intersects"))
        if len(hit):
            block = _to_crs_box(block_px, info.transform)
            site = _site(f"block_r{row // BLOCK:03d}_c{col // BLOCK:03d}", shapely.intersection(geoms[hit], block),
                         codes[hit], priority[hit], info)  # fmt: skip
            sites.append(site)
    return sites


def _to_crs_box(pixel_box: Any, transform: Any) -> Any:
    """A box in pixel coordinates as a polygon in the scene's CRS."""
    import shapely

    a, b, c, d, e, f = tuple(transform)[:6]
    return shapely.transform(pixel_box, lambda xy: np.column_stack([a * xy[:, 0] + b * xy[:, 1] + c,
                                                                    d * xy[:, 0] + e * xy[:, 1] + f]))  # fmt: skip


def split_sites(keys: list[str], *, seed: int, fraction: float) -> tuple[list[str], list[str]]:
    """(training, held-out) site keys: a seeded ``fraction`` of the sites (at least one)
    held out whole, none when there is only one site.

    >>> split_sites(["a", "b", "c", "d"], seed=0, fraction=0.25)
    (['a', 'b', 'd'], ['c'])
    """
    if len(keys) < 2:
        return list(keys), []
    n = max(1, int(round(len(keys) * fraction)))
    order = np.random.default_rng(seed).permutation(len(keys))
    held = sorted(keys[i] for i in order[:n])
    return [k for k in keys if k not in held], held

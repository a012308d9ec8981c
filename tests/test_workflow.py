"""The checking center's day, end to end, on both backends, on the village sample: two teams
(changsha at the center, hunan at an offline site), three labelers (li, zhou, sun), one
reviewer (wang). Tiles are assigned, labelled by scripted edits, submitted (refused while a
tile has errors, then fixed), a gold tile is scored, a rejection with a comment is fixed and
accepted, and the offline site's delivery is merged twice (the second time changes nothing)
with one cross-border conflict reported and not written."""

from __future__ import annotations

import pytest
import shapely

from geolabel.consensus import agreement
from geolabel.deliveries import deliver
from geolabel.gold import mark_gold, quality
from geolabel.labels.store import create_store, open_store
from geolabel.merge import merge_deliveries
from geolabel.tasks import assign_tiles, review_tiles, start_tile, submit_tile, task_progress
from geolabel.tileindex import load_chips

from .conftest import SAMPLE


@pytest.fixture(scope="module")
def chips(tmp_path_factory):
    from geolabel import tile_raster

    root = tmp_path_factory.mktemp("workflow")
    index = tile_raster(SAMPLE / "village.tif", root / "chips", size=256, workers=1).index_path
    return index, {c.tile_id: shapely.box(*c.footprint.bounds) for c in load_chips(index)}


@pytest.fixture(scope="module")
def sample():
    import geopandas as gpd

    frame = gpd.read_file(SAMPLE / "village_labels.gpkg")
    return list(frame.geometry), [int(c) for c in frame["class_code"]]


def drawn(sample, tile, *, clean=True):
    """The sample's polygons inside ``tile`` (clipped), as a labeler would draw them there;
    ``clean``: without the pond/field overlaps the sample has."""
    geoms, codes = sample
    out_g, out_c = [], []
    for g, c in zip(geoms, codes):
        part = g.intersection(tile)
        for p in getattr(part, "geoms", [part]):
            if p.geom_type == "Polygon" and p.area > 1:
                out_g.append(p)
                out_c.append(c)
    if clean:  # cut each polygon by the ones after it (water drawn last wins), as resolve would
        for i in range(len(out_g)):
            for j in range(i + 1, len(out_g)):
                out_g[i] = out_g[i].difference(out_g[j])
        keep = [k for k, g in enumerate(out_g) if g.geom_type == "Polygon" and g.area > 1]
        out_g, out_c = [out_g[k] for k in keep], [out_c[k] for k in keep]
    return out_g, out_c


def parts(geom):
    """The polygons (over 1 m²) of a geometry."""
    return [p for p in getattr(geom, "geoms", [geom]) if p.geom_type == "Polygon" and p.area > 1]


def has_overlap(geoms):
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    return any(i < j and geoms[i].intersection(geoms[j]).area > 1 for i, j in zip(left, right))


def pick_tiles(sample, tiles):
    """Tiles with several classes: clean ones, and one whose raw labels overlap."""
    clean, overlapping = [], []
    for tile_id, box in sorted(tiles.items()):
        geoms, codes = drawn(sample, box, clean=False)
        if len(set(codes)) < 2:
            continue
        (overlapping if has_overlap(geoms) else clean).append(tile_id)
    return clean, overlapping


def adjacent(tiles, ids):
    """Two of ``ids`` whose tiles share an edge, and a strip across that edge: 8 m into the
    second tile, 3 m into the first (a label drawn there belongs to the second tile)."""
    for a in ids:
        for b in ids:
            edge = tiles[a].intersection(tiles[b])
            if a != b and edge.geom_type == "LineString" and edge.length > 100:
                (x0, y0), (x1, y1) = edge.coords
                sign = 1 if tiles[b].centroid.x > x0 or tiles[b].centroid.y > y0 else -1
                if x0 == x1:
                    lo, hi = sorted((x0 - 3 * sign, x0 + 8 * sign))
                    return a, b, shapely.box(lo, min(y0, y1) + 20, hi, max(y0, y1) - 20)
                lo, hi = sorted((y0 - 3 * sign, y0 + 8 * sign))
                return a, b, shapely.box(min(x0, x1) + 20, lo, max(x0, x1) - 20, hi)
    raise AssertionError("no two adjacent clean tiles")


def codes_name(code):
    from geolabel.labels.schema import default_schema

    return default_schema().get(code).name


def label(location, tile_geoms, *, labeler, team, tile_id):
    geoms, codes = tile_geoms
    with open_store(location) as store:
        store.add_geometries(geoms, class_codes=codes, labeler=labeler, team=team, tile_id=tile_id)


def test_a_labeling_project_from_assignment_to_merged_delivery(store_location, chips, sample, tmp_path):
    index, tiles = chips
    clean, overlapping = pick_tiles(sample, tiles)
    assert len(clean) >= 4 and overlapping, (clean, overlapping)
    work, neighbour, strip = adjacent(tiles, clean)
    rest = [t for t in clean if t not in (work, neighbour)]
    cons = next(t for t in rest if len(set(drawn(sample, tiles[t])[1])) >= 3)  # three classes to agree on
    gold = next(t for t in rest if t != cons)
    fixme = overlapping[0]
    central = str(store_location("central"))
    create_store(central, crs="EPSG:32649").close()

    # the center assigns: li gets three tiles, one of them gold (he cannot tell)
    wanted = ", ".join(f"'{t}'" for t in (work, gold, fixme))
    assert assign_tiles(central, index, team="changsha", labeler="li", where=f"tile_id in ({wanted})").tiles == 3
    assert assign_tiles(central, index, team="hunan", labeler="sun", where=f"tile_id = '{neighbour}'").tiles == 1
    both = assign_tiles(central, index, team="changsha", labeler="li", where=f"tile_id = '{cons}'", overlap_fraction=1)
    assert (both.tiles, both.consensus) == (1, 1)  # copy 2 goes to another labeler of the team
    assert list(mark_gold(central, [gold], SAMPLE / "village_labels.gpkg").polygons) == [gold]

    # li labels: the gold tile exactly as the reference, a clean tile, and one with overlaps
    for tile_id in (work, gold, fixme):
        start_tile(central, tile_id, labeler="li")
        label(central, drawn(sample, tiles[tile_id], clean=tile_id != fixme), labeler="li", team="changsha",
              tile_id=tile_id)  # fmt: skip
    assert submit_tile(central, work, labeler="li").submitted
    assert submit_tile(central, gold, labeler="li").submitted
    refused = submit_tile(central, fixme, labeler="li")
    assert not refused.submitted and {f.type for f in refused.errors} == {"overlap"}
    with open_store(central) as store:  # li fixes the overlaps: his labels of that tile redrawn clean
        store.delete(store.read(tile_id=fixme, fields=["label_id"]).columns["label_id"])
    label(central, drawn(sample, tiles[fixme]), labeler="li", team="changsha", tile_id=fixme)
    assert submit_tile(central, fixme, labeler="li").submitted

    # the consensus tile: li and zhou label it; zhou calls one (non-grassland) polygon grassland
    geoms, codes = drawn(sample, tiles[cons])
    big = min((k for k in range(len(geoms)) if codes[k] != 6), key=lambda k: geoms[k].area)
    label(central, (geoms, codes), labeler="li", team="changsha", tile_id=cons)
    start_tile(central, cons, labeler="zhou")
    label(central, (geoms, [6 if k == big else c for k, c in enumerate(codes)]), labeler="zhou", team="changsha",
          tile_id=cons)  # fmt: skip
    assert submit_tile(central, cons, labeler="li").submitted and submit_tile(central, cons, labeler="zhou").submitted
    (pair,) = agreement(central).tiles
    assert set(pair.labelers) == {"li", "zhou"} and 0 < pair.kappa < 1
    assert pair.iou["grassland"] < 1 and all(v == pytest.approx(1.0, abs=1e-6) for k, v in pair.iou.items()
                                             if k not in ("grassland", codes_name(codes[big])))  # fmt: skip

    # the gold tile was scored on submission: a perfect copy of the reference
    standings = quality(central)
    (li,) = [s for s in standings.labelers if s.labeler == "li"]
    assert li.tiles == 1 and li.means["iou"] == pytest.approx(1.0, abs=1e-6)

    # wang reviews: one rejected with a comment, fixed, then everything accepted
    review_tiles(central, [work], accept=False, comment="the pond edge is missing", reviewer="wang")
    with open_store(central) as store:
        (task,) = store.tasks(tile_ids=[work])
        assert (task.status, task.comment) == ("rejected", "the pond edge is missing")
        assert set(store.read(tile_id=work, fields=["status"]).columns["status"]) == {"rejected"}
    assert submit_tile(central, work, labeler="li").submitted
    review_tiles(central, [work, gold, fixme, cons], accept=True, reviewer="wang")
    with open_store(central) as store:
        decisions = [(r.tile_id, r.decision, r.reviewer) for r in store.reviews() if r.decision != "submitted"]
    assert decisions == [(work, "rejected", "wang"), (work, "accepted", "wang"), (gold, "accepted", "wang"),
                         (fixme, "accepted", "wang"), (cons, "accepted", "wang"), (cons, "accepted", "wang")]  # fmt: skip
    with open_store(central) as store:  # the labels went with their tiles: an export of accepted work
        li_labels = store.read(labeler="li", fields=["status", "tile_id"]).columns
        assert set(li_labels["status"]) == {"accepted"} and set(li_labels["tile_id"]) == {work, gold, fixme, cons}
    (done,) = [p for p in task_progress(central) if p.labeler == "li"]
    assert done.counts["accepted"] == 4 and done.remaining == 0

    # hunan works offline: its site store, sun's tile, plus one label reaching into li's
    # accepted work across the tile border (a conflict the merge must report, not write)
    site = tmp_path / "site.gpkg"
    create_store(site, crs="EPSG:32649").close()
    assign_tiles(site, index, team="hunan", labeler="sun", where=f"tile_id = '{neighbour}'")
    start_tile(site, neighbour, labeler="sun")
    cut = [(p, c) for g, c in zip(*drawn(sample, tiles[neighbour])) for p in parts(g.difference(strip))]
    label(site, ([p for p, _ in cut], [c for _, c in cut]), labeler="sun", team="hunan", tile_id=neighbour)
    with open_store(site) as store:
        store.add_geometries([strip], class_codes=[6], labeler="sun", team="hunan", tile_id=neighbour)
    assert submit_tile(site, neighbour, labeler="sun").submitted
    package = deliver(site, team="hunan", out=tmp_path / "delivery.gpkg", site="hunan-site")

    first, second = merge_deliveries(central, [package.path]), merge_deliveries(central, [package.path])
    (merged,), (again,) = first, second
    # the strip reaches into li's tile (assigned to changsha) and onto his accepted label there
    assert {c.reason for c in merged.conflicts} == {"unassigned_tile", "cross_site_overlap"}
    assert len({c.label_id for c in merged.conflicts}) == 1 and work in {c.other for c in merged.conflicts}
    assert merged.merged == package.labels - 1 and merged.merged > 0
    assert again.already and again.merged == 0
    with open_store(central) as store:
        sun = store.read(labeler="sun")
        assert len(sun) == merged.merged
        assert not any(shapely.equals(g, strip) for g in sun.geoms)
        assert {row["delivery_id"] for row in store.merged_deliveries()} == {merged.delivery_id}

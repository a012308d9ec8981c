#!/usr/bin/env python3
"""Generate the synthetic "village" sample scene and its exact land-cover labels.

The scene is a small, plausible aerial view (0.5 m pixels, 1024 m x 1024 m) of a
village in the hilly rice country around Changsha, Hunan (112.9E, 28.2N), in
WGS 84 / UTM zone 49N (EPSG:32649).  It contains:

* a river, a sinuous band about 21-33 m wide, crossing the scene from west to east
  in its southern part;
* an 8 m asphalt main road crossing the scene from west to east;
* a village of tiled, concrete and steel-roofed houses along the main road and
  along 3-5 m concrete lanes that branch off it (plus a farm track);
* paddy-style farmland: rotated rectangular parcels laid out in a few slightly
  rotated grids, with a ``crop`` attribute (rice, vegetables, rapeseed, fallow);
* fish ponds: a cluster next to the village and, deliberately, a few ponds dug
  *inside* farmland parcels (the labels keep the full parcel under the pond,
  as a labeler would deliver it, so these are the only label overlaps);
* forest on the hillsides (north and south-east corners);
* grassland / mixed vegetation everywhere else;
* a wavy nodata collar along the left edge, like the edge of an orthophoto
  mosaic.

The picture is painted from the polygons, class by class, in the order
grassland (background), forest, farmland, road, building, water (later wins),
with seeded noise textures per class.  The labels are the same polygons, with
lower-priority polygons clipped where they would overlap a higher one (except
the ponds over farmland), clipped to the valid footprint, and grassland being
the rest of the footprint.

Outputs (in ``--out``, default: this script's folder):

* ``village.tif``: 2048 x 2048, 4 x uint8 (red, green, blue, nir), nodata 0,
  512 x 512 tiles, DEFLATE;
* ``village_labels.gpkg``: layer ``labels`` (GeoPackage 1.2), Polygon features
  with ``class_name``, ``class_code``, ``crop``, ``labeler``, ``source``;
* ``village_quicklook.png`` and ``village_labels_quicklook.png`` (need Pillow).

Run: ``python sample_data/make_village.py [--out DIR]``.  Everything is drawn
from ``numpy.random.default_rng(SEED)``, so the output is reproducible.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import shapely
from pyproj import Transformer
from rasterio.enums import ColorInterp
from rasterio.features import rasterize
from rasterio.transform import Affine, from_origin
from shapely import affinity
from shapely.geometry import LineString, Point, Polygon, box

SEED = 20261127
SIZE = 2048  # pixels per side
RES = 0.5  # metres per pixel
EXTENT = SIZE * RES  # 1024 m
CENTER_LONLAT = (112.9, 28.2)  # near Changsha, Hunan
CRS = "EPSG:32649"  # WGS 84 / UTM zone 49N
GPKG_DATE = "2026-01-01T00:00:00.000Z"  # fixed timestamp written into the GeoPackage

CLASS_CODES = {"water": 1, "farmland": 2, "building": 3, "road": 4, "forest": 5, "grassland": 6}
PAINT_ORDER = ("grassland", "forest", "farmland", "road", "building", "water")  # later wins
CROPS = ("rice", "vegetables", "rapeseed", "fallow")
CROP_PROBS = (0.40, 0.22, 0.15, 0.23)

# Texture kinds (one per object; kind 0 is the grassland background).
K_GRASS, K_FOREST, K_RICE, K_VEG, K_RAPE, K_FALLOW = 0, 1, 2, 3, 4, 5
K_ASPHALT, K_CONCRETE, K_ROOF_GABLE, K_ROOF_FLAT, K_RIVER, K_POND = 6, 7, 8, 9, 10, 11
CROP_KIND = {"rice": K_RICE, "vegetables": K_VEG, "rapeseed": K_RAPE, "fallow": K_FALLOW}

# Base colours (red, green, blue, nir) in DN.
COLOURS = {
    K_GRASS: (104, 122, 78, 150),
    K_FOREST: (46, 72, 44, 186),
    K_RICE: (84, 136, 60, 196),
    K_VEG: (98, 124, 70, 166),
    K_RAPE: (176, 170, 70, 170),
    K_FALLOW: (134, 116, 92, 112),
    K_ASPHALT: (82, 84, 88, 76),
    K_CONCRETE: (160, 158, 150, 140),
    K_RIVER: (58, 82, 80, 30),
    K_POND: (50, 88, 70, 34),
}
ROOFS = (  # (colour, kind, weight)
    ((152, 74, 60, 84), K_ROOF_GABLE, 0.35),  # red clay tile
    ((184, 110, 68, 98), K_ROOF_GABLE, 0.20),  # orange glazed tile
    ((156, 154, 148, 132), K_ROOF_FLAT, 0.27),  # grey concrete
    ((72, 112, 160, 94), K_ROOF_GABLE, 0.18),  # blue steel sheet
)
SOIL = np.array((128, 108, 84, 108), np.float32)
SHRUB = np.array((52, 80, 44, 176), np.float32)
DRY_GRASS = np.array((136, 134, 92, 140), np.float32)
LABEL_COLOURS = {  # for the labels quicklook
    "water": (40, 110, 220),
    "farmland": (240, 215, 60),
    "building": (215, 35, 35),
    "road": (135, 135, 135),
    "forest": (20, 95, 35),
    "grassland": (160, 225, 125),
}


@dataclass
class Obj:
    """One land-cover polygon (local metres), with what is needed to paint it."""

    geom: Polygon
    cls: str
    kind: int
    colour: np.ndarray
    theta: float = 0.0  # orientation (radians), for row / roof textures
    cx: float = 0.0
    cy: float = 0.0
    crop: str | None = None
    on_parcel: bool = False  # ponds dug inside a farmland parcel
    size: tuple[float, float] = (0.0, 0.0)  # farmland parcels: side lengths along / across the grid


# ----------------------------------------------------------------------------
# geometry helpers (local coordinates: u east, v north, metres, 0..EXTENT)
# ----------------------------------------------------------------------------


def rect(cx: float, cy: float, w: float, h: float, angle_deg: float) -> Polygon:
    """Rectangle of size w (along angle) x h centred on (cx, cy)."""
    return affinity.rotate(box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), angle_deg, origin=(cx, cy))


def rounded_rect(cx: float, cy: float, w: float, h: float, angle_deg: float, r: float = 3.0) -> Polygon:
    return rect(cx, cy, w - 2 * r, h - 2 * r, angle_deg).buffer(r, quad_segs=4)


def road_poly(line: LineString, width: float) -> Polygon:
    return line.buffer(width / 2, cap_style="flat", join_style="round", quad_segs=4)


def polygons(geom) -> list[Polygon]:
    """Explode any geometry to its non-empty Polygon parts."""
    if geom is None or geom.is_empty:
        return []
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    parts = shapely.get_parts(geom)
    out: list[Polygon] = []
    for p in parts:
        if isinstance(p, Polygon):
            if not p.is_empty:
                out.append(p)
        elif p.geom_type in ("MultiPolygon", "GeometryCollection"):
            out.extend(polygons(p))
    return out


def unit(dx: float, dy: float) -> tuple[float, float]:
    n = math.hypot(dx, dy)
    return dx / n, dy / n


def blob(rng: np.random.Generator, cx: float, cy: float, r: float, n: int = 96) -> Polygon:
    """Irregular star-shaped patch: radius modulated by a few random harmonics."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    rad = np.ones_like(t)
    for k, amp in ((2, 0.14), (3, 0.10), (5, 0.06), (9, 0.03)):
        rad += amp * np.sin(k * t + rng.uniform(0, 2 * np.pi))
    return Polygon(np.column_stack([cx + r * rad * np.cos(t), cy + r * rad * np.sin(t)])).buffer(0)


# ----------------------------------------------------------------------------
# layout
# ----------------------------------------------------------------------------


class Layout:
    """Builds every land-cover polygon of the scene, in local metres."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.scene = box(0, 0, EXTENT, EXTENT)
        self.objs: list[Obj] = []
        self._collar()
        self._river()
        self._roads()
        self._houses()
        self._forest()
        self._fish_ponds()
        self._farmland()
        self._ponds_on_parcels()

    # -- helpers --------------------------------------------------------------

    def colour(self, base, spread: float = 0.05) -> np.ndarray:
        c = np.asarray(base, np.float32)
        return c * (1 + self.rng.normal(0, spread)) * (1 + self.rng.normal(0, spread / 2.5, 4)).astype(np.float32)

    def add(self, geom, cls: str, kind: int, colour, **kw) -> Obj:
        c = geom.centroid
        o = Obj(geom=geom, cls=cls, kind=kind, colour=np.asarray(colour, np.float32), cx=c.x, cy=c.y, **kw)
        self.objs.append(o)
        return o

    def of(self, cls: str) -> list[Obj]:
        return [o for o in self.objs if o.cls == cls]

    # -- pieces ---------------------------------------------------------------

    def _collar(self) -> None:
        """Wavy nodata collar on the left, 120-260 px wide: the valid footprint."""
        rng = self.rng
        rows = np.arange(0, SIZE + 1, 4, dtype=np.float64)
        width_px = np.full_like(rows, 190.0)
        for period, amp in ((1700, 34), (640, 16), (260, 8), (113, 4), (47, 1.5)):
            period *= rng.uniform(0.8, 1.25)
            width_px += amp * np.sin(2 * np.pi * rows / period + rng.uniform(0, 2 * np.pi))
        self.collar_px = (float(width_px.min()), float(width_px.max()))
        edge = np.column_stack([width_px * RES, EXTENT - rows * RES])
        self.footprint = Polygon([*map(tuple, edge), (EXTENT, 0.0), (EXTENT, EXTENT)])
        assert self.footprint.is_valid

    def river_v(self, u):
        return 245 + 58 * np.sin(2 * np.pi * u / 720 + self.rph[0]) + 24 * np.sin(2 * np.pi * u / 300 + self.rph[1])

    def road_v(self, u):
        return 545 + 20 * np.sin(2 * np.pi * u / 900 + self.dph)

    def _river(self) -> None:
        rng = self.rng
        self.rph = rng.uniform(0, 2 * np.pi, 2)
        u = np.arange(-60.0, EXTENT + 61, 2.0)
        v = self.river_v(u)
        du, dv = np.gradient(u), np.gradient(v)
        norm = np.hypot(du, dv)
        nu, nv = -dv / norm, du / norm
        s = np.concatenate([[0], np.cumsum(np.hypot(np.diff(u), np.diff(v)))])
        half = (27 + 5 * np.sin(s / 85 + rng.uniform(0, 6.3)) + 1.5 * np.sin(s / 23)) / 2  # 20.5-33.5 m wide
        left = np.column_stack([u + nu * half, v + nv * half])
        right = np.column_stack([u - nu * half, v - nv * half])
        river = Polygon(np.vstack([left, right[::-1]]))
        if not river.is_valid:
            river = max(polygons(river), key=lambda p: p.area)
        self.river = river
        self.add(river, "water", K_RIVER, self.colour(COLOURS[K_RIVER], 0.02))

    def _roads(self) -> None:
        rng = self.rng
        self.dph = rng.uniform(0, 2 * np.pi)
        u = np.arange(-30.0, EXTENT + 31, 4.0)
        main = LineString(np.column_stack([u, self.road_v(u)]))
        self.main_line = main
        self.add(road_poly(main, 8.0), "road", K_ASPHALT, self.colour(COLOURS[K_ASPHALT], 0.02))

        # village lanes branching north off the main road, joined by a back lane
        self.lanes: list[tuple[LineString, float]] = []
        tops = []
        for u0 in (505.0, 590.0, 676.0, 762.0):
            u0 += rng.uniform(-6, 6)
            p0 = np.array([u0, self.road_v(u0)])
            tu, tv = unit(1.0, float(self.road_v(u0 + 1) - self.road_v(u0 - 1)) / 2)
            ang = math.atan2(tu, -tv) + math.radians(rng.normal(0, 3))  # roughly the left normal
            d = np.array([math.cos(ang), math.sin(ang)])
            length = rng.uniform(120, 150)
            mid = p0 + d * length / 2 + np.array([-d[1], d[0]]) * rng.uniform(-4, 4)
            top = p0 + d * length
            tops.append(top)
            w = float(rng.choice([3.5, 4.0, 4.5]))
            self.lanes.append((LineString([p0, mid, top + d * 2.5]), w))
        back = [tops[0] - np.array([3.0, 0.0]), *tops, tops[-1] + np.array([3.0, 0.0])]
        self.lanes.append((LineString(back), 4.0))

        # lane south to the river bank, and a farm track west from it
        u0 = 640.0 + rng.uniform(-5, 5)
        p0 = np.array([u0, self.road_v(u0)])
        d = np.array([0.05, -1.0]) / math.hypot(0.05, 1.0)
        length = 10.0
        while Point(p0 + d * (length + 2)).distance(self.river) > 10:
            length += 2
        south = LineString([p0, p0 + d * length])
        self.lanes.append((south, 4.0))
        self.south_lane = south
        q0 = np.array(south.interpolate(0.45, normalized=True).coords[0])
        track = LineString([q0, q0 + np.array([-120.0, 6.0]), q0 + np.array([-330.0, 12.0])])
        self.lanes.append((track, 3.0))
        for line, w in self.lanes:
            self.add(road_poly(line, w), "road", K_CONCRETE, self.colour(COLOURS[K_CONCRETE], 0.03))
        self.road_union = shapely.union_all([o.geom for o in self.of("road")])

    def _houses(self) -> None:
        rng = self.rng
        blockers = shapely.union_all([self.road_union.buffer(1.5), self.river.buffer(10)])
        placed: list[Polygon] = []

        def walk(line: LineString, width: float, s0: float, s1: float, skip: float) -> None:
            s = s0
            while s < s1:
                a = rng.uniform(8, 16)
                for side in (-1, 1):
                    if rng.random() < skip:
                        continue
                    b = rng.uniform(8, 14)
                    setback = rng.uniform(2, 5)
                    p = line.interpolate(s + a / 2)
                    p1, p2 = line.interpolate(s + a / 2 - 1), line.interpolate(s + a / 2 + 1)
                    tu, tv = unit(p2.x - p1.x, p2.y - p1.y)
                    off = side * (width / 2 + setback + b / 2)
                    cx, cy = p.x - tv * off, p.y + tu * off
                    ang = math.degrees(math.atan2(tv, tu)) + rng.normal(0, 3)
                    h = rect(cx, cy, a, b, ang)
                    if h.intersects(blockers) or not self.footprint.contains(h):
                        continue
                    if any(h.distance(q) < 2.0 for q in placed):
                        continue
                    placed.append(h)
                s += a + rng.uniform(3, 8)

        # along the main road through the village
        s_start = self.main_line.project(Point(470, self.road_v(470)))
        s_end = self.main_line.project(Point(815, self.road_v(815)))
        walk(self.main_line, 8.0, s_start, s_end, 0.35)
        for line, w in self.lanes[:4]:  # the north lanes
            walk(line, w, 6.0, line.length - 10.0, 0.45)
        walk(self.south_lane, 4.0, 8.0, 60.0, 0.3)
        if len(placed) > 68:
            keep = np.sort(rng.choice(len(placed), 68, replace=False))
            placed = [placed[i] for i in keep]
        weights = np.array([r[2] for r in ROOFS])
        for h in placed:
            colour, kind, _ = ROOFS[rng.choice(len(ROOFS), p=weights / weights.sum())]
            coords = np.asarray(h.exterior.coords)
            e = coords[1] - coords[0]
            f = coords[2] - coords[1]
            long_edge = e if np.hypot(*e) >= np.hypot(*f) else f
            self.add(h, "building", kind, self.colour(colour, 0.06), theta=math.atan2(long_edge[1], long_edge[0]))
        self.house_union = shapely.union_all(placed)
        village_lanes = [road_poly(line, w) for line, w in self.lanes[:5]]
        self.village = shapely.union_all([h.buffer(14) for h in placed] + [p.buffer(10) for p in village_lanes])
        self.village = self.village.buffer(10).buffer(-10)

    def _forest(self) -> None:
        rng = self.rng
        blobs = [blob(rng, 190, 1010, 150), blob(rng, 660, 1035, 215), blob(rng, 995, 25, 115)]
        forest = shapely.union_all(blobs).intersection(self.scene)
        forest = forest.difference(shapely.union_all([self.village, self.road_union.buffer(6), self.river.buffer(6)]))
        for p in polygons(forest):
            if p.area > 2000:
                self.add(p, "forest", K_FOREST, self.colour(COLOURS[K_FOREST], 0.03))
        self.forest_union = shapely.union_all([o.geom for o in self.of("forest")])

    def _fish_ponds(self) -> None:
        """A 2 x 2 cluster of fish ponds east of the south lane, plus two lone ponds in the grass."""
        rng = self.rng
        blockers = shapely.union_all(
            [self.road_union.buffer(3), self.house_union.buffer(3), self.river.buffer(6), self.forest_union]
        )
        lane = self.south_lane
        anchor = lane.interpolate(0.62, normalized=True)
        ang = math.degrees(math.atan2(float(self.road_v(anchor.x + 1) - self.road_v(anchor.x - 1)), 2.0))
        ws = rng.uniform(30, 46, 2)
        hs = rng.uniform(22, 34, 2)
        dike = 5.0
        ca, sa = math.cos(math.radians(ang)), math.sin(math.radians(ang))
        for i in range(2):  # columns, going east from the lane (half width 2 m + 6 m of bank)
            for j in range(2):  # rows, either side of the anchor, separated by a dike
                lx = 8.0 + sum(ws[:i]) + dike * i + ws[i] / 2
                ly = (hs[j] / 2 + dike / 2) * (1 if j == 0 else -1)
                cx = anchor.x + lx * ca - ly * sa
                cy = anchor.y + lx * sa + ly * ca
                p = rounded_rect(cx, cy, ws[i], hs[j], ang + rng.normal(0, 0.7))
                if not p.intersects(blockers) and self.footprint.contains(p):
                    self.add(p, "water", K_POND, self.colour(COLOURS[K_POND], 0.04))
        # lone ponds in the grass between the main road and the river
        lone = 0
        for _ in range(400):
            if lone >= 2:
                break
            cx, cy = rng.uniform(300, 900), rng.uniform(150, 520)
            p = rounded_rect(cx, cy, rng.uniform(22, 50), rng.uniform(20, 36), rng.uniform(-25, 25))
            taken = shapely.union_all([blockers] + [o.geom.buffer(8) for o in self.of("water")[1:]])
            if not p.buffer(4).intersects(taken) and self.footprint.buffer(-5).contains(p):
                self.add(p, "water", K_POND, self.colour(COLOURS[K_POND], 0.04))
                lone += 1
        self.free_ponds = shapely.union_all([o.geom for o in self.of("water")[1:]])

    def sector(self, u: float, v: float) -> str:
        if v > self.road_v(u):
            return "NW" if u < 480 else "NE"
        if v > self.river_v(u):
            return "MW" if u < 640 else "ME"
        return "S"

    def _farmland(self) -> None:
        """Parcels from a few rotated grids; shared edges are exact (built from one node array)."""
        rng = self.rng
        exclusion = shapely.union_all(
            [
                self.river.buffer(5),
                self.road_union.buffer(3.5),
                self.village,
                self.forest_union.buffer(3),
                self.free_ponds.buffer(6),
            ]
        )
        shapely.prepare(exclusion)
        valid_core = self.footprint
        shapely.prepare(valid_core)
        accepted: list[tuple[Polygon, float, float, float]] = []
        acc_union = Polygon()
        for name, angle in (("S", -3.0), ("MW", 4.0), ("ME", 9.0), ("NW", 7.0), ("NE", -5.0)):
            angle += rng.uniform(-2, 2)
            th = math.radians(angle)
            ox, oy = EXTENT / 2 + rng.uniform(-30, 30), EXTENT / 2 + rng.uniform(-30, 30)
            xs = np.concatenate([[-900.0], -900 + np.cumsum(rng.uniform(65, 135, 30))])
            ys = np.concatenate([[-900.0], -900 + np.cumsum(rng.uniform(45, 90, 40))])
            gx, gy = np.meshgrid(xs, ys)
            nu = ox + gx * math.cos(th) - gy * math.sin(th)
            nv = oy + gx * math.sin(th) + gy * math.cos(th)
            for j in range(len(ys) - 1):
                for i in range(len(xs) - 1):
                    c = (float(nu[j : j + 2, i : i + 2].mean()), float(nv[j : j + 2, i : i + 2].mean()))
                    if not (0 <= c[0] <= EXTENT and 0 <= c[1] <= EXTENT) or self.sector(*c) != name:
                        continue
                    ring = [(nu[j, i], nv[j, i]), (nu[j, i + 1], nv[j, i + 1]), (nu[j + 1, i + 1], nv[j + 1, i + 1])]
                    ring.append((nu[j + 1, i], nv[j + 1, i]))
                    cell = Polygon(ring)
                    if not valid_core.contains(Point(c)) or cell.intersects(exclusion):
                        continue
                    if cell.intersection(acc_union).area > 1e-3:
                        continue
                    accepted.append((cell, th, xs[i + 1] - xs[i], ys[j + 1] - ys[j]))
                    acc_union = acc_union.union(cell)
        for cell, th, w, h in accepted:
            crop = CROPS[rng.choice(len(CROPS), p=CROP_PROBS)]
            kind = CROP_KIND[crop]
            rot = th if w >= h else th + math.pi / 2  # rows along the long side
            self.add(cell, "farmland", kind, self.colour(COLOURS[kind], 0.06), theta=rot, crop=crop, size=(w, h))

    def _ponds_on_parcels(self) -> None:
        """Dig 4 fish ponds inside farmland parcels (labels keep the parcel whole)."""
        rng = self.rng
        parcels = [o for o in self.of("farmland") if min(o.size) >= 55]
        take = rng.choice(len(parcels), min(4, len(parcels)), replace=False)
        for k in sorted(take):
            par = parcels[k]
            w, h = par.size
            pw, ph = rng.uniform(20, min(45, w - 14)), rng.uniform(20, min(40, h - 14))
            ang = math.degrees(par.theta) if w >= h else math.degrees(par.theta) - 90
            for _ in range(50):
                du = rng.uniform(-(w - pw) / 2 + 6, (w - pw) / 2 - 6)
                dv = rng.uniform(-(h - ph) / 2 + 6, (h - ph) / 2 - 6)
                ca, sa = math.cos(math.radians(ang)), math.sin(math.radians(ang))
                cx, cy = par.cx + du * ca - dv * sa, par.cy + du * sa + dv * ca
                pond = rounded_rect(cx, cy, pw, ph, ang)
                if par.geom.buffer(-4).contains(pond) and self.footprint.contains(pond):
                    self.add(pond, "water", K_POND, self.colour(COLOURS[K_POND], 0.04), on_parcel=True)
                    break


# ----------------------------------------------------------------------------
# labels
# ----------------------------------------------------------------------------


def build_labels(lay: Layout, to_map) -> list[tuple[str, str | None, Polygon]]:
    """The polygons as a labeler would deliver them.

    Highest paint priority first (water, building, road, farmland, forest), each
    polygon is clipped to the valid footprint and cut by everything labelled
    before it, so labels do not overlap -- except that farmland parcels are not
    cut by the ponds dug inside them.  Grassland is the rest of the footprint.
    The overlay is done in map coordinates (``to_map``) so that the delivered
    geometries are exactly what GEOS returned (translating afterwards can break
    validity through rounding).
    """
    fp = to_map(lay.footprint)
    taken = Polygon()  # everything labelled so far
    taken_fl = Polygon()  # the same without the ponds inside parcels (what cuts farmland)
    by_class: dict[str, list[tuple[str, str | None, Polygon]]] = {}
    for cls in reversed(PAINT_ORDER[1:]):
        pieces = []
        for o in lay.of(cls):
            g = to_map(o.geom).intersection(fp).difference(taken_fl if cls == "farmland" else taken)
            parts = [p for p in polygons(g) if p.area > 0.01]
            pieces.extend((cls, o.crop, p) for p in parts)
            if parts:
                g = shapely.union_all(parts)
                taken = taken.union(g)
                if not o.on_parcel:
                    taken_fl = taken_fl.union(g)
        by_class[cls] = pieces
    grass = [("grassland", None, p) for p in polygons(fp.difference(taken)) if p.area >= 5.0]
    by_class["grassland"] = grass
    labels = [lab for cls in sorted(CLASS_CODES, key=CLASS_CODES.get) for lab in by_class[cls]]
    assert all(p.is_valid and not p.is_empty for _, _, p in labels), "invalid label geometry"
    return labels


# ----------------------------------------------------------------------------
# rendering
# ----------------------------------------------------------------------------


def upsample(g: np.ndarray, cell: float) -> np.ndarray:
    """Smoothly interpolate the coarse grid ``g`` (one node every ``cell`` pixels) to SIZE x SIZE."""
    t = (np.arange(SIZE, dtype=np.float32) + 0.5) / cell - 0.5
    t = np.clip(t, 0, None)
    i = t.astype(np.int64)
    f = t - i
    f = f * f * (3 - 2 * f)
    i1 = np.minimum(i + 1, g.shape[0] - 1)
    rows0, rows1 = g[i], g[i1]
    top = rows0[:, i] * (1 - f) + rows0[:, i1] * f
    bot = rows1[:, i] * (1 - f) + rows1[:, i1] * f
    return top * (1 - f)[:, None] + bot * f[:, None]


def value_noise(rng: np.random.Generator, cell: float) -> np.ndarray:
    """Smooth noise (unit std) with features about ``cell`` pixels across.

    Two value-noise grids of incommensurate spacing are summed so that the grid
    pattern of plain value noise does not show.
    """
    out = np.zeros((SIZE, SIZE), np.float32)
    for c in (cell, cell * 1.41):
        n = int(math.ceil(SIZE / c)) + 2
        out += upsample(rng.standard_normal((n, n)).astype(np.float32), c)
    return (out - out.mean()) / out.std()


def box3(a: np.ndarray) -> np.ndarray:
    """3 x 3 box blur over the first two axes (edges replicated)."""
    p = np.pad(a, ((1, 1), (1, 1), (0, 0)), mode="edge")
    s = np.zeros_like(a)
    for dy in range(3):
        for dx in range(3):
            s += p[dy : dy + SIZE, dx : dx + SIZE]
    return s / 9.0


def render(lay: Layout, transform: Affine, to_map, rng: np.random.Generator):
    """Return (image (4, H, W) uint8, class map (H, W) uint8, valid mask)."""
    objs = [o for cls in PAINT_ORDER[1:] for o in lay.objs if o.cls == cls]
    n = len(objs) + 1
    kind = np.array([K_GRASS] + [o.kind for o in objs], np.int16)
    code = np.array([CLASS_CODES["grassland"]] + [CLASS_CODES[o.cls] for o in objs], np.uint8)
    colour = np.array([COLOURS[K_GRASS]] + [o.colour for o in objs], np.float32)
    theta = np.array([0.0] + [o.theta for o in objs], np.float32)
    cx = np.array([0.0] + [o.cx for o in objs], np.float32)
    cy = np.array([0.0] + [o.cy for o in objs], np.float32)
    shape = (SIZE, SIZE)
    ids = rasterize(
        [(to_map(o.geom), i + 1) for i, o in enumerate(objs)], out_shape=shape, transform=transform, dtype="int32"
    )
    assert ids.max() < n
    valid = rasterize([(to_map(lay.footprint), 1)], out_shape=shape, transform=transform, dtype="uint8") == 1
    classes = np.where(valid, code[ids], 0).astype(np.uint8)

    u = ((np.arange(SIZE, dtype=np.float32) + 0.5) * RES)[None, :]
    v = (EXTENT - (np.arange(SIZE, dtype=np.float32) + 0.5) * RES)[:, None]
    n_large = value_noise(rng, 300)
    n_mid = value_noise(rng, 40)
    n_small = value_noise(rng, 7)
    n_fine = value_noise(rng, 2.2)
    n_crown = value_noise(rng, 4)  # tree crowns
    n_clump = value_noise(rng, 11)  # groves and crown clusters

    # where trees grow in the grass: around the houses, along the river banks, a few elsewhere
    t16 = transform * Affine.scale(16)
    near = [
        (to_map(lay.forest_union.buffer(18).difference(lay.forest_union)), 0.9),
        (to_map(lay.river.buffer(16).difference(lay.river)), 0.8),
        (to_map(lay.village), 1.5),
    ]
    dens = rasterize(near, out_shape=(SIZE // 16, SIZE // 16), transform=t16, dtype="float32", all_touched=True)
    dens = upsample(dens, 16)

    img = colour[ids]  # (H, W, 4)
    kmap = kind[ids]
    th = theta[ids]
    along = u * np.cos(th) + v * np.sin(th)  # distance along the object's axis
    across = -(u - cx[ids]) * np.sin(th) + (v - cy[ids]) * np.cos(th)

    def scale(mask, f, nir=None):
        img[mask, :3] *= f[mask][:, None]
        img[mask, 3] *= (f if nir is None else nir)[mask]

    def mix(mask, target, w):
        w = np.clip(w[mask], 0, 1)[:, None]
        img[mask] = img[mask] * (1 - w) + target[None, :] * w

    crowns = np.clip(0.82 + 0.28 * n_crown + 0.12 * n_clump, 0.3, 1.35)  # sunlit crowns, dark gaps
    crowns = np.where(n_crown + 0.5 * n_clump < -1.2, crowns * 0.6, crowns)

    m = kmap == K_GRASS
    mix(m, DRY_GRASS, 0.3 + 0.3 * n_large)
    scale(m, 1 + 0.06 * n_mid + 0.05 * n_small)
    trees = np.clip((n_clump + 0.35 * n_crown + 0.3 * n_mid - 2.1 + 1.5 * dens) * 2.0, 0, 1)
    trees[~m] = 0
    shade = np.zeros_like(trees)  # tree shadows fall north-west
    shade[:-5, 3:] = trees[5:, :-3]
    shade = np.clip(shade - trees, 0, 1) * m
    tree_col = SHRUB[None, None, :] * crowns[..., None]
    tree_col[..., 3] = SHRUB[3] * (0.85 + 0.15 * crowns)
    img[:] = img * (1 - trees[..., None]) + tree_col * trees[..., None]
    img[..., :3] *= (1 - 0.35 * shade)[..., None]
    img[..., 3] *= 1 - 0.2 * shade

    m = kmap == K_FOREST
    scale(m, crowns, 0.82 + 0.18 * crowns)

    m = kmap == K_RICE
    scale(m, 1 + 0.035 * np.sin(2 * np.pi * along / 2.0) + 0.03 * n_small + 0.04 * n_mid)

    m = kmap == K_VEG
    beds = 0.5 + 0.5 * np.sin(2 * np.pi * along / 3.0)
    mix(m, SOIL, 0.15 + 0.4 * (1 - beds) ** 2 + 0.12 * n_small)
    scale(m, 1 + 0.05 * n_small)

    m = kmap == K_RAPE
    scale(m, 1 + 0.05 * n_small + 0.05 * n_mid)
    mix(m, np.array((120, 140, 70, 185), np.float32), 0.2 + 0.2 * n_mid)

    m = kmap == K_FALLOW
    scale(m, 1 + 0.06 * n_small + 0.06 * n_mid + 0.03 * np.sin(2 * np.pi * along / 1.5))
    mix(m, np.array((110, 120, 75, 150), np.float32), 0.35 * (n_mid - 0.6))

    m = kmap == K_ASPHALT
    scale(m, 1 + 0.03 * n_fine + 0.03 * n_mid)
    m = kmap == K_CONCRETE
    scale(m, 1 + 0.04 * n_small + 0.03 * n_fine)

    m = kmap == K_ROOF_GABLE
    slope = np.where(across > 0, 1.04, 0.84).astype(np.float32)
    slope = np.where(np.abs(across) < 0.4, 0.92, slope).astype(np.float32)  # ridge
    scale(m, slope + 0.02 * n_fine, 0.9 + 0.1 * slope)
    m = kmap == K_ROOF_FLAT
    scale(m, 1 + 0.035 * n_small + 0.02 * n_fine)

    m = (kmap == K_RIVER) | (kmap == K_POND)
    scale(m, 1 + 0.04 * n_mid + 0.02 * n_large + 0.01 * n_fine)

    # field borders: thin grassy bunds (about 2 px) along every parcel edge
    parcels = [o for o in objs if o.cls == "farmland"]
    borders = rasterize(
        [(to_map(o.geom.exterior.buffer(0.45)), 1) for o in parcels],
        out_shape=shape,
        transform=transform,
        dtype="uint8",
    ).astype(bool) & (classes == CLASS_CODES["farmland"])
    mix(borders, np.array((112, 122, 80, 150), np.float32), np.full(shape, 0.6, np.float32))
    img[borders] *= 0.88

    # house shadows, cast north-west (morning sun from the south-east)
    shadows = [to_map(affinity.translate(o.geom, -1.2, 2.4)) for o in objs if o.cls == "building"]
    sh = rasterize([(g, 1) for g in shadows], out_shape=shape, transform=transform, dtype="uint8").astype(bool)
    sh &= classes != CLASS_CODES["building"]
    img[sh, :3] *= 0.55
    img[sh, 3] *= 0.65

    # soften object boundaries by one pixel
    edge = np.zeros(shape, bool)
    edge[:, 1:] |= ids[:, 1:] != ids[:, :-1]
    edge[:, :-1] |= ids[:, 1:] != ids[:, :-1]
    edge[1:, :] |= ids[1:, :] != ids[:-1, :]
    edge[:-1, :] |= ids[1:, :] != ids[:-1, :]
    img[edge] = box3(img)[edge]

    img *= (1 + 0.03 * n_large)[..., None]
    img += rng.normal(0, 0.6, img.shape).astype(np.float32)  # a little sensor noise
    out = np.clip(np.rint(img), 1, 255).astype(np.uint8)
    out[~valid] = 0
    return np.ascontiguousarray(out.transpose(2, 0, 1)), classes, valid


# ----------------------------------------------------------------------------
# writers
# ----------------------------------------------------------------------------


def tmp_path(path: Path) -> Path:
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")


def write_tif(path: Path, data: np.ndarray, transform: Affine) -> None:
    tmp = tmp_path(path)
    profile = {
        "driver": "GTiff",
        "width": SIZE,
        "height": SIZE,
        "count": 4,
        "dtype": "uint8",
        "crs": CRS,
        "transform": transform,
        "nodata": 0,
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "compress": "deflate",
        "predictor": 2,
        "zlevel": 9,
        "interleave": "pixel",
        "photometric": "RGB",
    }
    with rasterio.open(tmp, "w", **profile) as dst:
        dst.write(data)
        dst.colorinterp = (ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.undefined)
        for i, name in enumerate(("red", "green", "blue", "nir"), start=1):
            dst.set_band_description(i, name)
        dst.update_tags(SOURCE="generated by sample_data/make_village.py", SEED=str(SEED))
    os.replace(tmp, path)


def write_gpkg(path: Path, labels) -> None:
    import geopandas as gpd
    import pyogrio

    gdf = gpd.GeoDataFrame(
        {
            "class_name": [c for c, _, _ in labels],
            "class_code": np.array([CLASS_CODES[c] for c, _, _ in labels], np.int32),
            "crop": [crop for _, crop, _ in labels],
            "labeler": "sample",
            "source": "generated",
        },
        geometry=[g for _, _, g in labels],
        crs=CRS,
    )
    tmp = tmp_path(path)
    # a fixed gpkg_contents.last_change keeps the file byte-identical from run to run
    old = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": GPKG_DATE})
    try:
        pyogrio.write_dataframe(
            gdf, tmp, layer="labels", driver="GPKG", geometry_type="Polygon", dataset_options={"VERSION": "1.2"}
        )
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": old})
    os.replace(tmp, path)


def write_pngs(out: Path, data: np.ndarray, labels, transform: Affine) -> list[Path]:
    try:
        from PIL import Image
    except ImportError:
        print("Pillow not installed: skipping the PNG quicklooks", file=sys.stderr)
        return []
    half = SIZE // 2
    rgb = data[:3].reshape(3, half, 2, half, 2).astype(np.uint16).mean(axis=(2, 4))
    rgb = np.rint(rgb).astype(np.uint8).transpose(1, 2, 0)
    t2 = transform * Affine.scale(2)
    order = {c: i for i, c in enumerate(PAINT_ORDER)}
    ranked = sorted(labels, key=lambda lab: order[lab[0]])
    codes = rasterize([(g, CLASS_CODES[c]) for c, _, g in ranked], out_shape=(half, half), transform=t2, dtype="uint8")
    lut = np.zeros((256, 3), np.uint8)
    for c, col in LABEL_COLOURS.items():
        lut[CLASS_CODES[c]] = col
    lab = lut[codes]
    outline = rasterize(
        [(g.exterior, 1) for _, _, g in labels], out_shape=(half, half), transform=t2, dtype="uint8"
    ).astype(bool)
    lab[outline & (codes > 0)] = (lab[outline & (codes > 0)] * 0.45).astype(np.uint8)
    paths = []
    for name, arr in (("village_quicklook.png", rgb), ("village_labels_quicklook.png", lab)):
        p = out / name
        tmp = tmp_path(p)
        Image.fromarray(arr, "RGB").save(tmp, optimize=True)
        os.replace(tmp, p)
        paths.append(p)
    return paths


# ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent, help="output folder")
    args = ap.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    rng = np.random.default_rng(SEED)
    e, n = Transformer.from_crs("EPSG:4326", CRS, always_xy=True).transform(*CENTER_LONLAT)
    x0, y0 = round(e - EXTENT / 2), round(n + EXTENT / 2)  # top-left corner, whole metres
    transform = from_origin(x0, y0, RES, RES)

    def to_map(g):
        return affinity.translate(g, xoff=x0, yoff=y0 - EXTENT)

    lay = Layout(rng)
    labels = build_labels(lay, to_map)
    data, _classes, _valid = render(lay, transform, to_map, rng)

    counts = {c: sum(1 for lab in labels if lab[0] == c) for c in CLASS_CODES}
    assert 6 <= len(lay.of("water")) - 1 <= 10, "pond count"
    assert 25 <= counts["farmland"] <= 60, counts
    assert 30 <= counts["building"] <= 70, counts
    assert 1 <= counts["forest"] <= 3, counts
    n_overlap = sum(1 for o in lay.of("water") if o.on_parcel)
    assert n_overlap >= 3

    tif, gpkg = out / "village.tif", out / "village_labels.gpkg"
    write_tif(tif, data, transform)
    write_gpkg(gpkg, labels)
    pngs = write_pngs(out, data, labels, transform)

    print(f"village scene: {SIZE} x {SIZE} px at {RES} m, {CRS}, top-left ({x0}, {y0}), seed {SEED}")
    print(f"nodata collar: {lay.collar_px[0]:.0f}-{lay.collar_px[1]:.0f} px wide")
    print(f"{'class':<10} {'code':>4} {'count':>6} {'area m2':>12}")
    for c in sorted(CLASS_CODES, key=CLASS_CODES.get):
        area = sum(g.area for cl, _, g in labels if cl == c)
        print(f"{c:<10} {CLASS_CODES[c]:>4} {counts[c]:>6} {area:>12.1f}")
    crops = {k: sum(1 for c, crop, _ in labels if crop == k) for k in CROPS}
    print("crops: " + ", ".join(f"{k} {v}" for k, v in crops.items()))
    print(f"ponds: {len(lay.of('water')) - 1} ({n_overlap} dug inside farmland parcels = deliberate label overlaps)")
    for p in [tif, gpkg, *pngs]:
        print(f"  {p.name:<32} {p.stat().st_size:>10,} bytes")
    print(f"done in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark the label store's two backends, GeoPackage and PostGIS, on the same data in one run.

Data (seeded): land-cover-like polygons in EPSG:32649, one per cell of a grid, each a
square or a hexagon drawn with 20 vertices whose radii are perturbed by up to 8 %
(star-shaped, so always valid), with class code, labeler and team as a team's delivery
carries them.

1. Bulk import of 50,000 polygons with ``store.add()`` (validation, ids, history and
   the database's rules included), in process, fresh store each repeat, min of repeats;
   compared with ``ogr2ogr -f PostgreSQL`` from a plain GeoPackage (a whole process; what a
   user would otherwise run; geopandas ``to_postgis`` needs SQLAlchemy and GeoAlchemy2,
   used when installed) and with the limit: binary COPY of the same rows into a bare table
   with the same indexes (no triggers, no history) plus ANALYZE.
2. Bounding-box reads on a 1,000,000-label store (built once per run with ``store.add()``
   in chunks): ``store.read(bbox=)`` and ``store.query(bbox=)`` of ``--windows`` random
   256 m squares (a 512 px chip at 0.5 m), median and p95, after 3 warm-up reads.
3. Concurrent writers: ``--writers`` processes, each repeating read + ``update(...,
   expected_version=)`` on random labels of a 10,000-label store for ``--seconds``;
   updates per second, conflicts and busy refusals.
4. Export of 50,000 labels (the stores of part 1) to GeoJSON chips with ``geolabel export``
   (a whole process, min of repeats) on the 8192 px benchmark scene's 256 tiles.

The PostgreSQL server is a throwaway one (``tests/pgserver.py``: loopback, fsync off);
``--pg URL`` uses an existing server instead (a superuser URL). Run as root or as a user
that may ``runuser postgres``.

Usage: ``.venv/bin/python bench/bench_store.py [--repeat 3] [--big 1000000] [--parts import,reads,writers,export]``
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

CRS = "EPSG:32649"
#: The benchmark scene's extent (bench_tile.make_scene: 8192 px at 0.5 m).
SCENE_EXTENT = (680000.0, 3120904.0, 684096.0, 3125000.0)
WINDOW_M = 256.0
VERTICES = 20
LABELERS = ("li", "wang", "zhang", "chen", "liu", "yang")


# -- data -------------------------------------------------------------------------------


def make_polygons(n: int, extent: tuple[float, float, float, float], *, cells: int, seed: int, first: int = 0) -> Any:
    """Polygons ``first`` .. ``first + n - 1`` of a grid of ``cells`` x ``cells`` over
    ``extent`` (row by row): squares and hexagons of 20 vertices, radii perturbed by up
    to 8 %, rotated at random. Star-shaped around their centres, so always valid."""
    import shapely

    rng = np.random.default_rng(seed + first)
    k = np.arange(first, first + n)
    x0, y0, x1, _ = extent
    step = (x1 - x0) / cells
    cx = x0 + (k % cells + 0.5) * step
    cy = y0 + (k // cells + 0.5) * step
    theta = np.linspace(0, 2 * np.pi, VERTICES, endpoint=False)[None, :] + rng.uniform(0, np.pi, (n, 1))
    sides = np.where(rng.random(n) < 0.5, 4, 6)[:, None]
    wedge = 2 * np.pi / sides
    outline = np.cos(np.pi / sides) / np.cos((theta % wedge) - wedge / 2)  # a regular polygon's radius
    radius = 0.42 * step * outline * rng.uniform(0.92, 1.08, (n, VERTICES))
    xy = np.stack([cx[:, None] + radius * np.cos(theta), cy[:, None] + radius * np.sin(theta)], axis=-1)
    return shapely.polygons(np.concatenate([xy, xy[:, :1]], axis=1))


def make_frame(
    n: int, extent: tuple[float, float, float, float], *, seed: int, first: int = 0, total: int | None = None
) -> Any:
    """A GeoDataFrame of polygons ``first`` .. ``first + n - 1`` of the ``total`` (default
    ``n``) that cover ``extent``, with class code, labeler and team."""
    import geopandas as gpd

    cells = int(np.ceil(np.sqrt(total or n)))
    rng = np.random.default_rng(seed + 1 + first)
    codes = rng.choice([1, 2, 3, 4, 5, 6], size=n, p=[0.1, 0.45, 0.15, 0.1, 0.1, 0.1])
    who = rng.integers(0, len(LABELERS), n)
    data = {
        "class_code": codes,
        "labeler": np.array(LABELERS, dtype=object)[who],
        "team": np.where(who % 2 == 0, "team_a", "team_b").astype(object),
    }
    geoms = make_polygons(n, extent, cells=cells, seed=seed, first=first)
    return gpd.GeoDataFrame(data, geometry=geoms, crs=CRS)


# -- the PostgreSQL server ----------------------------------------------------------------


@contextmanager
def postgres(url: str | None) -> Iterator[str]:
    """A superuser URL to a database ``geolabel_bench`` with PostGIS: on ``url``'s server,
    else on a throwaway server started for this run."""
    import psycopg

    folder = None
    if url is None:
        from tests.pgserver import start

        folder, url = start()
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS geolabel_bench")
            conn.execute("CREATE DATABASE geolabel_bench")
        db = url.rsplit("/", 1)[0] + "/geolabel_bench"
        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION postgis")
        yield db
    finally:
        if folder is not None:
            from tests.pgserver import stop

            stop(folder)


def pg_location(db: str, name: str) -> str:
    return f"{db}?schema={name}"


# -- 1. bulk import -------------------------------------------------------------------------


def best_of(repeat: int, run: Callable[[], float]) -> float:
    return min(run() for _ in range(repeat))


def timed_add(location: str | Path, frame: Any) -> float:
    """Seconds ``store.add(frame)`` takes on a new store at ``location`` (kept afterwards)."""
    from geolabel.labels.store import create_store

    store = create_store(location, crs=CRS, overwrite=True)
    try:
        t0 = time.perf_counter()
        store.add(frame)
        return time.perf_counter() - t0
    finally:
        store.close()


def copy_limit(db: str, frame: Any) -> float:
    """Binary COPY of the same rows into a bare table (same columns and indexes, no
    triggers, no history, no validation) plus ANALYZE: what the database needs at least."""
    import psycopg
    import shapely

    from geolabel.labels.store import create_store

    create_store(pg_location(db, "bench_limit_src"), crs=CRS, overwrite=True).close()
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS bench_limit CASCADE; CREATE SCHEMA bench_limit")
        conn.execute("CREATE TABLE bench_limit.labels (LIKE bench_limit_src.labels INCLUDING ALL)")
        register_ewkb(conn)
        ewkb = shapely.to_wkb(shapely.set_srid(frame.geometry.values.to_numpy(), 32649), flavor="extended",
                              include_srid=True)  # fmt: skip
        now = datetime.now(timezone.utc)
        ids = [str(uuid.uuid4()) for _ in range(len(frame))]
        rows = zip(ewkb, ids, frame["class_code"].tolist(), frame["labeler"], frame["team"])
        cols = "geom, label_id, class_code, labeler, team, status, source, created, modified, version"
        t0 = time.perf_counter()
        with conn.transaction(), conn.cursor() as cur:
            with cur.copy(f"COPY bench_limit.labels ({cols}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["geometry", "text", "int4", "text", "text", "text", "text", "timestamptz",
                                "timestamptz", "int4"])  # fmt: skip
                for g, i, c, lab, team in rows:
                    copy.write_row((g, i, c, lab, team, "draft", "manual", now, now, 1))
            cur.execute("ANALYZE bench_limit.labels")
        elapsed = time.perf_counter() - t0
        conn.execute("DROP SCHEMA bench_limit CASCADE; DROP SCHEMA bench_limit_src CASCADE")
    return elapsed


def register_ewkb(conn: Any) -> None:
    """Send ``bytes`` to geometry columns as binary EWKB."""
    from psycopg.adapt import Dumper
    from psycopg.pq import Format
    from psycopg.types import TypeInfo

    info = TypeInfo.fetch(conn, "geometry")
    assert info is not None
    info.register(conn)

    class EwkbDumper(Dumper):
        format = Format.BINARY
        oid = info.oid

        def dump(self, obj: Any) -> bytes:
            return bytes(obj)

    conn.adapters.register_dumper(bytes, EwkbDumper)


def ogr2ogr_import(db: str, source: Path, count: int) -> float:
    """Seconds of ``ogr2ogr -f PostgreSQL`` (COPY, GiST index) into a new schema."""
    import psycopg

    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS bench_ogr CASCADE; CREATE SCHEMA bench_ogr")
        host, port = conn.info.host, conn.info.port
    target = f"PG:host={host} port={port} user=postgres dbname=geolabel_bench"
    cmd = ["ogr2ogr", "-f", "PostgreSQL", target, str(source), "labels", "-nln", "bench_ogr.labels",
           "-lco", "GEOMETRY_NAME=geom", "--config", "PG_USE_COPY", "YES"]  # fmt: skip
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    elapsed = time.perf_counter() - t0
    with psycopg.connect(db, autocommit=True) as conn:
        (n,) = conn.execute("SELECT count(*) FROM bench_ogr.labels").fetchone() or (0,)
        conn.execute("DROP SCHEMA bench_ogr CASCADE")
    assert n == count, f"ogr2ogr loaded {n} of {count} polygons"
    return elapsed


def to_postgis_import(db: str, frame: Any) -> float | None:
    """Seconds of geopandas ``to_postgis`` when SQLAlchemy and GeoAlchemy2 are installed."""
    try:
        import geoalchemy2  # noqa: F401
        import sqlalchemy
    except ImportError:
        return None
    engine = sqlalchemy.create_engine(db.replace("postgresql://", "postgresql+psycopg://"))
    t0 = time.perf_counter()
    frame.to_postgis("labels_to_postgis", engine, if_exists="replace", index=False)
    elapsed = time.perf_counter() - t0
    engine.dispose()
    return elapsed


def bench_import(db: str, work: Path, frame: Any, repeat: int) -> dict[str, float | None]:
    plain = work / "plain.gpkg"
    frame.to_file(plain, layer="labels", driver="GPKG")
    gpkg, pg = work / "import.gpkg", pg_location(db, "bench_import")
    return {
        "PostGIS store.add()": best_of(repeat, lambda: timed_add(pg, frame)),
        "GeoPackage store.add()": best_of(repeat, lambda: timed_add(gpkg, frame)),
        "ogr2ogr -f PostgreSQL (whole process)": (
            best_of(repeat, lambda: ogr2ogr_import(db, plain, len(frame))) if shutil.which("ogr2ogr") else None
        ),
        "geopandas to_postgis": to_postgis_import(db, frame),
        "limit: bare COPY + ANALYZE": best_of(repeat, lambda: copy_limit(db, frame)),
    }


# -- 2. bbox reads on a big store -------------------------------------------------------------


def build_big(location: str | Path, n: int, extent: tuple[float, float, float, float], chunk: int = 100_000) -> float:
    """Fill a new store with ``n`` labels in chunks; returns the seconds spent in ``add``."""
    from geolabel.labels.store import create_store

    spent = 0.0
    with create_store(location, crs=CRS, overwrite=True) as store:
        for first in range(0, n, chunk):
            frame = make_frame(min(chunk, n - first), extent, seed=3, first=first, total=n)
            t0 = time.perf_counter()
            store.add(frame)
            spent += time.perf_counter() - t0
    return spent


def windows(extent: tuple[float, float, float, float], count: int, seed: int = 9) -> list[tuple[float, ...]]:
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = extent
    xs = rng.uniform(x0, x1 - WINDOW_M, count)
    ys = rng.uniform(y0, y1 - WINDOW_M, count)
    return [(x, y, x + WINDOW_M, y + WINDOW_M) for x, y in zip(xs, ys)]


def read_latency(location: str | Path, boxes: list[tuple[float, ...]], how: str) -> dict[str, float]:
    """Median and p95 milliseconds of ``store.<how>(bbox=)`` over ``boxes`` (3 warm-up reads first)."""
    from geolabel.labels.store import open_store

    with open_store(location) as store:
        read = getattr(store, how)
        for box in boxes[:3]:
            read(bbox=box)
        times, counts = [], []
        for box in boxes:
            t0 = time.perf_counter()
            got = read(bbox=box)
            times.append((time.perf_counter() - t0) * 1000)
            counts.append(len(got))
    return {"median_ms": float(np.median(times)), "p95_ms": float(np.percentile(times, 95)),
            "labels": float(np.mean(counts))}  # fmt: skip


def bench_reads(db: str, work: Path, n: int, count: int) -> dict[str, Any]:
    side = 25.0 * np.sqrt(n)  # a label every 25 m
    extent = (600000.0, 3100000.0, 600000.0 + side, 3100000.0 + side)
    boxes = windows(extent, count)
    stores = {"PostGIS": pg_location(db, "bench_big"), "GeoPackage": work / "big.gpkg"}
    out: dict[str, Any] = {}
    for name, location in stores.items():
        out[f"{name} build"] = build_big(location, n, extent)
        out[f"{name} read"] = read_latency(location, boxes, "read")
        out[f"{name} query"] = read_latency(location, boxes, "query")
    return out


# -- 3. concurrent writers ------------------------------------------------------------------


def writer(location: str, seed: int, ready: Any, go: Any, seconds: float, results: Any) -> None:
    """One writer process: read-modify-write random labels until ``seconds`` have passed."""
    from geolabel.errors import StoreBusyError
    from geolabel.labels.store import ConflictError, open_store

    rng = random.Random(seed)
    ok = conflicts = busy = 0
    with open_store(location) as store:
        ids = store.read(fields=["label_id"]).columns["label_id"]
        ready.release()
        go.wait()
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            label_id = rng.choice(ids)
            version = store.read(label_ids=[label_id], fields=["version"]).columns["version"][0]
            try:
                store.update(label_id, expected_version=version, comment=f"writer {seed}")
                ok += 1
            except ConflictError:
                conflicts += 1
            except StoreBusyError:
                busy += 1
    results.put((ok, conflicts, busy))


def bench_writers(location: str | Path, count: int, seconds: float) -> dict[str, float]:
    """Updates per second of ``count`` writer processes on one store, conflicts, busy refusals."""
    ctx = multiprocessing.get_context("spawn")  # no connection inherited from this process
    ready, go, results = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=writer, args=(str(location), k, ready, go, seconds, results)) for k in range(count)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.acquire()
    t0 = time.perf_counter()
    go.set()
    totals = [results.get() for _ in procs]
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.join()
    ok, conflicts, busy = (sum(t[i] for t in totals) for i in range(3))
    return {"updates_per_s": ok / elapsed, "updates": ok, "conflicts": conflicts, "busy": busy}


def bench_concurrency(db: str, work: Path, writers: int, seconds: float) -> dict[str, dict[str, float]]:
    frame = make_frame(10_000, SCENE_EXTENT, seed=4)
    out = {}
    for name, location in (("PostGIS", pg_location(db, "bench_writers")), ("GeoPackage", work / "writers.gpkg")):
        timed_add(location, frame)
        out[name] = bench_writers(location, writers, seconds)
    return out


# -- 4. export ----------------------------------------------------------------------------------


def bench_export(db: str, work: Path, repeat: int) -> dict[str, float]:
    """``geolabel export --format geojson`` from the two 50,000-label stores of part 1."""
    from bench_tile import DATA, make_scene

    from geolabel import tile_raster

    DATA.mkdir(exist_ok=True)
    scene = make_scene(DATA / "scene_8192.tif", 8192)
    tiles = tile_raster(scene, work / "chips", size=512, workers=2)
    out = {}
    for name, store in (("PostGIS", pg_location(db, "bench_import")), ("GeoPackage", str(work / "import.gpkg"))):
        cmd = [sys.executable, "-m", "geolabel", "export", store, "--tiles", str(tiles.index_path), "-q",
               "--split", "1", "--format", "geojson", "--out", str(work / "ds")]  # fmt: skip
        out[name] = best_of(repeat, lambda cmd=cmd: run_timed(cmd, work / "ds"))
    return out


def run_timed(cmd: list[str], out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t0


# -- report ---------------------------------------------------------------------------------------


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return (f"{time.strftime('%Y-%m-%d')}, nproc {os.cpu_count()}, {cpu}, {mem_kb / 2**20:.0f} GiB RAM, "
            f"load average {os.getloadavg()[0]:.2f}, Python {platform.python_version()}")  # fmt: skip


def server_version(db: str) -> str:
    import psycopg

    with psycopg.connect(db) as conn:
        pg = conn.execute("SHOW server_version").fetchone()
        gis = conn.execute("SELECT postgis_lib_version()").fetchone()
    return f"PostgreSQL {pg[0] if pg else '?'}, PostGIS {gis[0] if gis else '?'}"


def report_import(imports: dict[str, float | None], args: argparse.Namespace) -> None:
    pg_add = imports["PostGIS store.add()"] or 1.0
    print(f"\n1. bulk import of {args.n:,} polygons (s, min of {args.repeat})      ratio to PostGIS store.add()")
    for name, s in imports.items():
        print(f"   {name:40s} " + (f"{s:6.2f}   {s / pg_add:5.2f}" if s else "  n/a (not installed)"))
    print(f"   target: PostGIS store.add() < 2 s: {'met' if pg_add < 2 else f'missed by {pg_add - 2:.2f} s'}")


def report_reads(reads: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"\n2. bbox reads of {WINDOW_M:g} m windows on {args.big:,} labels ({args.windows} windows)")
    for name in ("PostGIS", "GeoPackage"):
        print(f"   {name} build with store.add(): {reads[f'{name} build']:.1f} s")
    for how in ("read", "query"):
        for name in ("PostGIS", "GeoPackage"):
            r = reads[f"{name} {how}"]
            print(f"   {name:10s} store.{how}(bbox=)  median {r['median_ms']:6.1f} ms  p95 {r['p95_ms']:6.1f} ms  "
                  f"({r['labels']:.0f} labels per window)")  # fmt: skip
    for how in ("read", "query"):
        ratio = reads[f"GeoPackage {how}"]["median_ms"] / reads[f"PostGIS {how}"]["median_ms"]
        print(f"   {how}: GeoPackage / PostGIS median {ratio:.2f}")
    worst = max(reads[f"PostGIS {how}"]["p95_ms"] for how in ("read", "query"))
    print(
        f"   target: PostGIS < 50 ms: {'met' if worst < 50 else f'missed by {worst - 50:.1f} ms'} (p95 {worst:.1f} ms)"
    )


def report_writers(writes: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    print(f"\n3. {args.writers} concurrent writers, {args.seconds:g} s, 10,000 labels")
    for name, w in writes.items():
        print(f"   {name:10s} {w['updates_per_s']:7.0f} updates/s  ({w['updates']:.0f} updates, "
              f"{w['conflicts']:.0f} conflicts, {w['busy']:.0f} busy)")  # fmt: skip
    ratio = writes["PostGIS"]["updates_per_s"] / max(writes["GeoPackage"]["updates_per_s"], 1e-9)
    print(f"   PostGIS / GeoPackage {ratio:.2f}")


def report_export(export: dict[str, float], args: argparse.Namespace) -> None:
    print(f"\n4. geolabel export --format geojson of {args.n:,} labels, 256 chips (s, min of {args.repeat})")
    for name, s in export.items():
        print(f"   {name:10s} {s:6.2f}")
    print(f"   PostGIS / GeoPackage {export['PostGIS'] / export['GeoPackage']:.2f}")


PARTS = ("import", "reads", "writers", "export")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=50_000, help="labels imported and exported")
    parser.add_argument("--big", type=int, default=1_000_000, help="labels of the store the bbox reads run on")
    parser.add_argument("--windows", type=int, default=50)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0, help="how long the writers write")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pg", help="superuser URL of an existing server (default: start a throwaway one)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {','.join(PARTS)}")
    args = parser.parse_args()
    parts = args.parts.split(",")

    print(machine())
    work = Path(tempfile.mkdtemp(prefix="geolabel-bench-store-"))
    try:
        with postgres(args.pg) as db:
            print(server_version(db))
            frame = make_frame(args.n, SCENE_EXTENT, seed=1)
            if "import" in parts or "export" in parts:
                report_import(bench_import(db, work, frame, args.repeat), args)
            if "reads" in parts:
                report_reads(bench_reads(db, work, args.big, args.windows), args)
            if "writers" in parts:
                report_writers(bench_concurrency(db, work, args.writers, args.seconds), args)
            if "export" in parts:
                report_export(bench_export(db, work, args.repeat), args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

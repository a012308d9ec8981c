"""Benchmark ``geolabel tile`` against what users would otherwise run, and the hardware limit.

Scene: a generated 8192 x 8192, 4-band uint8 GeoTIFF, DEFLATE, 512 x 512 internal
blocks; 512 px chips (256 of them). Every contender runs as its own process (imports
and start-up included), 3 times; the minimum wall time is reported, with the peak
memory of the whole process tree (proportional set size, sampled every 20 ms with psutil).

Contenders:
- ``geolabel tile`` keeping the source compression (block copy: each window decoded once
  to check its blocks, or with ``--no-verify-blocks`` not decoded at all), and with
  ``--compress none``, on all cores;
- the naive rasterio loop (for each window: read all bands, write a GTiff with the
  source profile), with DEFLATE and uncompressed;
- ``gdal_retile.py -ps 512 512`` with and without ``-co COMPRESS=DEFLATE`` (Debian's
  GDAL), if installed;
- the limits, on all cores: decode every pixel once and write the same bytes as raw
  uncompressed chips (the limit of ``--compress none``); decode only, on both scenes
  (what the checked copy and a scene with nodata must at least do); copy each chip's
  compressed blocks (table from GDAL's ``BLOCK_OFFSET``/``BLOCK_SIZE`` items) into a
  file without decoding (the limit of ``--no-verify-blocks``), and both at once (every
  path that decodes to check or count and then copies the blocks does at least that).

Usage::

    .venv/bin/python bench/bench_tile.py            # 8192 px scene, writes bench/RESULTS-tile.json
    .venv/bin/python bench/bench_tile.py --memory   # also peak memory at 2048 vs 16384 px
    .venv/bin/python bench/bench_tile.py --marginal # fixed cost vs per-chip work (4096 and 8192 px)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data"
PY = sys.executable
GEOLABEL = [PY, "-m", "geolabel"]


def make_scene(path: Path, size: int, *, nodata: int | None = None, seed: int = 7) -> Path:
    """A seeded scene with field-like structure plus sensor noise (DEFLATE keeps ~70 % of the bytes)."""
    if path.exists():
        return path
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    rng = np.random.default_rng(seed)
    tmp = path.with_suffix(".tmp.tif")
    profile = dict(
        driver="GTiff",
        width=size,
        height=size,
        count=4,
        dtype="uint8",
        crs="EPSG:32649",
        transform=from_origin(680000, 3125000, 0.5, 0.5),
        tiled=True,
        blockxsize=512,
        blockysize=512,
        compress="deflate",
        interleave="pixel",
        photometric="RGB",
        nodata=nodata,
        BIGTIFF="IF_SAFER",
    )
    coarse = rng.integers(30, 220, size=(4, size // 64 + 1, size // 64 + 1), dtype=np.uint8)
    with rasterio.open(tmp, "w", **profile) as dst:
        dst.descriptions = ("red", "green", "blue", "nir")
        for row in range(0, size, 512):
            band = np.repeat(np.repeat(coarse[:, row // 64 : row // 64 + 8], 64, axis=1), 64, axis=2)[:, :, :size]
            noise = rng.normal(0, 2, size=band.shape)
            block = np.clip(band + noise, 1, 255).astype(np.uint8)
            if nodata is not None:
                block[:, :, : size // 10] = nodata  # a nodata collar on the left
            dst.write(block, window=Window(0, row, size, 512))
    tmp.rename(path)
    return path


NAIVE = textwrap.dedent(
    """
    import sys, rasterio
    from rasterio.windows import Window
    src_path, out, compress = sys.argv[1], sys.argv[2], sys.argv[3]
    with rasterio.open(src_path) as src:
        profile = src.profile.copy()
        profile.update(width=512, height=512)
        if compress == "none":
            profile.pop("compress", None)
        for row in range(0, src.height, 512):
            for col in range(0, src.width, 512):
                w = Window(col, row, 512, 512)
                data = src.read(window=w)
                profile["transform"] = src.window_transform(w)
                with rasterio.open(f"{out}/chip_{row}_{col}.tif", "w", **profile) as dst:
                    dst.write(data)
    """
)

LIMIT = textwrap.dedent(
    """
    import sys, os, rasterio
    from multiprocessing import get_context
    from rasterio.windows import Window
    src_path, out, write = sys.argv[1], sys.argv[2], sys.argv[3] == "write"
    def work(rows):
        with rasterio.Env(GDAL_CACHEMAX=64), rasterio.open(src_path) as src:
            for row in rows:
                for col in range(0, src.width, 512):
                    data = src.read(window=Window(col, row, 512, 512))
                    if write:
                        data.tofile(f"{out}/chip_{row}_{col}.raw")
    if __name__ == "__main__":
        with rasterio.open(src_path) as src:
            rows = list(range(0, src.height, 512))
        n = os.cpu_count()
        with get_context("fork").Pool(n) as pool:
            pool.map(work, [rows[i::n] for i in range(n)])
    """
)


COPY_LIMIT = textwrap.dedent(
    """
    import sys, os, rasterio
    from multiprocessing import get_context
    from rasterio.windows import Window
    src_path, out, decode = sys.argv[1], sys.argv[2], sys.argv[3] == "decode"
    def work(blocks):
        fd = os.open(src_path, os.O_RDONLY)
        with rasterio.Env(GDAL_CACHEMAX=64), rasterio.open(src_path) as src:
            bh, bw = src.block_shapes[0]
            for y, x, off, size in blocks:
                if decode:
                    src.read(window=Window(x * bw, y * bh, bw, bh))
                with open(f"{out}/chip_{y}_{x}.bin", "wb") as fh:
                    fh.write(os.pread(fd, size, off))
        os.close(fd)
    if __name__ == "__main__":
        with rasterio.open(src_path) as src:
            bh, bw = src.block_shapes[0]
            item = lambda key: int(src.get_tag_item(key, "TIFF", bidx=1))
            blocks = [
                (y, x, item(f"BLOCK_OFFSET_{x}_{y}"), item(f"BLOCK_SIZE_{x}_{y}"))
                for y in range(-(-src.height // bh))
                for x in range(-(-src.width // bw))
            ]
        n = os.cpu_count()
        with get_context("fork").Pool(n) as pool:
            pool.map(work, [blocks[i::n] for i in range(n)])
    """
)


def _pss(proc: object) -> int:
    """Proportional set size: shared pages (forked workers) are split between processes, so
    the sum over a process tree is its real memory use (plain RSS would count them twice)."""
    try:
        return int(proc.memory_full_info().pss)  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        return int(proc.memory_info().rss)  # type: ignore[attr-defined]


def retire(out: Path) -> None:
    """Move a finished run's output aside (into ``<parent>/retired``), deleted only when the
    whole benchmark ends (with its work folder).

    Deleting it before the next run made that run slower, and by how much depended on how
    many files each contender writes: ext4 without a journal (this VM's root) skips inodes
    freed in the last 5 to 35 s when it allocates new ones (``recently_deleted``), which took
    about 0.3 s of kernel time from an export creating 500 files right after the previous
    run's 500 were deleted (0.58 s of system time against 0.29 s with nothing deleted). On a
    file system mounted with ``discard`` (this VM) freed blocks are also trimmed while the
    next run writes (up to 2x slower).
    """
    if out.exists():
        retired = out.parent / "retired"
        retired.mkdir(exist_ok=True)
        out.rename(retired / f"{out.name}-{time.monotonic_ns()}")


def measure_rounds(
    contenders: dict[str, list[str]], *, out: Path, repeat: int, px: int, warm: Sequence[Path] = ()
) -> dict[str, dict[str, float]]:
    """:func:`measure` of every contender once per round, ``repeat`` rounds: a slow spell of
    this shared VM (seen: 30 % for a minute) then hits every contender alike instead of all
    runs of one. The inputs in ``warm`` are read before each run (this VM drops cold pages
    from its cache within minutes)."""
    walls: dict[str, list[float]] = {name: [] for name in contenders}
    peaks: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeat):
        for name, cmd in contenders.items():
            for path in warm:
                Path(path).read_bytes()
            m = measure(cmd, out=out, repeat=1, px=px)
            walls[name].append(m["wall_s"])
            peaks[name].append(m["peak_mb"])
    return {
        name: {"wall_s": min(walls[name]), "peak_mb": max(peaks[name]), "pixel_mib": 4 * px * px / 2**20}
        for name in contenders
    }


def measure(cmd: list[str], *, out: Path | None = None, repeat: int = 3, px: int = 8192) -> dict[str, float]:
    """Min wall time (s) over ``repeat`` runs and the max peak memory (MB, PSS summed over
    the process tree, sampled every 20 ms)."""
    import psutil

    walls, peaks = [], []
    for _ in range(repeat):
        if out is not None:
            retire(out)
            out.mkdir(parents=True)
        os.sync()  # the previous run's writes on disk before this one starts
        time.sleep(1.0)
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        ps = psutil.Process(proc.pid)
        peak = 0
        while proc.poll() is None:
            with contextlib.suppress(psutil.Error):
                peak = max(peak, sum(_pss(p) for p in [ps, *ps.children(recursive=True)]))
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        if proc.returncode:
            raise RuntimeError(f"{cmd} failed: {proc.stderr.read().decode()[-2000:]}")
        walls.append(wall)
        peaks.append(peak / 2**20)
    return {"wall_s": min(walls), "peak_mb": max(peaks), "pixel_mib": 4 * px * px / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory", action="store_true", help="also compare peak memory at 2048 and 16384 px")
    parser.add_argument(
        "--marginal",
        action="store_true",
        help="only: each path and its limit at half the size too (fixed vs per-chip cost)",
    )
    args = parser.parse_args()
    if args.marginal:
        marginal(args.size, args.repeat)
        return

    DATA.mkdir(exist_ok=True)
    scene = make_scene(DATA / f"scene_{args.size}.tif", args.size)
    scene_nd = make_scene(DATA / f"scene_{args.size}_nodata.tif", args.size, nodata=0)
    mib = 4 * args.size * args.size / 2**20
    Path(scene).read_bytes()  # warm the page cache
    work = Path(tempfile.mkdtemp(prefix="geolabel-bench-"))
    retile = shutil.which("gdal_retile.py")
    # gdal_retile.py is Debian's script for Debian's python3 (python3-gdal)
    retile_py = "/usr/bin/python3"

    naive = work / "naive.py"
    naive.write_text(NAIVE)
    limit = work / "limit.py"
    limit.write_text(LIMIT)
    copy_limit = work / "copy_limit.py"
    copy_limit.write_text(COPY_LIMIT)
    o = work / "out"
    px = args.size
    contenders = {
        "limit: decode all pixels (all cores)": [PY, str(limit), str(scene), str(o), "nowrite"],
        "limit: decode + write raw chips (all cores)": [PY, str(limit), str(scene), str(o), "write"],
        "limit: decode all pixels, nodata scene (all cores)": [PY, str(limit), str(scene_nd), str(o), "nowrite"],
        "limit: copy compressed blocks, no decode (all cores)": [PY, str(copy_limit), str(scene), str(o), "copy"],
        "limit: decode all pixels + copy the blocks, nodata scene (all cores)": [
            PY,
            str(copy_limit),
            str(scene_nd),
            str(o),
            "decode",
        ],
        "geolabel tile (keep DEFLATE)": [*GEOLABEL, "tile", str(scene), "--out", str(o), "-q"],
        "geolabel tile --no-verify-blocks (keep DEFLATE)": [
            *GEOLABEL,
            "tile",
            str(scene),
            "--out",
            str(o),
            "-q",
            "--no-verify-blocks",
        ],
        "geolabel tile, nodata scene (keep DEFLATE)": [*GEOLABEL, "tile", str(scene_nd), "--out", str(o), "-q"],
        "geolabel tile --compress none": [*GEOLABEL, "tile", str(scene), "--out", str(o), "-q", "--compress", "none"],
        "geolabel tile --workers 1 (keep DEFLATE)": [
            *GEOLABEL,
            "tile",
            str(scene),
            "--out",
            str(o),
            "-q",
            "--workers",
            "1",
        ],
        "naive rasterio loop (source profile, DEFLATE)": [PY, str(naive), str(scene), str(o), "deflate"],
        "naive rasterio loop (uncompressed)": [PY, str(naive), str(scene), str(o), "none"],
    }
    if retile:
        contenders["gdal_retile.py -ps 512 512"] = [
            retile_py,
            retile,
            "-ps",
            "512",
            "512",
            "-targetDir",
            str(o),
            str(scene),
        ]
        contenders["gdal_retile.py -ps 512 512 -co COMPRESS=DEFLATE"] = [
            retile_py,
            retile,
            "-ps",
            "512",
            "512",
            "-co",
            "COMPRESS=DEFLATE",
            "-targetDir",
            str(o),
            str(scene),
        ]
    runs = measure_rounds(contenders, out=o, repeat=args.repeat, px=px, warm=(scene, scene_nd))
    if args.memory:
        for size in (2048, 16384):
            big = make_scene(DATA / f"scene_{size}.tif", size)
            runs[f"geolabel tile --compress none, {size} px scene"] = measure(
                [*GEOLABEL, "tile", str(big), "--out", str(o), "-q", "--compress", "none"], out=o, repeat=1, px=size
            )
            runs[f"geolabel tile --compress zstd, {size} px scene"] = measure(
                [*GEOLABEL, "tile", str(big), "--out", str(o), "-q", "--compress", "zstd"], out=o, repeat=1, px=size
            )
    shutil.rmtree(work, ignore_errors=True)

    lim = runs["limit: decode + write raw chips (all cores)"]["wall_s"]
    print(f"\nscene {args.size} x {args.size} x 4 uint8 ({mib:.0f} MiB of pixels), {os.cpu_count()} cores")
    print(f"{'contender':52s} {'wall s':>7s} {'MB/s':>7s} {'peak MB':>8s} {'x limit':>8s}")
    for name, m in runs.items():
        print(
            f"{name:52s} {m['wall_s']:7.2f} {m['pixel_mib'] / m['wall_s']:7.0f} {m['peak_mb']:8.0f} {m['wall_s'] / lim:8.2f}"
        )
    wall = {name: m["wall_s"] for name, m in runs.items()}
    ratios = {
        # the table: each geolabel path over the least work it must do
        "nodata scene / decode-only limit (nodata scene)": wall["geolabel tile, nodata scene (keep DEFLATE)"]
        / wall["limit: decode all pixels, nodata scene (all cores)"],
        "nodata scene / decode + copy limit (nodata scene)": wall["geolabel tile, nodata scene (keep DEFLATE)"]
        / wall["limit: decode all pixels + copy the blocks, nodata scene (all cores)"],
        "blocks checked / decode-only limit": wall["geolabel tile (keep DEFLATE)"]
        / wall["limit: decode all pixels (all cores)"],
        "--no-verify-blocks / copy limit": wall["geolabel tile --no-verify-blocks (keep DEFLATE)"]
        / wall["limit: copy compressed blocks, no decode (all cores)"],
        "uncompressed chips / limit": runs["geolabel tile --compress none"]["wall_s"] / lim,
        "naive uncompressed / geolabel uncompressed": runs["naive rasterio loop (uncompressed)"]["wall_s"]
        / runs["geolabel tile --compress none"]["wall_s"],
        "naive DEFLATE / geolabel DEFLATE": runs["naive rasterio loop (source profile, DEFLATE)"]["wall_s"]
        / runs["geolabel tile (keep DEFLATE)"]["wall_s"],
    }
    if retile:
        ratios["gdal_retile DEFLATE / geolabel DEFLATE"] = (
            runs["gdal_retile.py -ps 512 512 -co COMPRESS=DEFLATE"]["wall_s"]
            / runs["geolabel tile (keep DEFLATE)"]["wall_s"]
        )
        ratios["gdal_retile DEFLATE / geolabel DEFLATE --no-verify-blocks"] = (
            runs["gdal_retile.py -ps 512 512 -co COMPRESS=DEFLATE"]["wall_s"]
            / runs["geolabel tile --no-verify-blocks (keep DEFLATE)"]["wall_s"]
        )
        ratios["gdal_retile DEFLATE / geolabel DEFLATE, nodata scene"] = (
            runs["gdal_retile.py -ps 512 512 -co COMPRESS=DEFLATE"]["wall_s"]
            / runs["geolabel tile, nodata scene (keep DEFLATE)"]["wall_s"]
        )
        ratios["gdal_retile uncompressed / geolabel uncompressed"] = (
            runs["gdal_retile.py -ps 512 512"]["wall_s"] / runs["geolabel tile --compress none"]["wall_s"]
        )
    print()
    for name, value in ratios.items():
        print(f"{name:52s} {value:6.2f}")
    print("\nMarkdown for bench/RESULTS.md:\n")
    print("| contender | wall s | MiB/s | peak MB | x limit |\n|---|---:|---:|---:|---:|")
    for name, m in runs.items():
        rate = m["pixel_mib"] / m["wall_s"]
        print(f"| {name} | {m['wall_s']:.2f} | {rate:.0f} | {m['peak_mb']:.0f} | {m['wall_s'] / lim:.2f} |")
    print("\n| ratio | value |\n|---|---:|")
    for name, value in ratios.items():
        print(f"| {name} | {value:.2f} |")
    record = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "scene_px": args.size,
        "runs": runs,
        "ratios": ratios,
    }
    (HERE / "RESULTS-tile.json").write_text(json.dumps(record, indent=2) + "\n")


#: (geolabel path, its limit): what :func:`marginal` compares.
MARGINAL_PAIRS = {
    "nodata scene / decode-only limit": ("geolabel nodata scene", "limit: decode, nodata scene"),
    "--no-verify-blocks / copy limit": ("geolabel --no-verify-blocks", "limit: copy blocks"),
    "uncompressed / decode + write limit": ("geolabel --compress none", "limit: decode + write raw"),
}


def marginal(size: int, repeat: int) -> None:
    """Each tiling path and its limit on scenes of ``size // 2`` and ``size`` px, contenders
    alternating: the whole-run ratio at ``size``, what the three times more chips of the
    larger scene add (the per-chip work, both ways), and the fixed cost (the difference at
    ``size // 2``). Where the limit's chips cost almost nothing (copying blocks), their
    difference is within this VM's noise: read the seconds, not a ratio."""
    work = Path(tempfile.mkdtemp(prefix="geolabel-bench-"))
    (work / "limit.py").write_text(LIMIT)
    (work / "copy_limit.py").write_text(COPY_LIMIT)
    out, contenders, warm = work / "out", {}, []
    for px in (size // 2, size):
        scene, scene_nd = (
            make_scene(DATA / f"scene_{px}.tif", px),
            make_scene(DATA / f"scene_{px}_nodata.tif", px, nodata=0),
        )
        warm += [scene, scene_nd]
        tile = [*GEOLABEL, "tile", "--out", str(out), "-q"]
        contenders |= {
            f"{px} limit: decode, nodata scene": [PY, str(work / "limit.py"), str(scene_nd), str(out), "nowrite"],
            f"{px} geolabel nodata scene": [*tile, str(scene_nd)],
            f"{px} limit: copy blocks": [PY, str(work / "copy_limit.py"), str(scene), str(out), "copy"],
            f"{px} geolabel --no-verify-blocks": [*tile, str(scene), "--no-verify-blocks"],
            f"{px} limit: decode + write raw": [PY, str(work / "limit.py"), str(scene), str(out), "write"],
            f"{px} geolabel --compress none": [*tile, str(scene), "--compress", "none"],
        }
    wall = {k: v["wall_s"] for k, v in measure_rounds(contenders, out=out, repeat=repeat, px=size, warm=warm).items()}
    shutil.rmtree(work, ignore_errors=True)
    half = size // 2
    print(f"| path ({half} and {size} px scenes) | whole run | 3x more chips: geolabel vs limit | fixed cost |")
    print("|---|---:|---:|---:|")
    for name, (ours, limit) in MARGINAL_PAIRS.items():
        ours_more = wall[f"{size} {ours}"] - wall[f"{half} {ours}"]
        limit_more = wall[f"{size} {limit}"] - wall[f"{half} {limit}"]
        fixed = wall[f"{half} {ours}"] - wall[f"{half} {limit}"]
        whole = wall[f"{size} {ours}"] / wall[f"{size} {limit}"]
        print(f"| {name} | {whole:.2f} | {ours_more:.3f} s vs {limit_more:.3f} s | {fixed:+.3f} s |")


if __name__ == "__main__":
    main()

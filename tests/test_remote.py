"""Scenes behind http:// and s3:// URLs, served by a loopback server with range support."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from geolabel.blockcopy import block_table
from geolabel.cli import main
from geolabel.remote import fetch_blocks, gdal_options, gdal_path
from geolabel.tileindex import INDEX_NAME, read_index
from geolabel.tiling import tile_raster

from . import rangeserver
from .conftest import SAMPLE
from .rangeserver import RangeServer

range_server = rangeserver.range_server  # the fixture, for the tests of this module

VILLAGE = SAMPLE / "village.tif"  # 2048 x 2048 px, 4 bands, DEFLATE in 512 px tiles, nodata 0


def serve(server: RangeServer, source: Path = VILLAGE, *, folder: str = "") -> tuple[str, str]:
    """Put ``source`` on the server under a new name (GDAL caches a URL's bytes for the life
    of the process); returns (its URL, the name it is served under)."""
    name = f"{folder}{source.stem}_{uuid.uuid4().hex[:8]}.tif"
    (server.folder / name).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, server.folder / name)
    return server.url(name), name


def chip_digests(out: Path) -> dict[str, str]:
    """sha256 of every chip, by its row and column (``r000_c001``: scene names differ)."""
    return {"_".join(p.stem.split("_")[-2:]): hashlib.sha256(p.read_bytes()).hexdigest() for p in out.glob("*/*.tif")}


def index_rows(out: Path) -> list[tuple[object, ...]]:
    """The index's chip and skipped rows without the scene's name and location."""
    chips, skipped, _params = read_index(out / INDEX_NAME)
    return sorted(
        (
            r.row,
            r.col,
            r.row_off,
            r.col_off,
            r.width,
            r.height,
            round(r.nodata_fraction, 9),
            r.crs,
            r.transform,
            r.path != "",
        )
        for r in chips + skipped
    )


def compressed_bytes(out: Path) -> int:
    """The compressed image bytes of every chip in ``out`` (their tiles, not headers)."""
    total = 0
    for chip in out.glob("*/*.tif"):
        with rasterio.open(chip) as src:
            total += int(block_table(src)[1].sum())
    return total


def test_block_copy_over_http_equals_local_and_fetches_each_block_once(range_server, tmp_path):
    url, name = serve(range_server)
    remote = tile_raster(url, tmp_path / "remote", size=512, workers=1)
    local = tile_raster(VILLAGE, tmp_path / "local", size=512, workers=1)
    assert [s.fast_path for s in remote.scenes] == ["block copy"] and remote.scenes[0].copied == 16
    assert chip_digests(tmp_path / "remote") == chip_digests(tmp_path / "local")
    assert len(chip_digests(tmp_path / "local")) == 16
    assert index_rows(tmp_path / "remote") == index_rows(tmp_path / "local")
    assert remote.chips[0].scene_path == url and remote.scenes[0].scene == name[:-4]
    assert range_server.served[name] < 1.2 * compressed_bytes(tmp_path / "remote")
    assert local.written == 16


def test_uncompressed_chips_over_http_are_decoded_from_blocks_fetched_once(range_server, tmp_path):
    url, name = serve(range_server)
    remote = tile_raster(url, tmp_path / "remote", size=512, compress="none", workers=1)
    tile_raster(VILLAGE, tmp_path / "local", size=512, compress="none", workers=1, block_copy=False)
    assert remote.written == len(chip_digests(tmp_path / "remote")) == 16
    assert chip_digests(tmp_path / "remote") == chip_digests(tmp_path / "local")  # GDAL's decoding, byte for byte
    assert index_rows(tmp_path / "remote") == index_rows(tmp_path / "local")
    # each block once (plus the header and the last block GDAL reads when opening the
    # scene): a second decoding by GDAL would fetch the file twice
    assert range_server.served[name] < 1.2 * VILLAGE.stat().st_size


def test_decoded_chips_over_http_equal_local_ones(range_server, tmp_path):
    url, name = serve(range_server)
    remote = tile_raster(url, tmp_path / "remote", size=384, workers=1)
    tile_raster(VILLAGE, tmp_path / "local", size=384, workers=1)
    assert remote.scenes[0].fast_path.startswith("chip size/overlap are not multiples")
    # blocks shared by neighbouring chips come from GDAL's download cache: the file once
    assert range_server.served[name] < 1.01 * VILLAGE.stat().st_size
    assert len(chip_digests(tmp_path / "remote")) == 36
    assert chip_digests(tmp_path / "remote") == chip_digests(tmp_path / "local")
    assert index_rows(tmp_path / "remote") == index_rows(tmp_path / "local")


def test_s3_scene_is_read_through_vsis3_anonymously(range_server, tmp_path, monkeypatch):
    """``s3://bucket/key`` against the loopback server as the S3 endpoint (path style, no
    TLS); no credentials in the environment, so GDAL signs nothing."""
    _url, name = serve(range_server, folder="bucket/")
    endpoint = range_server.url("")[len("http://") :].rstrip("/")
    for var in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_NO_SIGN_REQUEST"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_S3_ENDPOINT", endpoint)
    monkeypatch.setenv("AWS_HTTPS", "NO")
    monkeypatch.setenv("AWS_VIRTUAL_HOSTING", "FALSE")
    assert gdal_options(f"s3://{name}")["AWS_NO_SIGN_REQUEST"] == "YES"
    remote = tile_raster(f"s3://{name}", tmp_path / "remote", size=512, workers=1)
    tile_raster(VILLAGE, tmp_path / "local", size=512, workers=1, block_copy=False)
    assert remote.scenes[0].fast_path.startswith("source is on S3")
    assert chip_digests(tmp_path / "remote") == chip_digests(tmp_path / "local")
    assert remote.chips[0].scene_path == f"s3://{name}"


def test_a_503_that_recovers_is_retried_by_geolabel_and_by_gdal(range_server, tmp_path):
    url, name = serve(range_server)
    range_server.fail_next[name] = 2  # the first read of the scene is geolabel's
    result = tile_raster(url, tmp_path / "out", size=512, workers=1)
    assert result.written == 16 and range_server.fail_next[name] == 0
    with rasterio.Env(**gdal_options(url)), rasterio.open(gdal_path(url)) as src:
        range_server.fail_next[name] = 2  # the next reads are GDAL's
        data = src.read(1, window=((1024, 1040), (1024, 1040)))
    with rasterio.open(VILLAGE) as src:
        assert np.array_equal(data, src.read(1, window=((1024, 1040), (1024, 1040))))
    assert range_server.fail_next[name] == 0


def test_block_fetches_coalesce_adjacent_blocks_and_retry(range_server):
    url, name = serve(range_server)
    with rasterio.open(VILLAGE) as src:
        offsets, sizes = block_table(src)
    data = VILLAGE.read_bytes()
    want = [data[o : o + s] for o, s in zip(offsets[:2, :2].ravel(), sizes[:2, :2].ravel())]
    range_server.reset()
    range_server.fail_next[name] = 2
    assert fetch_blocks(url, offsets[:2, :2], sizes[:2, :2]) == want
    adjacent_pairs = int(offsets[0, 1] == offsets[0, 0] + sizes[0, 0]) + int(
        offsets[1, 1] == offsets[1, 0] + sizes[1, 0]
    )
    assert range_server.requests[name] == 2 + 4 - adjacent_pairs
    assert range_server.served[name] == int(sizes[:2, :2].sum())


def cli(*args: str):
    return CliRunner().invoke(main, ["tile", *args], catch_exceptions=False)


@pytest.mark.parametrize(("status", "problem"), [(404, "not found (HTTP 404)"), (403, "access denied (HTTP 403)")])
def test_404_and_403_are_one_line_exit_2_and_no_output(range_server, tmp_path, status, problem):
    url, name = serve(range_server)
    if status == 404:
        (range_server.folder / name).unlink()
    else:
        range_server.forbidden.add(name)
    res = cli(url, "--out", str(tmp_path / "out"), "--workers", "1")
    assert res.exit_code == 2
    assert [line for line in res.output.splitlines() if line] == [f"geolabel: error: {url}: {problem}"]
    assert not (tmp_path / "out").exists()


def test_scene_list_file_mixes_urls_and_paths_relative_to_it(range_server, tmp_path):
    url, name = serve(range_server)
    (tmp_path / "lists").mkdir()
    shutil.copyfile(SAMPLE / "naip_northdakota_2020.tif", tmp_path / "naip.tif")
    (tmp_path / "lists" / "scenes.txt").write_text(f"# two scenes\n\n{url}\n../naip.tif\n")
    res = cli("--scenes", str(tmp_path / "lists" / "scenes.txt"), "--out", str(tmp_path / "out"), "--workers", "1")
    assert res.exit_code == 0, res.output
    chips, _skipped, _ = read_index(tmp_path / "out" / INDEX_NAME)
    assert {r.scene_path for r in chips} == {url, str(tmp_path / "naip.tif")}
    assert {r.scene for r in chips} == {name[:-4], "naip"}


def test_scene_list_missing_or_no_scene_at_all_is_one_line_exit_2(tmp_path):
    res = cli("--scenes", str(tmp_path / "nope.txt"), "--out", str(tmp_path / "out"))
    assert res.exit_code == 2 and res.output.strip() == f"geolabel: error: {tmp_path / 'nope.txt'}: no such file"
    (tmp_path / "empty.txt").write_text("# nothing yet\n")
    res = cli("--scenes", str(tmp_path / "empty.txt"), "--out", str(tmp_path / "out"))
    assert res.exit_code == 2 and res.output.count("geolabel: error: no scene given") == 1
    assert not (tmp_path / "out").exists()


def test_rerun_of_a_remote_run_rewrites_nothing(range_server, tmp_path):
    url, name = serve(range_server)
    out = tmp_path / "out"
    first = cli(url, "--out", str(out), "--workers", "1")
    assert first.exit_code == 0, first.output
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/*.tif")}
    range_server.reset()
    # a fresh process: nothing of the scene in GDAL's cache
    cmd = [sys.executable, "-m", "geolabel", "tile", url, "--out", str(out), "--workers", "1"]
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "0 chips written" in again.stdout and "16 already done" in again.stdout, again.stdout
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/*.tif")} == stamps
    with rasterio.open(VILLAGE) as src:
        last_block = int(block_table(src)[1][-1, -1])
    # the header, and the last block (the scene check decodes its last pixel): no chip's blocks
    assert range_server.served[name] < last_block + 64 * 1024


def test_a_stac_item_collection_served_over_http_tiles_with_the_items_metadata(range_server, tmp_path):
    """The whole remote path: pystac reads the ItemCollection over HTTP, its relative asset
    href resolves to a URL on the same server, the scene is read with range requests, and
    the item's id, datetime, platform and cloud cover land in the index."""
    import datetime as dt

    import pyogrio
    import pystac

    _, name = serve(range_server, VILLAGE, folder="stac/")
    item = pystac.Item(
        "village-2020-05-01",
        geometry=None,
        bbox=None,
        datetime=dt.datetime(2020, 5, 1, 3, 12, tzinfo=dt.timezone.utc),
        properties={"platform": "gf-2", "eo:cloud_cover": 3.5},
    )
    item.add_asset("visual", pystac.Asset(href=name.split("/", 1)[1], media_type=pystac.MediaType.COG))
    doc = pystac.ItemCollection([item]).to_dict(transform_hrefs=False)
    (range_server.folder / "stac" / "items.json").write_text(json.dumps(doc))
    res = cli("--stac", range_server.url("stac/items.json"), "--asset", "visual", "--out", str(tmp_path / "r"))
    assert res.exit_code == 0, res.output
    tile_raster(VILLAGE, tmp_path / "local", size=512, workers=1)
    assert chip_digests(tmp_path / "r") == chip_digests(tmp_path / "local")
    assert len(list((tmp_path / "r" / "village-2020-05-01").glob("*.tif"))) == 16
    rows = pyogrio.read_dataframe(tmp_path / "r" / INDEX_NAME, layer="tiles", read_geometry=False)
    assert set(rows["scene"]) == {"village-2020-05-01"}
    assert set(rows["scene_path"]) == {range_server.url(name)}
    assert set(rows["datetime"]) == {"2020-05-01T03:12:00Z"}
    assert set(rows["platform"]) == {"gf-2"} and set(rows["cloud_cover"]) == {3.5}


def test_a_server_without_range_requests_is_one_line_with_what_to_do(tmp_path):
    """Python's own `http.server` answers every request with the whole file (HTTP 200)."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    shutil.copyfile(VILLAGE, tmp_path / "v.tif")

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):  # the server's own log is no output of geolabel's
            pass

    handler = functools.partial(Quiet, directory=str(tmp_path))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/v.tif"
        res = CliRunner().invoke(main, ["tile", url, "--out", str(tmp_path / "out")])
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [
        f"geolabel: error: {url}: the server does not answer byte-range requests (HTTP 200); serve the scene from "
        "one that does (nginx, Apache, S3 and most CDNs do) or download it first"
    ]
    assert not (tmp_path / "out").exists()

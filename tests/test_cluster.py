"""Batch commands on a real Dask cluster (tests/daskcluster.py: `dask scheduler` and
`dask worker` processes on loopback) write exactly what a serial run writes, also when a
worker dies in the middle of the job."""

from __future__ import annotations

import shutil
import signal
import sys
from pathlib import Path

import pyogrio
import pytest

from tests import rangeserver
from tests.badinput import assert_one_line_error, run_geolabel
from tests.conftest import SAMPLE, make_scene, village_store
from tests.outputs import chip_bytes, dataset_state
from tests.test_remote import chip_digests, serve

range_server = rangeserver.range_server  # the fixture

pytestmark = pytest.mark.usefixtures("dask_cluster")


def index_rows(index: Path) -> list[tuple]:
    """The chip rows of a tile index (attributes and footprint corners), in grid order."""
    df = pyogrio.read_dataframe(index, layer="tiles")
    rows = df.drop(columns="geometry").astype(str).itertuples(index=False)
    corners = [tuple(round(c, 6) for c in g.exterior.coords[0]) for g in df.geometry]
    return sorted(zip(rows, corners))


def tiled(out: Path) -> dict[str, dict[str, str]]:
    """sha256 of every chip, per scene folder."""
    return {d.name: chip_bytes(d) for d in sorted(out.iterdir()) if d.is_dir()}


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> list[Path]:
    """A block-copy scene (tiled DEFLATE, no nodata) and a decode-path scene (nodata collar,
    strips) beside the village sample."""
    root = tmp_path_factory.mktemp("scenes")
    return [
        SAMPLE / "village.tif",
        make_scene(root / "blocks.tif", width=1024, height=768, nodata=None, block=256, seed=1),
        make_scene(root / "collar.tif", width=900, height=700, collar=300, block=None, seed=2),
    ]


def test_tiling_on_the_cluster_writes_what_a_serial_run_writes(dask_cluster, scenes, tmp_path):
    from geolabel import tile_raster
    from geolabel.cluster import cluster_executor

    serial = tile_raster(scenes, tmp_path / "serial", size=256, max_nodata=0.5, workers=1)
    with cluster_executor(str(dask_cluster.scheduler_file)) as executor:
        remote = tile_raster(scenes, tmp_path / "cluster", size=256, max_nodata=0.5, executor=executor)
    assert remote.written == serial.written > 20
    assert remote.n_skipped == serial.n_skipped > 0  # the collar's chips
    assert {s.scene: s.copied for s in remote.scenes}["blocks"] == 12  # block copy ran on the workers
    assert tiled(tmp_path / "cluster") == tiled(tmp_path / "serial")
    assert index_rows(remote.index_path) == index_rows(serial.index_path)


def test_cli_runs_on_the_scheduler_it_is_given_with_relative_paths(dask_cluster, tmp_path):
    """The workers run in another folder: relative paths on the command line must still work."""
    shutil.copy(SAMPLE / "village.tif", tmp_path / "v.tif")
    by_flag = run_geolabel("tile", "v.tif", "--out", "a", "--scheduler", dask_cluster.address, "-q", cwd=tmp_path)
    assert by_flag.code == 0, by_flag.stderr
    env = {"GEOLABEL_SCHEDULER": str(dask_cluster.scheduler_file)}
    by_env = run_geolabel("tile", "v.tif", "--out", "b", cwd=tmp_path, env=env)
    assert by_env.code == 0, by_env.stderr
    local = run_geolabel("tile", "v.tif", "--out", "c", "--workers", "1", "-q", cwd=tmp_path)
    assert local.code == 0, local.stderr
    assert tiled(tmp_path / "a") == tiled(tmp_path / "b") == tiled(tmp_path / "c")
    assert len(tiled(tmp_path / "a")["v"]) == 16
    assert not (dask_cluster.folder / "a").exists() and not (dask_cluster.folder / "v").exists()


def test_export_on_the_cluster_writes_the_same_dataset(dask_cluster, tmp_path):
    store, tiles = village_store(tmp_path, size=256)
    common = ["export", store, "--tiles", tiles, "--seed", "3", "-q"]  # relative output folders:
    assert run_geolabel(*common, "--out", "serial/ds", "--workers", "1", cwd=tmp_path).code == 0  # the workers
    res = run_geolabel(*common, "--out", "cluster/ds", "--scheduler", dask_cluster.scheduler_file, cwd=tmp_path)
    assert res.code == 0, res.stderr  # must not write into their own folder
    serial, cluster = dataset_state(tmp_path / "serial/ds"), dataset_state(tmp_path / "cluster/ds")
    assert cluster == serial
    assert sum(name.startswith("labels/masks/") for name in serial) > 10
    assert not (dask_cluster.folder / "cluster").exists()


def test_a_worker_killed_mid_job_changes_nothing_in_the_output(dask_cluster, tmp_path):
    """Dask gives the dead worker's tasks to another; each task writes under temporary names
    and renames, so running a chip twice is harmless."""
    from distributed import Client

    from geolabel import tile_raster
    from geolabel.cluster import cluster_executor

    scene = make_scene(tmp_path / "big.tif", width=3072, height=2048, nodata=0, collar=200, block=None, seed=5)
    serial = tile_raster(scene, tmp_path / "serial", size=128, workers=1)
    victim = dask_cluster.add_worker("victim")
    killed = []

    with Client(dask_cluster.address, set_as_default=False) as watcher:

        def kill_when_busy(fraction: float) -> None:
            if killed or fraction < 0.1:
                return
            busy = {w: tasks for w, tasks in watcher.processing().items() if tasks}
            names = {a: w["name"] for a, w in watcher.scheduler_info()["workers"].items()}
            if any(names.get(a) == "victim" for a in busy):
                victim.send_signal(signal.SIGKILL)
                killed.append(fraction)

        with cluster_executor(dask_cluster.address) as executor:
            result = tile_raster(scene, tmp_path / "cluster", size=128, executor=executor, progress=kill_when_busy)
    assert killed and killed[0] < 0.9, "the victim was never seen working"
    assert victim.wait(timeout=10) == -signal.SIGKILL
    assert result.written == serial.written > 300
    assert tiled(tmp_path / "cluster") == tiled(tmp_path / "serial")
    assert index_rows(result.index_path) == index_rows(serial.index_path)
    assert not list((tmp_path / "cluster").rglob(".*"))  # no temporaries left behind


def test_a_scheduler_nobody_runs_is_one_line_and_exit_69(tmp_path):
    shutil.copy(SAMPLE / "village.tif", tmp_path / "v.tif")
    res = run_geolabel("tile", "v.tif", "--out", "x", "--scheduler", "tcp://127.0.0.1:1", cwd=tmp_path)
    assert_one_line_error(res, code=69, contains="no Dask scheduler answers", file="tcp://127.0.0.1:1")
    assert not (tmp_path / "x").exists()
    res = run_geolabel("tile", "v.tif", "--out", "x", "--scheduler", "nothere.json", cwd=tmp_path)
    assert_one_line_error(res, code=2, contains="no such scheduler file", file="nothere.json")


def test_workers_and_scheduler_exclude_each_other(dask_cluster, tmp_path):
    res = run_geolabel(
        "tile",
        SAMPLE / "village.tif",
        "--out",
        "x",
        "--workers",
        "2",
        "--scheduler",
        dask_cluster.address,
        cwd=tmp_path,
    )
    assert res.code == 2 and "exclude each other (a cluster has its own workers)" in res.stderr
    assert not (tmp_path / "x").exists()
    env = {"GEOLABEL_SCHEDULER": dask_cluster.address}
    res = run_geolabel("tile", SAMPLE / "village.tif", "--out", "x", "--workers", "2", cwd=tmp_path, env=env)
    assert res.code == 2 and "$GEOLABEL_SCHEDULER is set: unset it to run here" in res.stderr


def test_without_dask_installed_the_flag_says_which_extra_to_install(monkeypatch):
    from geolabel.cluster import cluster_executor
    from geolabel.errors import InputError

    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(InputError, match=r"pip install 'geolabel\[dask\]'"), cluster_executor("tcp://127.0.0.1:1"):
        pass


def test_the_plain_cli_does_not_import_dask(tmp_path):
    import subprocess

    code = "import sys; from geolabel.cli import main; print('distributed' in sys.modules, 'dask' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_remote_scenes_tile_on_the_cluster_as_they_do_locally(dask_cluster, range_server, tmp_path):
    """Workers read an http:// scene themselves, with range requests (block copy)."""
    from geolabel import tile_raster
    from geolabel.cluster import cluster_executor

    url, _ = serve(range_server, SAMPLE / "village.tif")
    with cluster_executor(dask_cluster.address) as executor:
        remote = tile_raster(url, tmp_path / "cluster", size=512, executor=executor)
    tile_raster(SAMPLE / "village.tif", tmp_path / "local", size=512, workers=1)
    assert remote.scenes[0].copied == 16
    assert chip_digests(tmp_path / "cluster") == chip_digests(tmp_path / "local")


def test_check_on_the_cluster_finds_what_a_serial_check_finds(dask_cluster, tmp_path, monkeypatch):
    """Overlaps and gaps across partition borders, partitions run on two Dask workers."""
    import json

    import shapely
    from click.testing import CliRunner

    from geolabel.cli import main
    from geolabel.qa import partition as part
    from tests.test_check_partition import X0, Y0, aoi_file, outcome, random_labels, write

    monkeypatch.setattr(part, "CELL_LABELS", 4)  # cells of a few labels: decided here, not on the workers
    path = write(tmp_path, random_labels(4, n=300), seed=4)
    aoi = aoi_file(tmp_path, shapely.box(X0 - 5, Y0 - 5, X0 + 320, Y0 + 640))
    docs = []
    for flags in (["--workers", "1"], ["--scheduler", dask_cluster.address]):
        out = tmp_path / flags[0]
        res = CliRunner().invoke(main, ["check", str(path), "--aoi", str(aoi), "--out", str(out), "-q", *flags])
        assert res.exit_code == 1, res.output  # the data has errors
        docs.append(json.loads((out / "findings.json").read_text()))
    for doc in docs:
        doc.pop("created", None)
    assert docs[0] == docs[1]
    assert docs[0]["counts"]["overlap"]["error"] > 100 and docs[0]["counts"]["gap"]["error"] >= 20

    from geolabel.cluster import cluster_executor
    from geolabel.qa import check_labels, load_delivery

    delivery = load_delivery(path)
    with cluster_executor(dask_cluster.address) as executor:
        on_cluster = check_labels(delivery, aoi=aoi, executor=executor, partition_size=30)
    assert outcome(on_cluster) == outcome(check_labels(delivery, aoi=aoi, workers=1))

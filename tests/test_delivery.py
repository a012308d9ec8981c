"""Deliveries from offline sites on both central backends: a site (GeoPackage) delivers a
team's submitted tiles; the center merges them once (idempotent), reports and leaves out
conflicts, keeps provenance, refuses tampered deliveries and ones failing their check."""

from __future__ import annotations

import json
import sqlite3

import pytest
import shapely
from click.testing import CliRunner

from geolabel.cli import main
from geolabel.deliveries import TamperedDeliveryError, deliver, read_delivery
from geolabel.labels.gpkg import register_functions
from geolabel.labels.store import TASK_FIELDS, create_store, now_iso, open_store
from geolabel.merge import DeliveryCheckError, merge_deliveries

X0, Y0 = 500_000.0, 3_100_000.0
#: Tiles (100 m squares in a row) and their teams; a3 is given to team A at the site only.
TILES = {"a1": (0, 0, "A"), "a2": (100, 0, "A"), "b1": (200, 0, "B"), "a3": (0, 100, "A")}


def box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def add_tasks(store, tiles, *, submitted=()):
    rows = []
    for tile in tiles:
        x, y, team = TILES[tile]
        row = dict.fromkeys(TASK_FIELDS)
        row.update(tile_id=tile, scene="s", minx=X0 + x, miny=Y0 + y, maxx=X0 + x + 100, maxy=Y0 + y + 100,
                   team=team, copy=1, status="assigned", assigned_at=now_iso())  # fmt: skip
        rows.append(row)
    store.add_tasks(rows)
    for task in store.tasks():
        if task.tile_id in submitted:
            store.update_task(task.task_id, expected_status="assigned", status="submitted", submitted_at=now_iso())


@pytest.fixture
def site(tmp_path) -> dict[str, str]:
    """A site store with two teams' tasks; team A submitted a1, a2 and a3. Labels: ``inside``
    (a1), ``crossing`` (a2, reaching into team B's b1), ``near_b`` (a1, where the center holds
    team B's accepted label), ``theirs`` (team B's, in b1: not A's to deliver)."""
    path = tmp_path / "site.gpkg"
    with create_store(path, crs="EPSG:32649") as store:
        add_tasks(store, TILES, submitted=("a1", "a2", "a3"))
        ids = {}
        for name, geom, team in [("inside", box(10, 10, 60, 60), "A"), ("crossing", box(120, 10, 210, 60), None),
                                 ("near_b", box(10, 70, 40, 95), "A"), ("theirs", box(220, 10, 280, 60), "B")]:  # fmt: skip
            ids[name] = store.add_geometries([geom], class_codes=[2], labeler="li", team=team)[0]
    return {"path": str(path), **ids}


@pytest.fixture
def central(store_location) -> str:
    """The central store: a1, a2 for team A, b1 for team B, and team B's accepted label
    overlapping the site's ``near_b``."""
    location = store_location("central")
    with create_store(location, crs="EPSG:32649") as store:
        add_tasks(store, ["a1", "a2", "b1"])
        store.add_geometries([box(20, 80, 50, 120)], class_codes=[3], labeler="wang", team="B", status="accepted")
    return str(location)


def run(*args) -> tuple[int, str]:
    res = CliRunner().invoke(main, [str(a) for a in args])
    return res.exit_code, res.output


def central_state(location: str) -> tuple[int, dict[str, int], list[dict], list[dict]]:
    with open_store(location) as store:
        labels = store.read()
        versions = dict(zip(labels.columns["label_id"], labels.columns["version"]))
        return len(labels), versions, store.merged_deliveries(), store.provenance()


def test_delivery_is_a_label_store_with_the_teams_submitted_tiles_and_provenance(site, tmp_path):
    out = tmp_path / "a.gpkg"
    code, output = run("labels", "deliver", site["path"], "--team", "A", "--site", "hill", "--out", out)
    assert code == 0, output
    assert output.startswith("delivered 3 labels on 3 tiles of team A (site hill)")
    delivery = read_delivery(out)
    assert (delivery.site, delivery.team, delivery.labelers) == ("hill", "A", ["li"])
    assert sorted(delivery.tile_ids) == ["a1", "a2", "a3"]
    assert sorted(delivery.labels.columns["label_id"]) == sorted([site["inside"], site["crossing"], site["near_b"]])
    assert sorted(t.tile_id for t in delivery.tasks) == ["a1", "a2", "a3"]
    assert run("check", out)[0] == 0  # a valid label store, clean
    assert run("labels", "stats", out)[1].splitlines()[-1].split()[1] == "3"
    with sqlite3.connect(out) as conn:
        assert conn.execute("SELECT labels, length(checksum) FROM geolabel_delivery").fetchone() == (3, 64)
    assert not list(tmp_path.glob("*.tmp*"))


def test_merge_twice_is_idempotent_conflicts_are_left_out_and_provenance_kept(site, central, tmp_path):
    out = tmp_path / "a.gpkg"
    deliver(site["path"], team="A", site="hill", out=out)
    code, output = run("labels", "merge", central, out)
    assert code == 0, output
    lines = output.splitlines()
    assert lines[0].endswith("merged 1 labels, updated 0, skipped 0, conflicts 2")
    assert any(site["crossing"] in line and "unassigned_tile" in line and "tile b1" in line for line in lines[1:])
    assert any(site["near_b"] in line and "cross_site_overlap" in line and "team B" in line for line in lines[1:])
    count, versions, merged, provenance = central_state(central)
    assert count == 2 and site["inside"] in versions
    assert site["crossing"] not in versions and site["near_b"] not in versions
    assert [(m["site"], m["team"], m["labels"]) for m in merged] == [("hill", "A", 1)]
    assert [(p["label_id"], p["site"], p["delivery_id"]) for p in provenance] == [
        (site["inside"], "hill", merged[0]["delivery_id"])
    ]

    code, output = run("labels", "merge", central, out)
    assert code == 0 and "already merged; nothing written" in output
    assert central_state(central) == (count, versions, merged, provenance)


def test_a_newer_version_replaces_the_label_and_the_same_version_is_skipped(site, central, tmp_path):
    first = deliver(site["path"], team="A", site="hill", out=tmp_path / "1.gpkg")
    merge_deliveries(central, [first.path])
    with open_store(site["path"]) as store:
        store.update(site["inside"], geometry=box(10, 10, 70, 60))
    second = deliver(site["path"], team="A", site="hill", out=tmp_path / "2.gpkg").path
    third = deliver(site["path"], team="A", site="hill", out=tmp_path / "3.gpkg").path
    results = merge_deliveries(central, [second, third])
    assert [(r.merged, r.updated, r.skipped, len(r.conflicts)) for r in results] == [(0, 1, 0, 2), (0, 0, 1, 2)]
    count, versions, merged, provenance = central_state(central)
    assert (count, versions[site["inside"]], len(merged)) == (2, 2, 3)
    with open_store(central) as store:
        assert shapely.area(store.read(label_ids=[site["inside"]]).geoms[0]) == pytest.approx(3000.0)
    assert sorted(p["delivery_id"] for p in provenance) == sorted([first.delivery_id, results[0].delivery_id])


def test_a_tampered_delivery_is_refused_by_its_checksum(site, central, tmp_path):
    out = tmp_path / "a.gpkg"
    deliver(site["path"], team="A", site="hill", out=out)
    with sqlite3.connect(out) as conn:
        register_functions(conn)  # the ST_ functions GeoPackage's spatial index triggers call (as QGIS has)
        conn.execute("UPDATE labels SET comment = 'edited' WHERE label_id = ?", (site["inside"],))
    with pytest.raises(TamperedDeliveryError):
        read_delivery(out)
    code, output = run("labels", "merge", central, out)
    assert code == 2 and len(output.strip().splitlines()) == 1
    assert output.startswith("geolabel: error: ") and "checksum mismatch" in output
    count, _, merged, provenance = central_state(central)
    assert (count, merged, provenance) == (1, [], [])


def test_a_delivery_failing_its_check_merges_only_with_accept_errors(site, central, tmp_path):
    with open_store(site["path"]) as store:
        store.add_geometries([box(30, 30, 90, 75)], class_codes=[4], labeler="li", team="A")  # overlaps ``inside``
    out = tmp_path / "a.gpkg"
    deliver(site["path"], team="A", site="hill", out=out)
    with pytest.raises(DeliveryCheckError):
        merge_deliveries(central, [out])
    code, output = run("labels", "merge", central, out)
    assert code == 1 and "--accept-errors" in output
    assert central_state(central)[0] == 1
    code, output = run("labels", "merge", central, out, "--accept-errors")
    assert code == 0 and "merged 2 labels" in output
    assert central_state(central)[0] == 3


def test_check_against_the_central_store_finds_other_teams_tiles_and_overlaps(site, central, tmp_path):
    out = tmp_path / "a.gpkg"
    deliver(site["path"], team="A", site="hill", out=out)
    code, output = run("check", out, "--store", central, "--out", tmp_path / "qa")
    assert code == 1, output
    findings = json.loads((tmp_path / "qa" / "findings.json").read_text())["findings"]
    found = {(f["type"], f["feature_ids"][0]) for f in findings}
    assert found == {("cross_site_overlap", site["near_b"]), ("unassigned_tile", "a3"),
                     ("unassigned_tile", site["crossing"])}  # fmt: skip
    overlap = next(f for f in findings if f["type"] == "cross_site_overlap")
    assert overlap["area_m2"] == pytest.approx(20 * 15)
    crossing = next(f for f in findings if f["feature_ids"] == [site["crossing"]])
    assert crossing["area_m2"] == pytest.approx(10 * 50)
    import geopandas as gpd

    assert set(gpd.read_file(tmp_path / "qa" / "findings.gpkg", layer="findings_polygons")["type"]) == {
        "cross_site_overlap",
        "unassigned_tile",
    }
    assert run("check", out)[0] == 0  # on its own the delivery is clean


@pytest.fixture
def project(pg_database):
    from .labels.test_roles import make_project

    return make_project(pg_database)


def test_on_postgis_only_the_admin_merges_and_reads_provenance(project, site, tmp_path):
    import psycopg

    from geolabel.errors import AccessDeniedError

    out = deliver(site["path"], team="A", site="hill", out=tmp_path / "a.gpkg").path
    with project.open("labeler_a") as store, pytest.raises(AccessDeniedError, match="only the project's admin"):
        merge_deliveries(store, [out])
    (result,) = merge_deliveries(project.url("admin"), [out])
    assert result.merged == 3  # the project assigns no tiles and holds no accepted labels: no conflicts
    for who in ("labeler_a", "reviewer_a"):
        with project.sql(who) as conn:
            for table in ("geolabel_merged_deliveries", "geolabel_provenance"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
                    conn.execute(f"SELECT * FROM {project.schema}.{table}")
    with project.open("admin") as store:
        assert len(store.provenance()) == 3 and store.merged_deliveries()[0]["site"] == "hill"

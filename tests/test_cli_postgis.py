"""Every command that takes a label store takes a PostgreSQL location too; history, restore
and copy on both backends; a password given in a location is never printed."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from geolabel.cli import main
from geolabel.labels.pg_location import parse_location

from .conftest import SAMPLE

SECRET = "hunter2secret"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def ok(*args):
    res = run(*args)
    assert res.exit_code == 0, res.output
    assert SECRET not in res.output
    return res.output


def with_password(location):
    """A PostGIS location with a password in it (the test server trusts its superuser, so
    libpq never sends it); a GeoPackage path as it is."""
    text = str(location)
    return text.replace("postgresql://postgres@", f"postgresql://postgres:{SECRET}@", 1)


def shown(location):
    text = str(location)
    return parse_location(text).display if text.startswith("postgresql://") else text


def test_labels_commands_take_both_kinds_of_store(store_location, inputs, tmp_path):
    store = with_password(store_location("cli"))
    out = ok("labels", "init", store, "--crs", "EPSG:32649")
    assert f"created {shown(store)}: CRS" in out
    out = ok("labels", "import", store, SAMPLE / "village_labels.gpkg", "--labeler", "li", "--team", "hunan")
    assert f"{shown(store)}: 136 labels" in out
    out = ok("labels", "resolve", store, "--min-area", "1")
    assert "cut by a higher-priority class: 4 (3163.87 m² of overlap resolved)" in out
    rows = {r["name"]: r for r in json.loads(ok("labels", "stats", store, "--json"))}
    assert rows["farmland"]["count"] == 51
    out = run("check", store).output
    assert f"{shown(store)}: " in out and "on 136 features" in out and SECRET not in out
    ok("score", store, "--reference", SAMPLE / "village_labels.gpkg", "--json", tmp_path / "score.json")
    [(name, result)] = json.loads((tmp_path / "score.json").read_text()).items()
    assert name == result["settings"]["submission"] == shown(store)
    out = ok("export", store, "--tiles", inputs.tiles, "--out", tmp_path / "ds", "--workers", "1", "-q")
    assert (tmp_path / "ds" / "summary.json").exists()


def test_history_lists_every_change_and_restore_undoes_one(store_location):
    store = with_password(store_location("hist"))
    ok("labels", "init", store, "--crs", "EPSG:32649")
    ok("labels", "import", store, SAMPLE / "village_labels.gpkg", "--labeler", "li")
    ok("labels", "resolve", store, "--min-area", "1")
    entries = json.loads(ok("labels", "history", store, "--json"))
    updates = [e for e in entries if e["action"] == "update"]
    assert len([e for e in entries if e["action"] == "insert"]) >= 136 and updates
    lines = ok("labels", "history", store).splitlines()
    assert lines[0].split() == ["time", "action", "label", "db", "role", "labeler", "version"]
    assert len(lines) == 1 + len(entries)
    cut = updates[0]
    [line] = [ln for ln in lines if cut["label_id"] in ln and " update " in ln]
    role = cut["db_role"] or "-"
    assert line.split()[1:] == ["update", cut["label_id"], role, "li", "1", "->", "2"]
    mine = json.loads(ok("labels", "history", store, "--label", cut["label_id"], "--json"))
    assert [e["action"] for e in mine] == ["insert", "update"]
    assert json.loads(ok("labels", "history", store, "--since", "2999-01-01", "--json")) == []
    assert json.loads(ok("labels", "history", store, "--labeler", "wang", "--json")) == []

    out = ok("labels", "restore", store, "--label", cut["label_id"], "--version", "1")
    assert f"{shown(store)}: label {cut['label_id']}: version 1 restored as version 3" in out
    out = ok("labels", "restore", store, "--label", cut["label_id"], "--version", "3")
    assert "is at version 3 already; nothing to do" in out
    after = json.loads(ok("labels", "history", store, "--label", cut["label_id"], "--json"))
    assert after[-1]["old_version"] == 2 and after[-1]["new_version"] == 3
    assert after[-1]["old_geom"].startswith("POLYGON")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["labels", "history", "{store}", "--since", "last week"], "--since: 'last week' is not an ISO date"),
        (["labels", "restore", "{store}", "--label", "nope", "--version", "1"], "no label with id nope"),
        (["labels", "restore", "{store}", "--label", "x", "--version", "0"], "--version"),
    ],
)
def test_history_and_restore_bad_input_is_one_line(store_location, args, message):
    store = with_password(store_location("bad"))
    ok("labels", "init", store, "--crs", "EPSG:32649")
    res = run(*[a.replace("{store}", store) for a in args])
    errors = [line for line in res.output.splitlines() if line.startswith("geolabel: error:")]
    assert res.exit_code == 2 and len(errors) == 1 and message in errors[0], res.output
    assert SECRET not in res.output


def test_copy_moves_a_project_to_postgis_and_back(tmp_path, pg_database):
    from tests.conftest import new_pg_location
    from tests.labels.test_copy import _project, assert_same_project

    source = _project(tmp_path / "source.gpkg")
    pg = with_password(new_pg_location(pg_database, "cli_copy"))
    out = ok("labels", "copy", source, pg)
    assert out.strip() == f"copied {source} -> {shown(pg)}: 134 labels, 140 history entries, 2 tiles"
    res = run("labels", "copy", source, pg)
    assert res.exit_code == 2 and "already exists; pass --overwrite to replace it" in res.output
    assert SECRET not in res.output
    ok("labels", "copy", source, pg, "--overwrite")
    ok("labels", "copy", pg, tmp_path / "back.gpkg")
    assert_same_project(source, tmp_path / "back.gpkg")
    res = run("labels", "copy", tmp_path / "back.gpkg", tmp_path / "back.gpkg", "--overwrite")
    assert res.exit_code == 2 and "give DST another location" in res.output


UNREACHABLE = f"postgresql://li:{SECRET}@127.0.0.1:1/labels?schema=village"


@pytest.mark.parametrize(
    "args",
    [
        ["labels", "init", "{pg}", "--crs", "EPSG:32649"],
        ["labels", "import", "{pg}", SAMPLE / "village_labels.gpkg"],
        ["labels", "resolve", "{pg}"],
        ["labels", "stats", "{pg}"],
        ["labels", "history", "{pg}"],
        ["labels", "restore", "{pg}", "--label", "a", "--version", "1"],
        ["labels", "copy", "{pg}", "{tmp}/copy.gpkg"],
        ["labels", "copy", "{store}", "{pg}"],
        ["check", "{pg}"],
        ["score", "{pg}", "--reference", SAMPLE / "village_labels.gpkg"],
        ["export", "{pg}", "--tiles", "{tiles}", "--out", "{tmp}/ds"],
    ],
    ids=lambda a: "-".join(str(x) for x in a[:2] if not str(x).startswith("{")),
)
def test_a_password_in_the_location_is_never_printed(args, inputs, tmp_path):
    given = [str(a).format(pg=UNREACHABLE, tmp=tmp_path, store=inputs.store, tiles=inputs.tiles) for a in args]
    res = run(*given)
    errors = [line for line in res.output.splitlines() if line.startswith("geolabel: error:")]
    assert res.exit_code == 69, res.output
    assert len(errors) == 1 and "postgresql://li@127.0.0.1:1/labels?schema=village: cannot connect" in errors[0]
    assert SECRET not in res.output
    assert not (tmp_path / "copy.gpkg").exists()


def test_init_help_names_both_kinds_of_store():
    out = ok("labels", "init", "--help")
    assert ".gpkg" in out and "postgresql://user@host:port/db?schema=NAME" in out

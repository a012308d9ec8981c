"""QA and scoring of tile tags: `check` finds done tiles without tags and tiles whose labelers
disagree (both backends, full and incremental); `score --tags` gives per-tag precision,
recall, F1 and kappa, exact match and Hamming accuracy, worked out by hand below and
cross-checked with scikit-learn when it is installed."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from click.testing import CliRunner

from geolabel.cli import main
from geolabel.errors import InputError
from geolabel.labels.store import create_store, open_store
from geolabel.labels.tags import set_tile_tags
from geolabel.labels.tagschema import TagSchema, TileTag
from geolabel.qa import check_changed, check_labels, load_delivery
from geolabel.tag_score import score_tag_sets, score_tags

from .conftest import SAMPLE

CRS = "EPSG:32649"
WATER, PADDY, ROAD = 1, 2, 3
TILE = "village_r{}_c000"  # the village's 512 px tiles: 256 m x 256 m


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def schema(mode: str = "multi") -> TagSchema:
    tags = [{"code": 1, "name": "water"}, {"code": 2, "name": "paddy"}, {"code": 3, "name": "road"}]
    return TagSchema.from_dict({"mode": mode, "tags": tags})


# -- scores by hand ------------------------------------------------------------------------

#: Multi-label, four tiles (reference | submission):
#:   t1 water        | water
#:   t2 water, paddy | water         (misses paddy)
#:   t3 paddy        | paddy, road   (road too many)
#:   t4 road         | road
MULTI_REF = {"t1": {WATER}, "t2": {WATER, PADDY}, "t3": {PADDY}, "t4": {ROAD}}
MULTI_SUB = {"t1": {WATER}, "t2": {WATER}, "t3": {PADDY, ROAD}, "t4": {ROAD}}


def test_multi_label_scores_match_the_hand_computation():
    s = score_tag_sets(MULTI_SUB, MULTI_REF, schema())
    # water: TP t1,t2; FP none; FN none -> P = R = F1 = 1; 2x2 table [[2, 0], [0, 2]]:
    #   po = 1, pe = (2*2 + 2*2)/16 = 0.5 -> kappa 1
    assert s.per_tag["water"] == {"tp": 2, "fp": 0, "fn": 0, "precision": 1.0, "recall": 1.0, "f1": 1.0, "kappa": 1.0}
    # paddy: TP t3, FN t2, TN t1,t4 -> P 1, R 1/2, F1 = 2*1*0.5/1.5 = 2/3;
    #   table (rows submission yes/no, columns reference yes/no) [[1, 0], [1, 2]]: po = 3/4,
    #   pe = (1*2 + 3*2)/16 = 1/2 -> kappa = (3/4 - 1/2)/(1 - 1/2) = 1/2
    paddy = s.per_tag["paddy"]
    assert (paddy["tp"], paddy["fp"], paddy["fn"]) == (1, 0, 1)
    assert paddy["precision"] == 1.0 and paddy["recall"] == 0.5
    assert paddy["f1"] == pytest.approx(2 / 3) and paddy["kappa"] == pytest.approx(0.5)
    # road: TP t4, FP t3, TN t1,t2 -> P 1/2, R 1, F1 2/3; table [[1, 1], [0, 2]]: po 3/4,
    #   pe = (2*1 + 2*3)/16 = 1/2 -> kappa 1/2
    road = s.per_tag["road"]
    assert (road["tp"], road["fp"], road["fn"]) == (1, 1, 0)
    assert road["precision"] == 0.5 and road["f1"] == pytest.approx(2 / 3) and road["kappa"] == pytest.approx(0.5)
    # exact match: t1 and t4 of 4 tiles = 1/2; Hamming: 2 of 12 (tile, tag) decisions differ
    #   (t2 paddy, t3 road) -> 10/12; macro F1 = (1 + 2/3 + 2/3)/3 = 7/9
    assert s.overall["exact_match"] == 0.5
    assert s.overall["hamming_accuracy"] == pytest.approx(10 / 12)
    assert s.overall["macro_f1"] == pytest.approx(7 / 9)
    assert s.overall["kappa"] is None and s.confusion is None  # multi-label: kappa per tag
    assert s.tiles == {"compared": 4, "untagged": 0, "extra": 0}


def indicators(sets: dict[str, set[int]]) -> np.ndarray:
    return np.array([[c in sets[t] for c in (WATER, PADDY, ROAD)] for t in sorted(sets)], dtype=int)


def test_multi_label_scores_equal_scikit_learns():
    metrics = pytest.importorskip("sklearn.metrics")
    s = score_tag_sets(MULTI_SUB, MULTI_REF, schema())
    ref, sub = indicators(MULTI_REF), indicators(MULTI_SUB)
    p, r, f, _ = metrics.precision_recall_fscore_support(ref, sub, average=None, zero_division=0)
    for k, name in enumerate(("water", "paddy", "road")):
        mine = s.per_tag[name]
        assert (mine["precision"], mine["recall"], mine["f1"]) == pytest.approx((p[k], r[k], f[k]))
        assert mine["kappa"] == pytest.approx(metrics.cohen_kappa_score(ref[:, k], sub[:, k]))
    assert s.overall["exact_match"] == pytest.approx(metrics.accuracy_score(ref, sub))
    assert s.overall["hamming_accuracy"] == pytest.approx(1 - metrics.hamming_loss(ref, sub))
    assert s.overall["macro_f1"] == pytest.approx(metrics.f1_score(ref, sub, average="macro", zero_division=0))


#: Single-label, six tiles: reference water, water, paddy, paddy, road, road; the submission
#: says water, paddy, paddy, paddy, road and leaves the last tile untagged.
SINGLE_REF = {"t1": {WATER}, "t2": {WATER}, "t3": {PADDY}, "t4": {PADDY}, "t5": {ROAD}, "t6": {ROAD}}
SINGLE_SUB = {"t1": {WATER}, "t2": {PADDY}, "t3": {PADDY}, "t4": {PADDY}, "t5": {ROAD}}


def test_single_label_scores_match_the_hand_computation():
    s = score_tag_sets(SINGLE_SUB, SINGLE_REF, schema("single"))
    # confusion (rows submission, columns reference; (none) = untagged):
    #            water paddy road (none)
    #   water        1     0    0     0
    #   paddy        1     2    0     0
    #   road         0     0    1     0
    #   (none)       0     0    1     0
    assert s.confusion == {
        "water": {"water": 1, "paddy": 0, "road": 0, "(none)": 0},
        "paddy": {"water": 1, "paddy": 2, "road": 0, "(none)": 0},
        "road": {"water": 0, "paddy": 0, "road": 1, "(none)": 0},
        "(none)": {"water": 0, "paddy": 0, "road": 1, "(none)": 0},
    }
    # po = 4/6; rows 1, 3, 1, 1 and columns 2, 2, 2, 0: pe = (2 + 6 + 2 + 0)/36 = 10/36;
    # kappa = (24/36 - 10/36)/(1 - 10/36) = 14/26 = 7/13
    assert s.overall["kappa"] == pytest.approx(7 / 13)
    # exact match (accuracy) 4/6; no Hamming accuracy for one tag per tile
    assert s.overall["exact_match"] == pytest.approx(4 / 6) and s.overall["hamming_accuracy"] is None
    # water P 1/1, R 1/2, F1 2/3; paddy P 2/3, R 2/2, F1 0.8; road P 1/1, R 1/2, F1 2/3
    assert [s.per_tag[t]["precision"] for t in ("water", "paddy", "road")] == pytest.approx([1, 2 / 3, 1])
    assert [s.per_tag[t]["recall"] for t in ("water", "paddy", "road")] == pytest.approx([0.5, 1, 0.5])
    assert [s.per_tag[t]["f1"] for t in ("water", "paddy", "road")] == pytest.approx([2 / 3, 0.8, 2 / 3])
    assert s.overall["macro_f1"] == pytest.approx((2 / 3 + 0.8 + 2 / 3) / 3)
    assert s.tiles == {"compared": 6, "untagged": 1, "extra": 0}


def test_single_label_scores_equal_scikit_learns():
    metrics = pytest.importorskip("sklearn.metrics")
    s = score_tag_sets(SINGLE_SUB, SINGLE_REF, schema("single"))
    names = {WATER: "water", PADDY: "paddy", ROAD: "road"}
    ref = [names[next(iter(SINGLE_REF[t]))] for t in sorted(SINGLE_REF)]
    sub = [names[next(iter(SINGLE_SUB[t]))] if t in SINGLE_SUB else "(none)" for t in sorted(SINGLE_REF)]
    assert s.overall["kappa"] == pytest.approx(metrics.cohen_kappa_score(ref, sub))
    assert s.overall["exact_match"] == pytest.approx(metrics.accuracy_score(ref, sub))
    tags = ["water", "paddy", "road"]
    p, r, f, _ = metrics.precision_recall_fscore_support(ref, sub, labels=tags, zero_division=0)
    assert [s.per_tag[t]["f1"] for t in tags] == pytest.approx(list(f))
    assert [s.per_tag[t]["precision"] for t in tags] == pytest.approx(list(p))
    assert [s.per_tag[t]["recall"] for t in tags] == pytest.approx(list(r))


def test_agreement_compares_only_tiles_both_tagged_and_kappa_of_one_category_is_none():
    # t5 only in the reference: left out; both say water and nothing else on t1, t2
    s = score_tag_sets(
        {"t1": {WATER}, "t2": {WATER}}, {"t1": {WATER}, "t2": {WATER}, "t5": {ROAD}}, schema(), agreement=True
    )
    assert s.tiles["compared"] == 2 and s.overall["exact_match"] == 1.0
    assert s.per_tag["water"]["kappa"] is None  # everybody always says water: kappa is 0/0
    assert s.per_tag["road"]["kappa"] is None  # nobody ever says road


# -- stores: check ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def village_chips(tmp_path_factory) -> Path:
    from geolabel import tile_raster

    root = tmp_path_factory.mktemp("village")
    return tile_raster(SAMPLE / "village.tif", root / "chips", size=512, workers=1).index_path


def tagged_store(location, mode: str = "multi"):
    """Tiles r000..r003 of column 0: r000-r002 done. r000 li water; r001 li water+paddy and
    wang paddy (a disagreement); r002 only a suggestion (untagged); r003 not done, li and
    wang agree. Two farmland polygons on r000 (their extent stays through the edits below)."""
    store = create_store(location, crs=CRS, tag_schema=schema(mode))
    for r in range(4):
        store.set_tile_status(TILE.format(f"{r:03d}"), "done" if r < 3 else "in_progress", labeler="li")
    t0, t1, t2, t3 = (TILE.format(f"{r:03d}") for r in range(4))
    set_tile_tags(store, t0, ["water"], labeler="li")
    set_tile_tags(store, t1, ["water"] if mode == "single" else ["water", "paddy"], labeler="li")
    set_tile_tags(store, t1, ["paddy"], labeler="wang")
    store.replace_tile_tags([(t2, "suggest")], [TileTag(t2, WATER, "suggest", "draft", "2025-01-01T00:00:00Z")])
    set_tile_tags(store, t3, ["road"], labeler="li")
    set_tile_tags(store, t3, ["road"], labeler="wang")
    corners = [shapely.box(686000, 3121100, 686050, 3121150), shapely.box(686200, 3121250, 686210, 3121260)]
    store.add_geometries(corners, class_codes=[2, 2], labeler="li")
    return store


def tag_findings(result) -> list[tuple[str, str, str]]:
    return [(f.type, f.severity, f.message) for f in result.findings if f.type in ("untagged_tile", "tag_disagreement")]


def test_check_finds_untagged_done_tiles_and_disagreements(store_location):
    location = store_location()
    tagged_store(location).close()
    result = check_labels(load_delivery(location), workers=1)
    assert tag_findings(result) == [
        ("untagged_tile", "error", "tile village_r002_c000 is done but has no tags"),
        ("tag_disagreement", "warning", "tile village_r001_c000: labelers disagree (li: paddy, water; wang: paddy)"),
    ]
    assert all(f.geometry is None for f in result.findings if f.type.startswith(("untagged", "tag_")))
    assert result.counts()["untagged_tile"] == {"error": 1, "warning": 0}
    assert result.counts()["tag_disagreement"] == {"error": 0, "warning": 1}


def test_check_puts_tag_findings_on_the_tile_footprints(store_location, village_chips):
    location = store_location()
    tagged_store(location, "single").close()
    result = check_labels(load_delivery(location), tiles=village_chips, workers=1)
    found = {f.type: f for f in result.findings if f.type in ("untagged_tile", "tag_disagreement")}
    assert found["tag_disagreement"].message.endswith("(li: water; wang: paddy)")
    tiles = gpd.read_file(village_chips, layer="tiles").set_index("tile_id")
    for kind, tile in (("untagged_tile", "village_r002_c000"), ("tag_disagreement", "village_r001_c000")):
        geom = found[kind].geometry
        assert geom.area == pytest.approx(256 * 256)  # 512 px of 0.5 m, in the store's UTM zone
        assert geom.equals(tiles.geometry[tile])


def test_store_without_tag_schema_has_no_tag_findings(tmp_path):
    location = tmp_path / "labels.gpkg"
    with create_store(location, crs=CRS) as store:
        store.set_tile_status("a", "done")
        store.add_geometries([shapely.box(0, 0, 10, 10)], class_codes=[2])
    assert tag_findings(check_labels(load_delivery(location), workers=1)) == []


def test_incremental_check_follows_tag_edits_as_a_full_check(store_location):
    from .test_check_incremental import summary

    location = store_location()
    store = tagged_store(location)
    result, state = check_changed(load_delivery(location), None, workers=1)
    assert len(tag_findings(result)) == 2
    set_tile_tags(store, "village_r002_c000", ["road"], labeler="li")  # the untagged tile tagged
    set_tile_tags(store, "village_r003_c000", ["water"], labeler="wang")  # a new disagreement
    store.add_geometries([shapely.box(686100, 3121100, 686120, 3121120)], class_codes=[3], labeler="li")
    delivery = load_delivery(location)
    again, state = check_changed(delivery, state, workers=1)
    assert state.how.startswith("incremental: 1 labels changed")
    assert summary(again) == summary(check_labels(delivery, workers=1))
    assert [f[2] for f in tag_findings(again)] == [
        "tile village_r001_c000: labelers disagree (li: paddy, water; wang: paddy)",
        "tile village_r003_c000: labelers disagree (li: road; wang: water)",
    ]
    store.close()


def test_cli_check_reports_tag_findings_in_counts_json_and_gpkg(tmp_path, village_chips):
    location = tmp_path / "labels.gpkg"
    tagged_store(location).close()
    res = run("check", location, "--tiles", village_chips, "--out", tmp_path / "qa")
    assert res.exit_code == 1, res.output  # an untagged done tile is an error
    assert "untagged_tile           1 errors      0 warnings" in res.output
    assert "tag_disagreement        0 errors      1 warnings" in res.output
    doc = json.loads((tmp_path / "qa" / "findings.json").read_text())
    assert doc["counts"]["untagged_tile"] == {"error": 1, "warning": 0}
    kinds = {f["type"]: f for f in doc["findings"]}
    assert kinds["untagged_tile"]["message"] == "tile village_r002_c000 is done but has no tags"
    assert kinds["tag_disagreement"]["location"] is not None
    layers = gpd.list_layers(tmp_path / "qa" / "findings.gpkg")["name"].tolist()
    rows = pd_concat([gpd.read_file(tmp_path / "qa" / "findings.gpkg", layer=name) for name in layers])
    assert {"untagged_tile", "tag_disagreement"} <= set(rows["type"])


def pd_concat(frames):
    import pandas as pd

    return pd.concat(frames, ignore_index=True)


# -- stores: score ---------------------------------------------------------------------------


def stores_of(folder: Path, sets: dict[str, set[int]], name: str, mode: str = "multi") -> Path:
    location = folder / f"{name}.gpkg"
    with create_store(location, crs=CRS, tag_schema=schema(mode)) as store:
        for tile, codes in sets.items():
            set_tile_tags(store, tile, [str(c) for c in codes], labeler=name)
    return location


def test_cli_score_tags_prints_the_hand_computed_numbers_and_json(tmp_path):
    sub = stores_of(tmp_path, {**MULTI_SUB, "t9": {WATER}}, "team_a")  # t9: not in the reference
    ref = stores_of(tmp_path, MULTI_REF, "reference")
    res = run("score", sub, "--reference", ref, "--tags", "--json", tmp_path / "score.json")
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert (
        lines[0]
        == "tags (multi-label): 4 reference tiles, 0 of them untagged in the submission; 1 submission tiles not in the reference"
    )
    assert lines[1] == "exact match 0.5000  Hamming accuracy 0.8333  macro F1 0.7778"
    assert lines[3].split() == ["water", "2", "0", "0", "1.0000", "1.0000", "1.0000", "1.0000"]
    assert lines[4].split() == ["paddy", "1", "0", "1", "1.0000", "0.5000", "0.6667", "0.5000"]
    doc = json.loads((tmp_path / "score.json").read_text())
    (score,) = doc.values()
    assert score["overall"]["exact_match"] == 0.5 and score["tiles"]["extra"] == 1
    assert score["per_tag"]["road"]["fp"] == 1


def test_score_tags_maps_tags_by_name_and_names_an_unknown_one(tmp_path):
    ref = stores_of(tmp_path, MULTI_REF, "reference")
    other = TagSchema.from_dict({"tags": [{"code": 7, "name": "water"}, {"code": 8, "name": "pond"}]})
    location = tmp_path / "other.gpkg"
    with create_store(location, crs=CRS, tag_schema=other) as store:
        set_tile_tags(store, "t1", ["water"], labeler="kim")
    assert score_tags(location, ref).per_tag["water"]["tp"] == 1  # code 7 is the reference's water (1)
    with open_store(location) as store:
        set_tile_tags(store, "t2", ["pond"], labeler="kim")
    with pytest.raises(InputError, match="tile t2: tag 'pond' is not in the reference's tag schema"):
        score_tags(location, ref)


def test_agreement_of_two_labelers_of_one_store(store_location):
    location = store_location()
    with create_store(location, crs=CRS, tag_schema=schema("single")) as store:
        for tile in SINGLE_REF:
            set_tile_tags(store, tile, [str(c) for c in SINGLE_REF[tile]], labeler="li")
        for tile in SINGLE_SUB:
            set_tile_tags(store, tile, [str(c) for c in SINGLE_SUB[tile]], labeler="wang")
        store.replace_tile_tags([("t1", "suggest")], [TileTag("t1", ROAD, "suggest", "draft", "2025-01-01T00:00:00Z")])
    s = score_tags(location, location, agreement=True)  # two labelers (suggest aside): li and wang
    assert (s.settings["reference_labeler"], s.settings["labeler"]) == ("li", "wang")
    # t6 wang never tagged is left out: 5 tiles, 4 agree; confusion [[1,0,0],[1,2,0],[0,0,1]]:
    # po 4/5, rows 1,3,1 columns 2,2,1: pe = (2 + 6 + 1)/25 = 9/25 -> kappa = (20 - 9)/(25 - 9) = 11/16
    assert s.tiles["compared"] == 5 and s.overall["exact_match"] == pytest.approx(0.8)
    assert s.overall["kappa"] == pytest.approx(11 / 16)
    with pytest.raises(InputError, match="tile t1 is tagged by li, wang; name whose tags to score"):
        score_tags(location, location)
    res = run("score", location, "--tags", "--agreement")
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[:2] == [
        "tags (single-label): agreement of li and wang on 5 tiles both tagged",
        "exact match 0.8000  macro F1 0.8222  kappa 0.6875",
    ]
    assert "confusion (tiles, rows: wang, columns: li)" in res.output


def test_cli_score_tags_errors_are_one_line(tmp_path):
    ref = stores_of(tmp_path, MULTI_REF, "reference")
    plain = tmp_path / "plain.gpkg"
    create_store(plain, crs=CRS).close()
    res = run("score", plain, "--reference", ref, "--tags")
    assert res.exit_code == 2 and res.output.strip().splitlines() == [
        f"geolabel: error: {plain}: the store has no tag schema; set one with `geolabel tags schema`"
    ]
    res = run("score", ref, "--tags")
    assert res.exit_code == 2 and "--tags needs --reference, unless --agreement" in res.output
    res = run("score", ref, "--tags", "--agreement")  # one labeler only
    assert res.exit_code == 2 and "agreement needs two labelers; tags come from 1 (reference)" in res.output
    res = run("score", plain, "--reference", ref, "--tags", "--iou", "0.7", "--classes", "water")
    assert res.exit_code == 2 and "--classes, --iou score polygons; --tags scores tile tags" in res.output
    res = run("score", plain, "--reference", ref, "--labeler", "li")  # polygons: whose tags means nothing
    assert res.exit_code == 2 and "--labeler and --reference-labeler pick whose tile tags" in res.output


def test_the_suggestions_can_be_scored_by_naming_their_labeler(tmp_path):
    location = stores_of(tmp_path, {"t1": {WATER}, "t2": {PADDY}}, "li")
    with open_store(location) as store:
        rows = [TileTag(t, WATER, "suggest", "draft", "2025-01-01T00:00:00Z") for t in ("t1", "t2")]
        store.replace_tile_tags([("t1", "suggest"), ("t2", "suggest")], rows)
    s = score_tags(location, location, labeler="suggest", reference_labeler="li")
    # water: TP t1, FP t2 -> precision 1/2, recall 1/1; paddy: FN t2 -> recall 0
    assert s.per_tag["water"]["precision"] == 0.5 and s.per_tag["paddy"]["recall"] == 0.0
    assert s.overall["exact_match"] == 0.5

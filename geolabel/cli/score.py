"""``geolabel score``: a submission against a reference, a leaderboard, or two labelers' agreement."""

from __future__ import annotations

import json
from typing import Any

import click

from geolabel import vocabulary as v
from geolabel.cli.options import STORE


def _print_score(s: Any, *, agreement: bool) -> None:
    o = s.overall
    if agreement:
        click.echo(f"agreement (IoU of the class regions): {o['quality']:.4f}   kappa: {s.kappa:.4f}")
    else:
        click.echo(
            f"overall: quality (IoU) {o['quality']:.4f}  correctness {o['correctness']:.4f}  "
            f"completeness {o['completeness']:.4f}  F1 {o['f1']:.4f}"
        )
    click.echo(
        f"{'class':<14} {'TP m²':>12} {'FP m²':>12} {'FN m²':>12} {'correct':>8} {'complete':>8} {'IoU':>7} "
        f"{'obj P':>6} {'obj R':>6} {'obj F1':>6} {'bnd F':>6}"
    )
    for name in s.classes:
        a, ob, b = s.area[name], s.objects[name], s.boundary[name]
        click.echo(
            f"{name:<14} {a['tp']:>12,.1f} {a['fp']:>12,.1f} {a['fn']:>12,.1f} {a['correctness']:>8.4f} "
            f"{a['completeness']:>8.4f} {a['quality']:>7.4f} {ob['precision']:>6.3f} {ob['recall']:>6.3f} "
            f"{ob['f1']:>6.3f} {b['f']:>6.3f}"
        )
    ob = s.objects_overall
    click.echo(
        f"objects (IoU >= {s.settings['iou']}): {int(ob['tp'])} matched, {int(ob['fp'])} extra, "
        f"{int(ob['fn'])} missed; "
        f"boundary F within {s.settings['tolerance_m']} m: {s.boundary['overall']['f']:.4f}"
    )
    names = [*s.classes, "unlabelled"]
    click.echo(
        "confusion (m², rows: "
        + ("labeler A" if agreement else "submission")
        + ", columns: "
        + ("labeler B" if agreement else "reference")
        + ")"
    )
    click.echo(f"{'':<14}" + "".join(f"{n[:10]:>12}" for n in names))
    for row in names:
        click.echo(f"{row:<14}" + "".join(f"{s.confusion.get(row, {}).get(col, 0.0):>12,.1f}" for col in names))
    if any(s.repaired.values()):
        click.echo(f"repaired invalid polygons: {s.repaired}")


@click.command(short_help="Score submissions against a reference (or agreement of two labelers).")
@click.argument("submissions", nargs=-1, required=True, type=STORE)
@click.option(
    "--reference", type=STORE, help="Reference labels (a file or a label store); with --tags --agreement: SUBMISSION."
)
@click.option("--classes", default=None, help="Only these classes, e.g. water,farmland.")
@click.option("--iou", default=v.SCORE_IOU, show_default=True, help="IoU threshold for object matching.")
@click.option(
    "--tolerance-m", default=v.SCORE_TOLERANCE_M, show_default=True, help="Boundary F-score tolerance in metres."
)
@click.option("--aoi", type=click.Path(dir_okay=False), help="Score only inside this area (vector file).")
@click.option("--class-field", help="Class field of the submissions (files).")
@click.option("--reference-class-field", help="Class field of the reference (file).")
@click.option(
    "--class", "single_class", help="Give every feature of both sides this class (single-class labels, e.g. building)."
)
@click.option("--schema", "schema_path", type=click.Path(dir_okay=False), help="Class schema (.toml/.json).")
@click.option("--agreement", is_flag=True, help="Present the numbers as agreement between two labelers.")
@click.option("--tags", "tags", is_flag=True, help="Score the tile tags (stores with a tag schema), not the polygons.")
@click.option("--labeler", help="With --tags: whose tags in the submissions (default: each tile's one labeler).")
@click.option("--reference-labeler", help="With --tags: whose tags in the reference.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Also write all numbers as JSON.")
def score(
    submissions: tuple[str, ...],
    reference: str | None,
    classes: str | None,
    iou: float,
    tolerance_m: float,
    aoi: str | None,
    class_field: str | None,
    reference_class_field: str | None,
    single_class: str | None,
    schema_path: str | None,
    agreement: bool,
    tags: bool,
    labeler: str | None,
    reference_labeler: str | None,
    json_out: str | None,
) -> None:
    """Score SUBMISSIONS against --reference: area correctness, completeness and quality
    (IoU) per class, a confusion matrix by area, one-to-one object matching and a
    boundary F-score. Several submissions make a leaderboard ranked by quality.

    \b
    Examples:
      geolabel score team_a.gpkg --reference reference.gpkg --json score.json
      geolabel score a.gpkg b.gpkg c.gpkg --reference ref.gpkg --aoi aoi.geojson
      geolabel score labeler2.gpkg --reference labeler1.gpkg --agreement
      geolabel score footprints.geojson --reference buildings.geojson --class building
      geolabel score team_a.gpkg --reference reference.gpkg --tags
      geolabel score labels.gpkg --tags --agreement --labeler wang --reference-labeler li

    Files without any class field (building footprints) are scored as one class.
    With --tags the stores' tile tags are scored instead: precision, recall, F1 and kappa
    per tag, exact match, Hamming accuracy (multi-label) and macro F1 over the tiles.
    """
    from geolabel.files import check_output_file
    from geolabel.labels.pg_location import shown_location
    from geolabel.labels.schema import load_schema
    from geolabel.score import check_score_options, score_files

    polygon_only = {"--classes": classes, "--aoi": aoi, "--class-field": class_field, "--class": single_class,
                    "--reference-class-field": reference_class_field, "--schema": schema_path,
                    "--iou": None if iou == v.SCORE_IOU else iou,
                    "--tolerance-m": None if tolerance_m == v.SCORE_TOLERANCE_M else tolerance_m}  # fmt: skip
    if tags:
        given = [flag for flag, value in polygon_only.items() if value is not None]
        if given:
            raise click.UsageError(f"{', '.join(given)} score polygons; --tags scores tile tags and takes none of them")
        _score_tags(submissions, reference, labeler, reference_labeler, agreement=agreement, json_out=json_out)
        return
    if labeler or reference_labeler:
        raise click.UsageError("--labeler and --reference-labeler pick whose tile tags: they go with --tags")
    if reference is None:
        raise click.UsageError("--reference is required (only --tags --agreement compares two labelers of one store)")
    check_score_options(iou=iou, tolerance=tolerance_m)
    if json_out:
        check_output_file(json_out, inputs=[*submissions, reference, aoi, schema_path])
    schema = load_schema(schema_path) if schema_path else None
    wanted = v.parse_list(classes) if classes is not None else None
    results = {}
    for sub in submissions:
        results[shown_location(sub)] = score_files(
            sub,
            reference,
            schema=schema,
            classes=wanted,
            iou=iou,
            tolerance=tolerance_m,
            aoi=aoi,
            class_field=class_field,
            reference_class_field=reference_class_field,
            single_class=single_class,
        )
    if len(results) == 1:
        (s,) = results.values()
        _print_score(s, agreement=agreement)
    else:
        ranked = sorted(results.items(), key=lambda kv: (-kv[1].overall["quality"], -kv[1].objects_overall["f1"]))
        click.echo(
            f"{'rank':>4}  {'submission':<40} {'IoU':>7} {'correct':>8} {'complete':>8} {'obj F1':>7} {'bnd F':>7}"
        )
        for rank, (name, s) in enumerate(ranked, start=1):
            o = s.overall
            click.echo(
                f"{rank:>4}  {name[-40:]:<40} {o['quality']:>7.4f} {o['correctness']:>8.4f} {o['completeness']:>8.4f} "
                f"{s.objects_overall['f1']:>7.4f} {s.boundary['overall']['f']:>7.4f}"
            )
    if json_out:
        from geolabel.files import write_text_atomic

        doc: dict[str, Any] = {name: s.to_dict() for name, s in results.items()}
        if len(results) > 1:
            doc = {
                "leaderboard": [n for n, _ in sorted(results.items(), key=lambda kv: -kv[1].overall["quality"])],
                "scores": doc,
            }
        write_text_atomic(json_out, json.dumps(doc, indent=1, ensure_ascii=False))


def _score_tags(
    submissions: tuple[str, ...],
    reference: str | None,
    labeler: str | None,
    reference_labeler: str | None,
    *,
    agreement: bool,
    json_out: str | None,
) -> None:
    """``--tags``: each submission's tile tags against the reference's (see :mod:`geolabel.tag_score`)."""
    from geolabel.cli.score_tags import print_tag_leaderboard, print_tag_score, rank_tag_scores
    from geolabel.files import check_output_file, write_text_atomic
    from geolabel.labels.pg_location import shown_location
    from geolabel.tag_score import score_tags

    if reference is None:
        if not agreement or len(submissions) != 1:
            raise click.UsageError("--tags needs --reference, unless --agreement compares two labelers of one store")
        reference = submissions[0]
    if json_out:
        check_output_file(json_out, inputs=[*submissions, reference])
    results = {
        shown_location(sub): score_tags(
            sub, reference, labeler=labeler, reference_labeler=reference_labeler, agreement=agreement
        )
        for sub in submissions
    }
    if len(results) == 1:
        print_tag_score(next(iter(results.values())), agreement=agreement)
    else:
        print_tag_leaderboard(results)
    if json_out:
        doc: dict[str, Any] = {name: s.to_dict() for name, s in results.items()}
        if len(results) > 1:
            doc = {"leaderboard": [n for n, _ in rank_tag_scores(results)], "scores": doc}
        write_text_atomic(json_out, json.dumps(doc, indent=1, ensure_ascii=False))

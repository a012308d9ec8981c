"""``geolabel score --tags``: tile tags against a reference's, or two labelers' agreement."""

from __future__ import annotations

from typing import Any

import click


def _num(value: float | None, width: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.4f}"


def print_tag_score(s: Any, *, agreement: bool) -> None:
    """The numbers of a :class:`geolabel.tag_score.TagScore`: the overall line, one row per
    tag, and for a single-label project the tiles' confusion matrix."""
    o, n = s.overall, s.tiles
    a, b = (s.settings.get("reference_labeler") or "A", s.settings.get("labeler") or "B")
    if agreement:
        click.echo(f"tags ({s.mode}-label): agreement of {a} and {b} on {n['compared']} tiles both tagged")
    else:
        click.echo(
            f"tags ({s.mode}-label): {n['compared']} reference tiles, {n['untagged']} of them untagged in the "
            f"submission; {n['extra']} submission tiles not in the reference"
        )
    line = f"exact match {o['exact_match']:.4f}"
    if o["hamming_accuracy"] is not None:
        line += f"  Hamming accuracy {o['hamming_accuracy']:.4f}"
    line += f"  macro F1 {o['macro_f1']:.4f}"
    if s.mode == "single":
        line += f"  kappa {_num(o['kappa'], 0)}"
    click.echo(line)
    heads = ("both", f"{b[:7]} only", f"{a[:7]} only") if agreement else ("TP", "FP", "FN")
    click.echo(
        f"{'tag':<16}" + "".join(f"{h:>13}" for h in heads) + f"{'precision':>10}{'recall':>8}{'F1':>8}{'kappa':>8}"
    )
    unused = [name for name in s.tags if not (s.per_tag[name]["tp"] or s.per_tag[name]["fp"] or s.per_tag[name]["fn"])]
    for name in (n for n in s.tags if n not in unused):
        t = s.per_tag[name]
        click.echo(
            f"{name:<16}{t['tp']:>13}{t['fp']:>13}{t['fn']:>13}{_num(t['precision'], 10)}{_num(t['recall'], 8)}"
            f"{_num(t['f1'], 8)}{_num(t['kappa'], 8)}"
        )
    if unused:
        click.echo(f"(not used on these tiles by either side: {', '.join(unused)})")
    if s.confusion is not None:
        names = list(s.confusion)
        rows, cols = (b, a) if agreement else ("submission", "reference")
        click.echo(f"confusion (tiles, rows: {rows}, columns: {cols})")
        click.echo(f"{'':<16}" + "".join(f"{c[:10]:>11}" for c in names))
        for row in names:
            click.echo(f"{row:<16}" + "".join(f"{s.confusion[row][c]:>11}" for c in names))


def print_tag_leaderboard(results: dict[str, Any]) -> None:
    """Several submissions ranked by exact match, then Hamming accuracy, then macro F1."""
    click.echo(f"{'rank':>4}  {'submission':<40} {'exact':>7} {'Hamming':>8} {'macro F1':>8}")
    for rank, (name, s) in enumerate(rank_tag_scores(results), start=1):
        o = s.overall
        click.echo(
            f"{rank:>4}  {name[-40:]:<40} {o['exact_match']:>7.4f} {_num(o['hamming_accuracy'], 8)} "
            f"{o['macro_f1']:>8.4f}"
        )


def rank_tag_scores(results: dict[str, Any]) -> list[tuple[str, Any]]:
    def key(kv: tuple[str, Any]) -> tuple[float, float, float]:
        o = kv[1].overall
        return (-o["exact_match"], -(o["hamming_accuracy"] or 0.0), -o["macro_f1"])

    return sorted(results.items(), key=key)

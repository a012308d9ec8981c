"""The quality report: the gold leaderboards as an HTML page, with one PNG chart per labeler
of their gold scores over time (drawn with Pillow: axes, gridlines, a line with points)."""

from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from geolabel.files import atomic_dir, prepare_output_dir, writing

if TYPE_CHECKING:
    from geolabel.gold import Quality, Standing

MARKER = "quality.json"
SIZE = (640, 320)
_MARGIN = (56, 20, 20, 44)  # left, top, right, bottom


def write_quality_report(result: Quality, out_dir: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write quality.html, quality.json and charts/<labeler>.png into ``out_dir`` atomically."""
    out = Path(out_dir)
    prepare_output_dir(out, marker=MARKER, what="quality report", overwrite=overwrite)
    with atomic_dir(out) as tmp, writing(out, "quality report"):
        (tmp / MARKER).write_text(json.dumps(result.to_dict(), indent=1) + "\n", encoding="utf-8")
        (tmp / "charts").mkdir()
        charts = {}
        for k, (labeler, points) in enumerate(sorted(result.series.items()), start=1):
            name = f"charts/{k:02d}_{re.sub(r'[^A-Za-z0-9_.-]', '_', labeler)[:40]}.png"
            draw_chart(labeler, [m["iou"] for _, m in points], [t for t, _ in points], tmp / name)
            charts[labeler] = name
        (tmp / "quality.html").write_text(_page(result, charts), encoding="utf-8")
    return out


def draw_chart(title: str, values: list[float], times: list[str], path: Path) -> None:
    """A line chart of ``values`` (0..1) in submission order, first and last time labelled."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", SIZE, "white")
    d = ImageDraw.Draw(img)
    left, top, right, bottom = _MARGIN[0], _MARGIN[1], SIZE[0] - _MARGIN[2], SIZE[1] - _MARGIN[3]
    for k in range(6):  # gridlines and y labels every 0.2
        y = bottom - (bottom - top) * k / 5
        d.line([(left, y), (right, y)], fill=(225, 225, 225))
        d.text((left - 30, y - 6), f"{k / 5:.1f}", fill="black")
    d.line([(left, top), (left, bottom), (right, bottom)], fill="black", width=2)
    n = len(values)
    xs = [left + (right - left) * (i + 0.5) / n for i in range(n)]
    ys = [bottom - (bottom - top) * max(0.0, min(1.0, v)) for v in values]
    if n > 1:
        d.line(list(zip(xs, ys)), fill=(31, 119, 180), width=2)
    for x, y in zip(xs, ys):
        d.ellipse([x - 4, y - 4, x + 4, y + 4], fill=(31, 119, 180))
    d.text((left, 4), f"{title}: mean IoU per gold submission", fill="black")
    if times:
        d.text((left, bottom + 8), times[0][:16].replace("T", " "), fill=(80, 80, 80))
        d.text((right - 96, bottom + 8), times[-1][:16].replace("T", " "), fill=(80, 80, 80))
    d.text((left + (right - left) // 2 - 60, bottom + 24), f"{n} gold submissions", fill="black")
    img.save(path)


def _page(result: Quality, charts: dict[str, str]) -> str:
    cards = "".join(
        f"<figure><img src='{html.escape(src)}' alt='{html.escape(name)}'><figcaption>{html.escape(name)}"
        "</figcaption></figure>"
        for name, src in charts.items()
    )
    return (
        "<!doctype html><meta charset='utf-8'><title>Gold quality</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style>"
        "<h1>Quality on gold tiles</h1><p>Ranked by mean IoU (each task's latest submission).</p>"
        f"{_table('Labelers', result.labelers)}{_table('Teams', result.teams)}<h2>Over time</h2>{cards}"
    )


def _table(title: str, rows: list[Standing]) -> str:
    head = "<tr><th>#</th><th>team</th><th>labeler</th><th>gold tiles</th><th>IoU</th><th>F1</th>" \
           "<th>correctness</th><th>completeness</th><th>boundary F</th></tr>"  # fmt: skip
    body = "".join(
        f"<tr><td>{r.rank}</td><td>{html.escape(r.team)}</td><td>{html.escape(r.labeler or '')}</td><td>{r.tiles}</td>"
        + "".join(f"<td>{r.means[k]:.3f}</td>" for k in ("iou", "f1", "correctness", "completeness", "boundary_f"))
        + "</tr>"
        for r in rows
    )
    return f"<h2>{html.escape(title)}</h2><table>{head}{body}</table>"

"""QA report outputs: findings GeoPackage (styled for QGIS), findings.json, report.html with
map thumbnails of the worst findings.

Everything is written into a temporary folder next to ``REPORT_DIR`` and renamed into
place when complete.
"""

from __future__ import annotations

import html
import itertools
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geolabel.files import atomic_dir, prepare_output_dir, writing
from geolabel.garbage import fewer_collections
from geolabel.qa import Finding, QAResult
from geolabel.stop import deferred

if TYPE_CHECKING:
    from geolabel.labels.schema import ClassSchema

SEVERITY_COLORS = {"error": "#e31a1c", "warning": "#ff7f00"}
THUMBNAILS = 12
THUMB_PX = 320

_FIELDS = {
    "finding_id": "int",
    "type": "str",
    "severity": "str",
    "feature_ids": "str",
    "class": "str",
    "area_m2": "float",
    "message": "str",
}


def _qml(kind: str) -> str:
    """A QGIS style: categorized by severity (errors red, warnings orange)."""
    cats, symbols = [], []
    for k, (name, color) in enumerate(SEVERITY_COLORS.items()):
        r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
        cats.append(f'<category render="true" symbol="{k}" value="{name}" label="{name}"/>')
        if kind == "point":
            layer = (
                f'<layer class="SimpleMarker"><prop k="color" v="{r},{g},{b},255"/><prop k="name" v="circle"/>'
                f'<prop k="size" v="3"/><prop k="outline_color" v="0,0,0,255"/></layer>'
            )
            symbols.append(f'<symbol name="{k}" type="marker" alpha="1">{layer}</symbol>')
        else:
            layer = (
                f'<layer class="SimpleFill"><prop k="color" v="{r},{g},{b},90"/>'
                f'<prop k="outline_color" v="{r},{g},{b},255"/><prop k="outline_width" v="0.6"/></layer>'
            )
            symbols.append(f'<symbol name="{k}" type="fill" alpha="1">{layer}</symbol>')
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        '<qgis version="3.22" styleCategories="Symbology">'
        f'<renderer-v2 type="categorizedSymbol" attr="severity" forceraster="0" enableorderby="0">'
        f"<categories>{''.join(cats)}</categories><symbols>{''.join(symbols)}</symbols></renderer-v2>"
        "</qgis>"
    )


def _write_styles(path: Path, layers: dict[str, str]) -> None:
    """The GeoPackage ``layer_styles`` table QGIS reads default styles from."""
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS layer_styles (id INTEGER PRIMARY KEY AUTOINCREMENT, f_table_catalog TEXT, "
            "f_table_schema TEXT, f_table_name TEXT, f_geometry_column TEXT, styleName TEXT, styleQML TEXT, "
            "styleSLD TEXT, useAsDefault BOOLEAN, description TEXT, owner TEXT, ui TEXT, update_time DATETIME "
            "DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))"  # the GeoPackage datetime form
        )
        for table, kind in layers.items():
            conn.execute(
                "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, f_geometry_column, "
                "styleName, styleQML, styleSLD, useAsDefault, description, owner) VALUES ('', '', ?, 'geom', ?, ?, "
                "'', 1, 'geolabel findings by severity', 'geolabel')",
                (table, f"{table} by severity", _qml(kind)),
            )
        conn.execute(
            "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description) "
            "VALUES ('layer_styles', 'attributes', 'layer_styles', 'QGIS layer styles')"
        )


def write_findings_gpkg(result: QAResult, path: Path) -> dict[str, int]:
    """Findings as layers ``findings_polygons``, ``findings_points`` and (for file-level
    findings) ``findings_table``; returns the feature count per layer. Written a layer at a
    time with pyogrio (a check can report 100,000 findings)."""
    from geolabel.crs import epsg_or_wkt

    fields = _finding_fields(result.findings)
    polygons, points, table = _finding_layers(result.findings)
    crs = epsg_or_wkt(result.crs) if result.crs is not None else None
    counts = {}
    for layer, kind, (rows, geoms) in (
        ("findings_polygons", "MultiPolygon", polygons),
        ("findings_points", "Point", points),
    ):
        with deferred():  # a Ctrl-C waits for the layer (see geolabel.stop)
            _write_layer(path, layer, kind, geoms, {k: v[rows] for k, v in fields.items()}, crs)
        counts[layer] = len(rows)
    _write_table(path, list(zip(*(fields[k][table].tolist() for k in _FIELDS))))
    counts["findings_table"] = len(table)
    _write_styles(path, {"findings_polygons": "polygon", "findings_points": "point"})
    return counts


def _finding_fields(findings: list[Finding]) -> dict[str, Any]:
    """The attribute columns of the findings layers, one array per field."""
    return {
        "finding_id": np.arange(1, len(findings) + 1, dtype=np.int64),
        "type": np.array([f.type for f in findings], dtype=object),
        "severity": np.array([f.severity for f in findings], dtype=object),
        "feature_ids": np.array([",".join(f.feature_ids) for f in findings], dtype=object),
        "class": np.array([f.class_name for f in findings], dtype=object),
        "area_m2": np.array([np.nan if f.area_m2 is None else f.area_m2 for f in findings], dtype=np.float64),
        "message": np.array([f.message for f in findings], dtype=object),
    }


def _finding_layers(findings: list[Finding]) -> tuple[Any, Any, Any]:
    """(rows, geometries) of the polygon layer (each finding's polygonal parts as one
    MultiPolygon) and of the point layer (points, and the representative point of findings
    with no polygonal part, e.g. a line), and the rows without a location, all in finding order."""
    import shapely

    from geolabel.geom import geometry_array, polygonal_parts, threaded

    geoms = geometry_array((f.geometry for f in findings), len(findings))
    if not len(geoms):
        empty = np.zeros(0, dtype=np.int64)
        return (empty, geoms), (empty, geoms), empty
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    pointlike = np.isin(shapely.get_type_id(geoms), (0, 4)) & ~missing
    shaped = np.flatnonzero(~missing & ~pointlike)
    if np.isin(shapely.get_type_id(geoms[shaped]), (3, 6)).all():  # (multi)polygons: GDAL makes them multi
        poly_rows, polygons = shaped, geoms[shaped]
    else:
        parts, source = polygonal_parts(geoms[shaped])
        owners, position = np.unique(source, return_inverse=True)
        poly_rows = shaped[owners]
        polygons = shapely.multipolygons(parts, indices=position) if len(parts) else np.zeros(0, dtype=object)
    at_a_point = pointlike.copy()
    at_a_point[np.setdiff1d(shaped, poly_rows)] = True  # no polygonal part: shown where it is
    point_rows = np.flatnonzero(at_a_point)
    points = threaded(shapely.point_on_surface, geoms[point_rows])
    return (poly_rows, polygons), (point_rows, points), np.flatnonzero(missing)


def _write_layer(path: Path, layer: str, kind: str, geoms: Any, columns: dict[str, Any], crs: str | None) -> None:
    import pyogrio.raw
    import shapely

    pyogrio.raw.write(
        str(path),
        geometry=shapely.to_wkb(geoms, output_dimension=2),
        field_data=list(columns.values()),
        fields=list(columns),
        layer=layer,
        driver="GPKG",
        geometry_type=kind,
        crs=crs,
        append=path.exists(),
        dataset_options={"VERSION": "1.2"},
        promote_to_multi=kind.startswith("Multi"),
    )


def _write_table(path: Path, rows: list[tuple[Any, ...]]) -> None:
    """The findings without a location, as the attribute table ``findings_table``."""
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE findings_table (finding_id INTEGER PRIMARY KEY, type TEXT, severity TEXT, "
            "feature_ids TEXT, class TEXT, area_m2 REAL, message TEXT)"
        )
        conn.executemany(
            "INSERT INTO findings_table VALUES (?, ?, ?, ?, ?, ?, ?)",
            [tuple(None if isinstance(v, float) and v != v else v for v in row) for row in rows],
        )
        conn.execute(
            "INSERT INTO gpkg_contents (table_name, data_type, identifier, description) "
            "VALUES ('findings_table', 'attributes', 'findings_table', 'findings without a location')"
        )


#: The thumbnails' background colour.
BACKGROUND = (245, 245, 240)


def render_thumbnail(result: QAResult, finding: Finding, path: Path, schema: ClassSchema, *, tree: Any = None) -> None:
    """A PNG map of one finding (red) over the labels around it (class colours); ``tree``:
    an STRtree of ``result.labels`` shared by several thumbnails."""
    import shapely
    from PIL import ImageDraw

    g = finding.geometry
    minx, miny, maxx, maxy = g.bounds
    span = max(maxx - minx, maxy - miny, 20.0) * 1.6
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    x0, y0 = cx - span / 2, cy - span / 2
    scale = THUMB_PX / span

    def px(coords: Any) -> list[tuple[float, float]]:
        return [((x - x0) * scale, (y0 + span - y) * scale) for x, y in np.asarray(coords)[:, :2]]

    view = shapely.box(x0, y0, x0 + span, y0 + span)
    near = np.zeros(0, dtype=np.int64)
    if result.labels is not None and len(result.labels):
        near = (tree or shapely.STRtree(result.labels)).query(view, predicate="intersects")
    img = _labels_image(result, near, (x0, y0 + span, span / THUMB_PX), schema)
    draw = ImageDraw.Draw(img, "RGBA")
    red = (227, 26, 28)
    if g.geom_type in ("Point", "MultiPoint"):
        x, y = px(np.array([[g.x, g.y]]))[0] if g.geom_type == "Point" else px(np.array([g.centroid.coords[0]]))[0]
        draw.ellipse([x - 7, y - 7, x + 7, y + 7], outline=(*red, 255), width=3)
    else:
        for part in getattr(g, "geoms", [g]):
            if part.geom_type == "Polygon":
                draw.polygon(px(part.exterior.coords), fill=(*red, 120), outline=(*red, 255))
            elif hasattr(part, "coords"):
                draw.line(px(part.coords), fill=(*red, 255), width=3)
    bar = 10 ** np.floor(np.log10(span / 4))
    draw.line([(10, THUMB_PX - 12), (10 + bar * scale, THUMB_PX - 12)], fill=(0, 0, 0, 255), width=3)
    draw.text((12, THUMB_PX - 28), f"{bar:g} m", fill=(0, 0, 0, 255))
    img.save(path)


def _labels_image(result: QAResult, near: Any, origin: tuple[float, float, float], schema: ClassSchema) -> Any:
    """The labels ``near`` as a THUMB_PX² RGB image: class colour over the background at
    43 %, outlines in full colour, holes left open; ``origin``: (left, top, pixel size).
    Coordinates go to pixels in one vectorised call: a large gap's thumbnail shows tens
    of thousands of labels, which shapely's per-geometry properties made take seconds."""
    import shapely
    from PIL import Image, ImageDraw

    from geolabel.geom import groups, polygonal_parts

    img = Image.new("RGB", (THUMB_PX, THUMB_PX), BACKGROUND)
    draw = ImageDraw.Draw(img, "RGBA")
    if not len(near):
        return img
    left, top, size = origin
    parts, owner = polygonal_parts(np.asarray(result.labels, dtype=object)[near])
    parts = shapely.transform(parts, lambda xy: (xy - [left, top]) * [1 / size, -1 / size])
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    xy, ring_of = shapely.get_coordinates(rings, return_index=True)
    starts, counts, _ = groups(ring_of)
    exterior = groups(ring_part)[2] == 0  # a polygon's rings: its exterior, then its holes
    codes = np.asarray(result.label_codes)[near][owner][ring_part]
    flat = xy.ravel().tolist()
    for k, (a, n) in enumerate(zip(starts.tolist(), counts.tolist())):
        rgb = _rgb(schema, int(codes[k]))
        inside = (*rgb, 110) if exterior[k] else (*BACKGROUND, 255)
        draw.polygon(flat[2 * a : 2 * (a + n)], fill=inside, outline=(*rgb, 255))
    return img


def _rgb(schema: ClassSchema, code: int) -> tuple[int, int, int]:
    """The class colour of ``code`` (grey for a code the schema does not know)."""
    color = schema.get(code).color if code >= 0 and code in schema else "#999999"
    return (int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16))


def _table(title: str, rows: dict[str, dict[str, float]]) -> str:
    head = f"<tr><th>{html.escape(title)}</th><th>features</th><th>area m²</th><th>errors</th><th>warnings</th></tr>"
    body = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{int(v['features'])}</td><td>{v['area_m2']:,.1f}</td>"
        f"<td class='e'>{int(v['errors'])}</td><td class='w'>{int(v['warnings'])}</td></tr>"
        for k, v in rows.items()
    )
    return f"<h2>Per {html.escape(title)}</h2><table>{head}{body}</table>"


def check_report_folder(out_dir: str | os.PathLike[str], *, overwrite: bool = False) -> None:
    """Refuse a report folder that cannot be (re)placed, before any checking is done."""
    prepare_output_dir(Path(out_dir), marker="findings.json", what="QA report", overwrite=overwrite)


@fewer_collections()
def write_report(
    result: QAResult,
    out_dir: str | os.PathLike[str],
    *,
    schema: ClassSchema,
    overwrite: bool = False,
    workers: int | None = 1,
) -> Path:
    """Write findings.gpkg, findings.json, report.html and thumbnails/ into ``out_dir``.

    With ``workers`` 2 or more (None: all cores) findings.gpkg is written by a process
    forked for it while this one writes the rest (the CLI does; never inside QGIS);
    with 1, by a thread."""
    from geolabel.parallel import worker_count

    out = Path(out_dir)
    process = worker_count(workers) > 1
    check_report_folder(out, overwrite=overwrite)
    with atomic_dir(out) as tmp, writing(out, "QA report"):
        _build_report(result, tmp, schema, process=process)
    return out


def _json_bytes(doc: dict[str, Any]) -> bytes:
    """``doc`` as indented UTF-8 JSON, written by orjson (Python's own encoder takes
    seconds for 100,000 findings once it indents)."""
    import orjson

    return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY, default=float) + b"\n"


def _build_report(result: QAResult, tmp: Path, schema: ClassSchema, *, process: bool) -> None:
    """The report's files, written into the folder ``tmp``; findings.gpkg beside the rest
    (in a forked ``process``, else a thread)."""
    from concurrent.futures import ProcessPoolExecutor

    from geolabel.parallel import side_executor
    from geolabel.shared import published

    with published(result) as key, side_executor(process=process) as side:
        own_process = isinstance(side, ProcessPoolExecutor)
        gpkg = side.submit(_write_published_gpkg, key, str(tmp / "findings.gpkg"), own_process=own_process)
        doc = result.to_dict()
        (tmp / "findings.json").write_bytes(_json_bytes(doc))
        _write_thumbnails_and_page(result, tmp, schema, crs=doc["crs"])
        gpkg.result()


def _write_published_gpkg(key: str, path: str, *, own_process: bool = False) -> dict[str, int]:
    """:func:`write_findings_gpkg` of the result published under ``key`` (a side task).

    In a process forked for it (``own_process``) SQLite writes the file unsynced
    (:data:`~geolabel.files.UNSYNCED_GPKG`: 1.2 s instead of 1.4 s for 100,000 findings).
    GDAL's settings are process-wide, so a thread, as in QGIS, leaves them alone."""
    from geolabel.shared import lookup

    if own_process:
        import pyogrio

        from geolabel.files import UNSYNCED_GPKG

        pyogrio.set_gdal_config_options(UNSYNCED_GPKG)
    return write_findings_gpkg(lookup(key), Path(path))


def _write_thumbnails_and_page(result: QAResult, tmp: Path, schema: ClassSchema, *, crs: str | None) -> None:
    """The thumbnails of the worst findings and report.html (``crs``: the findings' CRS, named)."""
    import shapely

    (tmp / "thumbnails").mkdir()
    located = (f for f in result.findings if f.geometry is not None and not f.geometry.is_empty)
    worst = list(itertools.islice(located, THUMBNAILS))
    cards = []
    tree = shapely.STRtree(result.labels) if result.labels is not None and len(result.labels) else None
    for k, f in enumerate(worst, start=1):
        name = f"thumbnails/finding_{k:02d}.png"
        render_thumbnail(result, f, tmp / name, schema, tree=tree)
        cards.append(
            f"<figure><img src='{name}' width='{THUMB_PX}' height='{THUMB_PX}' alt='{html.escape(f.type)}'>"
            f"<figcaption><b class='{f.severity[0]}'>{f.severity}</b> {html.escape(f.type)}: "
            f"{html.escape(f.message)}</figcaption></figure>"
        )
    counts = result.counts()
    count_rows = "".join(
        f"<tr><td>{html.escape(t)}</td><td class='e'>{c['error']}</td><td class='w'>{c['warning']}</td></tr>"
        for t, c in counts.items()
    )
    completeness = result.completeness
    comp = (
        f"<p>Completeness: <b>{completeness:.2%}</b> of {result.region_area_m2:,.0f} m² labelled "
        f"({result.gap_area_m2:,.1f} m² unlabelled).</p>"
        if completeness is not None
        else ""
    )
    verdict = "FAILED" if result.errors else "PASSED"
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>geolabel check: {html.escape(Path(result.source).name)}</title>
<style>
body{{font-family:sans-serif;margin:2em;color:#222}} table{{border-collapse:collapse;margin-bottom:1.5em}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}} td:first-child,th:first-child{{text-align:left}}
.e{{color:{SEVERITY_COLORS["error"]}}} .w{{color:{SEVERITY_COLORS["warning"]}}}
figure{{display:inline-block;width:{THUMB_PX}px;margin:0 1em 1em 0;vertical-align:top}}
figcaption{{font-size:85%}} .verdict{{font-size:140%}}
</style></head><body>
<h1>Quality report: {html.escape(result.source)}</h1>
<p class="verdict">{verdict}: <span class="e">{result.errors} errors</span>,
<span class="w">{result.warnings} warnings</span> on {result.n_features} features.</p>
<p>Measured in {html.escape(str(crs))}; minimum mapping unit {result.settings["min_area_m2"]:g} m²,
minimum width {result.settings["min_width_m"]:g} m.</p>
{comp}
<h2>Findings by type</h2><table><tr><th>type</th><th>errors</th><th>warnings</th></tr>{count_rows}</table>
{_table("class", result.by_class)}
{_table("team", result.by_team)}
{_table("labeler", result.by_labeler)}
<h2>Worst findings</h2>
{"".join(cards) or "<p>No findings with a location.</p>"}
<p>All findings: <code>findings.gpkg</code> (open in QGIS: styled by severity) and <code>findings.json</code>.</p>
</body></html>
"""
    (tmp / "report.html").write_text(page, encoding="utf-8")

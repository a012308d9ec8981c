"""How the command line says what engine messages call API arguments and functions.

Engine errors and warnings name API arguments (`overwrite=True`, `min_overlap`) and
functions (`create_store()`) in backquotes and list them in their ``params``;
:func:`cli_message` rewrites exactly those with this one table, so each message is
written once.

>>> cli_message("out: already exists; pass `overwrite=True` to replace it", ("overwrite",))
'out: already exists; pass --overwrite to replace it'
>>> cli_message("s.tif: 9x9 px is smaller than a chip; `edge='drop'` leaves no chip", ("edge",))
's.tif: 9x9 px is smaller than a chip; --edge drop leaves no chip'
>>> cli_message("`classes`: unknown class 'x'; known classes: 1=water", ("classes",))
"--classes: unknown class 'x'; known classes: 1=water"
>>> cli_message("no such label store; create one with `create_store()`", ("create_store()",))
'no such label store; create one with `geolabel labels init`'
"""

from __future__ import annotations

from collections.abc import Sequence

from geolabel.errors import say_params

#: API argument or function -> what the command line calls it.
FLAGS: dict[str, str] = {
    # tile
    "size": "--size",
    "overlap": "--overlap",
    "edge": "--edge",
    "max_nodata": "--max-nodata",
    "bands": "--bands",
    "format": "--format",
    "compress": "--compress",
    "dst_crs": "--dst-crs",
    "resolution": "--resolution",
    "resampling": "--resampling",
    "allow_no_crs": "--allow-no-crs",
    "out_dir": "--out",
    "overwrite": "--overwrite",
    "workers": "--workers",
    "scheduler": "--scheduler",
    "asset": "--asset",
    "stac": "--stac",
    # labels
    "crs": "--crs",
    "schema": "--schema",
    "class_field": "--class-field",
    "class_map": "--class-map",
    "single_class": "--class",
    "src_crs": "--src-crs",
    "layer": "--layer",
    "status": "--status",
    "min_area": "--min-area",
    "min_width": "--min-width",
    "precision": "--precision",
    "same_class": "--same-class",
    "since": "--since",
    "dst": "DST",
    # export
    "tiles": "--tiles",
    "formats": "--format",
    "min_overlap": "--min-overlap",
    "split": "--split",
    "block_size": "--block-size",
    "guard": "--guard",
    "seed": "--seed",
    "repair": "--repair",
    # team
    "team": "--team",
    "role": "--role",
    "password": "--password-file",
    # check
    "aoi": "--aoi",
    "done_only": "--done-only",
    "spike_angle": "--spike-angle",
    "expected_crs": "--crs",
    # score
    "reference_class_field": "--reference-class-field",
    "classes": "--classes",
    "iou": "--iou",
    "tolerance": "--tolerance-m",
    # tasks and review
    "labeler": "--labeler",
    "reference_labeler": "--reference-labeler",
    "reviewer": "--reviewer",
    "where": "--where",
    "count": "--count",
    "overlap_fraction": "--overlap-fraction",
    "comment": "--comment",
    "threshold": "--threshold",
    "tile_ids": "--tiles",
    "site": "--site",
    "out": "--out",
    # suggest
    "index": "--index",
    "tile": "--tile",
    "into": "--into",
    "window": "--window",
    "only_todo": "--only-todo",
    # tags
    "tag_schema": "--tag-schema",
    "rules": "--rule",
    "tag": "--tag",
    # functions -> commands
    "tile_raster()": "`geolabel tile`",
    "create_store()": "`geolabel labels init`",
    "import_labels()": "`geolabel labels import`",
    "resolve_store()": "`geolabel labels resolve`",
    "add_member()": "`geolabel team add`",
    "suggest_classes()": "`geolabel suggest classes`",
    "set_tag_schema()": "`geolabel tags schema`",
}


def cli_message(message: str, params: Sequence[str]) -> str:
    """``message`` with the API names listed in ``params`` said as the command line says them."""
    return say_params(message, params, _flag_text)


def _flag_text(name: str, value: str | None) -> str | None:
    """``--flag`` for ``name`` and ``name=True``; ``--flag value`` for ``name='value'``."""
    flag = FLAGS.get(name)
    if flag is None:
        return None
    return f"{flag} {value}" if value else flag

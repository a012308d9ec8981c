"""Resume policy: what an earlier run in the output folder left, and whether this run
continues it (same options), refuses to mix jobs, or (``overwrite``) starts afresh."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geolabel.errors import InputError, OutputExistsError
from geolabel.tileindex import INDEX_NAME, TileRecord

if TYPE_CHECKING:
    from geolabel.raster import SceneInfo


@dataclass
class PreviousRun:
    """What an earlier run in the output folder left, and whether this run continues it."""

    chips: list[TileRecord] = field(default_factory=list)  # listed and still on disk
    skipped: list[TileRecord] = field(default_factory=list)
    index_crs: str | None = None  # the CRS of the index this run continues
    resume: bool = False  # same options: complete chips found on disk are kept

    @property
    def done(self) -> set[str]:
        return {r.tile_id for r in self.chips} | {r.tile_id for r in self.skipped}


def previous_run(out: Path, infos: Sequence[SceneInfo], params: dict[str, Any], *, overwrite: bool) -> PreviousRun:
    """Read the index an earlier run left in ``out``; refuse to mix jobs, or (``overwrite``)
    delete that run's chips, including those it finished but had not listed yet."""
    from geolabel.files import child_dir
    from geolabel.tileindex import read_index

    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{out}: exists and is not a folder")
    index_path = out / INDEX_NAME
    names = {i.name for i in infos}
    for name in names:  # before anything is deleted or written: no scene folder leads outside
        child_dir(out, name)
    if not index_path.exists():
        return _no_index(out, names, overwrite=overwrite)
    chips, skipped, old_params = read_index(index_path)
    if old_params != params or overwrite:
        if not overwrite:
            diff = ", ".join(f"{k}={old_params.get(k)!r}" for k in sorted(params) if old_params.get(k) != params[k])
            raise OutputExistsError(
                f"{index_path}: was made with other options ({diff}); use another `out_dir` or pass `overwrite=True`",
                params=("out_dir", "overwrite"),
            )
        # the old index goes first: a run killed while deleting must not resume the old job
        # with chips of the new one
        index_path.unlink()
        remove_chip_files(out, names | {r.scene for r in chips})
        return PreviousRun()
    return _continued(out, infos, chips, skipped)


def _no_index(out: Path, names: set[str], *, overwrite: bool) -> PreviousRun:
    """A folder without index: empty (or only this job's scene folders), else refused."""
    if out.exists() and not overwrite:
        stray = [p.name for p in out.iterdir() if not p.name.startswith(".")]
        if stray and not all((out / n).is_dir() and n in names for n in stray):
            raise OutputExistsError(
                f"{out}: folder is not empty and holds no tile index; use an empty `out_dir`", params=("out_dir",)
            )
    if overwrite:
        remove_chip_files(out, names)
    return PreviousRun()


def _continued(
    out: Path, infos: Sequence[SceneInfo], chips: list[TileRecord], skipped: list[TileRecord]
) -> PreviousRun:
    """The run of the same job to continue, refused when a scene would mix with another's chips."""
    from geolabel.tileindex import index_crs

    index_path = out / INDEX_NAME
    previous = PreviousRun(index_crs=index_crs(index_path), resume=True)
    for info in infos:
        if (info.crs_wkt is not None) != bool(previous.index_crs):
            raise InputError(
                f"{info.path}: {'has' if info.crs_wkt else 'has no'} CRS but the chips in {index_path} "
                f"{'do not' if info.crs_wkt else 'do'}; use another `out_dir`",
                params=("out_dir",),
            )
    earlier = {r.scene: r.scene_path for r in chips + skipped}
    for info in infos:
        before = earlier.get(info.name)
        if before is not None and before != _scene_path(info):
            raise OutputExistsError(
                f"{info.path}: {out} already holds chips named {info.name!r} from {before}; rename the scene, "
                "use another `out_dir`, or pass `overwrite=True`",
                params=("out_dir", "overwrite"),
            )
    previous.chips = [r for r in chips if (out / r.path).exists()]
    previous.skipped = skipped
    return previous


def _scene_path(info: SceneInfo) -> str:
    from geolabel.remote import index_location

    return index_location(info.path)


def chip_files(folder: Path, scene: str) -> list[Path]:
    """Files in ``folder`` named like chips of ``scene`` (``<scene>_rRRR_cCCC.tif``)."""
    pattern = re.compile(rf"{re.escape(scene)}_r\d{{3,}}_c\d{{3,}}\.tif")
    try:
        return [Path(e.path) for e in os.scandir(folder) if pattern.fullmatch(e.name)]
    except (FileNotFoundError, NotADirectoryError):
        return []


def remove_chip_files(out: Path, scenes: Iterable[str]) -> None:
    """Delete every chip-named file of ``scenes`` in their folders inside ``out`` (for
    ``overwrite``; listed or not); a scene folder that is a link to outside ``out`` is
    refused, not entered, and a chip that is a link loses the link, never its target."""
    from geolabel.files import child_dir

    for name in scenes:
        for chip in chip_files(child_dir(out, name), name):
            chip.unlink(missing_ok=True)

"""Scene list files: one scene path or URL a line, for ``geolabel tile --scenes FILE``."""

from __future__ import annotations

import os
from pathlib import Path


def read_scene_list(path: str | os.PathLike[str]) -> list[str]:
    """The scenes a list file names, in order: blank lines and ``#`` comments are skipped,
    URLs and absolute paths kept, relative paths taken relative to the list file (so a
    list travels with its scenes).

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "scenes.txt").write_text("# batch 1\\na.tif\\n\\nhttps://host/b.tif\\n")
    >>> [Path(p).name if not p.startswith("http") else p for p in read_scene_list(folder / "scenes.txt")]
    ['a.tif', 'https://host/b.tif']
    """
    from geolabel.errors import InputError
    from geolabel.files import check_input_file
    from geolabel.remote import is_remote

    file = Path(path)
    check_input_file(file, "scene list (one scene path or URL a line)")
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{file}: cannot be read as a text file ({exc})") from None
    scenes = []
    for line in lines:
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        if is_remote(entry) or entry.startswith("/vsi") or os.path.isabs(entry):
            scenes.append(entry)
        else:
            scenes.append(str(file.parent / entry))
    return scenes

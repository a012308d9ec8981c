"""Scenes from a STAC catalog: :func:`read_stac` turns a STAC ItemCollection, Catalog or
Collection (a file, or an http(s) URL pystac reads) into :class:`NamedScene` values, one
per item: the item's asset to tile, the item id as scene name, and the datetime, platform
and cloud cover the tile index lists for the item's chips.

STAC documents come from elsewhere, so what they say is checked like a tile index: hrefs
are only read, never used to name an output (the scene name is the item id made safe by
:func:`~geolabel.grid.safe_name`), the properties must pass
:meth:`~geolabel.tileindex.SceneProperties.problem`, and a document read over the network
may not point at local files.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geolabel.errors import InputError, first_line
from geolabel.grid import safe_name
from geolabel.tileindex import SceneProperties
from geolabel.tiling.plan import NamedScene

if TYPE_CHECKING:
    import pystac

#: ``scheme://`` at the start of an href: a URL, not a local path.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
#: What a STAC document must be.
_KINDS = "a STAC ItemCollection, Catalog or Collection"


def read_stac(source: str | os.PathLike[str], *, asset: str) -> list[NamedScene]:
    """The scenes of a STAC document: for each item (of a catalog: all items, recursively)
    its asset ``asset`` with relative hrefs made absolute, named by item id.

    >>> scenes = read_stac("items.json", asset="visual")  # doctest: +SKIP
    >>> scenes[0].name, scenes[0].properties.platform  # doctest: +SKIP
    ('S2A_T50RKU_20230501', 'sentinel-2a')

    Raises a one-line :class:`InputError` when the document is missing, not JSON, not
    STAC, lists no items, has an item without ``asset`` or two items with one id.
    """
    text = os.fspath(source)
    remote = _is_remote(text)
    href = text if remote else os.path.abspath(text)
    items = list(_items(text, href))
    if not items:
        raise InputError(f"{text}: {_KINDS} with no items; nothing to tile")
    scenes = [_item_scene(text, item, base, asset, remote=remote) for item, base in items]
    _check_unique_names(text, [str(item.id) for item, _ in items], scenes)
    return scenes


def _is_remote(href: str) -> bool:
    return bool(_URL.match(href)) and not href.lower().startswith("file://")


def _items(text: str, href: str) -> Iterator[tuple[pystac.Item, str]]:
    """Each item of the document, with the href its relative hrefs resolve against."""
    import pystac

    document = _read_json(text, href)
    try:
        if document.get("type") == "FeatureCollection":
            collection = pystac.ItemCollection.from_dict(document, preserve_dict=False)
            yield from ((item, item.get_self_href() or href) for item in collection)
            return
        stac = pystac.read_dict(document, href=href)
        if isinstance(stac, pystac.Item):
            yield stac, href
        elif isinstance(stac, pystac.Catalog):  # a Collection is a Catalog
            yield from ((item, item.get_self_href() or href) for item in _walk(stac, {href}))
        else:
            raise TypeError(f"a {type(stac).__name__}")
    except InputError:
        raise
    except Exception as exc:  # pystac reports bad documents and unreadable links many ways
        raise InputError(f"{text}: not {_KINDS} pystac can read ({first_line(exc)})") from None


def _read_json(text: str, href: str) -> dict[str, Any]:
    """The document as a JSON object (read by pystac's default StacIO: files and URLs)."""
    import json
    import urllib.error

    import pystac

    from geolabel.files import check_input_file

    if not _is_remote(text):
        check_input_file(Path(text), "STAC JSON file")
    try:
        document = pystac.StacIO.default().read_json(href)
    except json.JSONDecodeError as exc:
        raise InputError(f"{text}: not JSON ({first_line(exc)}); give {_KINDS}") from None
    except Exception as exc:  # pystac wraps an HTTPError in a plain Exception
        cause = exc.__cause__ if isinstance(exc.__cause__, urllib.error.HTTPError) else exc
        said = f"HTTP {cause.code} {cause.reason}" if isinstance(cause, urllib.error.HTTPError) else first_line(cause)
        raise InputError(f"{text}: cannot be read ({said})") from None
    if not isinstance(document, dict):
        raise InputError(f"{text}: JSON but not {_KINDS} (not a JSON object)")
    return document


def _walk(catalog: pystac.Catalog, seen: set[str]) -> Iterator[pystac.Item]:
    """The items of ``catalog`` and of its sub-catalogs; each sub-catalog once, so a
    catalog whose links loop ends."""
    yield from catalog.get_items()
    for child in catalog.get_children():
        href = child.get_self_href() or ""
        if href not in seen:
            seen.add(href)
            yield from _walk(child, seen)


def _item_scene(text: str, item: pystac.Item, base: str, key: str, *, remote: bool) -> NamedScene:
    """The scene of one item: its asset ``key``, its id as name, its properties."""
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    from pystac.utils import make_absolute_href

    where = f"{text}: item {_quoted(str(item.id))}"
    asset = item.assets.get(key)
    if asset is None:
        have = ", ".join(_quoted(k) for k in sorted(item.assets)) or "none"
        raise InputError(f"{where} has no asset {_quoted(key)} (its assets: {have})", params=("asset",))
    href = make_absolute_href(asset.href, base)
    if remote and not _is_remote(href):
        raise InputError(f"{where}: asset href {_quoted(href)} is a local file in a document read over the network")
    if href.lower().startswith("file://"):
        href = url2pathname(urlparse(href).path)
    return NamedScene(path=href, name=safe_name(str(item.id)), properties=_properties(where, item))


def _properties(where: str, item: pystac.Item) -> SceneProperties:
    """The item's datetime (its start_datetime when it has a range), platform and
    eo:cloud_cover, checked as the tile index will check them."""
    from pystac.utils import datetime_to_str

    when = item.datetime or item.common_metadata.start_datetime
    props = SceneProperties(
        datetime=datetime_to_str(when) if when is not None else None,
        platform=item.properties.get("platform") or None,  # "" says nothing either
        cloud_cover=item.properties.get("eo:cloud_cover"),
    )
    problem = props.problem()
    if problem is not None:
        raise InputError(f"{where}: {problem}")
    cover = props.cloud_cover
    return props if cover is None else SceneProperties(props.datetime, props.platform, float(cover))


def _check_unique_names(text: str, ids: list[str], scenes: list[NamedScene]) -> None:
    """Two items may not share a scene name: their chips would land in one folder."""
    first: dict[str, str] = {}
    for item_id, scene in zip(ids, scenes):
        other = first.get(scene.name)
        if other is None:
            first[scene.name] = item_id
            continue
        if other == item_id:
            raise InputError(f"{text}: item id {_quoted(item_id)} is listed twice; item ids must be unique")
        raise InputError(
            f"{text}: items {_quoted(other)} and {_quoted(item_id)} both make the scene name "
            f"{_quoted(scene.name)}; their chips would collide"
        )


def _quoted(text: str) -> str:
    """``text`` quoted for a one-line message (cut after 60 characters)."""
    return repr(text if len(text) <= 60 else text[:60] + "...")

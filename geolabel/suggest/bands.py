"""Which band of a scene is green, NIR or SWIR: from the caller, else from the scene's
own band descriptions or colour interpretation. Nothing is guessed from the band order:
R,G,B,NIR is common (NAIP) but B,G,R,NIR is too, and a wrong guess gives plausible
but wrong water.

>>> band_roles(("red", "green", "blue", "nir"), ("red", "green", "blue", "undefined"))
{'green': 2, 'nir': 4}
>>> parse_band_roles("green=2, nir=4")
{'green': 2, 'nir': 4}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from geolabel import vocabulary as v
from geolabel.errors import InputError, check_choice

#: Band descriptions (lower case) and colour interpretations that name each role.
ROLE_NAMES: dict[str, frozenset[str]] = {
    "green": frozenset({"green"}),
    "nir": frozenset({"nir", "nir1", "near infrared", "near-infrared", "nearinfrared", "infrared"}),
    "swir": frozenset({"swir", "swir1", "swir16", "swir_1", "swir-1", "short-wave infrared", "shortwave infrared"}),
}

#: The bands each water index reads: (the band water reflects, the band water absorbs).
INDEX_BANDS: dict[str, tuple[str, str]] = {"ndwi": ("green", "nir"), "mndwi": ("green", "swir")}


def parse_band_roles(text: str) -> dict[str, int]:
    """``green=2,nir=4`` -> ``{'green': 2, 'nir': 4}``; unknown roles and non-numbers raise."""
    roles: dict[str, int] = {}
    for item in v.parse_list(text):
        role, sep, number = (part.strip() for part in item.partition("="))
        if not sep or role.lower() not in v.BAND_ROLES or not number.isdigit():
            raise InputError(
                f"`bands`: {item!r} is not ROLE=BAND with a role of {', '.join(v.BAND_ROLES)} "
                "and a band number, e.g. green=2,nir=4",
                params=("bands",),
            )
        roles[role.lower()] = int(number)
    return roles


def band_roles(descriptions: Sequence[str | None], colorinterp: Sequence[str]) -> dict[str, int]:
    """The roles the scene itself declares (1-based band numbers): a band description
    (``green``, ``nir``, ``swir1`` ...) or else a colour interpretation naming the role."""
    roles: dict[str, int] = {}
    for number, (desc, interp) in enumerate(zip(descriptions, colorinterp), start=1):
        for role, names in ROLE_NAMES.items():
            said = (desc or "").strip().lower() in names or str(interp).lower() in names
            if said and role not in roles:
                roles[role] = number
    return roles


def index_bands(
    index: str,
    *,
    given: Mapping[str, int] | None,
    descriptions: Sequence[str | None],
    colorinterp: Sequence[str],
    scene: str,
) -> tuple[int, int]:
    """The two band numbers ``index`` reads: ``given`` roles first, then the scene's own.

    A scene without the band the index needs (an RGB photo has no NIR) raises, pointing to
    the ``bands`` argument and to the classifier that learns from labels instead.

    >>> index_bands("ndwi", given=None, descriptions=("red", "green", "blue", "nir"),
    ...             colorinterp=("red", "green", "blue", "undefined"), scene="v.tif")
    (2, 4)
    """
    check_choice(index, v.WATER_INDEXES, param="index")
    count = len(descriptions)
    for role, number in (given or {}).items():
        if not 1 <= number <= count:
            raise InputError(f"{scene}: `bands` {role}={number} is out of range (the scene has {count} bands)",
                             params=("bands",))  # fmt: skip
    roles = {**band_roles(descriptions, colorinterp), **(given or {})}
    wanted = INDEX_BANDS[index]
    missing = [role for role in wanted if role not in roles]
    if missing:
        raise InputError(f"{scene}: {_no_role(missing, index, descriptions, colorinterp)}",
                         params=("bands", "suggest_classes()"))  # fmt: skip
    return roles[wanted[0]], roles[wanted[1]]


def _no_role(missing: list[str], index: str, descriptions: Sequence[str | None], colorinterp: Sequence[str]) -> str:
    """Why the roles are missing and the two ways on."""
    said = ", ".join(d or i for d, i in zip(descriptions, colorinterp))
    example = ",".join(f"{role}=N" for role in INDEX_BANDS[index])
    return (
        f"{index} needs a {' and a '.join(r.upper() if r != 'green' else r for r in missing)} band, "
        f"and no band says it is one (bands: {said}); name them with `bands={example!r}`, "
        "or, for an RGB-only scene, learn the classes from labels with `suggest_classes()`"
    )

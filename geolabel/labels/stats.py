"""Per-class label counts and areas in square metres, hectares and mu."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from geolabel.crs import M2_PER_MU, area_m2

if TYPE_CHECKING:
    from geolabel.labels.schema import ClassSchema

#: The code under which labels without a class code are counted.
NO_CODE = -1


@dataclass(frozen=True)
class ClassStats:
    code: int
    name: str
    count: int
    area_m2: float

    @property
    def area_ha(self) -> float:
        return self.area_m2 / 10000.0

    @property
    def area_mu(self) -> float:
        return self.area_m2 / M2_PER_MU

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "count": self.count,
            "area_m2": self.area_m2,
            "area_ha": self.area_ha,
            "area_mu": self.area_mu,
        }


def class_stats(frame: Any, schema: ClassSchema, crs: Any, *, ellipsoidal: bool = False) -> list[ClassStats]:
    """Count and area per class code present in ``frame`` (GeoDataFrame with ``class_code``).

    Codes not in the schema are listed under the name ``unknown``, labels without a class
    code (another tool left it empty) under code :data:`NO_CODE`. Areas follow
    :func:`geolabel.crs.area_m2` (planar in projected CRSs, geodesic in geographic ones).
    """
    import numpy as np
    import pandas as pd

    if not len(frame):
        return []
    areas = area_m2(frame.geometry.values.to_numpy(), crs, ellipsoidal=ellipsoidal)
    codes = np.array([NO_CODE if pd.isna(c) else int(c) for c in frame["class_code"]], dtype=np.int64)
    out = []
    for code in np.unique(codes).tolist():
        sel = codes == code
        cls = schema.find(code) if code != NO_CODE else None
        name = cls.name if cls else "(no class)" if code == NO_CODE else "unknown"
        out.append(ClassStats(code, name, int(sel.sum()), float(np.sum(areas[sel]))))
    return out

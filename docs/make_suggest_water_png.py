"""Render docs/suggest_water_northdakota.png: `geolabel suggest water` on the real NAIP
scene, outlined in cyan over its RGB bands (needs matplotlib).

    geolabel suggest water sample_data/naip_northdakota_2020.tif --bands green=2,nir=4 --out /tmp/naip_water.gpkg
    python docs/make_suggest_water_png.py /tmp/naip_water.gpkg docs/suggest_water_northdakota.png
"""

import sys

import geopandas as gpd
import matplotlib
import numpy as np
import rasterio

matplotlib.use("Agg")
import matplotlib.pyplot as plt

water_path, out = sys.argv[1], sys.argv[2]
with rasterio.open("sample_data/naip_northdakota_2020.tif") as src:
    rgb, b = src.read([1, 2, 3]).transpose(1, 2, 0).astype(float), src.bounds
lo, hi = np.percentile(rgb, [1, 99])
rgb = np.clip((rgb - lo) / (hi - lo), 0, 1)
water = gpd.read_file(water_path, layer="suggestions")
fig, ax = plt.subplots(figsize=(10, 10 * rgb.shape[0] / rgb.shape[1]), dpi=110)
ax.imshow(rgb, extent=(b.left, b.right, b.bottom, b.top))
water.boundary.plot(ax=ax, color="#00e5ff", linewidth=0.9)
ax.set_title(
    f"geolabel suggest water, NAIP 2020-08-31 (5 m, R,G,B shown): {len(water)} polygons, "
    f"{water.area_m2.sum() / 1e4:.0f} ha",
    fontsize=10,
)
ax.set_xlabel(f"{water.crs.to_string()} x (m)")
ax.set_ylabel("y (m)")
ax.ticklabel_format(style="plain", useOffset=False)
fig.tight_layout()
fig.savefig(out)

"""What the class suggester sees of each pixel: its band values and a little texture.

Per band: the value, and the mean and standard deviation in a 5 x 5 and a 15 x 15
window (a field's rows, a forest's crowns and a roof's flat face differ there more than
in colour). Box filters (:func:`scipy.ndimage.uniform_filter`) keep it cheap: a few
passes over the window whatever the filter size.

>>> data = np.ones((2, 20, 20), dtype="float32")
>>> pixel_features(data).shape
(10, 20, 20)
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Sides of the square windows the texture is measured in.
TEXTURE_SIZES = (5, 15)
#: Pixels a feature reaches beyond its own: read this much around a window, so a pixel's
#: features do not depend on where windows are cut.
FEATURE_MARGIN = max(TEXTURE_SIZES) // 2


def pixel_features(data: Any) -> Any:
    """Features of every pixel of ``data`` (bands, rows, cols; float32): an array of
    (features, rows, cols), per band the value then mean and std per texture size."""
    from scipy.ndimage import uniform_filter

    layers = []
    for band in np.asarray(data, dtype="float32"):
        layers.append(band)
        for size in TEXTURE_SIZES:
            mean = uniform_filter(band, size=size, mode="reflect")
            square = uniform_filter(band * band, size=size, mode="reflect")
            layers += [mean, np.sqrt(np.maximum(square - mean * mean, 0.0))]
    return np.stack(layers)

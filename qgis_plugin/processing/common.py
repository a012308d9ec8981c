"""Shared plumbing: engine errors become Processing errors, progress and cancel cross over as
plain callables, layer parameters become file paths, engine outputs load into the project."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingParameterNumber,
)

#: Inside QGIS the engine runs its tasks on threads (forking the QGIS process is unsafe);
#: GDAL, GEOS and file I/O release the GIL, so both cores still work.
THREADS = max(1, min(4, os.cpu_count() or 1))


def number(name, description, default, *, minimum=0.0, maximum=None):
    """A decimal Processing parameter (metres, square metres, fractions)."""
    extra = {} if maximum is None else {"maxValue": maximum}
    return QgsProcessingParameterNumber(
        name, description, QgsProcessingParameterNumber.Double, defaultValue=default, minValue=minimum, **extra
    )


def layer_path(layer):
    """(file path, layer name or None) of a vector or raster layer from a file."""
    if layer is None:
        return None, None
    source = layer.source()
    parts = source.split("|")
    path = parts[0]
    name = None
    for extra in parts[1:]:
        if extra.startswith("layername="):
            name = extra.split("=", 1)[1]
    return path, name


class GeolabelAlgorithm(QgsProcessingAlgorithm):
    """Base of the GeoLabel algorithms (group, help, engine error handling)."""

    def group(self):
        return "GeoLabel"

    def groupId(self):
        return "geolabel"

    def createInstance(self):
        return type(self)()

    def progress(self, feedback):
        return lambda fraction: feedback.setProgress(100.0 * fraction)

    def run_engine(self, feedback, func, *args, **kwargs):
        """Call an engine function; its errors become one-line Processing errors."""
        from geolabel.errors import GeolabelError

        try:
            return func(*args, **kwargs)
        except GeolabelError as exc:
            raise QgsProcessingException(str(exc)) from exc

    def executor(self):
        return ThreadPoolExecutor(THREADS)

    def load_on_completion(self, context, path, name, output_name):
        """Add a file the engine wrote to the layers QGIS loads when the algorithm ends."""
        details = QgsProcessingContext.LayerDetails(name, context.project(), output_name)
        context.addLayerToLoadOnCompletion(path, details)

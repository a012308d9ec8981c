"""The "GeoLabel" Processing provider: one algorithm per engine capability."""

from __future__ import annotations

import os

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon


class GeolabelProvider(QgsProcessingProvider):
    def id(self):
        return "geolabel"

    def name(self):
        return "GeoLabel"

    def longName(self):
        return "GeoLabel land-cover labeling"

    def icon(self):
        return QIcon(os.path.join(os.path.dirname(os.path.dirname(__file__)), "icon.png"))

    def loadAlgorithms(self):
        from .check import CheckLabels
        from .create_store import CreateLabelStore
        from .export import ExportTrainingSet
        from .import_labels import ImportLabels
        from .resolve import ResolveOverlaps
        from .score import ScoreLabels
        from .suggest_classes import SuggestClasses
        from .suggest_water import SuggestWater
        from .tile import TileRaster

        for alg in (
            TileRaster,
            CreateLabelStore,
            ImportLabels,
            ResolveOverlaps,
            CheckLabels,
            ScoreLabels,
            ExportTrainingSet,
            SuggestWater,
            SuggestClasses,
        ):
            self.addAlgorithm(alg())

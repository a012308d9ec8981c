"""geolabel:import_labels: vector layers into a label store (geolabel.labels.importer)."""

from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputNumber,
    QgsProcessingOutputVectorLayer,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterString,
)

from .common import GeolabelAlgorithm, store_parameter, vector_source


class ImportLabels(GeolabelAlgorithm):
    NAME = "import_labels"
    GROUP = "labels"
    TITLE = "Import labels into a store"
    HELP = (
        "Imports polygons from vector layers (GeoJSON, Shapefile, GeoPackage, FlatGeobuf) into a label store: "
        "reprojected to the store CRS, classes mapped by code, name or a class map (wood=forest,...), invalid "
        "polygons repaired, multi-polygons exploded. Rejected features are reported with reasons. All layers "
        "go in one transaction."
    )

    def initAlgorithm(self, config=None):
        self.addParameter(store_parameter())
        self.addParameter(
            QgsProcessingParameterMultipleLayers("INPUT", "Layers to import", QgsProcessing.TypeVectorPolygon)
        )
        self.addParameter(QgsProcessingParameterString("CLASS_FIELD", "Class field", optional=True))
        self.addParameter(QgsProcessingParameterString("CLASS_MAP", "Class map (value=class,...)", optional=True))
        self.addParameter(QgsProcessingParameterString("LABELER", "Labeler", optional=True))
        self.addParameter(QgsProcessingParameterString("TEAM", "Team", optional=True))
        self.addOutput(QgsProcessingOutputNumber("IMPORTED", "Labels imported"))
        self.addOutput(QgsProcessingOutputNumber("REJECTED", "Features rejected"))
        self.addOutput(QgsProcessingOutputVectorLayer("LABELS", "Labels"))

    def processAlgorithm(self, parameters, context, feedback):
        from geolabel.labels.importer import import_labels
        from geolabel.labels.store import open_store

        location, shown = self.store_location(parameters, context, feedback)
        sources = [
            vector_source(layer, context, feedback) for layer in self.parameterAsLayerList(parameters, "INPUT", context)
        ]

        def text(key):
            value = self.parameterAsString(parameters, key, context)
            return value or None

        if feedback.isCanceled():
            return {}
        store = self.run_engine(feedback, open_store, location)
        try:  # every layer in one transaction: a failure leaves the store as it was
            reports = self.run_engine(
                feedback,
                import_labels,
                store,
                sources,
                class_field=text("CLASS_FIELD"),
                class_map=text("CLASS_MAP"),
                labeler=text("LABELER"),
                team=text("TEAM"),
            )
        finally:
            store.close()
        for report in reports:
            feedback.pushInfo(report.line())
        labels = self.load_store_labels(context, location, "LABELS")
        feedback.setProgress(100)  # also when nothing was left to do
        return {
            "STORE": shown,
            "IMPORTED": sum(r.imported for r in reports),
            "REJECTED": sum(r.n_rejected for r in reports),
            "LABELS": labels,
        }

"""geolabel:resolve: resolve overlaps by class priority, clean slivers (geolabel.labels.resolve)."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingOutputVectorLayer,
    QgsProcessingParameterEnum,
)

from geolabel import vocabulary as v  # the provider loads only once the engine imports

from .common import GeolabelAlgorithm, number, store_parameter

SAME_CLASS = list(v.SAME_CLASS_RULES)


class ResolveOverlaps(GeolabelAlgorithm):
    NAME = "resolve"
    GROUP = "labels"
    TITLE = "Resolve overlaps"
    HELP = (
        "Makes the store's labels a clean partition: where classes overlap, the higher-priority class is cut "
        "out of the lower one (water out of farmland); same-class duplicates merge; parts below the minimum "
        "mapping unit join the neighbour with the longest shared edge. One transaction."
    )

    def initAlgorithm(self, config=None):
        self.addParameter(store_parameter())
        self.addParameter(number("MIN_AREA", "Minimum mapping unit (m²)", v.RESOLVE_MIN_AREA_M2))
        self.addParameter(number("MIN_WIDTH", "Remove spikes narrower than (m)", v.RESOLVE_MIN_WIDTH_M))
        self.addParameter(
            QgsProcessingParameterEnum("SAME_CLASS", "Same-class overlaps", options=SAME_CLASS, defaultValue=0)
        )
        self.addOutput(QgsProcessingOutputNumber("CUT", "Labels cut by a higher-priority class"))
        self.addOutput(QgsProcessingOutputNumber("LABELS_OUT", "Labels after resolving"))
        self.addOutput(QgsProcessingOutputVectorLayer("LABELS", "Labels"))

    def processAlgorithm(self, parameters, context, feedback):
        from geolabel.labels.resolve import resolve_store
        from geolabel.labels.store import open_store

        location, shown = self.store_location(parameters, context, feedback)
        store = self.run_engine(feedback, open_store, location)
        try:
            feedback.setProgress(10)
            report = self.run_engine(
                feedback,
                resolve_store,
                store,
                min_area=self.parameterAsDouble(parameters, "MIN_AREA", context),
                min_width=self.parameterAsDouble(parameters, "MIN_WIDTH", context),
                same_class=SAME_CLASS[self.parameterAsEnum(parameters, "SAME_CLASS", context)],
            )
        finally:
            store.close()
        for line in report.lines():
            feedback.pushInfo(line)
        feedback.setProgress(100)
        labels = self.load_store_labels(context, location, "LABELS")
        return {"STORE": shown, "CUT": report.cut, "LABELS_OUT": report.labels_out, "LABELS": labels}

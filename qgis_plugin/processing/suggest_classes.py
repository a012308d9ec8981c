"""geolabel:suggest_classes: land-cover classes learnt from a store's trusted labels
(geolabel.suggest.suggest_classes)."""

from __future__ import annotations

from collections import Counter

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from geolabel import vocabulary as v  # the provider loads only once the engine imports

from .common import GeolabelAlgorithm, add_suggestion_targets, layer_path, number, open_tile_index_path, store_parameter


class SuggestClasses(GeolabelAlgorithm):
    NAME = "suggest_classes"
    GROUP = "suggest"
    TITLE = "Suggest classes"
    HELP = (
        "Land-cover classes learnt from the labels a store already trusts (those on tiles marked done, "
        "which needs the scene's tile index, and accepted labels anywhere) and suggested where nothing is "
        "labeled yet: on the tiles not done (with “Only tiles to do”, not in progress either), or without a "
        "tile index on the whole scene. A random forest on per-pixel features, seeded: the same seed gives "
        "the same polygons. Its accuracy is measured first on training tiles held out whole (overall and "
        "IoU per class, in the log and the outputs). Polygons and holes smaller than the minimum area are "
        "dropped. Written to a new GeoPackage, or, when a label store is given, added to it as drafts with "
        "source “suggested” (the GeoPackage is then not written)."
    )

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Scene"))
        self.addParameter(store_parameter("FROM", "Label store to learn from (.gpkg, or postgresql://…)"))
        self.addParameter(
            QgsProcessingParameterFile(
                "TILES",
                "Tile index of the scene (which tiles are done)",
                extension="gpkg",
                defaultValue=open_tile_index_path(),
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterBoolean("ONLY_TODO", "Only tiles to do (skip tiles in progress too)", False)
        )
        self.addParameter(
            QgsProcessingParameterString("CLASSES", "Suggest only these classes (e.g. water,farmland)", optional=True)
        )
        self.addParameter(number("MIN_AREA", "Minimum area (m²)", v.SUGGEST_CLASSES_MIN_AREA_M2))
        self.addParameter(
            QgsProcessingParameterNumber("SEED", "Seed", QgsProcessingParameterNumber.Integer, v.SEED, minValue=0)
        )
        add_suggestion_targets(self, "Class suggestions")
        self.addOutput(QgsProcessingOutputNumber("COUNT", "Polygons"))
        self.addOutput(QgsProcessingOutputNumber("AREA_M2", "Area (m²)"))
        self.addOutput(QgsProcessingOutputNumber("ACCURACY", "Held-out accuracy (share of pixels)"))
        self.addOutput(QgsProcessingOutputString("IOU", "Held-out IoU per class"))

    def processAlgorithm(self, parameters, context, feedback):
        from geolabel.suggest import suggest_classes

        scene = layer_path(self.parameterAsRasterLayer(parameters, "INPUT", context))[0]
        store, _ = self.store_location(parameters, context, feedback, "FROM")
        into, out = self.suggestions_target(parameters, context, feedback)
        with self.executor() as pool:
            found = self.run_engine(
                feedback,
                suggest_classes,
                scene,
                store=store,
                tiles=self.parameterAsFile(parameters, "TILES", context) or None,
                only_todo=self.parameterAsBoolean(parameters, "ONLY_TODO", context),
                classes=self.parameterAsString(parameters, "CLASSES", context) or None,
                min_area=self.parameterAsDouble(parameters, "MIN_AREA", context),
                seed=self.parameterAsInt(parameters, "SEED", context),
                executor=pool,
                progress=self.progress(feedback),
                is_cancelled=feedback.isCanceled,
            )
        done = self.write_suggestions(
            feedback,
            context,
            found.polygons,
            found.crs,
            found.class_names,
            into=into,
            out=out,
            name="Class suggestions",
        )
        counts = ", ".join(f"{n} {name}" for name, n in sorted(Counter(found.class_names).items()))
        feedback.pushInfo(f"{done.where}: {done.count} polygons, {done.area_m2 / 1e4:.2f} ha ({counts or 'none'})")
        held = found.accuracy
        iou = ", ".join(f"{name} {value:.3f}" for name, value in held.iou.items()) if held else ""
        report_accuracy(feedback, found)
        return {
            "OUTPUT": out,
            "COUNT": done.count,
            "AREA_M2": done.area_m2,
            "ACCURACY": held.overall if held else None,
            "IOU": iou,
        }


def report_accuracy(feedback, found):
    """The held-out accuracy in the log, as the command line prints it."""
    from geolabel.suggest.classes import NOT_MEASURED

    held = found.accuracy
    if held is None:
        feedback.pushWarning(NOT_MEASURED)
        return
    for line in held.lines(len(found.training_sites)):
        feedback.pushInfo(line)

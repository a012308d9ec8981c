"""geolabel:suggest_water: water polygons from a water index (geolabel.suggest.suggest_water)."""

from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputNumber,
    QgsProcessingParameterEnum,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorLayer,
)

from geolabel import vocabulary as v  # the provider loads only once the engine imports

from .common import GeolabelAlgorithm, add_suggestion_targets, layer_path, number, vector_source

INDEXES = list(v.WATER_INDEXES)


class SuggestWater(GeolabelAlgorithm):
    NAME = "suggest_water"
    GROUP = "suggest"
    TITLE = "Suggest water"
    HELP = (
        "Water polygons from a spectral water index (NDWI: green and NIR; MNDWI: green and SWIR), thresholded "
        "(otsu: the upper threshold of a 3-class Otsu over the whole scene, at least 0; or a value from -1 to 1), "
        "cleaned, polygonized and simplified, in the scene's CRS. Band roles come from the raster's band "
        "descriptions or colour interpretation, else from “Band roles” (e.g. green=2,nir=4). Parts and islands "
        "smaller than the minimum area are dropped. Written to a new GeoPackage, or, when a label store is "
        "given, added to it as drafts with source “suggested” (the GeoPackage is then not written)."
    )

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Scene"))
        self.addParameter(QgsProcessingParameterEnum("INDEX", "Water index", options=INDEXES, defaultValue=0))
        self.addParameter(QgsProcessingParameterString("BANDS", "Band roles (e.g. green=2,nir=4)", optional=True))
        self.addParameter(
            QgsProcessingParameterString("THRESHOLD", "Threshold (otsu or a value)", defaultValue=v.WATER_THRESHOLD)
        )
        self.addParameter(number("MIN_AREA", "Minimum area (m²)", v.SUGGEST_MIN_AREA_M2))
        self.addParameter(
            QgsProcessingParameterVectorLayer(
                "AOI", "Only inside this area", [QgsProcessing.TypeVectorPolygon], optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterString("CLASS", "Class of the suggestions", defaultValue=v.SUGGEST_WATER_CLASS)
        )
        add_suggestion_targets(self, "Water suggestions")
        self.addOutput(QgsProcessingOutputNumber("COUNT", "Water polygons"))
        self.addOutput(QgsProcessingOutputNumber("AREA_M2", "Water area (m²)"))
        self.addOutput(QgsProcessingOutputNumber("THRESHOLD_USED", "Threshold used"))

    def processAlgorithm(self, parameters, context, feedback):
        from geolabel.suggest import suggest_water

        scene = layer_path(self.parameterAsRasterLayer(parameters, "INPUT", context))[0]
        aoi = vector_source(self.parameterAsVectorLayer(parameters, "AOI", context), context, feedback)
        into, out = self.suggestions_target(parameters, context, feedback)
        with self.executor() as pool:
            found = self.run_engine(
                feedback,
                suggest_water,
                scene,
                index=INDEXES[self.parameterAsEnum(parameters, "INDEX", context)],
                bands=self.parameterAsString(parameters, "BANDS", context) or None,
                threshold=self.parameterAsString(parameters, "THRESHOLD", context),
                min_area=self.parameterAsDouble(parameters, "MIN_AREA", context),
                aoi=aoi,
                executor=pool,
                progress=self.progress(feedback),
                is_cancelled=feedback.isCanceled,
            )
        class_name = self.parameterAsString(parameters, "CLASS", context)
        done = self.write_suggestions(
            feedback, context, found.polygons, found.crs, class_name, into=into, out=out, name="Water suggestions"
        )
        feedback.pushInfo(
            f"{done.where}: {done.count} water polygons, {done.area_m2 / 1e4:.2f} ha "
            f"({found.index} > {found.threshold:.3f})"
        )
        return {"OUTPUT": out, "COUNT": done.count, "AREA_M2": done.area_m2, "THRESHOLD_USED": found.threshold}

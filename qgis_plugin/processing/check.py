"""geolabel:check: quality control of a store or delivered layer (geolabel.qa)."""

from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingOutputVectorLayer,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorLayer,
)

from geolabel import vocabulary as v  # the provider loads only once the engine imports

from .common import GeolabelAlgorithm, number, open_store_layer, open_tile_index_path, vector_source


class CheckLabels(GeolabelAlgorithm):
    NAME = "check"
    GROUP = "quality"
    TITLE = "Check labels (QA)"
    HELP = (
        "Checks a label store (GeoPackage or PostGIS) or any delivered polygon layer: validity, empty and "
        "non-polygon features, duplicates, overlaps within and across classes, gaps inside an AOI, slivers, "
        "spikes, small holes, unknown classes, missing attributes, CRS. With a tile index, labels must lie "
        "on the chips' image data, which (or only the tiles marked done in the store) must be covered wall "
        "to wall; nodata needs no labels. Writes findings.gpkg (styled by severity), findings.json "
        "and report.html to the output folder and loads the findings."
    )

    def initAlgorithm(self, config=None):
        store = open_store_layer()
        self.addParameter(
            QgsProcessingParameterVectorLayer(
                "INPUT",
                "Labels (store or delivery)",
                [QgsProcessing.TypeVectorAnyGeometry],
                defaultValue=store.id() if store is not None else None,
            )
        )
        self.addParameter(
            QgsProcessingParameterVectorLayer(
                "AOI", "Area to be labelled wall to wall", [QgsProcessing.TypeVectorPolygon], optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterFile(
                "TILES",
                "Tile index (labels must lie on the chips)",
                extension="gpkg",
                defaultValue=open_tile_index_path(),
                optional=True,
            )
        )
        self.addParameter(QgsProcessingParameterBoolean("DONE_ONLY", "Only tiles marked done must be covered", False))
        self.addParameter(QgsProcessingParameterString("CLASS_FIELD", "Class field (deliveries)", optional=True))
        self.addParameter(number("MIN_AREA", "Minimum mapping unit (m²)", v.CHECK_MIN_AREA_M2))
        self.addParameter(number("MIN_WIDTH", "Sliver mean width below (m)", v.CHECK_MIN_WIDTH_M))
        self.addParameter(QgsProcessingParameterString("REQUIRE", "Required attributes (labeler,team)", optional=True))
        self.addParameter(QgsProcessingParameterBoolean("OVERWRITE", "Replace an earlier report", False))
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", "Report folder"))
        self.addOutput(QgsProcessingOutputNumber("ERRORS", "Errors"))
        self.addOutput(QgsProcessingOutputNumber("WARNINGS", "Warnings"))
        self.addOutput(QgsProcessingOutputNumber("COMPLETENESS", "Completeness (share of the AOI/tiles labelled)"))
        self.addOutput(QgsProcessingOutputVectorLayer("FINDINGS", "Findings (polygons)"))
        self.addOutput(QgsProcessingOutputVectorLayer("FINDINGS_POINTS", "Findings (points)"))
        self.addOutput(QgsProcessingOutputFile("REPORT", "HTML report"))

    def processAlgorithm(self, parameters, context, feedback):
        from geolabel.qa import check_labels, load_delivery
        from geolabel.report import write_report

        labels = self.parameterAsVectorLayer(parameters, "INPUT", context)
        path, name = self.run_engine(feedback, vector_source, labels, context, feedback)  # PostGIS: its location
        aoi = vector_source(self.parameterAsVectorLayer(parameters, "AOI", context), context, feedback)
        out = self.parameterAsString(parameters, "OUTPUT", context)
        tiles = self.parameterAsFile(parameters, "TILES", context) or None
        class_field = self.parameterAsString(parameters, "CLASS_FIELD", context) or None
        delivery = self.run_engine(feedback, load_delivery, path, class_field=class_field, layer=name)
        if feedback.isCanceled():
            return {}
        feedback.setProgress(20)
        with self.executor() as pool:  # threads: no process is forked from QGIS
            result = self.run_engine(
                feedback,
                check_labels,
                delivery,
                aoi=aoi,
                tiles=tiles,
                done_only=bool(tiles) and self.parameterAsBoolean(parameters, "DONE_ONLY", context),
                min_area=self.parameterAsDouble(parameters, "MIN_AREA", context),
                min_width=self.parameterAsDouble(parameters, "MIN_WIDTH", context),
                require=self.parameterAsString(parameters, "REQUIRE", context),
                executor=pool,
                progress=lambda f: feedback.setProgress(20 + 50 * f),
            )
        if feedback.isCanceled():
            return {}
        feedback.setProgress(70)
        overwrite = self.parameterAsBoolean(parameters, "OVERWRITE", context)
        self.run_engine(feedback, write_report, result, out, schema=delivery.schema, overwrite=overwrite)
        for kind, counts in result.counts().items():
            feedback.pushInfo(f"{kind}: {counts['error']} errors, {counts['warning']} warnings")
        if result.completeness is not None:
            feedback.pushInfo(f"completeness: {result.completeness:.2%} of {result.region_area_m2:,.0f} m² labelled")
        findings = f"{out}/findings.gpkg"
        self.load_on_completion(context, f"{findings}|layername=findings_polygons", "Findings", "FINDINGS")
        self.load_on_completion(
            context, f"{findings}|layername=findings_points", "Findings (points)", "FINDINGS_POINTS"
        )
        feedback.setProgress(100)
        return {
            "OUTPUT": out,
            "ERRORS": result.errors,
            "WARNINGS": result.warnings,
            "COMPLETENESS": result.completeness,
            "FINDINGS": f"{findings}|layername=findings_polygons",
            "FINDINGS_POINTS": f"{findings}|layername=findings_points",
            "REPORT": f"{out}/report.html",
        }

"""geolabel:create_store: an empty GeoPackage label store (geolabel.labels.create_store)."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingOutputVectorLayer,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterCrs,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
)

from .common import GeolabelAlgorithm, crs_text


class CreateLabelStore(GeolabelAlgorithm):
    NAME = "create_store"
    GROUP = "labels"
    TITLE = "Create label store"
    HELP = (
        "Creates a GeoPackage label store: a 'labels' polygon layer (label_id, class_code, class_name, labeler, "
        "team, status, source, tile_id, created, modified, comment, version) in the chosen CRS, with the class "
        "schema kept in the file. Optionally a TOML/JSON class schema replaces or extends the default classes."
    )

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterCrs("CRS", "Store CRS", defaultValue="EPSG:32649"))
        self.addParameter(
            QgsProcessingParameterFile(
                "SCHEMA", "Class schema (.toml/.json)", optional=True, fileFilter="Schema (*.toml *.json)"
            )
        )
        self.addParameter(QgsProcessingParameterBoolean("OVERWRITE", "Replace an existing store", defaultValue=False))
        self.addParameter(
            QgsProcessingParameterFileDestination("OUTPUT", "Label store", fileFilter="GeoPackage (*.gpkg)")
        )
        self.addOutput(QgsProcessingOutputVectorLayer("LABELS", "Labels"))

    def processAlgorithm(self, parameters, context, feedback):
        from geolabel.labels.schema import load_schema
        from geolabel.labels.store import create_store

        path = self.parameterAsFileOutput(parameters, "OUTPUT", context)
        crs = self.parameterAsCrs(parameters, "CRS", context)
        schema_path = self.parameterAsFile(parameters, "SCHEMA", context) or None
        schema = self.run_engine(feedback, load_schema, schema_path)
        store = self.run_engine(
            feedback,
            create_store,
            path,
            crs=crs_text(crs),
            schema=schema,
            overwrite=self.parameterAsBoolean(parameters, "OVERWRITE", context),
        )
        store.close()
        feedback.pushInfo(f"created {path} with {len(schema)} classes")
        self.load_on_completion(context, f"{path}|layername=labels", "Labels", "LABELS")
        feedback.setProgress(100)  # also when nothing was left to do
        return {"OUTPUT": path, "LABELS": f"{path}|layername=labels"}

"""geolabel:export: a training set from a store and a tile index (geolabel.export)."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingOutputFolder,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from .common import GeolabelAlgorithm, number, open_store_path, open_tile_index_path

FORMATS = ["geojson", "coco", "masks", "stac"]


class ExportTrainingSet(GeolabelAlgorithm):
    NAME = "export"
    GROUP = "training"
    TITLE = "Export training set"
    HELP = (
        "Clips the store's labels to the chips of a tile index and writes GeoJSON per chip (RFC 7946 and "
        "pixel coordinates), COCO, class masks and a STAC catalog, with spatial train/val/test splits that "
        "cannot leak, a summary and a manifest of checksums."
    )

    def initAlgorithm(self, config=None):
        self.addParameter(
            QgsProcessingParameterFile(
                "STORE", "Label store", fileFilter="GeoPackage (*.gpkg)", defaultValue=open_store_path()
            )
        )
        self.addParameter(
            QgsProcessingParameterFile(
                "TILES",
                "Tile index (tiles.gpkg)",
                fileFilter="GeoPackage (*.gpkg)",
                defaultValue=open_tile_index_path(),
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                "FORMATS", "Formats", options=FORMATS, allowMultiple=True, defaultValue=[0, 1, 2, 3]
            )
        )
        self.addParameter(
            QgsProcessingParameterString("SPLIT", "Split fractions (train,val,test)", defaultValue="0.8,0.1,0.1")
        )
        self.addParameter(QgsProcessingParameterNumber("SEED", "Split seed", defaultValue=0))
        self.addParameter(number("MIN_OVERLAP", "Keep cut objects with at least this share inside", 0.0, maximum=1.0))
        self.addParameter(
            QgsProcessingParameterString("STATUS", "Only labels with status (e.g. accepted)", optional=True)
        )
        self.addParameter(QgsProcessingParameterBoolean("OVERWRITE", "Replace an existing dataset", defaultValue=False))
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", "Dataset folder"))
        self.addOutput(QgsProcessingOutputFolder("DATASET", "Dataset"))
        self.addOutput(QgsProcessingOutputNumber("TILES_EXPORTED", "Chips exported"))

    def processAlgorithm(self, parameters, context, feedback):
        from geolabel.export import export_dataset

        formats = [FORMATS[i] for i in self.parameterAsEnums(parameters, "FORMATS", context)]
        status = self.parameterAsString(parameters, "STATUS", context)
        out = self.parameterAsString(parameters, "OUTPUT", context)
        with self.executor() as pool:
            result = self.run_engine(
                feedback,
                export_dataset,
                self.parameterAsFile(parameters, "STORE", context),
                self.parameterAsFile(parameters, "TILES", context),
                out,
                formats=formats,
                split=self.parameterAsString(parameters, "SPLIT", context),
                seed=self.parameterAsInt(parameters, "SEED", context),
                min_overlap=self.parameterAsDouble(parameters, "MIN_OVERLAP", context),
                status=[s.strip() for s in status.split(",")] if status else None,
                overwrite=self.parameterAsBoolean(parameters, "OVERWRITE", context),
                executor=pool,
                progress=self.progress(feedback),
                is_cancelled=feedback.isCanceled,
            )
        for line in result.table().splitlines():
            feedback.pushInfo(line)
        feedback.setProgress(100)  # also when nothing was left to do
        return {"OUTPUT": out, "DATASET": out, "TILES_EXPORTED": sum(result.tiles.values())}

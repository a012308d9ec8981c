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

from geolabel import vocabulary as v  # the provider loads only once the engine imports

from .common import GeolabelAlgorithm, number, open_tile_index_path, store_parameter

FORMATS = list(v.ALL_EXPORT_FORMATS)  # tags: only for a store with a tag schema, not a default


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
        self.addParameter(store_parameter())
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
                "FORMATS",
                "Formats",
                options=FORMATS,
                allowMultiple=True,
                defaultValue=[FORMATS.index(f) for f in v.EXPORT_FORMATS],
            )
        )
        self.addParameter(
            QgsProcessingParameterString("SPLIT", "Split fractions (train,val,test)", defaultValue=v.SPLIT)
        )
        self.addParameter(QgsProcessingParameterNumber("SEED", "Split seed", defaultValue=v.SEED))
        self.addParameter(number("MIN_OVERLAP", "Keep cut objects with at least this share inside", 0.0, maximum=1.0))
        self.addParameter(
            QgsProcessingParameterEnum(
                "STATUS",
                "Only labels with these statuses",
                options=list(v.STATUSES),
                allowMultiple=True,
                optional=True,
                usesStaticStrings=True,  # "accepted" in qgis_process, models and batch files
            )
        )
        self.addParameter(QgsProcessingParameterBoolean("OVERWRITE", "Replace an existing dataset", defaultValue=False))
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", "Dataset folder"))
        self.addOutput(QgsProcessingOutputFolder("DATASET", "Dataset"))
        self.addOutput(QgsProcessingOutputNumber("TILES_EXPORTED", "Chips exported"))

    def processAlgorithm(self, parameters, context, feedback):
        from geolabel.export import export_dataset

        formats = [FORMATS[i] for i in self.parameterAsEnums(parameters, "FORMATS", context)]
        status = [s for s in self.parameterAsEnumStrings(parameters, "STATUS", context) if s]  # none: [""]
        out = self.parameterAsString(parameters, "OUTPUT", context)
        store, _ = self.store_location(parameters, context, feedback)
        with self.executor() as pool:
            result = self.run_engine(
                feedback,
                export_dataset,
                store,
                self.parameterAsFile(parameters, "TILES", context),
                out,
                formats=formats,
                split=self.parameterAsString(parameters, "SPLIT", context),
                seed=self.parameterAsInt(parameters, "SEED", context),
                min_overlap=self.parameterAsDouble(parameters, "MIN_OVERLAP", context),
                status=status or None,
                overwrite=self.parameterAsBoolean(parameters, "OVERWRITE", context),
                executor=pool,
                progress=self.progress(feedback),
                is_cancelled=feedback.isCanceled,
            )
        for line in result.table().splitlines():
            feedback.pushInfo(line)
        feedback.setProgress(100)  # also when nothing was left to do
        return {"OUTPUT": out, "DATASET": out, "TILES_EXPORTED": sum(result.tiles.values())}

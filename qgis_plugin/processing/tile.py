"""geolabel:tile: cut rasters into georeferenced chips (geolabel.tile_raster)."""

from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputFolder,
    QgsProcessingOutputVectorLayer,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterCrs,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
)

from geolabel import vocabulary as v  # the provider loads only once the engine imports

from ..styles import style_tile_index
from .common import GeolabelAlgorithm, crs_text, layer_path, number

EDGES = list(v.EDGES)
FORMATS = list(v.CHIP_FORMATS)
COMPRESSIONS = ["source", *v.COMPRESSIONS]  # "source": keep the scene's compression
RESAMPLINGS = list(v.RESAMPLINGS)


class TileRaster(GeolabelAlgorithm):
    NAME = "tile"
    GROUP = "imagery"
    TITLE = "Tile raster into chips"
    HELP = (
        "Cuts rasters into square, georeferenced GeoTIFF chips (one folder per raster) and writes a tile "
        "index tiles.gpkg. Edge chips are padded with nodata, shifted inside, or dropped. Chips with more "
        "nodata than the limit are skipped. Rerunning into the same folder resumes."
    )

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterMultipleLayers("INPUT", "Rasters", QgsProcessing.TypeRaster))
        self.addParameter(
            QgsProcessingParameterNumber(
                "SIZE",
                "Chip size (pixels)",
                defaultValue=v.CHIP_SIZE,
                minValue=v.MIN_CHIP_SIZE,
                maxValue=v.MAX_CHIP_SIZE,
            )
        )
        self.addParameter(QgsProcessingParameterNumber("OVERLAP", "Overlap (pixels)", defaultValue=0, minValue=0))
        self.addParameter(QgsProcessingParameterEnum("EDGE", "Edge chips", options=EDGES, defaultValue=0))
        self.addParameter(number("MAX_NODATA", "Skip chips with more nodata than (0-1)", v.MAX_NODATA, maximum=1.0))
        self.addParameter(QgsProcessingParameterEnum("FORMAT", "Format", options=FORMATS, defaultValue=0))
        self.addParameter(QgsProcessingParameterEnum("COMPRESS", "Compression", options=COMPRESSIONS, defaultValue=0))
        self.addParameter(QgsProcessingParameterCrs("DST_CRS", "Reproject to CRS", optional=True))
        self.addParameter(
            QgsProcessingParameterNumber(
                "RESOLUTION",
                "Output pixel size (CRS units)",
                QgsProcessingParameterNumber.Double,
                optional=True,
                minValue=0.0,
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum("RESAMPLING", "Resampling (reprojection)", options=RESAMPLINGS, defaultValue=0)
        )
        self.addParameter(
            QgsProcessingParameterBoolean("VERIFY_BLOCKS", "Check copied compressed blocks (slower)", defaultValue=True)
        )
        self.addParameter(
            QgsProcessingParameterBoolean("OVERWRITE", "Replace an output made with other options", defaultValue=False)
        )
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", "Output folder"))
        self.addOutput(QgsProcessingOutputFolder("FOLDER", "Chips folder"))
        self.addOutput(QgsProcessingOutputVectorLayer("INDEX", "Tile index"))

    def processAlgorithm(self, parameters, context, feedback):
        from geolabel import tile_raster

        layers = self.parameterAsLayerList(parameters, "INPUT", context)
        scenes = [layer_path(layer)[0] for layer in layers]
        out = self.parameterAsString(parameters, "OUTPUT", context)
        crs = self.parameterAsCrs(parameters, "DST_CRS", context)
        resolution = parameters.get("RESOLUTION")
        compress = COMPRESSIONS[self.parameterAsEnum(parameters, "COMPRESS", context)]
        with self.executor() as pool:
            result = self.run_engine(
                feedback,
                tile_raster,
                scenes,
                out,
                size=self.parameterAsInt(parameters, "SIZE", context),
                overlap=self.parameterAsInt(parameters, "OVERLAP", context),
                edge=EDGES[self.parameterAsEnum(parameters, "EDGE", context)],
                max_nodata=self.parameterAsDouble(parameters, "MAX_NODATA", context),
                format=FORMATS[self.parameterAsEnum(parameters, "FORMAT", context)],
                compress=None if compress == "source" else compress,
                dst_crs=crs_text(crs) if crs.isValid() else None,
                resolution=self.parameterAsDouble(parameters, "RESOLUTION", context)
                if resolution not in (None, "")
                else None,
                resampling=RESAMPLINGS[self.parameterAsEnum(parameters, "RESAMPLING", context)],
                verify_blocks=self.parameterAsBoolean(parameters, "VERIFY_BLOCKS", context),
                overwrite=self.parameterAsBoolean(parameters, "OVERWRITE", context),
                executor=pool,
                progress=self.progress(feedback),
                is_cancelled=feedback.isCanceled,
            )
        for s in result.scenes:
            feedback.pushInfo(f"{s.scene}: {s.written} chips written, {s.resumed} already done, {s.skipped} skipped")
        index = str(result.index_path)
        self.load_on_completion(context, f"{index}|layername=tiles", "Tile index", "INDEX", style=style_tile_index)
        feedback.setProgress(100)  # also when nothing was left to do
        return {"OUTPUT": out, "FOLDER": out, "INDEX": index, "CHIPS": len(result.chips)}

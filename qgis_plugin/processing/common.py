"""Shared plumbing: engine errors become Processing errors, progress and cancel cross over as
plain callables, layer parameters become file paths, engine outputs load into the project."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
)

from .. import stores
from ..styles import STORE_PROPERTY

#: How a store parameter is described: a GeoPackage or a PostgreSQL location, as the CLI's STORE.
STORE_DESCRIPTION = "Label store (.gpkg, or postgresql://user@host/db?schema=NAME)"
STORE_FILTER = "GeoPackage (*.gpkg);;All files (*)"

#: Inside QGIS the engine runs its tasks on threads (forking the QGIS process is unsafe);
#: GDAL, GEOS and file I/O release the GIL, so both cores still work.
THREADS = max(1, min(4, os.cpu_count() or 1))


def number(name, description, default, *, minimum=0.0, maximum=None):
    """A decimal Processing parameter (metres, square metres, fractions)."""
    extra = {} if maximum is None else {"maxValue": maximum}
    return QgsProcessingParameterNumber(
        name, description, QgsProcessingParameterNumber.Double, defaultValue=default, minValue=minimum, **extra
    )


def store_parameter(name="STORE", description=STORE_DESCRIPTION):
    """A label store: a GeoPackage file (the dialog browses for one) or a PostgreSQL
    location typed or pasted into the same field. The filter ends in "All files (*)":
    with only GeoPackage (or QGIS's default "*.*") Processing refuses a location for
    lacking the extension; the engine says what a store location looks like."""
    return QgsProcessingParameterFile(name, description, fileFilter=STORE_FILTER, defaultValue=open_store_path())


def add_suggestion_targets(algorithm, output_description):
    """The INTO (a label store to add the suggestions to) and OUTPUT (a new GeoPackage)
    parameters every suggest algorithm has: one of the two is given."""
    algorithm.addParameter(
        QgsProcessingParameterFile("INTO", "Add to this label store instead", fileFilter=STORE_FILTER, optional=True)
    )
    algorithm.addParameter(
        QgsProcessingParameterFileDestination(
            "OUTPUT", output_description, fileFilter="GeoPackage (*.gpkg)", optional=True
        )
    )


def layer_path(layer):
    """(file path, layer name or None) of a layer read from a file."""
    if layer is None:
        return None, None
    parts = layer.source().split("|")
    name = None
    for extra in parts[1:]:
        if extra.startswith("layername="):
            name = extra.split("=", 1)[1]
    return parts[0], name


def vector_source(layer, context, feedback):
    """(path, layer name) the engine can read, for any vector layer.

    A layer read straight from a file is passed as it is (a label store stays a store).
    Anything else (memory and database layers, virtual layers, a layer with a filter) is
    written, filter applied, to a GeoPackage in the Processing temporary folder first.
    """
    if layer is None:
        return None
    location = stores.layer_location(layer) if layer.providerType() == stores.PG_PROVIDER else None
    if location and not layer.subsetString():  # a PostGIS store's labels: the store itself
        return location, None
    path, name = layer_path(layer)
    plain = layer.providerType() == "ogr" and not layer.subsetString() and os.path.isfile(path)
    if plain and ("|layerid=" not in layer.source() or name):  # a layer id alone does not name the layer
        return path, name
    from qgis.core import QgsProcessingUtils, QgsVectorFileWriter

    # the layer id comes from the project file (any text): only a digest of it names the file
    digest = hashlib.sha256(layer.id().encode()).hexdigest()[:16]
    out = os.path.join(QgsProcessingUtils.tempFolder(), f"geolabel_{digest}_{os.getpid()}.gpkg")
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = "GPKG"
    options.layerName = "layer"
    error, message, _, _ = QgsVectorFileWriter.writeAsVectorFormatV3(layer, out, context.transformContext(), options)
    if error != QgsVectorFileWriter.NoError:
        raise QgsProcessingException(f"{layer.name()}: cannot be read for GeoLabel ({message})")
    feedback.pushInfo(f"{layer.name()}: {layer.featureCount()} features passed to the engine through {out}")
    return out, "layer"


#: Toolbox groups under the GeoLabel provider (alphabetical is also the order of the work).
GROUPS = {
    "imagery": "Imagery",
    "labels": "Label store",
    "quality": "Quality",
    "suggest": "Suggestions",
    "training": "Training data",
}

#: Engine functions a message may point to -> the GeoLabel algorithm that does the same.
ALGORITHMS = {
    "tile_raster()": "“Tile raster into chips” (geolabel:tile)",
    "create_store()": "“Create label store” (geolabel:create_store)",
    "import_labels()": "“Import labels into a store” (geolabel:import_labels)",
    "resolve_store()": "“Resolve overlaps” (geolabel:resolve)",
}
#: Engine arguments whose Processing parameter is not simply their name in capitals.
PARAMETERS = {
    "out_dir": "OUTPUT",
    "json_out": "OUTPUT",
    "out": "OUTPUT",
    "class_name": "CLASS",
    "iou": "IOU",
    "tiles": "TILES",
}


def engine_message(exc, algorithm=None):
    """The engine's message said in QGIS's words: API arguments it names become the
    parameters of ``algorithm`` (their labels as the dialog shows them), functions become
    algorithms; anything else loses its backquotes."""
    from geolabel.errors import say_params

    def say(name, value):
        if name in ALGORITHMS:
            return ALGORITHMS[name]
        definition = algorithm.parameterDefinition(PARAMETERS.get(name, name.upper())) if algorithm else None
        label = f"“{definition.description()}”" if definition is not None else name
        return f"{label} = {value}" if value else label

    return say_params(str(exc), getattr(exc, "params", ()), say)


def warn_on_error(iface, func, *args, **kwargs):
    """``func(*args, **kwargs)``, or None with its one-line error in the message bar (a
    panel's engine call: the labeler reads what to do, the panel stays usable)."""
    try:
        return func(*args, **kwargs)
    except Exception as exc:
        iface.messageBar().pushWarning("GeoLabel", engine_message(exc))
        return None


def open_store_layer():
    """The labels layer of the store the dock opened (else any store's labels layer in the
    project), or None: dialogs default to it rather than to whatever layer is active."""
    from qgis.core import QgsProject, QgsVectorLayer

    layers = [layer for layer in QgsProject.instance().mapLayers().values() if isinstance(layer, QgsVectorLayer)]
    marked = [layer for layer in layers if layer.customProperty(STORE_PROPERTY)]
    files = [layer for layer in layers if layer.source().endswith("|layername=labels")]
    return next(iter(marked + files), None)


def open_store_path():
    """The store of :func:`open_store_layer`, as shown (a PostgreSQL location without its
    password), or None without one."""
    layer = open_store_layer()
    if layer is None:
        return None
    marked = layer.customProperty(STORE_PROPERTY)
    if isinstance(marked, str) and marked:
        return marked
    location = stores.layer_location(layer)
    return stores.shown(location) if location else None


def open_tile_index_path():
    """The file of a tile index shown in the project (None without one)."""
    from qgis.core import QgsProject

    for layer in QgsProject.instance().mapLayers().values():
        if layer.source().endswith("|layername=tiles"):
            return layer_path(layer)[0]
    return None


def crs_text(crs):
    """An EPSG code when QGIS knows one (so chips and stores keep it), else WKT."""
    authid = crs.authid()
    return authid if authid.upper().startswith("EPSG:") else crs.toWkt()


class GeolabelAlgorithm(QgsProcessingAlgorithm):
    """Base of the GeoLabel algorithms (id, title, help, group, engine error handling)."""

    NAME = ""  # the id after "geolabel:"
    GROUP = ""  # a key of GROUPS
    TITLE = ""
    HELP = ""

    def name(self):
        return self.NAME

    def displayName(self):
        return self.TITLE

    def shortHelpString(self):
        return self.HELP

    def group(self):
        return GROUPS[self.GROUP]

    def groupId(self):
        return self.GROUP

    def createInstance(self):
        return type(self)()

    def progress(self, feedback):
        return lambda fraction: feedback.setProgress(100.0 * fraction)

    def run_engine(self, feedback, func, *args, **kwargs):
        """Call an engine function; its errors become one-line Processing errors (an
        unexpected one too, with its traceback in the log for a bug report)."""
        from geolabel.errors import CancelledError, GeolabelError, first_line

        try:
            return func(*args, **kwargs)
        except CancelledError as exc:
            raise QgsProcessingException("cancelled") from exc
        except GeolabelError as exc:
            raise QgsProcessingException(engine_message(exc, self)) from exc
        except QgsProcessingException:
            raise
        except Exception as exc:
            import traceback

            feedback.pushDebugInfo(traceback.format_exc())
            raise QgsProcessingException(
                f"unexpected {type(exc).__name__} in geolabel: {first_line(exc)} (please report it, with the log)"
            ) from exc

    def store_location(self, parameters, context, feedback, name="STORE"):
        """(location the engine opens, location as shown) of a store parameter."""
        text = self.parameterAsFile(parameters, name, context)
        return self.run_engine(feedback, stores.engine_location, text), self.run_engine(feedback, stores.shown, text)

    def load_store_labels(self, context, location, output_name):
        """Load a store's labels layer when the algorithm ends; returns its source."""
        if not stores.is_postgres(location):
            source = f"{location}|layername=labels"
            self.load_on_completion(context, source, "Labels", output_name)
            return source
        layer = stores.labels_layer(location, "Labels")
        context.temporaryLayerStore().addMapLayer(layer)
        self.load_on_completion(context, layer.id(), "Labels", output_name)
        return layer.source()

    def suggestions_target(self, parameters, context, feedback, *, into="INTO", output="OUTPUT"):
        """(store location, None) when the store parameter ``into`` is given, else (None,
        GeoPackage path of ``output``), checked before any work like the CLI's --out."""
        from geolabel.suggest.output import check_output

        if self.parameterAsFile(parameters, into, context):
            return self.store_location(parameters, context, feedback, into)[0], None
        out = self.parameterAsFileOutput(parameters, output, context)
        if not out:
            raise QgsProcessingException("give a label store to add the suggestions to, or an output GeoPackage")
        self.run_engine(feedback, check_output, out, overwrite=True)  # the file dialog asked already
        return None, out

    def write_suggestions(self, feedback, context, polygons, crs, class_name, *, into, out, name, output="OUTPUT"):
        """Write suggestions with the engine's one writer (to ``into`` or ``out``, see
        :meth:`suggestions_target`) and load them (or the store's labels) when the algorithm ends."""
        from geolabel.suggest import write_suggestions
        from geolabel.suggest.output import SUGGESTIONS_LAYER

        done = self.run_engine(
            feedback, write_suggestions, polygons, crs=crs, class_name=class_name, out=out, into=into, overwrite=True
        )
        if into is not None:
            self.load_store_labels(context, into, output)
        else:
            self.load_on_completion(context, f"{out}|layername={SUGGESTIONS_LAYER}", name, output)
        feedback.setProgress(100)
        return done

    def executor(self):
        return ThreadPoolExecutor(THREADS)

    def load_on_completion(self, context, path, name, output_name, style=None):
        """Add a file the engine wrote to the layers QGIS loads when the algorithm ends
        (``style``: a function QGIS calls on the loaded layer)."""
        details = QgsProcessingContext.LayerDetails(name, context.project(), output_name)
        details.forceName = True  # "Tile index", not the file's layer name ("tiles")
        if style is not None:
            details.setPostProcessor(_styler(style))
        context.addLayerToLoadOnCompletion(path, details)


#: QGIS does not own a layer post-processor: the last few are kept alive here.
_STYLERS = []


def _styler(style):
    from qgis.core import QgsProcessingLayerPostProcessorInterface

    class Styler(QgsProcessingLayerPostProcessorInterface):
        def postProcessLayer(self, layer, context, feedback):
            style(layer)

    _STYLERS.append(Styler())
    del _STYLERS[:-16]
    return _STYLERS[-1]

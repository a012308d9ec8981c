"""GeoLabel QGIS plugin: a thin front end on the geolabel engine."""


def classFactory(iface):
    """QGIS entry point: import lazily so a missing engine never breaks plugin loading."""
    from .plugin import GeolabelPlugin

    return GeolabelPlugin(iface)

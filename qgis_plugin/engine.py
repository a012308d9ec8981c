"""Is the geolabel engine importable in this QGIS Python? If not, say exactly how to fix it."""

from __future__ import annotations

import sys

#: What the plugin needs from the engine; imported once to check the whole stack.
REQUIRED = ("geolabel", "rasterio", "shapely", "pyproj", "fiona", "pyogrio", "geopandas")


def missing_dependency() -> str | None:
    """None when the engine and its dependencies import, else the first failing import."""
    for name in REQUIRED:
        try:
            __import__(name)
        except Exception as exc:  # ImportError, or a binary incompatibility
            return f"{name} ({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''})"
    import shapely

    if int(shapely.__version__.split(".")[0]) < 2:
        return f"shapely {shapely.__version__} (geolabel needs shapely 2)"
    return None


def install_command() -> str:
    """The pip command that installs the engine into this QGIS's Python."""
    python = sys.executable
    if not python or "qgis" in python.lower().rsplit("/", 1)[-1]:
        python = "python3"  # QGIS on Linux reports the qgis binary; its Python is the system python3
    if sys.platform.startswith("win"):
        # OSGeo4W: run in the OSGeo4W Shell
        return 'python -m pip install --user "geolabel"'
    return f'{python} -m pip install --user "geolabel"'


def help_message(missing: str) -> str:
    return (
        f"GeoLabel needs the geolabel Python engine, but importing {missing} failed. "
        f"Install it into QGIS's Python with:\n\n    {install_command()}\n\n"
        "(on Windows, in the OSGeo4W Shell), then restart QGIS. On Debian/Ubuntu, if pip refuses "
        "with 'externally-managed-environment', add --break-system-packages or use a virtual "
        "environment made with --system-site-packages."
    )

"""Is the geolabel engine importable in this QGIS Python? If not, say exactly how to fix it.

The plugin zip built by ``package.py`` carries the engine as a wheel (``wheels/``), so the
command shown installs exactly the engine version this plugin was built with; pip brings
the dependencies (and upgrades one that is too old, such as shapely 1.x).
"""

from __future__ import annotations

import glob
import os
import sys
import sysconfig

PLUGIN_DIR = os.path.dirname(os.path.abspath(__file__))

#: What the plugin needs from the engine; imported once to check the whole stack.
REQUIRED = ("geolabel", "rasterio", "shapely", "pyproj", "fiona", "pyogrio", "geopandas")


#: Packages whose compiled modules carry their own GDAL, GEOS or PROJ (PyPI wheels).
NATIVE = ("shapely", "pyproj", "rasterio", "fiona", "pyogrio")


def _import_native(name: str) -> None:
    """Import ``name`` and every compiled module in it, each bound to its own libraries.

    Inside the QGIS binary (desktop, qgis_process) QGIS's GDAL, GEOS and PROJ are loaded
    first with global symbols. A wheel's extension module would then call QGIS's GDAL 3.6
    with its own GDAL 3.10's objects (and crash), unless it is loaded with RTLD_DEEPBIND,
    which makes it look in its own libraries first. All of them are imported here, before
    anything in geolabel does it lazily without the flag.
    """
    import importlib
    import pkgutil

    package = importlib.import_module(name)
    for info in pkgutil.walk_packages(package.__path__, f"{name}.", onerror=lambda _name: None):
        if info.ispkg or ".tests" in info.name or info.name in sys.modules:
            continue
        spec = importlib.util.find_spec(info.name)
        if (getattr(spec, "origin", "") or "").endswith((".so", ".pyd")):
            importlib.import_module(info.name)


def quiet_library_deprecations() -> None:
    """Hide the deprecation notes rasterio's own code triggers in affine 3 ("Use `@` matmul
    instead of `*`"): they are for rasterio's developers, not for someone tiling a scene.
    Only warnings raised inside those two libraries are filtered."""
    import warnings

    for module in (r"rasterio(\..*)?", r"affine(\..*)?"):
        warnings.filterwarnings("ignore", category=PendingDeprecationWarning, module=module)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=module)


def missing_dependency() -> str | None:
    """None when the engine and its dependencies import, else the first failing import."""
    quiet_library_deprecations()
    deepbind = getattr(os, "RTLD_DEEPBIND", 0)
    flags = sys.getdlopenflags() if hasattr(sys, "getdlopenflags") else None
    if deepbind and flags is not None:
        sys.setdlopenflags(os.RTLD_NOW | os.RTLD_LOCAL | deepbind)
    try:
        for name in REQUIRED:
            try:
                if name in NATIVE and deepbind:
                    _import_native(name)
                else:
                    __import__(name)
            except Exception as exc:  # ImportError, or a binary incompatibility
                return f"{name} ({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''})"
    finally:
        if deepbind and flags is not None:
            sys.setdlopenflags(flags)
    import shapely

    if int(shapely.__version__.split(".")[0]) < 2:
        return f"shapely {shapely.__version__} (geolabel needs shapely 2)"
    return None


def bundled_wheel() -> str | None:
    """The engine wheel shipped inside the plugin, if any (newest version first)."""
    wheels = sorted(glob.glob(os.path.join(PLUGIN_DIR, "wheels", "geolabel-*.whl")))
    return wheels[-1] if wheels else None


def _python() -> str:
    python = sys.executable or ""
    name = os.path.basename(python).lower()
    if not python or not name.startswith("python"):
        # inside QGIS, sys.executable is the qgis binary: its Python is the system one
        return "python" if sys.platform.startswith("win") else "python3"
    return python


def _keep(name: str, minimum: tuple[int, ...]) -> str | None:
    """``name==version`` of an installed package recent enough for geolabel, else None.

    Pinning what QGIS's Python already has stops pip from replacing it: numpy 2 would
    break QGIS's GDAL bindings, and a pyproj wheel brings a second PROJ into QGIS.
    """
    try:
        module = __import__(name)
        version = str(module.__version__)
        parts = tuple(int(p) for p in version.split(".")[: len(minimum)])
    except Exception:
        return None
    return f"{name}=={version}" if parts >= minimum else None


def install_command() -> str:
    """The pip command that installs the engine (and what it needs) into this QGIS's Python."""
    wheel = bundled_wheel()
    target = f'"{wheel}"' if wheel else "/path/to/geolabel  (a clone of the geolabel repository)"
    flags = "--user"
    if os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")):
        flags += " --break-system-packages"  # Debian/Ubuntu's system Python (PEP 668)
    keep = [k for k in (_keep("numpy", (1, 24)), _keep("pyproj", (3, 5))) if k]
    pins = "".join(f'"{k}" ' for k in keep)
    return f"{_python()} -m pip install {flags} {pins}{target}"


def help_message(missing: str) -> str:
    where = "in the OSGeo4W Shell" if sys.platform.startswith("win") else "in a terminal"
    return (
        f"GeoLabel needs the geolabel Python engine, but importing {missing} failed. "
        f"Install it into QGIS's Python {where} with:\n\n    {install_command()}\n\n"
        "then restart QGIS. On Debian/Ubuntu, build pyproj against QGIS's own PROJ first "
        "(README, 'Use in QGIS'), or QGIS may crash when it exits."
    )

"""drive.py runs inside QGIS (qgis --code), never in pytest: not even for doctest collection."""

collect_ignore = ["drive.py"]

"""drive.py and assist_shots.py run inside QGIS (qgis --code), never in pytest: not even for doctest collection."""

collect_ignore = ["drive.py", "assist_shots.py"]

"""drive.py, assist_shots.py and tag_shots.py run inside QGIS (qgis --code), never in pytest: not even for doctest collection."""

collect_ignore = ["drive.py", "assist_shots.py", "tag_shots.py"]

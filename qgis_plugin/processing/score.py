"""geolabel:score: a submission against a reference (geolabel.score)."""

from __future__ import annotations

import json

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterVectorLayer,
)

from geolabel import vocabulary as v  # the provider loads only once the engine imports

from .common import GeolabelAlgorithm, number, vector_source


class ScoreLabels(GeolabelAlgorithm):
    NAME = "score"
    GROUP = "quality"
    TITLE = "Score against a reference"
    HELP = (
        "Area correctness, completeness and quality (IoU) per class and overall, a confusion matrix by area, "
        "one-to-one object matching at an IoU threshold and a boundary F-score within a tolerance in metres. "
        "The submission is reprojected to the reference CRS. All numbers go to a JSON file."
    )

    def initAlgorithm(self, config=None):
        self.addParameter(
            QgsProcessingParameterVectorLayer("SUBMISSION", "Submission", [QgsProcessing.TypeVectorPolygon])
        )
        self.addParameter(
            QgsProcessingParameterVectorLayer("REFERENCE", "Reference", [QgsProcessing.TypeVectorPolygon])
        )
        self.addParameter(number("IOU", "IoU threshold for objects", v.SCORE_IOU, maximum=1.0))
        self.addParameter(number("TOLERANCE", "Boundary tolerance (m)", v.SCORE_TOLERANCE_M))
        self.addParameter(QgsProcessingParameterFileDestination("OUTPUT", "Scores (JSON)", fileFilter="JSON (*.json)"))
        for key, label in (
            ("QUALITY", "Quality (IoU)"),
            ("CORRECTNESS", "Correctness"),
            ("COMPLETENESS", "Completeness"),
            ("F1", "F1"),
            ("OBJECT_F1", "Object F1"),
            ("BOUNDARY_F", "Boundary F-score"),
        ):
            self.addOutput(QgsProcessingOutputNumber(key, label))

    def processAlgorithm(self, parameters, context, feedback):
        from geolabel.files import write_text_atomic
        from geolabel.score import score_files

        submission = self.parameterAsVectorLayer(parameters, "SUBMISSION", context)
        sub, sub_layer = vector_source(submission, context, feedback)
        ref, ref_layer = vector_source(self.parameterAsVectorLayer(parameters, "REFERENCE", context), context, feedback)
        out = self.parameterAsFileOutput(parameters, "OUTPUT", context)
        feedback.setProgress(10)
        s = self.run_engine(
            feedback,
            score_files,
            sub,
            ref,
            layer=sub_layer,
            reference_layer=ref_layer,
            iou=self.parameterAsDouble(parameters, "IOU", context),
            tolerance=self.parameterAsDouble(parameters, "TOLERANCE", context),
        )
        self.run_engine(feedback, write_text_atomic, out, json.dumps(s.to_dict(), indent=1, ensure_ascii=False))
        o = s.overall
        feedback.pushInfo(
            f"quality {o['quality']:.4f}, correctness {o['correctness']:.4f}, completeness {o['completeness']:.4f}"
        )
        feedback.setProgress(100)
        return {
            "OUTPUT": out,
            "QUALITY": o["quality"],
            "CORRECTNESS": o["correctness"],
            "COMPLETENESS": o["completeness"],
            "F1": o["f1"],
            "OBJECT_F1": s.objects_overall["f1"],
            "BOUNDARY_F": s.boundary["overall"]["f"],
        }

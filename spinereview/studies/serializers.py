"""Payloads of the reading API. The serializers describe every field, so the OpenAPI schema (and the
TypeScript types generated from it) match what the views return."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from spinereview.studies import selectors
from spinereview.studies.models import Assignment, ReadVersion, ReferenceRead, SegmentationVersion


class GradeSerializer(serializers.Serializer):  # type: ignore[type-arg]
    level = serializers.CharField()
    condition = serializers.CharField()
    value = serializers.CharField()


class MeasurementSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.UUIDField()
    key = serializers.CharField()
    kind = serializers.ChoiceField(choices=["length", "area", "disc_height"])
    level = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    series_instance_uid = serializers.CharField()
    sop_instance_uid = serializers.CharField(allow_blank=True)
    points_mm = serializers.ListField(child=serializers.ListField(child=serializers.FloatField(), min_length=3, max_length=3))
    values = serializers.DictField(child=serializers.FloatField(), help_text="length_mm | area_mm2 | anterior_mm, middle_mm, posterior_mm")


class ReadSerializer(serializers.Serializer):  # type: ignore[type-arg]
    version = serializers.IntegerField()
    phase = serializers.ChoiceField(choices=ReadVersion.Phase.values)
    submitted = serializers.BooleanField()
    elapsed_s = serializers.FloatField()
    grades = GradeSerializer(many=True)
    measurements = MeasurementSerializer(many=True)


def read_payload(version: ReadVersion | None) -> dict[str, Any]:
    if version is None:
        return {"version": 0, "phase": ReadVersion.Phase.UNAIDED, "submitted": False, "elapsed_s": 0.0, "grades": [], "measurements": []}
    grades = [{"level": g.level, "condition": g.condition, "value": g.value} for g in version.grades.all()]
    measurements = [
        {
            "id": str(m.measurement_id),
            "key": m.key,
            "kind": m.kind,
            "level": m.level,
            "label": m.label,
            "series_instance_uid": m.series_instance_uid,
            "sop_instance_uid": m.sop_instance_uid,
            "points_mm": m.points_mm,
            "values": m.values,
        }
        for m in version.measurements.all()
    ]
    return {"version": version.version, "phase": version.phase, "submitted": version.submitted, "elapsed_s": version.elapsed_s, "grades": grades, "measurements": measurements}


class AISegmentationSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.UUIDField()
    model_version = serializers.CharField(source="model_version.version")
    label_map = serializers.DictField(child=serializers.CharField())
    shape = serializers.ListField(child=serializers.IntegerField())
    sop_instance_uids = serializers.ListField(child=serializers.CharField())
    labels_url = serializers.SerializerMethodField()

    def get_labels_url(self, obj: Any) -> str:
        return f"/api/v1/ai-segmentations/{obj.pk}/labels"


class SeriesSerializer(serializers.Serializer):  # type: ignore[type-arg]
    series_instance_uid = serializers.CharField()
    role = serializers.CharField()
    description = serializers.CharField()
    num_instances = serializers.IntegerField()
    ai_segmentation = AISegmentationSerializer(allow_null=True)


class CaseSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.UUIDField()
    label = serializers.CharField()  # type: ignore[assignment]  # the API field is named "label"
    study_instance_uid = serializers.CharField()
    series = SeriesSerializer(many=True)


class CategorySerializer(serializers.Serializer):  # type: ignore[type-arg]
    code = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]


class ScaleSerializer(serializers.Serializer):  # type: ignore[type-arg]
    key = serializers.CharField(allow_null=True)
    name = serializers.CharField()
    categories = CategorySerializer(many=True)


class SubQuestionSerializer(serializers.Serializer):  # type: ignore[type-arg]
    key = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    scale = ScaleSerializer()
    when = serializers.ListField(child=serializers.CharField())
    required = serializers.BooleanField()  # type: ignore[assignment]


class ConditionSerializer(serializers.Serializer):  # type: ignore[type-arg]
    key = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    side = serializers.ChoiceField(choices=["left", "right"], allow_null=True)
    required = serializers.BooleanField()  # type: ignore[assignment]
    scale = ScaleSerializer()
    sub_questions = SubQuestionSerializer(many=True)


class MeasurementTaskSerializer(serializers.Serializer):  # type: ignore[type-arg]
    key = serializers.CharField()
    kind = serializers.ChoiceField(choices=["length", "area", "disc_height"])
    label = serializers.CharField()  # type: ignore[assignment]
    unit = serializers.ChoiceField(choices=["mm", "mm2"])
    required = serializers.BooleanField()  # type: ignore[assignment]
    levels = serializers.ListField(child=serializers.CharField())


class SegmentationLabelSerializer(serializers.Serializer):  # type: ignore[type-arg]
    value = serializers.IntegerField()
    name = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    color = serializers.ListField(child=serializers.IntegerField(), min_length=3, max_length=3)


class SegmentationTaskSerializer(serializers.Serializer):  # type: ignore[type-arg]
    series_role = serializers.CharField()
    brush_radius_mm = serializers.FloatField()
    labels = SegmentationLabelSerializer(many=True)


class ProtocolSerializer(serializers.Serializer):  # type: ignore[type-arg]
    name = serializers.CharField()
    levels = serializers.ListField(child=serializers.CharField())
    conditions = ConditionSerializer(many=True)
    measurements = MeasurementTaskSerializer(many=True)
    segmentation = SegmentationTaskSerializer(allow_null=True)
    two_phase = serializers.BooleanField()
    compare = serializers.BooleanField()


class ReaderSegmentationSerializer(serializers.Serializer):  # type: ignore[type-arg]
    series_instance_uid = serializers.CharField()
    version = serializers.IntegerField()
    phase = serializers.ChoiceField(choices=ReadVersion.Phase.values)
    source = serializers.ChoiceField(choices=SegmentationVersion.Source.values)  # type: ignore[assignment]  # the API field is named "source"
    labels_url = serializers.CharField()
    shape = serializers.ListField(child=serializers.IntegerField())
    label_map = serializers.DictField(child=serializers.CharField())
    voxels_per_label = serializers.DictField(child=serializers.IntegerField())
    level_measurements = serializers.ListField(child=serializers.DictField())
    measurement_error = serializers.CharField()


def segmentation_payload(version: SegmentationVersion) -> dict[str, Any]:
    protocol = version.assignment.case.reader_study.protocol
    uid = version.series.series_instance_uid
    return {
        "series_instance_uid": uid,
        "version": version.version,
        "phase": version.phase,
        "source": version.source,
        "labels_url": f"/api/v1/assignments/{version.assignment_id}/segmentations/{uid}/labels",
        "shape": version.shape,
        "label_map": {str(label["value"]): label["name"] for label in (protocol.get("segmentation") or {}).get("labels", [])},
        "voxels_per_label": version.voxels_per_label,
        "level_measurements": version.level_measurements,
        "measurement_error": version.measurement_error,
    }


class CalibrationFeedbackItemSerializer(serializers.Serializer):  # type: ignore[type-arg]
    level = serializers.CharField()
    condition = serializers.CharField()
    yours = serializers.CharField(allow_null=True)
    reference = serializers.CharField()
    agrees = serializers.BooleanField()


class AssignmentListSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    reader_study = serializers.CharField(source="case.reader_study.name")
    case_label = serializers.CharField(source="case.label")
    # Declared, not derived from the model field: the derived maximum depends on the database engine,
    # and the schema (and the viewer's generated types) must not.
    order = serializers.IntegerField(min_value=0)
    status = serializers.SerializerMethodField()

    class Meta:
        model = Assignment
        fields = ["id", "reader_study", "case_label", "kind", "order", "status"]

    def get_status(self, obj: Assignment) -> str:
        return selectors.assignment_status(assignment=obj)


class AssignmentDetailSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.UUIDField()
    reader = serializers.CharField()
    status = serializers.CharField()
    kind = serializers.ChoiceField(choices=Assignment.Kind.values)
    phase = serializers.ChoiceField(choices=["unaided", "aided", "done"])
    case = CaseSerializer()
    protocol = ProtocolSerializer()
    read = ReadSerializer()
    previous_reads = ReadSerializer(many=True)
    segmentations = ReaderSegmentationSerializer(many=True)
    calibration_feedback = CalibrationFeedbackItemSerializer(many=True, allow_null=True)


PROTOCOL_FIELDS_FOR_READERS = ("name", "levels", "conditions", "measurements", "segmentation", "two_phase", "compare")


def _calibration_feedback(assignment: Assignment, read: ReadVersion | None) -> list[dict[str, Any]] | None:
    """After a calibration read is submitted: the reader's grades next to the reference's (never before)."""
    if assignment.kind != Assignment.Kind.CALIBRATION or read is None or not read.submitted:
        return None
    reference = ReferenceRead.objects.filter(case=assignment.case, source=ReferenceRead.Source.CALIBRATION).order_by("-version").first()
    if reference is None:
        return []
    yours = {(g.level, g.condition): g.value for g in read.grades.all()}
    return [
        {"level": g["level"], "condition": g["condition"], "yours": yours.get((g["level"], g["condition"])), "reference": g["value"], "agrees": yours.get((g["level"], g["condition"])) == g["value"]}
        for g in reference.grades
    ]


def assignment_detail_payload(assignment: Assignment) -> dict[str, Any]:
    series = []
    for case_series in assignment.case.case_series.select_related("series").order_by("role"):
        segmentation = selectors.ai_segmentation_for_reader(assignment=assignment, series_id=case_series.series_id)
        series.append(
            {
                "series_instance_uid": case_series.series.series_instance_uid,
                "role": case_series.role,
                "description": case_series.series.series_description,
                "num_instances": case_series.series.instances.count(),
                "ai_segmentation": AISegmentationSerializer(segmentation).data if segmentation else None,
            }
        )
    read = selectors.read_current(assignment=assignment)
    protocol = assignment.case.reader_study.protocol
    phase = selectors.phase_after(read, two_phase=bool(protocol.get("two_phase")))
    return {
        "id": str(assignment.pk),
        "reader": assignment.reader.username,
        "status": selectors.status_after(read, phase),
        "kind": assignment.kind,
        "phase": phase,
        "case": {
            "id": str(assignment.case.pk),
            "label": assignment.case.label,
            "study_instance_uid": assignment.case.dicom_study.study_instance_uid,
            "series": series,
        },
        "protocol": {k: protocol.get(k) for k in PROTOCOL_FIELDS_FOR_READERS},
        "read": read_payload(read),
        "previous_reads": [read_payload(v) for v in selectors.reads_previous(assignment=assignment, current=read)],
        "segmentations": [segmentation_payload(v) for v in selectors.segmentations_latest(assignment=assignment)],
        "calibration_feedback": _calibration_feedback(assignment, read),
    }


class ReadSaveInputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    base_version = serializers.IntegerField(min_value=0)
    grades = serializers.ListField(child=serializers.DictField(), allow_empty=True)
    measurements = serializers.ListField(child=serializers.DictField(), allow_empty=True, required=False, default=list)
    elapsed_s = serializers.FloatField(min_value=0, required=False, allow_null=True, default=None)


class ReadSubmitInputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    base_version = serializers.IntegerField(min_value=0)


class FromAIInputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    base_version = serializers.IntegerField(min_value=0)


class StaleReadSerializer(serializers.Serializer):  # type: ignore[type-arg]
    detail = serializers.CharField()
    current = ReadSerializer()


class MissingItemSerializer(serializers.Serializer):  # type: ignore[type-arg]
    level = serializers.CharField()
    condition = serializers.CharField(required=False)
    measurement = serializers.CharField(required=False)


class SubmitRefusedSerializer(serializers.Serializer):  # type: ignore[type-arg]
    detail = serializers.CharField()
    missing = MissingItemSerializer(many=True)


class ErrorSerializer(serializers.Serializer):  # type: ignore[type-arg]
    detail = serializers.CharField()


class StaleSegmentationSerializer(serializers.Serializer):  # type: ignore[type-arg]
    detail = serializers.CharField()
    current_version = serializers.IntegerField()


class CompareValueSerializer(serializers.Serializer):  # type: ignore[type-arg]
    reader = serializers.FloatField(allow_null=True)
    ai = serializers.FloatField(allow_null=True)
    delta = serializers.FloatField(allow_null=True)


class CompareGradeSerializer(serializers.Serializer):  # type: ignore[type-arg]
    condition = serializers.CharField()
    reader = serializers.CharField(allow_null=True)
    ai = serializers.CharField(allow_null=True)
    differs = serializers.BooleanField(allow_null=True)


class CompareMethodSerializer(serializers.Serializer):  # type: ignore[type-arg]
    reader = serializers.CharField()
    ai = serializers.CharField()


class CompareLevelSerializer(serializers.Serializer):  # type: ignore[type-arg]
    level = serializers.CharField()
    dsca_mm2 = CompareValueSerializer()
    ap_diameter_mm = CompareValueSerializer()
    disc_height_mm = CompareValueSerializer()
    muscle_csa_left_mm2 = CompareValueSerializer()
    muscle_csa_right_mm2 = CompareValueSerializer()
    muscle_fat_fraction_left_percent = CompareValueSerializer()
    muscle_fat_fraction_right_percent = CompareValueSerializer()
    muscle_fat_method = CompareMethodSerializer()
    grades = CompareGradeSerializer(many=True)


class CompareStructureSerializer(serializers.Serializer):  # type: ignore[type-arg]
    series_instance_uid = serializers.CharField()
    label = serializers.IntegerField()  # type: ignore[assignment]
    name = serializers.CharField()
    dice = serializers.FloatField(allow_null=True)
    reader_voxels = serializers.IntegerField()
    ai_voxels = serializers.IntegerField()


class CompareSerializer(serializers.Serializer):  # type: ignore[type-arg]
    model_version = serializers.CharField(allow_null=True)
    structures = CompareStructureSerializer(many=True)
    levels = CompareLevelSerializer(many=True)

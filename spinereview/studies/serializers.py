from __future__ import annotations

from typing import Any

from rest_framework import serializers

from spinereview.studies import selectors
from spinereview.studies.models import Assignment, ReadVersion


class GradeSerializer(serializers.Serializer):  # type: ignore[type-arg]
    level = serializers.CharField()
    condition = serializers.CharField()
    value = serializers.CharField()


class ReadSerializer(serializers.Serializer):  # type: ignore[type-arg]
    version = serializers.IntegerField()
    submitted = serializers.BooleanField()
    grades = GradeSerializer(many=True)


def read_payload(version: ReadVersion | None) -> dict[str, Any]:
    if version is None:
        return {"version": 0, "submitted": False, "grades": []}
    grades = [{"level": g.level, "condition": g.condition, "value": g.value} for g in version.grades.all()]
    return {"version": version.version, "submitted": version.submitted, "grades": grades}


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


class AssignmentListSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    reader_study = serializers.CharField(source="case.reader_study.name")
    case_label = serializers.CharField(source="case.label")
    status = serializers.SerializerMethodField()

    class Meta:
        model = Assignment
        fields = ["id", "reader_study", "case_label", "order", "status"]

    def get_status(self, obj: Assignment) -> str:
        return selectors.assignment_status(assignment=obj)


class AssignmentDetailSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.UUIDField()
    reader = serializers.CharField()
    status = serializers.CharField()
    case = CaseSerializer()
    protocol = serializers.DictField()
    read = ReadSerializer()


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
    return {
        "id": str(assignment.pk),
        "reader": assignment.reader.username,
        "status": selectors.assignment_status(assignment=assignment),
        "case": {
            "id": str(assignment.case.pk),
            "label": assignment.case.label,
            "study_instance_uid": assignment.case.dicom_study.study_instance_uid,
            "series": series,
        },
        "protocol": {k: v for k, v in assignment.case.reader_study.protocol.items() if k in ("levels", "conditions")},
        "read": read_payload(selectors.read_current(assignment=assignment)),
    }


class ReadSaveInputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    base_version = serializers.IntegerField(min_value=0)
    grades = serializers.ListField(child=serializers.DictField(), allow_empty=True)


class ReadSubmitInputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    base_version = serializers.IntegerField(min_value=0)

"""Reader vs reader on one case, for the study's adjudicators and leads (thin: spinereview.studies.reader_compare)."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from spinereview.studies.apis import OctetStreamRenderer, _labels_response
from spinereview.studies.reader_compare import reader_mask_for_supervisor, readers_compare
from spinereview.studies.serializers import ErrorSerializer
from spinereview.studies.services import segmentation_labels_load


class PairValueSerializer(serializers.Serializer):  # type: ignore[type-arg]
    a = serializers.FloatField(allow_null=True)
    b = serializers.FloatField(allow_null=True)
    delta = serializers.FloatField(allow_null=True, help_text="b minus a")
    source_a = serializers.CharField(help_text='"measured" (the reader\'s measurement), "mask" (from their mask) or ""')
    source_b = serializers.CharField()


class PairGradeSerializer(serializers.Serializer):  # type: ignore[type-arg]
    condition = serializers.CharField()
    a = serializers.CharField(allow_null=True)
    b = serializers.CharField(allow_null=True)
    differs = serializers.BooleanField(allow_null=True)


class PairLevelSerializer(serializers.Serializer):  # type: ignore[type-arg]
    level = serializers.CharField()
    dsca_mm2 = PairValueSerializer()
    ap_diameter_mm = PairValueSerializer()
    disc_height_mm = PairValueSerializer()
    grades = PairGradeSerializer(many=True)


class PairStructureSerializer(serializers.Serializer):  # type: ignore[type-arg]
    series_instance_uid = serializers.CharField()
    label = serializers.IntegerField()  # type: ignore[assignment]
    name = serializers.CharField()
    dice = serializers.FloatField(allow_null=True)
    a_voxels = serializers.IntegerField()
    b_voxels = serializers.IntegerField()
    only_a_voxels = serializers.IntegerField()
    only_b_voxels = serializers.IntegerField()


class PairSeriesSerializer(serializers.Serializer):  # type: ignore[type-arg]
    series_instance_uid = serializers.CharField()
    version_a = serializers.IntegerField()
    version_b = serializers.IntegerField()
    shape = serializers.ListField(child=serializers.IntegerField())


class PairReaderSerializer(serializers.Serializer):  # type: ignore[type-arg]
    username = serializers.CharField()
    read_version = serializers.IntegerField()
    phase = serializers.CharField()


class PairLabelSerializer(serializers.Serializer):  # type: ignore[type-arg]
    value = serializers.IntegerField()
    name = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    color = serializers.ListField(child=serializers.IntegerField(), allow_null=True)


class PairCaseSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    reader_study = serializers.CharField()


class ReadersComparisonSerializer(serializers.Serializer):  # type: ignore[type-arg]
    case = PairCaseSerializer()
    readers = serializers.ListField(child=serializers.CharField(), help_text="readers with a submitted read of the case")
    reader_a = PairReaderSerializer()
    reader_b = PairReaderSerializer()
    labels = PairLabelSerializer(many=True)
    series = PairSeriesSerializer(many=True)
    structures = PairStructureSerializer(many=True)
    levels = PairLevelSerializer(many=True)
    grade_differences = serializers.IntegerField()


class ReadersCompareApi(APIView):
    """Two readers' submitted reads and newest masks of a case: Dice per structure, per-level values and
    deltas (b minus a), grade differences. Adjudicators and leads of the study only; others get 404."""

    @extend_schema(
        operation_id="case_compare_readers",
        parameters=[
            OpenApiParameter("a", str, required=True, description="username of reader A"),
            OpenApiParameter("b", str, required=True, description="username of reader B"),
        ],
        responses={200: ReadersComparisonSerializer, 400: ErrorSerializer, 404: ErrorSerializer},
    )
    def get(self, request: Request, case_id: str) -> Response:
        return Response(
            readers_compare(
                user=request.user,  # type: ignore[arg-type]
                case_id=case_id,
                reader_a=request.query_params.get("a", "").strip(),
                reader_b=request.query_params.get("b", "").strip(),
            )
        )


class ReaderMaskApi(APIView):
    """A reader's newest labelmap of one series of the case: uint8, C order (z, y, x), the reader mask's z order."""

    renderer_classes = [OctetStreamRenderer, JSONRenderer]

    @extend_schema(operation_id="case_reader_mask", responses={(200, "application/octet-stream"): bytes, 404: ErrorSerializer})
    def get(self, request: Request, case_id: str, username: str, series_uid: str) -> HttpResponse:
        version = reader_mask_for_supervisor(user=request.user, case_id=case_id, reader=username, series_instance_uid=series_uid)  # type: ignore[arg-type]
        return _labels_response(segmentation_labels_load(version), etag=str(version.version))

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from spinereview.accounts.models import User
from spinereview.core.errors import ApplicationError, NotFoundError, PermissionDeniedError, PreconditionFailedError
from spinereview.studies import selectors, services
from spinereview.studies.models import AdjudicationTask, CaseSeries, ReaderStudy
from spinereview.studies.protocols import protocol_dump, protocol_load
from spinereview.studies.serializers import (
    AssignmentDetailSerializer,
    AssignmentListSerializer,
    CompareSerializer,
    ErrorSerializer,
    FromAIInputSerializer,
    ReaderSegmentationSerializer,
    ReadSaveInputSerializer,
    ReadSerializer,
    ReadSubmitInputSerializer,
    StaleReadSerializer,
    StaleSegmentationSerializer,
    SubmitRefusedSerializer,
    assignment_detail_payload,
    read_payload,
    segmentation_payload,
)

MAX_LABELMAP_BYTES = 512 * 1024 * 1024


class AssignmentViewSet(viewsets.ReadOnlyModelViewSet):  # type: ignore[type-arg]
    """The signed-in reader's worklist and, per assignment, everything the viewer needs."""

    serializer_class = AssignmentListSerializer

    def get_queryset(self) -> Any:
        return selectors.assignment_list(user=self.request.user)  # type: ignore[arg-type]

    @extend_schema(responses=AssignmentDetailSerializer)
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        assignment = selectors.assignment_get(user=request.user, assignment_id=kwargs["pk"])  # type: ignore[arg-type]
        return Response(assignment_detail_payload(assignment))


def _stale_read(assignment: Any, exc: PreconditionFailedError) -> Response:
    return Response({"detail": exc.message, "current": read_payload(selectors.read_current(assignment=assignment))}, status=412)


class ReadSaveApi(APIView):
    @extend_schema(
        request=ReadSaveInputSerializer,
        responses={200: ReadSerializer, 400: ErrorSerializer, 409: ErrorSerializer, 412: StaleReadSerializer},
        description="Save grades and measurements as a new version of the read. Measurement values are recomputed from points_mm.",
    )
    def put(self, request: Request, pk: str) -> Response:
        assignment = selectors.assignment_for_write(user=request.user, assignment_id=pk)  # type: ignore[arg-type]
        payload = ReadSaveInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        try:
            version = services.read_save(
                assignment=assignment,
                user=request.user,  # type: ignore[arg-type]
                base_version=data["base_version"],
                grades=data["grades"],
                measurements=data["measurements"],
                elapsed_s=data["elapsed_s"],
            )
        except PreconditionFailedError as exc:
            return _stale_read(assignment, exc)
        return Response(read_payload(version))


class ReadSubmitApi(APIView):
    @extend_schema(
        request=ReadSubmitInputSerializer,
        responses={200: ReadSerializer, 400: SubmitRefusedSerializer, 409: ErrorSerializer, 412: StaleReadSerializer},
        description="Lock the current phase's read. In two-phase studies the unaided submit opens the AI-aided read.",
    )
    def post(self, request: Request, pk: str) -> Response:
        assignment = selectors.assignment_for_write(user=request.user, assignment_id=pk)  # type: ignore[arg-type]
        payload = ReadSubmitInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            version = services.read_submit(assignment=assignment, user=request.user, base_version=payload.validated_data["base_version"])  # type: ignore[arg-type]
        except PreconditionFailedError as exc:
            return _stale_read(assignment, exc)
        return Response(read_payload(version))


class OctetStreamRenderer(BaseRenderer):
    """Binary payloads as they are; an error body (a dict) as JSON text."""

    media_type = "application/octet-stream"
    format = "bin"
    charset = None

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Mapping[str, Any] | None = None) -> bytes:
        return data if isinstance(data, bytes) else json.dumps(data).encode()


class OctetStreamParser(BaseParser):
    media_type = "application/octet-stream"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> bytes:  # type: ignore[override]
        data = stream.read(MAX_LABELMAP_BYTES + 1) if stream is not None else b""
        if len(data) > MAX_LABELMAP_BYTES:
            raise ApplicationError("The labelmap is larger than any series here can hold")
        return bytes(data)


def _labels_response(labels: np.ndarray, etag: str | None = None) -> HttpResponse:
    response = HttpResponse(np.ascontiguousarray(labels, dtype=np.uint8).tobytes(), content_type="application/octet-stream")
    response["X-Label-Shape"] = ",".join(str(n) for n in labels.shape)
    if etag is not None:
        response["ETag"] = f'"{etag}"'
        response["Cache-Control"] = "private, no-cache"
    return response


class AISegmentationLabelsApi(APIView):
    """Raw uint8 labels, C order (z, y, x); z follows the segmentation's sop_instance_uids."""

    renderer_classes = [OctetStreamRenderer, JSONRenderer]

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    def get(self, request: Request, pk: str) -> HttpResponse:
        segmentation = selectors.ai_segmentation_get(user=request.user, segmentation_id=pk)  # type: ignore[arg-type]
        response = _labels_response(np.load(Path(settings.MEDIA_ROOT) / segmentation.file_path))
        response["Cache-Control"] = "private, max-age=31536000, immutable"
        return response


def _if_match_version(request: Request) -> int:
    raw = request.headers.get("If-Match", "").strip().strip('"')
    if not raw.isdigit():
        raise ApplicationError('Send the version you edited in the If-Match header ("0" for the first save)')
    return int(raw)


class SegmentationLabelsApi(APIView):
    """The reader's own labelmap of one series: uint8, C order (z, y, x), slices in the series' spatial order."""

    # GET answers with the raw bytes itself; the renderers serve PUT's JSON answer and errors.
    renderer_classes = [JSONRenderer, OctetStreamRenderer]
    parser_classes = [OctetStreamParser]

    @extend_schema(responses={(200, "application/octet-stream"): bytes, 404: ErrorSerializer})
    def get(self, request: Request, pk: str, series_uid: str) -> HttpResponse:
        assignment = selectors.assignment_get(user=request.user, assignment_id=pk)  # type: ignore[arg-type]
        version = selectors.segmentation_latest(assignment=assignment, series_instance_uid=series_uid)
        return _labels_response(services.segmentation_labels_load(version), etag=str(version.version))

    @extend_schema(
        request={"application/octet-stream": bytes},
        parameters=[OpenApiParameter("If-Match", str, OpenApiParameter.HEADER, required=True, description='the version edited, "0" for the first save')],
        responses={200: ReaderSegmentationSerializer, 400: ErrorSerializer, 409: ErrorSerializer, 412: StaleSegmentationSerializer},
    )
    def put(self, request: Request, pk: str, series_uid: str) -> Response:
        assignment = selectors.assignment_for_write(user=request.user, assignment_id=pk)  # type: ignore[arg-type]
        if not isinstance(request.data, bytes):
            raise ApplicationError("Send the labelmap as application/octet-stream")
        version = services.segmentation_save(
            assignment=assignment, user=request.user, series_instance_uid=series_uid, base_version=_if_match_version(request), data=request.data  # type: ignore[arg-type]
        )
        response = Response(segmentation_payload(version))
        response["ETag"] = f'"{version.version}"'
        return response


class SegmentationFromAIApi(APIView):
    @extend_schema(request=FromAIInputSerializer, responses={200: ReaderSegmentationSerializer, 403: ErrorSerializer, 412: StaleSegmentationSerializer})
    def post(self, request: Request, pk: str, series_uid: str) -> Response:
        assignment = selectors.assignment_for_write(user=request.user, assignment_id=pk)  # type: ignore[arg-type]
        payload = FromAIInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        version = services.segmentation_from_ai(
            assignment=assignment, user=request.user, series_instance_uid=series_uid, base_version=payload.validated_data["base_version"]  # type: ignore[arg-type]
        )
        return Response(segmentation_payload(version))


class CompareApi(APIView):
    @extend_schema(responses={200: CompareSerializer, 403: ErrorSerializer})
    def get(self, request: Request, pk: str) -> Response:
        assignment = selectors.assignment_get(user=request.user, assignment_id=pk)  # type: ignore[arg-type]
        return Response(selectors.assignment_compare(assignment=assignment))


# ---- study leads and adjudicators -------------------------------------------------------------------


def _supervised_study(user: Any, slug: str, *, lead_only: bool = False) -> ReaderStudy:
    study = selectors.reader_studies_supervised(user=user).filter(slug=slug).first()
    if study is None:
        raise NotFoundError("No such reader study, or you do not lead or adjudicate it")
    if lead_only and not selectors.user_leads(user=user, reader_study=study):
        raise PermissionDeniedError("Only the study lead may do this")
    return study


class ProtocolTextParser(BaseParser):
    """A protocol file as sent: YAML or JSON text."""

    media_type = "*/*"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> bytes:  # type: ignore[override]
        return bytes(stream.read(1024 * 1024 + 1)) if stream is not None else b""


class ProtocolApi(APIView):
    """The study's protocol as YAML (default) or JSON; a lead may replace it until the first read is saved."""

    parser_classes = [ProtocolTextParser]

    @extend_schema(parameters=[OpenApiParameter("format", str, enum=["yaml", "json"])], responses={(200, "application/yaml"): str, (200, "application/json"): dict})
    def get(self, request: Request, slug: str) -> HttpResponse:
        study = _supervised_study(request.user, slug)
        fmt = request.query_params.get("format", "yaml")
        text = protocol_dump(study.protocol, fmt=fmt)
        response = HttpResponse(text, content_type="application/json" if fmt == "json" else "application/yaml; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{study.slug}-protocol.{fmt}"'
        return response

    @extend_schema(request={"application/yaml": str, "application/json": dict}, responses={200: dict, 400: ErrorSerializer})
    def put(self, request: Request, slug: str) -> Response:
        study = _supervised_study(request.user, slug, lead_only=True)
        text: bytes = request.data  # type: ignore[assignment]  # ProtocolTextParser gives the raw bytes
        if not isinstance(text, bytes):  # no body and no Content-Type: DRF gives an empty QueryDict
            text = b""
        if len(text) > 1024 * 1024:
            raise ApplicationError("A protocol file is at most 1 MiB")
        protocol = protocol_load(text)
        services.reader_study_protocol_update(reader_study=study, protocol=protocol, actor=request.user.username)  # type: ignore[union-attr]
        return Response(study.protocol)


class ProgressApi(APIView):
    @extend_schema(responses={200: dict})
    def get(self, request: Request, slug: str) -> Response:
        study = _supervised_study(request.user, slug)
        return Response({"reader_study": study.slug, "readers": selectors.study_progress(reader_study=study)})


class AssignInputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    readers = serializers.ListField(child=serializers.CharField(), required=False)


class AssignmentsCreateApi(APIView):
    @extend_schema(request=AssignInputSerializer, responses={200: dict})
    def post(self, request: Request, slug: str) -> Response:
        study = _supervised_study(request.user, slug, lead_only=True)
        payload = AssignInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        names = payload.validated_data.get("readers")
        readers = None
        if names is not None:
            found = {u.username: u for u in User.objects.filter(username__in=names)}
            unknown = sorted(set(names) - set(found))
            if unknown:
                raise ApplicationError(f"unknown user(s): {', '.join(unknown)}")
            readers = [found[n] for n in names]
        created = services.assignments_create(reader_study=study, readers=readers, actor=request.user.username)  # type: ignore[union-attr]
        return Response({"created": len(created), "seed": study.randomisation_seed})


class WashoutInputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    fraction = serializers.FloatField()
    interval_days = serializers.FloatField()
    seed = serializers.IntegerField()


class WashoutApi(APIView):
    @extend_schema(request=WashoutInputSerializer, responses={200: dict})
    def post(self, request: Request, slug: str) -> Response:
        study = _supervised_study(request.user, slug, lead_only=True)
        payload = WashoutInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        created = services.washout_assign(reader_study=study, actor=request.user.username, **payload.validated_data)  # type: ignore[union-attr]
        return Response({"created": [{"reader": a.reader.username, "case": a.case.label, "available_from": a.available_from} for a in created]})


def _task_payload(task: AdjudicationTask) -> dict[str, Any]:
    return {
        "id": str(task.pk),
        "case_id": str(task.case_id),
        "case": task.case.label,
        "level": task.level,
        "item": task.item,
        "reason": task.reason,
        "status": task.status,
        "resolved_by": task.resolved_by.username if task.resolved_by else None,
    }


class AdjudicationTasksApi(APIView):
    """GET lists the study's adjudication tasks; POST compares the submitted reads and opens new ones."""

    @extend_schema(responses={200: dict})
    def get(self, request: Request, slug: str) -> Response:
        study = _supervised_study(request.user, slug)
        tasks = AdjudicationTask.objects.filter(case__reader_study=study).select_related("case", "resolved_by").order_by("status", "case__label", "level", "item")
        return Response({"tasks": [_task_payload(t) for t in tasks]})

    @extend_schema(request=None, responses={200: dict})
    def post(self, request: Request, slug: str) -> Response:
        study = _supervised_study(request.user, slug)
        opened = services.adjudication_tasks_open(reader_study=study, actor=request.user.username)  # type: ignore[union-attr]
        return Response({"opened": [_task_payload(t) for t in opened]})


class CaseReadsApi(APIView):
    """Every reader's submitted reads of a case (read-only), and the references: adjudicators and leads."""

    @extend_schema(responses={200: dict})
    def get(self, request: Request, case_id: str) -> Response:
        case, reads = selectors.case_reads_for_supervisor(user=request.user, case_id=case_id)  # type: ignore[arg-type]
        majority, undecided = services.majority_grades(case=case)
        references = [
            {"source": r.source, "version": r.version, "grades": r.grades, "created_by": r.created_by.username if r.created_by else None, "note": r.note}
            for r in case.reference_reads.select_related("created_by").order_by("source", "-version")
        ]
        return Response(
            {
                "case": {"id": str(case.pk), "label": case.label, "reader_study": case.reader_study.slug},
                "protocol": case.reader_study.protocol,
                "reads": [read_payload(v) | {"reader": v.assignment.reader.username, "kind": v.assignment.kind} for v in reads],
                "majority": {"grades": majority, "undecided": undecided},
                "references": references,
            }
        )


class ReferenceInputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    grades = serializers.ListField(child=serializers.DictField())
    note = serializers.CharField(required=False, allow_blank=True, default="")


class ReferenceReadApi(APIView):
    @extend_schema(request=ReferenceInputSerializer, responses={200: dict, 400: ErrorSerializer, 403: ErrorSerializer})
    def post(self, request: Request, case_id: str) -> Response:
        case, _ = selectors.case_reads_for_supervisor(user=request.user, case_id=case_id)  # type: ignore[arg-type]
        payload = ReferenceInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        reference = services.reference_read_record(case=case, user=request.user, **payload.validated_data)  # type: ignore[arg-type]
        return Response({"source": reference.source, "version": reference.version, "grades": reference.grades})


class ConsensusMaskApi(APIView):
    renderer_classes = [OctetStreamRenderer, JSONRenderer]

    @extend_schema(parameters=[OpenApiParameter("method", str, enum=["staple", "majority"])], responses={(200, "application/octet-stream"): bytes, 400: ErrorSerializer})
    def get(self, request: Request, case_id: str, series_uid: str) -> HttpResponse:
        case, _ = selectors.case_reads_for_supervisor(user=request.user, case_id=case_id)  # type: ignore[arg-type]
        labels, readers = services.consensus_mask(case=case, series_instance_uid=series_uid, method=request.query_params.get("method", "staple"))
        response = _labels_response(labels)
        response["X-Consensus-Readers"] = ",".join(readers)
        return response


class CaseSeriesSerializer(serializers.Serializer):  # type: ignore[type-arg]
    series_instance_uid = serializers.CharField()
    series_number = serializers.IntegerField(allow_null=True)
    description = serializers.CharField()
    modality = serializers.CharField()
    num_instances = serializers.IntegerField()
    orientation = serializers.CharField(allow_null=True)
    weighting = serializers.CharField(allow_null=True)
    role = serializers.ChoiceField(choices=CaseSeries.Role.choices)
    role_label = serializers.CharField()
    suggested_role = serializers.ChoiceField(choices=CaseSeries.Role.choices)


class CaseSeriesRolesInputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    roles = serializers.DictField(child=serializers.CharField(), allow_empty=False, help_text="SeriesInstanceUID → role")


class CaseSeriesApi(APIView):
    """A case's series and their hanging roles: leads and adjudicators read them, leads change them."""

    @extend_schema(responses={200: CaseSeriesSerializer(many=True), 404: ErrorSerializer})
    def get(self, request: Request, case_id: str) -> Response:
        case = selectors.case_for_supervisor(user=request.user, case_id=case_id)  # type: ignore[arg-type]
        return Response(CaseSeriesSerializer(selectors.case_series_list(case=case), many=True).data)

    @extend_schema(request=CaseSeriesRolesInputSerializer, responses={200: CaseSeriesSerializer(many=True), 400: ErrorSerializer, 403: ErrorSerializer, 404: ErrorSerializer})
    def put(self, request: Request, case_id: str) -> Response:
        case = selectors.case_for_supervisor(user=request.user, case_id=case_id)  # type: ignore[arg-type]
        if not selectors.user_leads(user=request.user, reader_study=case.reader_study):  # type: ignore[arg-type]
            raise PermissionDeniedError("Only the study lead may change series roles")
        payload = CaseSeriesRolesInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        services.case_series_roles_set(case=case, roles=payload.validated_data["roles"], actor=request.user.username)  # type: ignore[union-attr]
        return Response(CaseSeriesSerializer(selectors.case_series_list(case=case), many=True).data)

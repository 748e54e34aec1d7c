from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import viewsets
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from spinereview.core.errors import PreconditionFailedError
from spinereview.studies import selectors, services
from spinereview.studies.serializers import (
    AssignmentDetailSerializer,
    AssignmentListSerializer,
    ReadSaveInputSerializer,
    ReadSerializer,
    ReadSubmitInputSerializer,
    assignment_detail_payload,
    read_payload,
)


class AssignmentViewSet(viewsets.ReadOnlyModelViewSet):  # type: ignore[type-arg]
    """The signed-in reader's worklist and, per assignment, everything the viewer needs."""

    serializer_class = AssignmentListSerializer

    def get_queryset(self) -> Any:
        return selectors.assignment_list(user=self.request.user)  # type: ignore[arg-type]

    @extend_schema(responses=AssignmentDetailSerializer)
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        assignment = selectors.assignment_get(user=request.user, assignment_id=kwargs["pk"])  # type: ignore[arg-type]
        return Response(assignment_detail_payload(assignment))


class ReadSaveApi(APIView):
    @extend_schema(
        request=ReadSaveInputSerializer,
        responses={200: ReadSerializer, 400: OpenApiResponse(description="invalid grades"), 409: OpenApiResponse(description="read submitted"), 412: OpenApiResponse(description="stale base_version; body has current_version and current")},
    )
    def put(self, request: Request, pk: str) -> Response:
        assignment = selectors.assignment_get(user=request.user, assignment_id=pk)  # type: ignore[arg-type]
        payload = ReadSaveInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            version = services.read_save(
                assignment=assignment, user=request.user, base_version=payload.validated_data["base_version"], grades=payload.validated_data["grades"]  # type: ignore[arg-type]
            )
        except PreconditionFailedError as exc:
            return Response({"detail": exc.message, "current": read_payload(selectors.read_current(assignment=assignment))}, status=412)
        return Response(read_payload(version))


class ReadSubmitApi(APIView):
    @extend_schema(request=ReadSubmitInputSerializer, responses={200: ReadSerializer})
    def post(self, request: Request, pk: str) -> Response:
        assignment = selectors.assignment_get(user=request.user, assignment_id=pk)  # type: ignore[arg-type]
        payload = ReadSubmitInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            version = services.read_submit(assignment=assignment, user=request.user, base_version=payload.validated_data["base_version"])  # type: ignore[arg-type]
        except PreconditionFailedError as exc:
            return Response({"detail": exc.message, "current": read_payload(selectors.read_current(assignment=assignment))}, status=412)
        return Response(read_payload(version))


class OctetStreamRenderer(BaseRenderer):
    """Binary payloads as they are; an error body (a dict) as JSON text."""

    media_type = "application/octet-stream"
    format = "bin"
    charset = None

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Mapping[str, Any] | None = None) -> bytes:
        return data if isinstance(data, bytes) else json.dumps(data).encode()


class AISegmentationLabelsApi(APIView):
    """Raw uint8 labels, C order (z, y, x); z follows the segmentation's sop_instance_uids."""

    renderer_classes = [OctetStreamRenderer, JSONRenderer]

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    def get(self, request: Request, pk: str) -> HttpResponse:
        segmentation = selectors.ai_segmentation_get(user=request.user, segmentation_id=pk)  # type: ignore[arg-type]
        labels = np.load(Path(settings.MEDIA_ROOT) / segmentation.file_path)
        response = HttpResponse(np.ascontiguousarray(labels, dtype=np.uint8).tobytes(), content_type="application/octet-stream")
        response["X-Label-Shape"] = ",".join(str(n) for n in labels.shape)
        response["Cache-Control"] = "private, max-age=31536000, immutable"
        return response

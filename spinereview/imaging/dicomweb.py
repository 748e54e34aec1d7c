"""DICOMweb (PS3.18) endpoints used by the viewer: WADO-RS series metadata and frames."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

import numpy as np
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from spinereview.core.errors import NotFoundError
from spinereview.imaging import selectors
from spinereview.imaging.models import DicomInstance

EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
_IMMUTABLE = "private, max-age=31536000, immutable"

View = Callable[..., HttpResponse]


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"detail": message}, status=status)


def dicomweb_view(view: View) -> View:
    """Session or token authentication, and per-study access, for every DICOMweb endpoint."""

    @wraps(view)
    def wrapper(request: HttpRequest, study_uid: str, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if not user.is_authenticated:
            try:
                authenticated = TokenAuthentication().authenticate(request)  # type: ignore[arg-type]
            except AuthenticationFailed as exc:
                return _error(401, str(exc.detail))
            if authenticated is None:
                return _error(401, "Authentication required (session or 'Authorization: Token <key>')")
            user = authenticated[0]
        if not selectors.dicom_study_visible_to(user=user, study_instance_uid=study_uid):  # type: ignore[arg-type]
            return _error(404, "No such study, or you may not see it")
        try:
            return view(request, study_uid, *args, **kwargs)
        except NotFoundError as exc:
            return _error(404, exc.message)

    return wrapper


@require_GET
@dicomweb_view
def series_metadata(request: HttpRequest, study_uid: str, series_uid: str) -> HttpResponse:
    series = selectors.series_get(study_instance_uid=study_uid, series_instance_uid=series_uid)
    base = request.build_absolute_uri(f"/dicomweb/studies/{study_uid}/series/{series_uid}/instances/")
    payload = []
    for instance in selectors.series_instances(series=series):
        item = dict(instance.dicom_json)
        item["7FE00010"] = {"vr": "OW", "BulkDataURI": f"{base}{instance.sop_instance_uid}/frames/1"}
        payload.append(item)
    return JsonResponse(payload, safe=False, content_type="application/dicom+json")


def _frame_bytes(instance: DicomInstance, frame_numbers: list[int]) -> list[bytes]:
    dataset = selectors.instance_dataset(instance)
    pixels = dataset.pixel_array
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    if frames == 1:
        pixels = pixels[np.newaxis]
    out = []
    for number in frame_numbers:
        if not 1 <= number <= frames:
            raise NotFoundError(f"Frame {number} does not exist; the instance has {frames} frame(s)")
        frame = pixels[number - 1]
        out.append(frame.astype(frame.dtype.newbyteorder("<"), copy=False).tobytes())
    return out


@require_GET
@dicomweb_view
def instance_frames(request: HttpRequest, study_uid: str, series_uid: str, sop_uid: str, frames: str) -> HttpResponse:
    series = selectors.series_get(study_instance_uid=study_uid, series_instance_uid=series_uid)
    try:
        instance = series.instances.get(sop_instance_uid=sop_uid)
    except DicomInstance.DoesNotExist:
        return _error(404, "No such instance in this series")
    try:
        numbers = [int(part) for part in frames.split(",")]
    except ValueError:
        return _error(400, f"Frame list {frames!r} must be comma-separated frame numbers")
    accept = request.headers.get("Accept", "*/*")
    if "multipart/related" not in accept and "*/*" not in accept and "application/octet-stream" not in accept:
        return _error(406, "Frames are served as multipart/related; type=\"application/octet-stream\"")
    parts = _frame_bytes(instance, numbers)
    boundary = uuid.uuid4().hex
    body = bytearray()
    for part in parts:
        body += f"--{boundary}\r\nContent-Type: application/octet-stream; transfer-syntax={EXPLICIT_VR_LITTLE_ENDIAN}\r\n\r\n".encode()
        body += part
        body += b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    response = HttpResponse(
        bytes(body),
        content_type=f'multipart/related; type="application/octet-stream"; transfer-syntax={EXPLICIT_VR_LITTLE_ENDIAN}; boundary={boundary}',
    )
    response["Cache-Control"] = _IMMUTABLE
    return response

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from spinereview.core.errors import PermissionDeniedError
from spinereview.imaging.services import ImportRejectedError, ImportSource, is_nifti_name, nifti_sources, sources_from_zip
from spinereview.studies.models import ReaderStudy
from spinereview.studies.selectors import reader_studies_supervised
from spinereview.studies.services import cases_import


class DicomUploadInputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    files = serializers.ListField(child=serializers.FileField(), allow_empty=False)
    reader_study = serializers.SlugField(required=False)
    # For NIfTI files whose affine is a placeholder: axis codes (e.g. IPR) and voxel sizes "1,1,1" (mm).
    nifti_orientation = serializers.RegexField(r"^[RLAPSIrlapsi]{3}$", required=False)
    nifti_spacing_mm = serializers.CharField(required=False)

    def validate_nifti_spacing_mm(self, value: str) -> tuple[float, float, float]:
        try:
            parts = [float(v) for v in value.split(",")]
        except ValueError:
            parts = []
        if len(parts) != 3 or not all(0 < v < 1000 for v in parts):
            raise serializers.ValidationError("three voxel sizes in mm, comma-separated, e.g. 1,1,1")
        return parts[0], parts[1], parts[2]


class DicomUploadApi(APIView):
    """Upload DICOM files, .zip archives of them, or NIfTI volumes (.nii, .nii.gz; each becomes one MR series).
    All or nothing: one bad file refuses the batch."""

    parser_classes = [MultiPartParser]

    @extend_schema(request={"multipart/form-data": DicomUploadInputSerializer}, responses={201: dict, 400: OpenApiResponse(description="refused; 'errors' lists each file")})
    def post(self, request: Request) -> Response:
        data: dict[str, Any] = {"files": request.FILES.getlist("files")}
        for field in ("reader_study", "nifti_orientation", "nifti_spacing_mm"):
            if request.data.get(field):
                data[field] = request.data[field]
        payload = DicomUploadInputSerializer(data=data)
        payload.is_valid(raise_exception=True)
        reader_study: ReaderStudy | None = None
        supervised = reader_studies_supervised(user=request.user)  # type: ignore[arg-type]
        if "reader_study" in payload.validated_data:
            reader_study = supervised.filter(slug=payload.validated_data["reader_study"]).first()
            if reader_study is None:
                raise PermissionDeniedError("You do not lead that reader study")
        elif not request.user.is_staff:
            raise PermissionDeniedError("Name the reader study you lead, or ask an administrator")
        orientation = payload.validated_data.get("nifti_orientation")
        spacing_mm = payload.validated_data.get("nifti_spacing_mm")
        sources: list[ImportSource] = []
        try:
            for upload in payload.validated_data["files"]:
                content = upload.read()
                if upload.name.lower().endswith(".zip"):
                    sources.extend(sources_from_zip(content, name=upload.name))
                elif is_nifti_name(upload.name):
                    sources.extend(nifti_sources(image=ImportSource(name=upload.name, data=content), orientation=orientation, spacing_mm=spacing_mm))
                else:
                    sources.append(ImportSource(name=upload.name, data=content))
            result = cases_import(sources=sources, reader_study=reader_study)
        except ImportRejectedError as exc:
            return Response({"detail": exc.message, **exc.extra}, status=400)
        return Response(
            {
                "studies": list(result.study_instance_uids),
                "instances_created": result.instances_created,
                "instances_skipped": result.instances_skipped,
                "new_series": len(result.new_series_ids),
            },
            status=201,
        )

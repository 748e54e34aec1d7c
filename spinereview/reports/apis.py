"""Reports API: the agreement summary, the full statistics report, streamed exports. Leads, adjudicators
and staff only -- every view resolves the study through ``reader_study_for_reports``, so a reader (who
may not see other readers' grades) gets 404 for all of them."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from spinereview.reports.dicom_exports import (
    ai_segmentation_dicom,
    ai_segmentation_get,
    labels_nifti,
    measurement_report_dicom,
    read_version_get,
    reader_segmentation_dicom,
    reader_segmentation_get,
)
from spinereview.reports.exports import READ_COLUMNS, STATISTICS_COLUMNS, csv_stream, read_rows, reads_workbook, statistics_rows
from spinereview.reports.freeze import data_freeze_archive, data_freeze_as_dict, data_freeze_create, data_freeze_get
from spinereview.reports.models import DataFreeze
from spinereview.reports.pdf import report_pdf
from spinereview.reports.selectors import agreement_summary, continuous_values, reader_study_for_reports
from spinereview.reports.services import agreement_report_compute
from spinereview.studies.services import segmentation_labels_load

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class AgreementApi(APIView):
    """Quadratic-weighted kappa per rater pair (readers and AI) and Dice of AI masks vs reference.

    Leads, adjudicators and staff only: readers never see other readers' grades.
    """

    @extend_schema(responses={200: dict})
    def get(self, request: Request, slug: str) -> Response:
        reader_study = reader_study_for_reports(user=request.user, slug=slug)  # type: ignore[arg-type]
        return Response(agreement_summary(reader_study=reader_study).as_dict())


class _FileApi(APIView):
    """A view whose success response is a file: any Accept header is served (errors stay JSON)."""

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        return super().perform_content_negotiation(request, force=True)


def _attachment(response: HttpResponse | StreamingHttpResponse | FileResponse, filename: str) -> Any:
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


class StatisticsJsonApi(_FileApi):
    """Every statistic of the study (see spinereview.reports.analysis), from the cached report for the
    current reads (computed now if the cache is stale)."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, slug: str) -> HttpResponse:
        reader_study = reader_study_for_reports(user=request.user, slug=slug)  # type: ignore[arg-type]
        cached = agreement_report_compute(reader_study=reader_study)
        body = {"reader_study": reader_study.slug, "inputs_sha256": cached.inputs_sha256, "software_version": cached.software_version, "computed": cached.created.isoformat(), "report": cached.report}
        response = HttpResponse(json.dumps(body, sort_keys=True, allow_nan=False), content_type="application/json")
        return _attachment(response, f"{reader_study.slug}-statistics.json")


class StatisticsCsvApi(_FileApi):
    """The statistics as one long table (section, phase, condition, level, raters, statistic, estimate, CI, n)."""

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request: Request, slug: str) -> StreamingHttpResponse:
        reader_study = reader_study_for_reports(user=request.user, slug=slug)  # type: ignore[arg-type]
        report = agreement_report_compute(reader_study=reader_study).report
        response = StreamingHttpResponse(csv_stream(STATISTICS_COLUMNS, statistics_rows(report)), content_type="text/csv; charset=utf-8")
        return _attachment(response, f"{reader_study.slug}-statistics.csv")  # type: ignore[no-any-return]


class ReadsCsvApi(_FileApi):
    """Every submitted read as one tidy long-format CSV, streamed (columns: spinereview.reports.exports)."""

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request: Request, slug: str) -> StreamingHttpResponse:
        reader_study = reader_study_for_reports(user=request.user, slug=slug)  # type: ignore[arg-type]
        response = StreamingHttpResponse(csv_stream(READ_COLUMNS, read_rows(reader_study=reader_study)), content_type="text/csv; charset=utf-8")
        return _attachment(response, f"{reader_study.slug}-reads.csv")  # type: ignore[no-any-return]


class ReadsXlsxApi(_FileApi):
    """The reads, reference and AI tables as one XLSX workbook (written row by row to a temporary file,
    then streamed)."""

    @extend_schema(responses={(200, XLSX): OpenApiTypes.BINARY})
    def get(self, request: Request, slug: str) -> FileResponse:
        reader_study = reader_study_for_reports(user=request.user, slug=slug)  # type: ignore[arg-type]
        spool = tempfile.TemporaryFile()  # noqa: SIM115 - FileResponse closes it
        reads_workbook(reader_study, spool)
        spool.seek(0)
        return _attachment(FileResponse(spool, content_type=XLSX), f"{reader_study.slug}-reads.xlsx")  # type: ignore[no-any-return]


class FreezeInputSerializer(serializers.Serializer[Any]):
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


class FreezesApi(APIView):
    """GET: the study's data freezes. POST: freeze the study's reads, reference and statistics now (lead)."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, slug: str) -> Response:
        reader_study = reader_study_for_reports(user=request.user, slug=slug)  # type: ignore[arg-type]
        freezes = DataFreeze.objects.filter(reader_study=reader_study).select_related("created_by", "reader_study").order_by("version")
        return Response([data_freeze_as_dict(f) for f in freezes])

    @extend_schema(request=FreezeInputSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request, slug: str) -> Response:
        reader_study = reader_study_for_reports(user=request.user, slug=slug)  # type: ignore[arg-type]
        payload = FreezeInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        freeze = data_freeze_create(reader_study=reader_study, user=request.user, note=payload.validated_data["note"])  # type: ignore[arg-type]
        return Response(data_freeze_as_dict(freeze), status=status.HTTP_201_CREATED)


class FreezeArchiveApi(_FileApi):
    """The archive of one freeze, byte for byte as written on the day of the freeze."""

    @extend_schema(responses={(200, "application/zip"): OpenApiTypes.BINARY})
    def get(self, request: Request, slug: str, version: int) -> FileResponse:
        reader_study = reader_study_for_reports(user=request.user, slug=slug)  # type: ignore[arg-type]
        freeze = data_freeze_get(reader_study=reader_study, version=version)
        path = data_freeze_archive(freeze=freeze)
        response = FileResponse(path.open("rb"), content_type="application/zip")
        response["ETag"] = f'"{freeze.archive_sha256}"'
        return _attachment(response, path.name)  # type: ignore[no-any-return]


class ReportPdfApi(_FileApi):
    """The statistics report as a PDF: tables, heatmap, forest plots, Bland-Altman plots."""

    @extend_schema(responses={(200, "application/pdf"): OpenApiTypes.BINARY})
    def get(self, request: Request, slug: str) -> HttpResponse:
        reader_study = reader_study_for_reports(user=request.user, slug=slug)  # type: ignore[arg-type]
        cached = agreement_report_compute(reader_study=reader_study)
        body = report_pdf(
            cached.report, continuous_values(reader_study=reader_study), title=reader_study.name, software_version=cached.software_version, fingerprint=cached.inputs_sha256
        )
        return _attachment(HttpResponse(body, content_type="application/pdf"), f"{reader_study.slug}-report.pdf")  # type: ignore[no-any-return]


DICOM = "application/dicom"
NIFTI = "application/gzip"


class ReaderSegmentationDicomApi(_FileApi):
    """One reader mask version as DICOM SEG (SegmentAlgorithmType MANUAL, the reader as creator)."""

    @extend_schema(responses={(200, DICOM): OpenApiTypes.BINARY})
    def get(self, request: Request, slug: str, pk: str) -> HttpResponse:
        reader_study = reader_study_for_reports(user=request.user, slug=slug)  # type: ignore[arg-type]
        version = reader_segmentation_get(reader_study=reader_study, segmentation_id=pk)
        body = reader_segmentation_dicom(version=version, protocol=reader_study.protocol)
        return _attachment(HttpResponse(body, content_type=DICOM), f"seg-{version.assignment.reader.username}-v{version.version}.dcm")  # type: ignore[no-any-return]


class ReaderSegmentationNiftiApi(_FileApi):
    """One reader mask version as a NIfTI-1 label map (gzip), protocol label values kept."""

    @extend_schema(responses={(200, NIFTI): OpenApiTypes.BINARY})
    def get(self, request: Request, slug: str, pk: str) -> HttpResponse:
        reader_study = reader_study_for_reports(user=request.user, slug=slug)  # type: ignore[arg-type]
        version = reader_segmentation_get(reader_study=reader_study, segmentation_id=pk)
        body = labels_nifti(labels=segmentation_labels_load(version), series=version.series)
        return _attachment(HttpResponse(body, content_type=NIFTI), f"labels-{version.assignment.reader.username}-v{version.version}.nii.gz")  # type: ignore[no-any-return]


class AISegmentationDicomApi(_FileApi):
    """An AI mask as DICOM SEG (SegmentAlgorithmType AUTOMATIC with the model's name and version)."""

    @extend_schema(responses={(200, DICOM): OpenApiTypes.BINARY})
    def get(self, request: Request, slug: str, pk: str) -> HttpResponse:
        reader_study = reader_study_for_reports(user=request.user, slug=slug)  # type: ignore[arg-type]
        segmentation = ai_segmentation_get(reader_study=reader_study, segmentation_id=pk)
        return _attachment(HttpResponse(ai_segmentation_dicom(segmentation=segmentation), content_type=DICOM), f"seg-ai-{segmentation.pk}.dcm")  # type: ignore[no-any-return]


class AISegmentationNiftiApi(_FileApi):
    @extend_schema(responses={(200, NIFTI): OpenApiTypes.BINARY})
    def get(self, request: Request, slug: str, pk: str) -> HttpResponse:
        reader_study = reader_study_for_reports(user=request.user, slug=slug)  # type: ignore[arg-type]
        segmentation = ai_segmentation_get(reader_study=reader_study, segmentation_id=pk)
        labels = np.load(Path(settings.MEDIA_ROOT) / segmentation.file_path)
        return _attachment(HttpResponse(labels_nifti(labels=labels, series=segmentation.series), content_type=NIFTI), f"labels-ai-{segmentation.pk}.nii.gz")  # type: ignore[no-any-return]


class ReadMeasurementReportApi(_FileApi):
    """A submitted read's measurements as DICOM SR (TID 1500 Measurement Report)."""

    @extend_schema(responses={(200, DICOM): OpenApiTypes.BINARY})
    def get(self, request: Request, slug: str, pk: str) -> HttpResponse:
        reader_study = reader_study_for_reports(user=request.user, slug=slug)  # type: ignore[arg-type]
        read = read_version_get(reader_study=reader_study, read_version_id=pk)
        body = measurement_report_dicom(read=read)
        return _attachment(HttpResponse(body, content_type=DICOM), f"sr-{read.assignment.reader.username}-v{read.version}.dcm")  # type: ignore[no-any-return]

"""The reading and study-management API (mounted under /api/v1/)."""

from django.urls import URLPattern, URLResolver, include, path
from rest_framework.routers import DefaultRouter

from spinereview.studies import apis, reader_compare_apis

router = DefaultRouter()
router.register("assignments", apis.AssignmentViewSet, basename="assignment")

UID = r"[0-9.]{1,64}"

urlpatterns: list[URLPattern | URLResolver] = [
    path("", include(router.urls)),
    path("assignments/<uuid:pk>/read/", apis.ReadSaveApi.as_view(), name="read-save"),
    path("assignments/<uuid:pk>/read/submit/", apis.ReadSubmitApi.as_view(), name="read-submit"),
    path("assignments/<uuid:pk>/segmentations/<str:series_uid>/labels", apis.SegmentationLabelsApi.as_view(), name="segmentation-labels"),
    path("assignments/<uuid:pk>/segmentations/<str:series_uid>/from-ai", apis.SegmentationFromAIApi.as_view(), name="segmentation-from-ai"),
    path("assignments/<uuid:pk>/compare/", apis.CompareApi.as_view(), name="compare"),
    path("ai-segmentations/<uuid:pk>/labels", apis.AISegmentationLabelsApi.as_view(), name="ai-segmentation-labels"),
    path("reader-studies/<slug:slug>/protocol/", apis.ProtocolApi.as_view(), name="protocol"),
    path("reader-studies/<slug:slug>/progress/", apis.ProgressApi.as_view(), name="progress"),
    path("reader-studies/<slug:slug>/assignments/", apis.AssignmentsCreateApi.as_view(), name="assignments-create"),
    path("reader-studies/<slug:slug>/washout/", apis.WashoutApi.as_view(), name="washout"),
    path("reader-studies/<slug:slug>/adjudication/", apis.AdjudicationTasksApi.as_view(), name="adjudication-tasks"),
    path("cases/<uuid:case_id>/reads/", apis.CaseReadsApi.as_view(), name="case-reads"),
    path("cases/<uuid:case_id>/compare-readers/", reader_compare_apis.ReadersCompareApi.as_view(), name="case-compare-readers"),
    path(
        "cases/<uuid:case_id>/readers/<str:username>/segmentations/<str:series_uid>/labels",
        reader_compare_apis.ReaderMaskApi.as_view(),
        name="case-reader-mask",
    ),
    path("cases/<uuid:case_id>/reference/", apis.ReferenceReadApi.as_view(), name="reference-read"),
    path("cases/<uuid:case_id>/series/", apis.CaseSeriesApi.as_view(), name="case-series"),
    path("cases/<uuid:case_id>/consensus/<str:series_uid>/labels", apis.ConsensusMaskApi.as_view(), name="consensus-mask"),
]

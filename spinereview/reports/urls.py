"""Reports routes: `api_urlpatterns` under /api/v1/, `urlpatterns` for the pages."""

from django.urls import URLPattern, URLResolver, path

from spinereview.reports import apis, views

api_urlpatterns: list[URLPattern | URLResolver] = [
    path("reader-studies/<slug:slug>/agreement/", apis.AgreementApi.as_view(), name="agreement"),
    path("reader-studies/<slug:slug>/statistics.json", apis.StatisticsJsonApi.as_view(), name="statistics-json"),
    path("reader-studies/<slug:slug>/statistics.csv", apis.StatisticsCsvApi.as_view(), name="statistics-csv"),
    path("reader-studies/<slug:slug>/reads.csv", apis.ReadsCsvApi.as_view(), name="reads-csv"),
    path("reader-studies/<slug:slug>/reads.xlsx", apis.ReadsXlsxApi.as_view(), name="reads-xlsx"),
    path("reader-studies/<slug:slug>/report.pdf", apis.ReportPdfApi.as_view(), name="report-pdf"),
    path("reader-studies/<slug:slug>/segmentations/<uuid:pk>/seg.dcm", apis.ReaderSegmentationDicomApi.as_view(), name="segmentation-seg"),
    path("reader-studies/<slug:slug>/segmentations/<uuid:pk>/labels.nii.gz", apis.ReaderSegmentationNiftiApi.as_view(), name="segmentation-nifti"),
    path("reader-studies/<slug:slug>/ai-segmentations/<uuid:pk>/seg.dcm", apis.AISegmentationDicomApi.as_view(), name="ai-segmentation-seg"),
    path("reader-studies/<slug:slug>/ai-segmentations/<uuid:pk>/labels.nii.gz", apis.AISegmentationNiftiApi.as_view(), name="ai-segmentation-nifti"),
    path("reader-studies/<slug:slug>/reads/<uuid:pk>/sr.dcm", apis.ReadMeasurementReportApi.as_view(), name="read-sr"),
    path("reader-studies/<slug:slug>/freezes/", apis.FreezesApi.as_view(), name="freezes"),
    path("reader-studies/<slug:slug>/freezes/<int:version>/archive.zip", apis.FreezeArchiveApi.as_view(), name="freeze-archive"),
]

urlpatterns: list[URLPattern | URLResolver] = [
    path("studies/<slug:slug>/agreement/", views.agreement_page, name="agreement-page"),
    path("studies/<slug:slug>/reports/", views.dashboard_page, name="reports-dashboard"),
]

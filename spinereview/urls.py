from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import URLPattern, URLResolver, include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from spinereview.accounts.views import ThrottledLoginView, api_token_page
from spinereview.ai import urls as ai_urls
from spinereview.core.views import healthz
from spinereview.imaging import dicomweb
from spinereview.imaging.apis import DicomUploadApi
from spinereview.reports import urls as reports_urls
from spinereview.studies.reader_compare_views import readers_compare_page
from spinereview.studies.views import (
    adjudication_page,
    case_page,
    home,
    reading_page,
    study_create_page,
    study_members_page,
    study_overview_page,
    study_protocol_page,
    study_upload_page,
)

UID = r"[0-9.]{1,64}"

api_v1: list[URLPattern | URLResolver] = [
    path("", include("spinereview.studies.urls")),
    path("", include(reports_urls.api_urlpatterns)),
    path("imaging/upload/", DicomUploadApi.as_view(), name="dicom-upload"),
    path("ai/", include(ai_urls.api_urlpatterns)),
]

urlpatterns = [
    path("", home, name="home"),
    path("reading/<uuid:assignment_id>/", reading_page, name="reading"),
    path("studies/new/", study_create_page, name="study-create"),
    path("studies/<slug:slug>/", study_overview_page, name="study-overview"),
    path("studies/<slug:slug>/protocol/", study_protocol_page, name="study-protocol"),
    path("studies/<slug:slug>/members/", study_members_page, name="study-members"),
    path("studies/<slug:slug>/upload/", study_upload_page, name="study-upload"),
    path("studies/<slug:slug>/cases/<uuid:case_id>/", case_page, name="case"),
    path("studies/<slug:slug>/cases/<uuid:case_id>/adjudicate/", adjudication_page, name="adjudicate"),
    path("studies/<slug:slug>/cases/<uuid:case_id>/compare-readers/", readers_compare_page, name="compare-readers"),
    path("", include(reports_urls.urlpatterns)),
    path("ai/", include(ai_urls.urlpatterns)),
    path("accounts/login/", ThrottledLoginView.as_view(), name="login"),
    path("accounts/token/", api_token_page, name="api-token"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    re_path(rf"^dicomweb/studies/(?P<study_uid>{UID})/series/(?P<series_uid>{UID})/metadata$", dicomweb.series_metadata),
    re_path(
        rf"^dicomweb/studies/(?P<study_uid>{UID})/series/(?P<series_uid>{UID})/instances/(?P<sop_uid>{UID})/frames/(?P<frames>[0-9,]+)$",
        dicomweb.instance_frames,
    ),
    path("dicomweb/", include("spinereview.imaging.urls")),
]

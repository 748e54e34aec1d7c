"""The AI API (api_urlpatterns, mounted under /api/v1/ai/) and pages (urlpatterns, under /ai/)."""

from django.urls import URLPattern, path

from spinereview.ai import apis, views

api_urlpatterns: list[URLPattern] = [
    path("model-versions/", apis.ModelVersionsApi.as_view(), name="ai-model-versions"),
    path("model-versions/<uuid:pk>/activate/", apis.ModelVersionActivateApi.as_view(), name="ai-model-version-activate"),
    path("reader-studies/<slug:slug>/model/", apis.StudyModelApi.as_view(), name="ai-study-model"),
    path("reader-studies/<slug:slug>/run/", apis.StudyRunApi.as_view(), name="ai-study-run"),
    path("jobs/", apis.InferenceJobsApi.as_view(), name="ai-jobs"),
    path("jobs/<uuid:pk>/", apis.InferenceJobApi.as_view(), name="ai-job"),
    path("jobs/<uuid:pk>/retry/", apis.InferenceJobRetryApi.as_view(), name="ai-job-retry"),
]

urlpatterns: list[URLPattern] = [
    path("", views.models_page, name="ai-models"),
    path("jobs/", views.jobs_page, name="ai-jobs-page"),
]

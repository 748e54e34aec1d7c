"""DICOMweb routes (PS3.18), included at /dicomweb/ by spinereview/urls.py."""

from django.urls import URLPattern, re_path

from spinereview.imaging import dicomweb

UID = r"[0-9.]{1,64}"
STUDY = rf"studies/(?P<study_uid>{UID})"
SERIES = rf"{STUDY}/series/(?P<series_uid>{UID})"
INSTANCE = rf"{SERIES}/instances/(?P<sop_uid>{UID})"

urlpatterns: list[URLPattern] = [
    re_path(r"^studies/?$", dicomweb.studies, name="dicomweb-studies"),
    re_path(r"^series/?$", dicomweb.search_series, name="dicomweb-series"),
    re_path(r"^instances/?$", dicomweb.search_instances, name="dicomweb-instances"),
    re_path(rf"^{STUDY}/?$", dicomweb.study, name="dicomweb-study"),
    re_path(rf"^{STUDY}/metadata$", dicomweb.study_metadata, name="dicomweb-study-metadata"),
    re_path(rf"^{STUDY}/thumbnail$", dicomweb.study_thumbnail, name="dicomweb-study-thumbnail"),
    re_path(rf"^{STUDY}/series/?$", dicomweb.search_series, name="dicomweb-study-series"),
    re_path(rf"^{STUDY}/instances/?$", dicomweb.search_instances, name="dicomweb-study-instances"),
    re_path(rf"^{SERIES}/?$", dicomweb.series_retrieve, name="dicomweb-series-retrieve"),
    re_path(rf"^{SERIES}/metadata$", dicomweb.series_metadata, name="dicomweb-series-metadata"),
    re_path(rf"^{SERIES}/thumbnail$", dicomweb.series_thumbnail, name="dicomweb-series-thumbnail"),
    re_path(rf"^{SERIES}/instances/?$", dicomweb.search_instances, name="dicomweb-series-instances"),
    re_path(rf"^{INSTANCE}/?$", dicomweb.instance_retrieve, name="dicomweb-instance"),
    re_path(rf"^{INSTANCE}/metadata$", dicomweb.instance_metadata, name="dicomweb-instance-metadata"),
    re_path(rf"^{INSTANCE}/rendered$", dicomweb.instance_rendered, name="dicomweb-instance-rendered"),
    re_path(rf"^{INSTANCE}/thumbnail$", dicomweb.instance_thumbnail, name="dicomweb-instance-thumbnail"),
    re_path(rf"^{INSTANCE}/frames/(?P<frames>[0-9,]+)$", dicomweb.instance_frames, name="dicomweb-frames"),
    re_path(rf"^{INSTANCE}/frames/(?P<frames>[0-9]+)/rendered$", dicomweb.instance_rendered, name="dicomweb-frame-rendered"),
]

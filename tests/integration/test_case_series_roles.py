"""Series roles of a case: suggested at import from orientation and weighting, changed by the study
lead in the browser or over the API, all or nothing, audited; bad requests change nothing."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from django.test import Client, override_settings
from rest_framework.test import APIClient

from spinereview.imaging.services import ImportSource
from spinereview.studies.models import AuditEvent, Case, CaseSeries, StudyMembership
from spinereview.studies.selectors import reading_page_preloads, series_role_suggest
from spinereview.studies.serializers import assignment_detail_payload
from spinereview.studies.services import assignment_create, audit_verify, cases_import
from spinereview.studies.services.audit import audit_replay
from tests.dicom_files import mr_slice
from tests.factories import make_membership, make_reader_study, make_user

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

SAGITTAL = [0, 1, 0, 0, 0, -1]
AXIAL = [1, 0, 0, 0, 1, 0]
STUDY_UID = "1.2.7.1"


def _slice(*, series: int, z: int, orientation: list[int], description: str, tr: str | None, te: str | None) -> ImportSource:
    ds = pydicom.dcmread(io.BytesIO(mr_slice(z_mm=float(z), study_uid=STUDY_UID, series_uid=f"{STUDY_UID}.{series}")))
    ds.ImageOrientationPatient = orientation
    ds.ImagePositionPatient = [float(z), 0, 0] if orientation == SAGITTAL else [0, 0, float(z)]
    ds.SeriesNumber = series
    ds.SeriesDescription = description
    if tr is not None and te is not None:
        ds.RepetitionTime, ds.EchoTime = tr, te
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return ImportSource(f"s{series}-{z}.dcm", buffer.getvalue())


SERIES = [
    # series number, orientation, description, TR, TE
    (1, SAGITTAL, "SAG TSE", "520", "12"),  # T1 by timing
    (2, SAGITTAL, "SAG TSE", "3500", "100"),  # T2 by timing
    (3, AXIAL, "t2_tse_tra", None, None),  # T2 by description
    (4, AXIAL, "AX T2 repeat", "4000", "95"),  # a second axial T2
    (5, AXIAL, "ax t1", "600", "9"),  # axial T1: no hanging role
]


@pytest.fixture
def world() -> dict[str, Any]:
    study = make_reader_study()
    users = {name: make_user(username=name) for name in ("lead", "adjudicator", "reader", "outsider")}
    for name, role in [("lead", "lead"), ("adjudicator", "adjudicator"), ("reader", "reader")]:
        make_membership(reader_study=study, user=users[name], role=role)
    sources = [_slice(series=n, z=z, orientation=o, description=d, tr=tr, te=te) for n, o, d, tr, te in SERIES for z in range(2)]
    cases_import(sources=sources, reader_study=study)
    case = Case.objects.get(reader_study=study)
    assignment = assignment_create(case=case, reader=users["reader"])
    uids = {int(cs.series.series_number or 0): cs.series.series_instance_uid for cs in case.case_series.select_related("series")}
    return {"study": study, "users": users, "case": case, "assignment": assignment, "uids": uids}


def _roles(case: Case) -> dict[int, str]:
    return {int(cs.series.series_number or 0): cs.role for cs in case.case_series.select_related("series")}


def _api(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_import_suggests_one_series_per_hanging_role(world: dict[str, Any]) -> None:
    assert _roles(world["case"]) == {1: "sagittal_t1", 2: "sagittal_t2", 3: "axial_t2", 4: "other", 5: "other"}
    # the suggestion itself still sees series 4 as an axial T2: only the duplicate rule demoted it
    series4 = world["case"].case_series.get(series__series_number=4).series
    assert series_role_suggest(series=series4) == "axial_t2"


def test_lead_swaps_the_axial_series_over_the_api(world: dict[str, Any]) -> None:
    case, uids = world["case"], world["uids"]
    response = _api(world["users"]["lead"]).put(f"/api/v1/cases/{case.pk}/series/", {"roles": {uids[3]: "other", uids[4]: "axial_t2"}}, format="json")
    assert response.status_code == 200, response.content
    by_number = {row["series_number"]: row for row in response.json()}
    assert by_number[4]["role"] == "axial_t2" and by_number[4]["weighting"] == "T2" and by_number[4]["orientation"] == "axial"
    assert by_number[3]["role"] == "other" and by_number[3]["suggested_role"] == "axial_t2"
    assert _roles(case)[4] == "axial_t2"
    # the reader's viewer hangs the new series
    payload = assignment_detail_payload(world["assignment"])
    assert [s["series_instance_uid"] for s in payload["case"]["series"] if s["role"] == "axial_t2"] == [uids[4]]
    events = AuditEvent.objects.filter(action="case.series_role", object_id=str(case.pk))
    assert sorted((e.details["series_instance_uid"], e.details["from"], e.details["to"]) for e in events) == sorted(
        [(uids[3], "axial_t2", "other"), (uids[4], "other", "axial_t2")]
    )
    assert events.first().actor == "lead"  # type: ignore[union-attr]
    assert audit_verify().ok
    assert audit_replay().mismatches == ()


@pytest.mark.parametrize(
    ("roles", "message"),
    [
        ({4: "axial_t2"}, "Only one series of a case can be Axial T2"),
        ({1: "sagittal_t2"}, "Only one series of a case can be Sagittal T2"),
        ({4: "coronal_t2"}, "Unknown series role 'coronal_t2'"),
        ({"1.2.3.999": "other"}, "Not a series of case"),
        ({}, "roles"),
    ],
    ids=["duplicate-axial", "duplicate-sagittal", "unknown-role", "foreign-series", "empty"],
)
def test_bad_role_changes_are_refused_and_change_nothing(world: dict[str, Any], roles: dict[Any, str], message: str) -> None:
    case, uids = world["case"], world["uids"]
    before, events = _roles(case), AuditEvent.objects.count()
    body = {"roles": {uids.get(k, k): v for k, v in roles.items()}}
    response = _api(world["users"]["lead"]).put(f"/api/v1/cases/{case.pk}/series/", body, format="json")
    assert response.status_code == 400
    assert message in response.content.decode()
    assert _roles(case) == before and AuditEvent.objects.count() == events


@pytest.mark.parametrize("body", [{"roles": ["a", "b"]}, {"roles": "axial_t2"}, {"role": {}}, []], ids=["list", "string", "missing", "not-an-object"])
def test_malformed_bodies_are_refused(world: dict[str, Any], body: Any) -> None:
    before = _roles(world["case"])
    response = _api(world["users"]["lead"]).put(f"/api/v1/cases/{world['case'].pk}/series/", body, format="json")
    assert response.status_code == 400
    assert _roles(world["case"]) == before


def test_who_may_see_and_change_roles(world: dict[str, Any]) -> None:
    case, uids, users = world["case"], world["uids"], world["users"]
    url = f"/api/v1/cases/{case.pk}/series/"
    body = {"roles": {uids[5]: "axial_t2", uids[3]: "other"}}
    assert _api(users["reader"]).get(url).status_code == 404
    assert _api(users["outsider"]).put(url, body, format="json").status_code == 404
    assert _api(users["adjudicator"]).get(url).status_code == 200
    assert _api(users["adjudicator"]).put(url, body, format="json").status_code == 403
    assert APIClient().get(url).status_code == 403
    assert _api(users["lead"]).get("/api/v1/cases/not-a-uuid/series/").status_code == 404
    assert _roles(case)[5] == "other"


def test_case_page_for_lead_and_adjudicator(world: dict[str, Any]) -> None:
    case, uids, users, study = world["case"], world["uids"], world["users"], world["study"]
    url = f"/studies/{study.slug}/cases/{case.pk}/"
    lead = Client()
    lead.force_login(users["lead"])
    page = lead.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert f'name="role|{uids[4]}"' in html and "AX T2 repeat" in html and "reader" in html
    # an invalid form is refused with the reason; a valid one is saved
    refused = lead.post(url, {f"role|{uids[4]}": "axial_t2"})
    assert refused.status_code == 200 and "Only one series of a case can be Axial T2" in refused.content.decode()
    assert _roles(case)[4] == "other"
    saved = lead.post(url, {f"role|{uids[3]}": "other", f"role|{uids[4]}": "axial_t2"})
    assert saved.status_code == 200 and "2 series role(s) changed." in saved.content.decode()
    assert _roles(case)[4] == "axial_t2"

    adjudicator = Client()
    adjudicator.force_login(users["adjudicator"])
    view = adjudicator.get(url)
    assert view.status_code == 200 and 'name="role|' not in view.content.decode()
    assert adjudicator.post(url, {f"role|{uids[3]}": "axial_t2", f"role|{uids[4]}": "other"}).status_code == 403
    reader = Client()
    reader.force_login(users["reader"])
    assert reader.get(url).status_code == 404
    assert _roles(case)[4] == "axial_t2"
    assert StudyMembership.objects.filter(reader_study=study).count() == 3
    assert CaseSeries.objects.filter(case=case, role="axial_t2").count() == 1


def _viewer_order(series: Any) -> list[str]:
    """The viewer's slice order (frontend/src/viewer/geometry.ts): along row x column cosines of the slices."""
    instances = list(series.instances.all())
    iop = np.array(instances[0].dicom_json["00200037"]["Value"], dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    return [i.sop_instance_uid for i in sorted(instances, key=lambda i: float(np.dot(i.dicom_json["00200032"]["Value"], normal)))]


def test_reading_page_preloads_the_metadata_and_the_shown_slice_of_each_hung_series(tmp_path: Path) -> None:
    study = make_reader_study()
    reader = make_user(username="reader")
    make_membership(reader_study=study, user=reader, role="reader")
    sources = [_slice(series=2, z=z, orientation=SAGITTAL, description="SAG T2", tr="3500", te="100") for z in (2, 0, 3, 1)]
    sources += [_slice(series=3, z=z, orientation=AXIAL, description="t2_tse_tra", tr=None, te=None) for z in (5, 3, 4)]
    sources += [_slice(series=5, z=z, orientation=AXIAL, description="ax t1", tr="600", te="9") for z in (0, 1)]
    cases_import(sources=sources, reader_study=study)
    case = Case.objects.get(reader_study=study)
    assignment = assignment_create(case=case, reader=reader)
    series = {cs.role: cs.series for cs in case.case_series.select_related("series")}
    study_uid = case.dicom_study.study_instance_uid
    sagittal, axial = _viewer_order(series["sagittal_t2"]), _viewer_order(series["axial_t2"])

    (tmp_path / ".vite").mkdir()
    (tmp_path / ".vite" / "manifest.json").write_text(json.dumps({"src/main.ts": {"file": "assets/main.js", "isEntry": True}}))
    client = Client()
    client.force_login(reader)
    with override_settings(FRONTEND_DIST_DIR=tmp_path):
        page = client.get(f"/reading/{assignment.pk}/").content.decode()
    preloads = re.findall(r'<link rel="preload" as="fetch" crossorigin="anonymous" href="([^"]+)">', page)
    base = f"/dicomweb/studies/{study_uid}/series"
    sag, ax = series["sagittal_t2"].series_instance_uid, series["axial_t2"].series_instance_uid
    assert sorted(preloads) == sorted(
        [
            f"/api/v1/assignments/{assignment.pk}/",
            f"{base}/{sag}/metadata",
            f"{base}/{sag}/instances/{sagittal[1]}/frames/1",  # the middle of 4: the lower one
            f"{base}/{ax}/metadata",
            f"{base}/{ax}/instances/{axial[0]}/frames/1",
        ]
    )
    # the boot's plan names the hung series, so the previews need not wait for the assignment's API response
    plan = json.loads(re.search(r'<script id="sr-boot-plan" type="application/json">(.*?)</script>', page, re.S).group(1))  # type: ignore[union-attr]
    assert plan == {
        "case_label": case.label,
        "study_instance_uid": study_uid,
        "series": [
            {"role": "sagittal_t2", "series_instance_uid": sag, "description": "SAG T2"},
            {"role": "axial_t2", "series_instance_uid": ax, "description": "t2_tse_tra"},
        ],
    }
    # the series without a hanging role is not fetched
    assert series["other"].series_instance_uid not in page


def test_reading_page_preloads_no_frame_when_a_slice_has_no_position() -> None:
    study = make_reader_study()
    reader = make_user(username="reader")
    make_membership(reader_study=study, user=reader, role="reader")
    cases_import(sources=[_slice(series=2, z=z, orientation=SAGITTAL, description="SAG T2", tr="3500", te="100") for z in (0, 1, 2)], reader_study=study)
    case = Case.objects.get(reader_study=study)
    sagittal = case.case_series.get().series
    sagittal.instances.update(slice_position_mm=None)
    preloads = reading_page_preloads(assignment=assignment_create(case=case, reader=reader))
    assert [(p.role, p.frame_url) for p in preloads] == [("sagittal_t2", None)]
    assert preloads[0].metadata_url.endswith(f"/series/{sagittal.series_instance_uid}/metadata")

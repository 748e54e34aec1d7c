"""Every reading and study-management endpoint × every role: the status, and that a refused request
neither leaked another reader's data nor changed anything."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from rest_framework.test import APIClient

from spinereview.imaging.services import ImportSource
from spinereview.studies.models import (
    AdjudicationTask,
    Assignment,
    AuditEvent,
    CaseSeries,
    ReaderStudy,
    ReadVersion,
    ReferenceRead,
    SegmentationVersion,
    StudyMembership,
)
from spinereview.studies.services import assignment_create, cases_import, read_save, read_submit
from tests.dicom_files import mr_slice
from tests.factories import make_membership, make_reader_study, make_user

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

ROLES = ["anonymous", "other_reader", "reader", "adjudicator", "lead", "admin"]
GRADES = [{"level": lv, "condition": "central_canal", "value": "1"} for lv in ["L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]]


@pytest.fixture
def world() -> dict[str, Any]:
    study = make_reader_study(ai_visibility=ReaderStudy.AiVisibility.ALWAYS)
    users = {name: make_user(username=name) for name in ("other_reader", "reader", "adjudicator", "lead")}
    users["admin"] = make_user(username="admin", is_staff=True, is_superuser=True)
    for name, role in [("other_reader", "reader"), ("reader", "reader"), ("adjudicator", "adjudicator"), ("lead", "lead")]:
        make_membership(reader_study=study, user=users[name], role=role)
    cases_import(sources=[ImportSource(f"{z}.dcm", mr_slice(z_mm=float(z), study_uid="1.2.8.1", series_uid="1.2.8.1.1")) for z in range(2)], reader_study=study)
    case = study.cases.get()
    assignment = assignment_create(case=case, reader=users["reader"])
    other = assignment_create(case=case, reader=users["other_reader"])
    read_save(assignment=other, user=users["other_reader"], base_version=0, grades=GRADES)
    read_submit(assignment=other, user=users["other_reader"], base_version=1)
    series_uid = case.case_series.get().series.series_instance_uid
    return {"study": study, "users": users, "case": case, "assignment": assignment, "series_uid": series_uid}


def _state() -> tuple[object, ...]:
    counts = tuple(m.objects.count() for m in (ReadVersion, SegmentationVersion, ReferenceRead, AdjudicationTask, Assignment, StudyMembership))
    return (*counts, *CaseSeries.objects.order_by("pk").values_list("role", flat=True))


def _client(world: dict[str, Any], role: str) -> APIClient:
    client = APIClient()
    if role != "anonymous":
        client.force_authenticate(world["users"][role])
    return client


READER_ONLY = {"anonymous": 403, "other_reader": 404, "reader": 200, "adjudicator": 404, "lead": 404, "admin": 404}
SUPERVISORS = {"anonymous": 403, "other_reader": 404, "reader": 404, "adjudicator": 200, "lead": 200, "admin": 200}
LEAD_ONLY = {"anonymous": 403, "other_reader": 404, "reader": 404, "adjudicator": 403, "lead": 200, "admin": 200}

ENDPOINTS: list[tuple[str, str, str, Any, dict[str, int]]] = [
    ("detail", "get", "/api/v1/assignments/{assignment}/", None, READER_ONLY),
    ("save", "put", "/api/v1/assignments/{assignment}/read/", {"base_version": 0, "grades": GRADES}, READER_ONLY),
    ("submit", "post", "/api/v1/assignments/{assignment}/read/submit/", {"base_version": 0}, {**READER_ONLY, "reader": 400}),
    ("mask", "put", "/api/v1/assignments/{assignment}/segmentations/{series}/labels", "mask", READER_ONLY),
    ("mask-get", "get", "/api/v1/assignments/{assignment}/segmentations/{series}/labels", None, {**READER_ONLY, "reader": 404}),
    ("compare", "get", "/api/v1/assignments/{assignment}/compare/", None, READER_ONLY),
    ("protocol", "get", "/api/v1/reader-studies/{study}/protocol/", None, SUPERVISORS),
    ("progress", "get", "/api/v1/reader-studies/{study}/progress/", None, SUPERVISORS),
    ("assign", "post", "/api/v1/reader-studies/{study}/assignments/", {}, LEAD_ONLY),
    ("washout", "post", "/api/v1/reader-studies/{study}/washout/", {"fraction": 0.5, "interval_days": 1, "seed": 1}, LEAD_ONLY),
    ("adjudication-list", "get", "/api/v1/reader-studies/{study}/adjudication/", None, SUPERVISORS),
    ("adjudication-open", "post", "/api/v1/reader-studies/{study}/adjudication/", None, SUPERVISORS),
    ("case-reads", "get", "/api/v1/cases/{case}/reads/", None, SUPERVISORS),
    # one reader against themself: a supervisor's request is understood and refused (400), anyone else's not found
    ("compare-readers", "get", "/api/v1/cases/{case}/compare-readers/?a=other_reader&b=other_reader", None, {**SUPERVISORS, "adjudicator": 400, "lead": 400, "admin": 400}),
    ("reader-mask", "get", "/api/v1/cases/{case}/readers/other_reader/segmentations/{series}/labels", None, {**SUPERVISORS, "adjudicator": 404, "lead": 404, "admin": 404}),
    ("reference", "post", "/api/v1/cases/{case}/reference/", {"grades": GRADES}, SUPERVISORS),
    ("consensus", "get", "/api/v1/cases/{case}/consensus/{series}/labels", None, {**SUPERVISORS, "adjudicator": 400, "lead": 400, "admin": 400}),
    ("case-series", "get", "/api/v1/cases/{case}/series/", None, SUPERVISORS),
    ("case-series-roles", "put", "/api/v1/cases/{case}/series/", "roles", LEAD_ONLY),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("name", "method", "template", "body", "expected"), ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
def test_permission_matrix(world: dict[str, Any], role: str, name: str, method: str, template: str, body: Any, expected: dict[str, int]) -> None:
    url = template.format(assignment=world["assignment"].pk, series=world["series_uid"], study=world["study"].slug, case=world["case"].pk)
    client = _client(world, role)
    before = _state()
    if body == "mask":
        response = client.put(url, np.zeros((2, 8, 6), dtype=np.uint8).tobytes(), content_type="application/octet-stream", headers={"If-Match": '"0"'})
    elif body == "roles":
        response = client.put(url, {"roles": {world["series_uid"]: "other"}}, format="json")
    elif method == "get":
        response = client.get(url)
    else:
        response = getattr(client, method)(url, body, format="json")
    assert response.status_code == expected[role], response.content[:300]
    if response.status_code >= 400:
        assert _state() == before, "a refused request changed something"
    # the other reader's grades never reach anyone but supervisors
    if role in ("reader", "other_reader", "anonymous") and response.get("Content-Type", "").startswith("application/json"):
        text = response.content.decode()
        assert "other_reader" not in text or name == "detail" and role == "other_reader"
    if role == "reader" and name == "detail":
        assert response.json()["read"]["version"] == 0  # the other reader's submitted read is not this reader's
    assert AuditEvent.objects.exists()

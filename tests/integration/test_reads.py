"""Versioned reads over the REST API: every save is a new version, stale saves get 412, roles are enforced."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from spinereview.imaging.services import ImportSource
from spinereview.studies.models import Assignment, Grade, ReadVersion, StudyMembership
from spinereview.studies.services import assignment_create, cases_import
from tests.dicom_files import mr_slice
from tests.factories import make_membership, make_reader_study, make_user

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

LEVELS = ["L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]


def grades(values: list[str]) -> list[dict[str, str]]:
    return [{"level": lv, "condition": "central_canal", "value": v} for lv, v in zip(LEVELS, values, strict=True)]


@pytest.fixture
def setup() -> dict[str, Any]:
    study = make_reader_study()
    users = {name: make_user(username=name) for name in ("reader", "other_reader", "lead", "outsider")}
    make_membership(reader_study=study, user=users["reader"], role=StudyMembership.Role.READER)
    make_membership(reader_study=study, user=users["other_reader"], role=StudyMembership.Role.READER)
    make_membership(reader_study=study, user=users["lead"], role=StudyMembership.Role.LEAD)
    cases_import(sources=[ImportSource("a.dcm", mr_slice(study_uid="1.2.5", series_uid="1.2.5.1"))], reader_study=study)
    case = study.cases.get()
    assignment = assignment_create(case=case, reader=users["reader"])
    assignment_create(case=case, reader=users["other_reader"])
    return {"study": study, "users": users, "assignment": assignment}


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_each_save_is_a_new_version_and_stale_saves_get_412(setup: dict[str, Any]) -> None:
    assignment = setup["assignment"]
    client = client_for(setup["users"]["reader"])
    url = f"/api/v1/assignments/{assignment.pk}/read/"
    first = client.put(url, {"base_version": 0, "grades": grades(["0", "1", "2", "3", "0"])}, format="json")
    assert first.status_code == 200
    assert first.json()["version"] == 1
    second = client.put(url, {"base_version": 1, "grades": grades(["0", "1", "2", "3", "1"])}, format="json")
    assert second.json()["version"] == 2
    stale = client.put(url, {"base_version": 1, "grades": grades(["3", "3", "3", "3", "3"])}, format="json")
    assert stale.status_code == 412
    assert stale.json()["current"]["version"] == 2
    assert [g["value"] for g in stale.json()["current"]["grades"]] == ["0", "1", "2", "3", "1"]
    # nothing is overwritten: both versions are kept with their own grades
    kept = {v.version: sorted(g.value for g in v.grades.all()) for v in ReadVersion.objects.filter(assignment=assignment)}
    assert kept == {1: ["0", "0", "1", "2", "3"], 2: ["0", "1", "1", "2", "3"]}


def test_invalid_grades_are_refused_and_nothing_saved(setup: dict[str, Any]) -> None:
    assignment = setup["assignment"]
    client = client_for(setup["users"]["reader"])
    bad = grades(["0", "1", "9", "3", "0"]) + [{"level": "T12-L1", "condition": "central_canal", "value": "0"}]
    response = client.put(f"/api/v1/assignments/{assignment.pk}/read/", {"base_version": 0, "grades": bad}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {"L3-L4/central_canal": "value '9' is not one of 0, 1, 2, 3", "T12-L1/central_canal": "unknown level 'T12-L1'"}
    assert ReadVersion.objects.count() == 0


def test_submit_needs_every_level_then_locks(setup: dict[str, Any]) -> None:
    assignment = setup["assignment"]
    client = client_for(setup["users"]["reader"])
    base = f"/api/v1/assignments/{assignment.pk}/read/"
    client.put(base, {"base_version": 0, "grades": grades(["0", "1", "2", "3", "0"])[:3]}, format="json")
    incomplete = client.post(base + "submit/", {"base_version": 1}, format="json")
    assert incomplete.status_code == 400
    assert incomplete.json()["missing"] == [{"level": "L4-L5", "condition": "central_canal"}, {"level": "L5-S1", "condition": "central_canal"}]
    client.put(base, {"base_version": 1, "grades": grades(["0", "1", "2", "3", "0"])}, format="json")
    submitted = client.post(base + "submit/", {"base_version": 2}, format="json")
    assert submitted.status_code == 200
    assert submitted.json() == {"version": 3, "phase": "unaided", "submitted": True, "elapsed_s": 0.0, "grades": grades(["0", "1", "2", "3", "0"]), "measurements": []}
    locked = client.put(base, {"base_version": 3, "grades": grades(["1", "1", "1", "1", "1"])}, format="json")
    assert locked.status_code == 409
    assert ReadVersion.objects.filter(assignment=assignment).count() == 3


@pytest.mark.parametrize(
    ("who", "read_status", "save_status"),
    [("anonymous", 403, 403), ("outsider", 404, 404), ("other_reader", 404, 404), ("lead", 404, 404), ("reader", 200, 200)],
)
def test_only_the_assigned_reader_sees_and_saves_the_read(setup: dict[str, Any], who: str, read_status: int, save_status: int) -> None:
    assignment: Assignment = setup["assignment"]
    client = APIClient() if who == "anonymous" else client_for(setup["users"][who])
    before = Grade.objects.count()
    assert client.get(f"/api/v1/assignments/{assignment.pk}/").status_code == read_status
    response = client.put(f"/api/v1/assignments/{assignment.pk}/read/", {"base_version": 0, "grades": grades(["0"] * 5)}, format="json")
    assert response.status_code == save_status
    assert Grade.objects.count() == before + (5 if save_status == 200 else 0)


def test_worklist_lists_only_own_assignments(setup: dict[str, Any]) -> None:
    response = client_for(setup["users"]["other_reader"]).get("/api/v1/assignments/")
    assert response.status_code == 200
    assert [row["status"] for row in response.json()] == ["not_started"]
    assert client_for(setup["users"]["outsider"]).get("/api/v1/assignments/").json() == []

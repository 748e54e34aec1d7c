"""Who may see a study's statistics, exports and dashboards: leads, adjudicators and staff; a reader
never -- not even of a study they read -- since every one of them holds other readers' grades."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from spinereview.reports.freeze import data_freeze_create
from spinereview.studies.models import ReadVersion, StudyMembership
from spinereview.studies.services import assignment_create, segmentation_save
from tests.factories import make_membership, make_reader_study, make_user
from tests.integration import test_reports

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

reports_study = test_reports.reports_study  # the shared study fixture
API = "/api/v1/reader-studies/reports-study"
ENDPOINTS = [
    f"{API}/agreement/",
    f"{API}/statistics.json",
    f"{API}/statistics.csv",
    f"{API}/reads.csv",
    f"{API}/reads.xlsx",
    f"{API}/freezes/",
    f"{API}/freezes/1/archive.zip",
    f"{API}/report.pdf",
    f"{API}/reads/{{read}}/sr.dcm",
    f"{API}/segmentations/{{mask}}/seg.dcm",
    f"{API}/segmentations/{{mask}}/labels.nii.gz",
    "/studies/reports-study/reports/",
    "/studies/reports-study/agreement/",
]
# "reader" reads this study (r1); "other reader" reads another study only.
WHO = {"anonymous": None, "other reader": "outsider", "reader": "r1", "adjudicator": "adjudicator", "lead": "lead", "admin": "admin"}


def _body(response: Any) -> bytes:
    return b"".join(response.streaming_content) if getattr(response, "streaming", False) else response.content


@pytest.fixture
def with_freeze(reports_study: dict[str, Any]) -> dict[str, Any]:
    other = make_reader_study(name="Other study", slug="other-study")
    reports_study["users"]["outsider"] = make_user(username="outsider")
    make_membership(reader_study=other, user=reports_study["users"]["outsider"], role=StudyMembership.Role.READER)
    make_membership(reader_study=other, user=reports_study["users"]["r1"], role=StudyMembership.Role.LEAD)  # r1 leads elsewhere
    data_freeze_create(reader_study=reports_study["study"], user=reports_study["users"]["lead"])
    case = reports_study["cases"]["Case 001"]
    assignment = assignment_create(case=case, reader=reports_study["users"]["r3"])
    mask = segmentation_save(
        assignment=assignment, user=reports_study["users"]["r3"], series_instance_uid=case.case_series.get().series.series_instance_uid, base_version=0, data=bytes(12)
    )
    read = ReadVersion.objects.get(assignment__reader__username="r2", assignment__case=case, submitted=True)
    return reports_study | {"ids": {"mask": mask.pk, "read": read.pk}}


@pytest.mark.parametrize("who", list(WHO))
def test_reports_are_for_leads_adjudicators_and_staff_only(with_freeze: dict[str, Any], who: str) -> None:
    # One study per role, every endpoint in the loop: building the study is what takes the time.
    client = Client()
    if WHO[who] is not None:
        client.force_login(with_freeze["users"][WHO[who]])
    for template in ENDPOINTS:
        url = template.format(**with_freeze["ids"])
        response = client.get(url)
        body = _body(response)
        if who == "anonymous":
            page = url.startswith("/studies/")
            assert response.status_code == (302 if page else 403), url
            assert not page or response["Location"].startswith("/accounts/login/"), url
        elif who in ("reader", "other reader"):
            assert response.status_code == 404, url
        else:
            assert response.status_code == 200, (url, body[:500])
        if response.status_code != 200:
            # nothing of any read leaks: no reader's name, no grade table
            assert b"r2" not in body and b"central_canal" not in body, url

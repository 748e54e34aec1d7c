"""Blinding is enforced by the server: AI output stays hidden until the protocol allows it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rest_framework.test import APIClient

from spinereview.ai.models import AISegmentation, InferenceJob, ModelVersion
from spinereview.imaging.models import DicomSeries
from spinereview.imaging.services import ImportSource
from spinereview.studies.models import ReaderStudy, StudyMembership
from spinereview.studies.services import assignment_create, cases_import, read_save, read_submit
from tests.dicom_files import mr_slice
from tests.factories import make_membership, make_reader_study, make_user

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

LEVELS = ["L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]


@pytest.fixture
def blinded(media_root: Path) -> dict[str, Any]:
    study = make_reader_study(ai_visibility=ReaderStudy.AiVisibility.AFTER_SUBMIT)
    users = {name: make_user(username=name) for name in ("reader", "other", "lead")}
    make_membership(reader_study=study, user=users["reader"], role=StudyMembership.Role.READER)
    make_membership(reader_study=study, user=users["other"], role=StudyMembership.Role.READER)
    make_membership(reader_study=study, user=users["lead"], role=StudyMembership.Role.LEAD)
    cases_import(sources=[ImportSource("a.dcm", mr_slice(study_uid="1.2.9", series_uid="1.2.9.1", rows=4, columns=3))], reader_study=study)
    series = DicomSeries.objects.get()
    model_version = ModelVersion.objects.create(name="m", version="m@000000000000", path="/nonexistent", label_map={"1": "dural_sac"}, config={}, is_active=True)
    job = InferenceJob.objects.create(series=series, model_version=model_version, status=InferenceJob.Status.SUCCEEDED)
    labels = np.arange(12, dtype=np.uint8).reshape(1, 4, 3) % 2
    relative = "segmentations/ai/test.npy"
    (media_root / "segmentations/ai").mkdir(parents=True, exist_ok=True)
    np.save(media_root / relative, labels)
    segmentation = AISegmentation.objects.create(
        job=job, series=series, model_version=model_version, label_map={"1": "dural_sac"}, shape=[1, 4, 3],
        sop_instance_uids=[series.instances.get().sop_instance_uid], file_path=relative,
    )
    case = study.cases.get()
    return {
        "users": users,
        "assignment": assignment_create(case=case, reader=users["reader"]),
        "other_assignment": assignment_create(case=case, reader=users["other"]),
        "segmentation": segmentation,
        "labels": labels,
    }


def _client(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_ai_hidden_until_the_unaided_read_is_submitted(blinded: dict[str, Any]) -> None:
    reader, assignment, segmentation = blinded["users"]["reader"], blinded["assignment"], blinded["segmentation"]
    client = _client(reader)
    detail = client.get(f"/api/v1/assignments/{assignment.pk}/").json()
    assert [s["ai_segmentation"] for s in detail["case"]["series"]] == [None]
    assert client.get(f"/api/v1/ai-segmentations/{segmentation.pk}/labels").status_code == 404

    version = read_save(assignment=assignment, user=reader, base_version=0, grades=[{"level": lv, "condition": "central_canal", "value": "0"} for lv in LEVELS])
    read_submit(assignment=assignment, user=reader, base_version=version.version)

    detail = client.get(f"/api/v1/assignments/{assignment.pk}/").json()
    (revealed,) = [s["ai_segmentation"] for s in detail["case"]["series"]]
    assert revealed["model_version"] == "m@000000000000"
    assert revealed["shape"] == [1, 4, 3]
    response = client.get(revealed["labels_url"], HTTP_ACCEPT="application/octet-stream")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response.content == blinded["labels"].tobytes()
    # the other reader has not submitted: still blinded
    assert _client(blinded["users"]["other"]).get(f"/api/v1/ai-segmentations/{segmentation.pk}/labels").status_code == 404


@pytest.mark.parametrize(("who", "status"), [("lead", 200), ("other", 404), ("reader", 404)])
def test_ai_labels_for_supervisors_only_before_submission(blinded: dict[str, Any], who: str, status: int) -> None:
    response = _client(blinded["users"][who]).get(f"/api/v1/ai-segmentations/{blinded['segmentation'].pk}/labels")
    assert response.status_code == status


@pytest.mark.parametrize(("who", "status"), [("lead", 200), ("reader", 404), ("other", 404)])
def test_agreement_is_for_leads_only(blinded: dict[str, Any], who: str, status: int) -> None:
    slug = blinded["assignment"].case.reader_study.slug
    assert _client(blinded["users"][who]).get(f"/api/v1/reader-studies/{slug}/agreement/").status_code == status

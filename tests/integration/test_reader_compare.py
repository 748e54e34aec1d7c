"""Reader vs reader on one case: the adjudicator's and lead's comparison of two readers' reads and masks."""

from __future__ import annotations

import json
import uuid
from typing import Any

import numpy as np
import pytest
from rest_framework.test import APIClient

from spinereview.imaging.services import ImportSource
from spinereview.studies.models import ReaderStudy, StudyMembership
from spinereview.studies.protocols import DEFAULT_PROTOCOL
from spinereview.studies.services import assignment_create, cases_import, read_save, read_submit, segmentation_save
from tests.dicom_files import mr_slice
from tests.factories import make_membership, make_reader_study, make_user

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

LEVELS = ["L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]
ROWS, COLUMNS, SLICES = 8, 6, 3
SAC, CANAL = 4, 3  # the protocol's label values of dural_sac and spinal_canal


def _client(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _grades(values: list[str]) -> list[dict[str, str]]:
    return [{"level": lv, "condition": "central_canal", "value": v} for lv, v in zip(LEVELS, values, strict=True)]


@pytest.fixture
def world() -> dict[str, Any]:
    study = make_reader_study(protocol=dict(DEFAULT_PROTOCOL), ai_visibility=ReaderStudy.AiVisibility.ALWAYS)
    users = {name: make_user(username=name) for name in ("reader1", "reader2", "reader3", "lead", "adjudicator", "outsider")}
    for name in ("reader1", "reader2", "reader3"):
        make_membership(reader_study=study, user=users[name], role=StudyMembership.Role.READER)
    make_membership(reader_study=study, user=users["lead"], role=StudyMembership.Role.LEAD)
    make_membership(reader_study=study, user=users["adjudicator"], role=StudyMembership.Role.ADJUDICATOR)
    sources = [
        ImportSource(f"{z}.dcm", mr_slice(z_mm=float(z), study_uid="1.2.77.1", series_uid="1.2.77.1.1", rows=ROWS, columns=COLUMNS))
        for z in range(SLICES)
    ]
    cases_import(sources=sources, reader_study=study)
    case = study.cases.get()
    series_uid = case.case_series.get().series.series_instance_uid
    masks = {name: np.zeros((SLICES, ROWS, COLUMNS), dtype=np.uint8) for name in ("reader1", "reader2")}
    masks["reader1"][1, 2:6, 1:5] = SAC  # 16 voxels
    masks["reader2"][1, 3:6, 1:5] = SAC  # 12 voxels, all inside reader1's
    masks["reader2"][0, 0:2, 0:2] = CANAL  # only reader2 drew a canal
    square = [[0.0, 0.0, 1.0], [10.0, 0.0, 1.0], [10.0, 10.0, 1.0], [0.0, 10.0, 1.0]]  # 100 mm2
    measurements = {
        "reader1": [{"id": str(uuid.uuid4()), "key": "dsca", "level": "L4-L5", "series_instance_uid": series_uid, "points_mm": square}],
        "reader2": [
            {
                "id": str(uuid.uuid4()),
                "key": "dsca",
                "level": "L4-L5",
                "series_instance_uid": series_uid,
                "points_mm": [[x * 1.2, y * 1.2, z] for x, y, z in square],
            },
            {
                "id": str(uuid.uuid4()),
                "key": "ap_diameter",
                "level": "L4-L5",
                "series_instance_uid": series_uid,
                "points_mm": [[0, 0, 1], [3, 4, 1]],
            },
        ],
    }
    values = {"reader1": ["0", "1", "2", "3", "0"], "reader2": ["0", "2", "2", "1", "0"]}
    for name in ("reader1", "reader2"):
        assignment = assignment_create(case=case, reader=users[name])
        segmentation_save(
            assignment=assignment, user=users[name], series_instance_uid=series_uid, base_version=0, data=masks[name].tobytes()
        )
        read_save(assignment=assignment, user=users[name], base_version=0, grades=_grades(values[name]), measurements=measurements[name])
        read_submit(assignment=assignment, user=users[name], base_version=1)
    # reader3 started but did not submit: not comparable
    unsubmitted = assignment_create(case=case, reader=users["reader3"])
    read_save(assignment=unsubmitted, user=users["reader3"], base_version=0, grades=_grades(["0", "0", "0", "0", "0"]))
    return {"study": study, "case": case, "users": users, "series_uid": series_uid, "masks": masks}


def test_adjudicator_compares_two_readers(world: dict[str, Any]) -> None:
    case, series_uid = world["case"], world["series_uid"]
    response = _client(world["users"]["adjudicator"]).get(f"/api/v1/cases/{case.pk}/compare-readers/?a=reader1&b=reader2")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["readers"] == ["reader1", "reader2"]
    assert body["reader_a"] == {"username": "reader1", "read_version": 2, "phase": "unaided"}
    assert body["series"] == [{"series_instance_uid": series_uid, "version_a": 1, "version_b": 1, "shape": [SLICES, ROWS, COLUMNS]}]
    by_name = {s["name"]: s for s in body["structures"]}
    # Dice = 2 * 12 / (16 + 12)
    assert by_name["dural_sac"] == {
        "series_instance_uid": series_uid,
        "label": SAC,
        "name": "dural_sac",
        "dice": round(24 / 28, 4),
        "a_voxels": 16,
        "b_voxels": 12,
        "only_a_voxels": 4,
        "only_b_voxels": 0,
    }
    assert by_name["spinal_canal"]["dice"] == 0.0 and by_name["spinal_canal"]["only_b_voxels"] == 4
    l45 = next(row for row in body["levels"] if row["level"] == "L4-L5")
    assert l45["dsca_mm2"] == {"a": 100.0, "b": 144.0, "delta": 44.0, "source_a": "measured", "source_b": "measured"}
    assert l45["ap_diameter_mm"] == {"a": None, "b": 5.0, "delta": None, "source_a": "", "source_b": "measured"}
    assert [(row["level"], g["a"], g["b"], g["differs"]) for row in body["levels"] for g in row["grades"] if g["differs"]] == [
        ("L2-L3", "1", "2", True),
        ("L4-L5", "3", "1", True),
    ]
    assert body["grade_differences"] == 2
    # each reader's mask, as saved, for the difference view
    for name in ("reader1", "reader2"):
        mask = _client(world["users"]["lead"]).get(f"/api/v1/cases/{case.pk}/readers/{name}/segmentations/{series_uid}/labels")
        assert mask.status_code == 200 and mask["X-Label-Shape"] == f"{SLICES},{ROWS},{COLUMNS}"
        assert np.array_equal(np.frombuffer(mask.content, dtype=np.uint8).reshape(SLICES, ROWS, COLUMNS), world["masks"][name])


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("?a=reader1&b=reader1", 400, "two different readers"),
        ("?a=reader1", 400, "Name two readers"),
        ("", 400, "Name two readers"),
        ("?a=reader1&b=reader3", 404, "'reader3' has no submitted read"),
        ("?a=nobody&b=reader2", 404, "'nobody' has no submitted read"),
    ],
)
def test_bad_reader_pairs_are_refused_with_a_reason(world: dict[str, Any], query: str, status: int, message: str) -> None:
    response = _client(world["users"]["lead"]).get(f"/api/v1/cases/{world['case'].pk}/compare-readers/{query}")
    assert response.status_code == status
    assert message in response.json()["detail"]


@pytest.mark.parametrize("who", ["reader1", "reader2", "reader3", "outsider"])
def test_readers_and_outsiders_never_see_the_comparison_nor_a_colleague_mask(world: dict[str, Any], who: str) -> None:
    case, series_uid = world["case"], world["series_uid"]
    client = _client(world["users"][who])
    compared = client.get(f"/api/v1/cases/{case.pk}/compare-readers/?a=reader1&b=reader2")
    assert compared.status_code == 404 and "reader2" not in compared.content.decode()
    mask = client.get(f"/api/v1/cases/{case.pk}/readers/reader2/segmentations/{series_uid}/labels")
    assert mask.status_code == 404 and mask.content.startswith(b"{")
    assert APIClient().get(f"/api/v1/cases/{case.pk}/compare-readers/?a=reader1&b=reader2").status_code == 403


def test_a_reader_without_a_mask_of_the_series(world: dict[str, Any]) -> None:
    response = _client(world["users"]["adjudicator"]).get(f"/api/v1/cases/{world['case'].pk}/readers/reader1/segmentations/9.9.9/labels")
    # errors are JSON text, whatever the negotiated binary type
    assert response.status_code == 404 and "no mask of this series" in json.loads(response.content)["detail"]

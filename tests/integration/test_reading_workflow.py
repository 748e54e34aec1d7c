"""Reader-study workflow over the REST API: two-phase reading with server-side blinding, measurements,
versioned reader masks, randomised and washout assignments, calibration, adjudication, audit."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from spinereview.ai.models import AISegmentation, InferenceJob, ModelVersion
from spinereview.core.errors import NotFoundError
from spinereview.imaging.services import ImportSource
from spinereview.studies.models import (
    AdjudicationTask,
    Assignment,
    AuditEvent,
    Measurement,
    ReaderStudy,
    ReadVersion,
    SegmentationVersion,
    StudyMembership,
)
from spinereview.studies.protocols import DEFAULT_PROTOCOL
from spinereview.studies.selectors import assignment_for_write, assignment_list
from spinereview.studies.services import (
    assignment_create,
    assignments_create,
    audit_verify,
    calibration_reference_set,
    cases_import,
    consensus_mask,
    read_save,
    read_submit,
    washout_assign,
)
from tests.dicom_files import mr_slice
from tests.factories import make_membership, make_reader_study, make_user

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

LEVELS = ["L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]
ROWS, COLUMNS, SLICES = 8, 6, 3


def grades(values: list[str]) -> list[dict[str, str]]:
    return [{"level": lv, "condition": "central_canal", "value": v} for lv, v in zip(LEVELS, values, strict=True)]


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _study(*, two_phase: bool, readers: int = 2, cases: int = 1, **kwargs: Any) -> dict[str, Any]:
    protocol = dict(DEFAULT_PROTOCOL, two_phase=two_phase)
    visibility = ReaderStudy.AiVisibility.AFTER_SUBMIT if two_phase else ReaderStudy.AiVisibility.ALWAYS
    study = make_reader_study(protocol=protocol, ai_visibility=visibility, **kwargs)
    users = {f"reader{i}": make_user(username=f"reader{i}") for i in range(1, readers + 1)}
    users |= {name: make_user(username=name) for name in ("lead", "adjudicator", "outsider")}
    for i in range(1, readers + 1):
        make_membership(reader_study=study, user=users[f"reader{i}"], role=StudyMembership.Role.READER)
    make_membership(reader_study=study, user=users["lead"], role=StudyMembership.Role.LEAD)
    make_membership(reader_study=study, user=users["adjudicator"], role=StudyMembership.Role.ADJUDICATOR)
    for c in range(cases):
        sources = [
            ImportSource(f"c{c}-{z}.dcm", mr_slice(z_mm=float(z), study_uid=f"1.2.9.{c}", series_uid=f"1.2.9.{c}.1", rows=ROWS, columns=COLUMNS))
            for z in range(SLICES)
        ]
        cases_import(sources=sources, reader_study=study)
    return {"study": study, "users": users}


def _ai_mask(case: Any, tmp_media: Path) -> AISegmentation:
    """An AI result for the case's series, made the way the worker stores one."""
    series = case.case_series.get().series
    model = ModelVersion.objects.create(name="t", version=f"t@{uuid.uuid4().hex[:12]}", path="/nonexistent", label_map={"4": "dural_sac"}, config={}, is_active=True)
    job = InferenceJob.objects.create(series=series, model_version=model, status=InferenceJob.Status.SUCCEEDED)
    labels = np.zeros((SLICES, ROWS, COLUMNS), dtype=np.uint8)
    labels[:, 2:6, 1:5] = 4
    path = Path("ai") / f"{job.pk}.npy"
    (tmp_media / "ai").mkdir(parents=True, exist_ok=True)
    np.save(tmp_media / path, labels)
    uids = list(series.instances.order_by("slice_position_mm").values_list("sop_instance_uid", flat=True))
    return AISegmentation.objects.create(job=job, series=series, model_version=model, label_map=model.label_map, shape=list(labels.shape), sop_instance_uids=uids, file_path=str(path))


def test_two_phase_reading_blinds_the_ai_until_the_unaided_read_is_submitted(media_root: Path) -> None:
    setup = _study(two_phase=True)
    case = setup["study"].cases.get()
    reader = setup["users"]["reader1"]
    assignment = assignment_create(case=case, reader=reader)
    _ai_mask(case, Path(settings.MEDIA_ROOT))
    series_uid = case.case_series.get().series.series_instance_uid
    client = client_for(reader)
    url = f"/api/v1/assignments/{assignment.pk}/"

    detail = client.get(url).json()
    assert detail["phase"] == "unaided"
    assert detail["case"]["series"][0]["ai_segmentation"] is None
    assert client.get(f"{url}compare/").status_code == 403
    refused = client.post(f"{url}segmentations/{series_uid}/from-ai", {"base_version": 0}, format="json")
    assert refused.status_code == 403
    assert not SegmentationVersion.objects.exists()

    assert client.put(f"{url}read/", {"base_version": 0, "grades": grades(["0", "1", "2", "3", "0"]), "elapsed_s": 42.5}, format="json").status_code == 200
    saved = AuditEvent.objects.get(action="read.save")
    assert (saved.actor, saved.origin, saved.object_id) == ("reader1", "127.0.0.1", str(assignment.pk))
    submitted = client.post(f"{url}read/submit/", {"base_version": 1}, format="json")
    assert submitted.status_code == 200
    assert submitted.json()["phase"] == "unaided"

    detail = client.get(url).json()
    assert detail["phase"] == "aided"
    assert detail["case"]["series"][0]["ai_segmentation"]["model_version"].startswith("t@")
    assert detail["read"]["version"] == 3 and not detail["read"]["submitted"]
    assert [g["value"] for g in detail["read"]["grades"]] == ["0", "1", "2", "3", "0"]  # seeded from the unaided read
    assert [(r["phase"], r["version"], r["elapsed_s"]) for r in detail["previous_reads"]] == [("unaided", 2, 42.5)]

    aided = client.put(f"{url}read/", {"base_version": 3, "grades": grades(["0", "1", "2", "2", "0"])}, format="json")
    assert aided.json()["phase"] == "aided"
    copied = client.post(f"{url}segmentations/{series_uid}/from-ai", {"base_version": 0}, format="json")
    assert copied.status_code == 200
    assert copied.json()["source"] == "ai_copy" and copied.json()["voxels_per_label"] == {"4": SLICES * 16}
    compare = client.get(f"{url}compare/").json()
    assert compare["structures"][0]["dice"] == 1.0
    assert client.post(f"{url}read/submit/", {"base_version": 4}, format="json").status_code == 200
    assert client.get(url).json()["phase"] == "done"
    # both reads are kept, each with its own grades
    kept = {(v.phase, v.submitted): sorted(g.value for g in v.grades.all()) for v in ReadVersion.objects.filter(assignment=assignment, submitted=True)}
    assert kept == {("unaided", True): ["0", "0", "1", "2", "3"], ("aided", True): ["0", "0", "1", "2", "2"]}
    locked = client.put(f"{url}read/", {"base_version": 5, "grades": []}, format="json")
    assert locked.status_code == 409


def test_the_compare_view_shows_the_ai_value_of_every_ai_graded_condition(media_root: Path) -> None:
    """DEFAULT_PROTOCOL has the AI grade stenosis (ai_grade) and the sedimentation sign (a grader task)."""
    from spinereview.ai.models import AILevelMeasurement

    setup = _study(two_phase=False)
    case = setup["study"].cases.get()
    reader = setup["users"]["reader1"]
    assignment = assignment_create(case=case, reader=reader)
    model = _ai_mask(case, Path(settings.MEDIA_ROOT)).model_version
    model.grader = {
        "name": "g", "version": "g@0123456789ab", "grades": ["normal", "mild", "moderate", "severe"], "heldout": {},
        "tasks": {"sedimentation_sign": {"classes": ["absent", "present"], "heldout": {}}},
    }  # fmt: skip
    model.save(update_fields=["grader"])
    for i, level in enumerate(LEVELS):
        sign = {"index": i % 2, "name": ["absent", "present"][i % 2], "probabilities": {"absent": 0.5, "present": 0.5}}
        AILevelMeasurement.objects.create(
            dicom_study=case.dicom_study, model_version=model, level=level, dsca_mm2=90.0, axial_slice_index=1,
            grade_index=i % 4, grade_name=model.grader["grades"][i % 4], grader_version="g@0123456789ab",
            task_grades={"sedimentation_sign": sign} if level != "L5-S1" else {}, errors={} if level != "L5-S1" else {"grade": "no canal"},
        )  # fmt: skip
    read = grades(["0", "1", "1", "3", "0"]) + [{"level": lv, "condition": "sedimentation_sign", "value": "present"} for lv in LEVELS]
    client = client_for(reader)
    assert client.put(f"/api/v1/assignments/{assignment.pk}/read/", {"base_version": 0, "grades": read}, format="json").status_code == 200
    compare = client.get(f"/api/v1/assignments/{assignment.pk}/compare/").json()
    shown = {(row["level"], g["condition"]): (g["reader"], g["ai"], g["differs"]) for row in compare["levels"] for g in row["grades"]}
    assert shown == {
        ("L1-L2", "central_canal"): ("0", "0", False), ("L1-L2", "sedimentation_sign"): ("present", "absent", True),
        ("L2-L3", "central_canal"): ("1", "1", False), ("L2-L3", "sedimentation_sign"): ("present", "present", False),
        ("L3-L4", "central_canal"): ("1", "2", True), ("L3-L4", "sedimentation_sign"): ("present", "absent", True),
        ("L4-L5", "central_canal"): ("3", "3", False), ("L4-L5", "sedimentation_sign"): ("present", "present", False),
        ("L5-S1", "central_canal"): ("0", "0", False), ("L5-S1", "sedimentation_sign"): ("present", None, None),
    }  # fmt: skip


def test_measurements_are_recomputed_from_points_and_bad_ones_change_nothing() -> None:
    setup = _study(two_phase=False)
    case = setup["study"].cases.get()
    assignment = assignment_create(case=case, reader=setup["users"]["reader1"])
    series_uid = case.case_series.get().series.series_instance_uid
    client = client_for(setup["users"]["reader1"])
    url = f"/api/v1/assignments/{assignment.pk}/read/"
    square = [[0.0, 0.0, 5.0], [10.0, 0.0, 5.0], [10.0, 10.0, 5.0], [0.0, 10.0, 5.0]]
    measurements = [
        {"id": str(uuid.uuid4()), "key": "ap_diameter", "level": "L4-L5", "series_instance_uid": series_uid, "points_mm": [[0, 0, 0], [3, 4, 0]], "values": {"length_mm": 99}},
        {"id": str(uuid.uuid4()), "key": "dsca", "level": "L4-L5", "series_instance_uid": series_uid, "points_mm": square},
        {
            "id": str(uuid.uuid4()),
            "key": "disc_height",
            "level": "L4-L5",
            "series_instance_uid": series_uid,
            "points_mm": [[0, 0, 0], [0, 0, 9], [5, 0, 0], [5, 0, 10], [10, 0, 0], [10, 0, 7.5]],
        },
    ]
    saved = client.put(url, {"base_version": 0, "grades": [], "measurements": measurements}, format="json")
    assert saved.status_code == 200
    assert [m["values"] for m in saved.json()["measurements"]] == [
        {"length_mm": 5.0},  # the client's 99 is ignored: values come from the points
        {"area_mm2": 100.0},
        {"anterior_mm": 9.0, "middle_mm": 10.0, "posterior_mm": 7.5},
    ]
    bad_cases: list[tuple[dict[str, Any], str]] = [
        ({"key": "ap_diameter", "points_mm": [[0, 0, 0]]}, "a length has exactly 2 points"),
        ({"key": "dsca", "points_mm": [[0, 0, 0], [1, 0, 0], [2, 0, 0]]}, "encloses no area"),
        ({"key": "dsca", "points_mm": [[0, 0, 0], [10, 0, 0], [10, 10, 5], [0, 10, 0]]}, "must lie on one image plane"),
        ({"key": "volume", "points_mm": [[0, 0, 0], [1, 1, 1]]}, "key must be one of the protocol's measurements"),
        ({"key": "ap_diameter", "level": "C5-C6", "points_mm": [[0, 0, 0], [1, 1, 1]]}, "level must be one of"),
        ({"key": "ap_diameter", "series_instance_uid": "9.9.9", "points_mm": [[0, 0, 0], [1, 1, 1]]}, "not a series of this case"),
        ({"key": "ap_diameter", "points_mm": [[0, 0, "x"], [1, 1, 1]]}, "every point must be [x, y, z]"),
    ]
    for change, message in bad_cases:
        item = {"id": str(uuid.uuid4()), "level": "L4-L5", "series_instance_uid": series_uid} | change
        refused = client.put(url, {"base_version": 1, "grades": [], "measurements": [item]}, format="json")
        assert refused.status_code == 400, change
        assert message in refused.json()["detail"]
    assert ReadVersion.objects.filter(assignment=assignment).count() == 1
    assert Measurement.objects.count() == 3


def test_reader_masks_are_versioned_and_stale_or_malformed_saves_are_refused() -> None:
    setup = _study(two_phase=False)
    case = setup["study"].cases.get()
    assignment = assignment_create(case=case, reader=setup["users"]["reader1"])
    other = assignment_create(case=case, reader=setup["users"]["reader2"])
    series_uid = case.case_series.get().series.series_instance_uid
    client = client_for(setup["users"]["reader1"])
    url = f"/api/v1/assignments/{assignment.pk}/segmentations/{series_uid}/labels"
    mask = np.zeros((SLICES, ROWS, COLUMNS), dtype=np.uint8)
    mask[1, 2:4, 2:4] = 4

    def put(data: bytes, if_match: str | None) -> Any:
        headers = {"If-Match": if_match} if if_match is not None else {}
        return client.put(url, data, content_type="application/octet-stream", headers=headers)

    assert client.get(url).status_code == 404
    first = put(mask.tobytes(), '"0"')
    assert first.status_code == 200 and first.json()["version"] == 1 and first.json()["voxels_per_label"] == {"4": 4}
    mask[2, 0, 0] = 3
    assert put(mask.tobytes(), "1").json()["version"] == 2
    stale = put(np.zeros_like(mask).tobytes(), '"1"')
    assert stale.status_code == 412 and stale.json()["current_version"] == 2
    assert put(mask.tobytes()[:-1], '"2"').status_code == 400
    wrong_label = mask.copy()
    wrong_label[0, 0, 0] = 9
    refused = put(wrong_label.tobytes(), '"2"')
    assert refused.status_code == 400 and "Label value(s) 9" in refused.json()["detail"]
    assert put(mask.tobytes(), None).status_code == 400
    latest = client.get(url)
    assert latest["ETag"] == '"2"'
    assert np.array_equal(np.frombuffer(latest.content, dtype=np.uint8).reshape(mask.shape), mask)
    # the first version is kept as it was
    assert SegmentationVersion.objects.filter(assignment=assignment).count() == 2
    # another reader can neither read nor write this reader's mask
    other_client = client_for(setup["users"]["reader2"])
    assert other_client.get(url).status_code == 404
    assert other_client.put(url, mask.tobytes(), content_type="application/octet-stream", headers={"If-Match": '"2"'}).status_code == 404
    assert not SegmentationVersion.objects.filter(assignment=other).exists()


def test_assignment_order_is_random_per_reader_and_reproducible_from_the_seed() -> None:
    orders = []
    for attempt in range(2):
        setup = _study(two_phase=False, readers=3, cases=6, randomisation_seed=20261121, slug=f"random-{attempt}")
        study = setup["study"]
        assignments_create(reader_study=study)
        order = {
            name: [a.case.dicom_study.study_instance_uid for a in Assignment.objects.filter(reader__username=name, case__reader_study=study).order_by("order")]
            for name in ("reader1", "reader2", "reader3")
        }
        orders.append({name: [study.cases.get(dicom_study__study_instance_uid=uid).label for uid in uids] for name, uids in order.items()})
        Assignment.objects.filter(case__reader_study=study).delete()
        for user in setup["users"].values():
            user.study_memberships.all().delete()
            user.delete()
    assert orders[0] == orders[1]
    assert len({tuple(v) for v in orders[0].values()}) > 1  # readers get different orders
    assert all(sorted(v) == sorted(orders[0]["reader1"]) for v in orders[0].values())


def _assert_writable_iff_listed(study: Any, *users: Any) -> None:
    """The save paths' one-row check (assignment_for_write) admits exactly the worklist's assignments."""
    for user in users:
        listed = set(assignment_list(user=user).values_list("pk", flat=True))
        for assignment in Assignment.objects.filter(case__reader_study=study):
            try:
                writable = assignment_for_write(user=user, assignment_id=assignment.pk).pk == assignment.pk
            except NotFoundError:
                writable = False
            assert writable == (assignment.pk in listed), (user.username, assignment.kind, writable)


def test_washout_rereads_open_after_the_interval_and_calibration_comes_first() -> None:
    setup = _study(two_phase=False, readers=1, cases=4, calibration_required=True)
    study, reader, lead = setup["study"], setup["users"]["reader1"], setup["users"]["lead"]
    calibration_case = study.cases.order_by("label").first()
    calibration_reference_set(case=calibration_case, grades=grades(["0", "1", "1", "2", "3"]), user=lead)
    assignments_create(reader_study=study)
    client = client_for(reader)
    worklist = client.get("/api/v1/assignments/").json()
    assert [(a["kind"], a["case_label"]) for a in worklist] == [("calibration", calibration_case.label)]
    _assert_writable_iff_listed(study, reader, lead)
    live_one = Assignment.objects.filter(kind=Assignment.Kind.LIVE).order_by("pk")[0]
    assert client.put(f"/api/v1/assignments/{live_one.pk}/read/", {"grades": [], "base_version": 0}, format="json").status_code == 404

    calibration = Assignment.objects.get(kind=Assignment.Kind.CALIBRATION)
    read_save(assignment=calibration, user=reader, base_version=0, grades=grades(["0", "1", "2", "2", "3"]))
    read_submit(assignment=calibration, user=reader, base_version=1)
    feedback = client.get(f"/api/v1/assignments/{calibration.pk}/").json()["calibration_feedback"]
    assert [(f["level"], f["yours"], f["reference"], f["agrees"]) for f in feedback][2] == ("L3-L4", "2", "1", False)
    assert sum(f["agrees"] for f in feedback) == 4
    live = [a for a in client.get("/api/v1/assignments/").json() if a["kind"] == "live"]
    assert len(live) == 3
    _assert_writable_iff_listed(study, reader, lead)

    for assignment in Assignment.objects.filter(kind=Assignment.Kind.LIVE):
        read_save(assignment=assignment, user=reader, base_version=0, grades=grades(["0", "0", "1", "1", "2"]))
        read_submit(assignment=assignment, user=reader, base_version=1)
    created = washout_assign(reader_study=study, fraction=0.67, interval_days=28, seed=7)
    assert len(created) == 2
    assert all(a.available_from is not None and a.available_from > timezone.now() + dt.timedelta(days=27) for a in created)
    assert not [a for a in client.get("/api/v1/assignments/").json() if a["kind"] == "washout"]
    _assert_writable_iff_listed(study, reader, lead)
    Assignment.objects.filter(kind=Assignment.Kind.WASHOUT).update(available_from=timezone.now() - dt.timedelta(minutes=1))
    assert len([a for a in client.get("/api/v1/assignments/").json() if a["kind"] == "washout"]) == 2
    _assert_writable_iff_listed(study, reader, lead)
    assert washout_assign(reader_study=study, fraction=0.67, interval_days=28, seed=7) == []  # idempotent


def test_disagreements_open_adjudication_and_the_reference_resolves_them() -> None:
    setup = _study(two_phase=False, readers=3)
    study, users = setup["study"], setup["users"]
    case = study.cases.get()
    values = {"reader1": ["0", "1", "2", "3", "0"], "reader2": ["0", "2", "2", "3", "0"], "reader3": ["0", "1", "2", "1", "0"]}
    for name, vals in values.items():
        assignment = assignment_create(case=case, reader=users[name])
        read_save(assignment=assignment, user=users[name], base_version=0, grades=grades(vals))
        read_submit(assignment=assignment, user=users[name], base_version=1)
    adjudicator = client_for(users["adjudicator"])
    opened = adjudicator.post(f"/api/v1/reader-studies/{study.slug}/adjudication/").json()["opened"]
    assert [(t["level"], t["item"]) for t in opened] == [("L2-L3", "central_canal"), ("L4-L5", "central_canal")]
    assert adjudicator.post(f"/api/v1/reader-studies/{study.slug}/adjudication/").json()["opened"] == []
    reads = adjudicator.get(f"/api/v1/cases/{case.pk}/reads/").json()
    assert sorted(r["reader"] for r in reads["reads"] if r["submitted"]) == ["reader1", "reader2", "reader3"]
    assert {(g["level"], g["value"]) for g in reads["majority"]["grades"]} == {("L1-L2", "0"), ("L2-L3", "1"), ("L3-L4", "2"), ("L4-L5", "3"), ("L5-S1", "0")}
    # readers may not see each other's reads, nor record a reference
    assert client_for(users["reader1"]).get(f"/api/v1/cases/{case.pk}/reads/").status_code == 404
    reference = adjudicator.post(f"/api/v1/cases/{case.pk}/reference/", {"grades": grades(["0", "1", "2", "2", "0"]), "note": "consensus"}, format="json")
    assert reference.status_code == 200 and reference.json()["version"] == 1
    assert set(AdjudicationTask.objects.values_list("status", flat=True)) == {"resolved"}
    bad = adjudicator.post(f"/api/v1/cases/{case.pk}/reference/", {"grades": grades(["0", "1", "2", "9", "0"])}, format="json")
    assert bad.status_code == 400 and case.reference_reads.count() == 1


def test_consensus_masks_by_majority_vote_and_staple() -> None:
    setup = _study(two_phase=False, readers=3)
    case = setup["study"].cases.get()
    series_uid = case.case_series.get().series.series_instance_uid
    from spinereview.studies.services import segmentation_save

    base = np.zeros((SLICES, ROWS, COLUMNS), dtype=np.uint8)
    shapes = [(slice(2, 6), slice(1, 5)), (slice(2, 6), slice(1, 4)), (slice(3, 6), slice(1, 5))]
    for i, (rows, cols) in enumerate(shapes, start=1):
        user = setup["users"][f"reader{i}"]
        assignment = assignment_create(case=case, reader=user)
        mask = base.copy()
        mask[1, rows, cols] = 4
        segmentation_save(assignment=assignment, user=user, series_instance_uid=series_uid, base_version=0, data=mask.tobytes())
    majority, readers = consensus_mask(case=case, series_instance_uid=series_uid, method="majority")
    assert readers == ["reader1", "reader2", "reader3"]
    expected = base.copy()
    expected[1, 2:6, 1:5] = 4
    expected[1, 2, 4] = 0  # only reader1 drew (2, 4): one vote of three
    assert np.array_equal(majority, expected)
    staple, _ = consensus_mask(case=case, series_instance_uid=series_uid, method="staple")
    assert staple[1, 4, 2] == 4 and staple[0].max() == 0  # drawn by all three; nothing on slice 0
    lead = client_for(setup["users"]["lead"])
    response = lead.get(f"/api/v1/cases/{case.pk}/consensus/{series_uid}/labels?method=majority")
    assert response.status_code == 200 and response["X-Consensus-Readers"] == "reader1,reader2,reader3"
    assert lead.get(f"/api/v1/cases/{case.pk}/consensus/{series_uid}/labels?method=mean").status_code == 400


@pytest.mark.parametrize(
    ("who", "protocol_status", "assign_status"),
    [("anonymous", 403, 403), ("outsider", 404, 404), ("reader1", 404, 404), ("adjudicator", 200, 403), ("lead", 200, 200), ("admin", 200, 200)],
)
def test_study_management_is_for_leads(who: str, protocol_status: int, assign_status: int) -> None:
    setup = _study(two_phase=False)
    study = setup["study"]
    client = APIClient()
    if who == "admin":
        client.force_authenticate(make_user(username="admin", is_staff=True, is_superuser=True))
    elif who != "anonymous":
        client.force_authenticate(setup["users"][who])
    assert client.get(f"/api/v1/reader-studies/{study.slug}/protocol/").status_code == protocol_status
    assert client.post(f"/api/v1/reader-studies/{study.slug}/assignments/", {}, format="json").status_code == assign_status
    expected = 2 if assign_status == 200 else 0
    assert Assignment.objects.filter(case__reader_study=study).count() == expected


def test_protocol_round_trips_as_yaml_and_cannot_change_once_reading_started() -> None:
    setup = _study(two_phase=False)
    study, lead = setup["study"], client_for(setup["users"]["lead"])
    text = lead.get(f"/api/v1/reader-studies/{study.slug}/protocol/").content.decode()
    assert "central_canal" in text
    changed = text.replace("name: Central canal stenosis, 4 grades", "name: Renamed")
    assert lead.put(f"/api/v1/reader-studies/{study.slug}/protocol/", changed.encode(), content_type="application/yaml").json()["name"] == "Renamed"
    broken = lead.put(f"/api/v1/reader-studies/{study.slug}/protocol/", b"levels: [", content_type="application/yaml")
    assert broken.status_code == 400 and "not valid YAML" in broken.json()["detail"]
    reader = setup["users"]["reader1"]
    read_save(assignment=assignment_create(case=study.cases.get(), reader=reader), user=reader, base_version=0, grades=[])
    refused = lead.put(f"/api/v1/reader-studies/{study.slug}/protocol/", text.encode(), content_type="application/yaml")
    assert refused.status_code == 400 and "can no longer change" in refused.json()["detail"]
    study.refresh_from_db()
    assert study.protocol["name"] == "Renamed"


def test_audit_chain_records_every_change_and_detects_tampering(capsys: pytest.CaptureFixture[str]) -> None:
    setup = _study(two_phase=False)
    reader = setup["users"]["reader1"]
    assignment = assignment_create(case=setup["study"].cases.get(), reader=reader)
    read_save(assignment=assignment, user=reader, base_version=0, grades=grades(["0", "1", "2", "3", "0"]))
    read_submit(assignment=assignment, user=reader, base_version=1)
    actions = list(AuditEvent.objects.order_by("sequence").values_list("action", flat=True))
    assert actions[-2:] == ["read.save", "read.submit"]
    assert audit_verify().ok
    call_command("audit_verify", "--replay")
    out = capsys.readouterr().out
    assert "audit chain intact" in out and "rebuild the current state of 1 read(s)" in out
    # a read version written behind the services' back is found by the replay
    ReadVersion.objects.create(assignment=assignment, version=3, phase="unaided", submitted=True, saved_by=reader)
    with pytest.raises(SystemExit):
        call_command("audit_verify", "--replay")
    assert "database has (3, 'unaided', True)" in capsys.readouterr().err
    AuditEvent.objects.filter(action="read.save").update(details={"version": 1, "phase": "unaided", "grades": 0, "measurements": 0})
    broken = audit_verify()
    assert not broken.ok and "changed after it was recorded" in broken.problem
    with pytest.raises(SystemExit):
        call_command("audit_verify")


def test_study_overview_and_adjudication_pages_for_leads_only() -> None:
    setup = _study(two_phase=False, readers=2)
    study, users = setup["study"], setup["users"]
    case = study.cases.get()
    lead = APIClient()
    lead.force_login(users["lead"])
    page = lead.post(f"/studies/{study.slug}/", {"action": "assign"})
    assert page.status_code == 200 and "2 new assignment(s)" in page.content.decode()
    for name, values in {"reader1": ["0", "1", "2", "3", "0"], "reader2": ["0", "1", "2", "1", "0"]}.items():
        assignment = Assignment.objects.get(reader=users[name], case=case)
        read_save(assignment=assignment, user=users[name], base_version=0, grades=grades(values))
        read_submit(assignment=assignment, user=users[name], base_version=1)
    from spinereview.studies.selectors import study_progress

    # Reads saved outside the viewer carry no reading time: the median is unknown, not 0 s.
    assert [(r["reader"], r["submitted"], r["median_reading_time_s"]) for r in study_progress(reader_study=study)] == [("reader1", 1, None), ("reader2", 1, None)]
    page = lead.post(f"/studies/{study.slug}/", {"action": "adjudication"}).content.decode()
    assert "1 new disagreement(s)" in page and "differ by 2 categories" in page
    adjudicate_url = f"/studies/{study.slug}/cases/{case.pk}/adjudicate/"
    html = lead.get(adjudicate_url).content.decode()
    assert html.count('class="disputed"') == 1
    form = {f"grade|{level}|central_canal": value for level, value in zip(LEVELS, ["0", "1", "2", "2", "0"], strict=True)}
    assert lead.post(adjudicate_url, form | {"note": "read together"}).status_code == 302
    assert case.reference_reads.get().grades[3] == {"level": "L4-L5", "condition": "central_canal", "value": "2"}
    bad = lead.post(adjudicate_url, {"grade|L4-L5|central_canal": "7"})
    assert bad.status_code == 200 and "not valid for this protocol" in bad.content.decode()
    assert case.reference_reads.count() == 1
    reader = APIClient()
    reader.force_login(users["reader1"])
    assert reader.get(f"/studies/{study.slug}/").status_code == 404
    assert reader.get(adjudicate_url).status_code == 404


def test_a_lead_creates_a_study_from_a_template_edits_it_adds_members_and_opens_the_upload_page() -> None:
    from django.contrib.auth.models import Permission

    lead_user = make_user(username="newlead")
    lead_user.user_permissions.add(Permission.objects.get(codename="add_readerstudy"))
    lead = APIClient()
    lead.force_login(lead_user)
    form = lead.get("/studies/new/?template=schizas-two-phase").content.decode()
    assert "Schizas two-phase stenosis study" in form
    template = Path(settings.BASE_DIR, "protocols", "schizas-two-phase.yaml").read_text()
    data = {"name": "Pilot", "slug": "pilot-2", "protocol": template, "ai_visibility": "always", "seed": "11"}
    refused = lead.post("/studies/new/", data)
    assert "two-phase protocol reveals the AI after the unaided read" in refused.content.decode()
    assert not ReaderStudy.objects.filter(slug="pilot-2").exists()
    assert "not valid YAML" in lead.post("/studies/new/", data | {"protocol": "levels: ["}).content.decode()
    created = lead.post("/studies/new/", data | {"ai_visibility": "after_submit"})
    assert created.status_code == 302 and created["Location"] == "/studies/pilot-2/"
    study = ReaderStudy.objects.get(slug="pilot-2")
    assert study.protocol["two_phase"] and study.randomisation_seed == 11
    assert StudyMembership.objects.filter(reader_study=study, user=lead_user, role="lead").exists()

    edited = template.replace("name: Schizas two-phase stenosis study", "name: Edited")
    assert "Protocol saved" in lead.post("/studies/pilot-2/protocol/", {"protocol": edited}).content.decode()
    assert "unknown scale" in lead.post("/studies/pilot-2/protocol/", {"protocol": edited.replace("scale: lee", "scale: leee")}).content.decode()
    study.refresh_from_db()
    assert study.protocol["name"] == "Edited"

    make_user(username="radiologist")
    assert lead.post("/studies/pilot-2/members/", {"username": "radiologist", "role": "reader"}).status_code == 302
    assert "No user &#x27;ghost&#x27;" in lead.post("/studies/pilot-2/members/", {"username": "ghost", "role": "reader"}).content.decode()
    assert StudyMembership.objects.filter(reader_study=study, user__username="radiologist", role="reader").exists()
    assert 'id="upload-progress"' in lead.get("/studies/pilot-2/upload/").content.decode()

    reader = APIClient()
    reader.force_login(make_user(username="plainreader"))
    assert reader.get("/studies/new/").status_code == 403
    assert reader.post("/studies/new/", data | {"slug": "pilot-3", "ai_visibility": "after_submit"}).status_code == 403
    assert reader.get("/studies/pilot-2/protocol/").status_code == 404
    assert reader.get("/studies/pilot-2/upload/").status_code == 404
    assert not ReaderStudy.objects.filter(slug="pilot-3").exists()


def test_a_user_creates_rotates_and_revokes_an_api_token_that_tools_can_use() -> None:
    from rest_framework.authtoken.models import Token

    setup = _study(two_phase=False)
    reader = setup["users"]["reader1"]
    assignment = assignment_create(case=setup["study"].cases.get(), reader=reader)
    browser = APIClient()
    browser.force_login(reader)
    page = browser.post("/accounts/token/", {"action": "create"}).content.decode()
    key = Token.objects.get(user=reader).key
    assert key in page and "not shown again" in page
    assert key not in browser.get("/accounts/token/").content.decode()
    tool = APIClient()
    tool.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert tool.get(f"/api/v1/assignments/{assignment.pk}/").status_code == 200
    browser.post("/accounts/token/", {"action": "create"})
    stale = tool.get(f"/api/v1/assignments/{assignment.pk}/")
    assert (stale.status_code, stale.json()["detail"]) == (403, "Invalid token.")  # the old key stopped working
    browser.post("/accounts/token/", {"action": "revoke"})
    assert not Token.objects.filter(user=reader).exists()
    assert APIClient().get("/accounts/token/").status_code == 302  # to the login page

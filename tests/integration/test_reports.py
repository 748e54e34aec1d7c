"""The statistics report of a reader study: computed from submitted reads, cached per fingerprint,
stale when reads change, recomputed by the task that read_submit enqueues.

`reports_study` (also used by the other test_reports_* modules) builds a small study with known reads.
"""

from __future__ import annotations

import io
import uuid
from pathlib import Path
from typing import Any

import pydicom
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from spinereview.agreement import cohen_kappa_score, fleiss_kappa_score, icc_score
from spinereview.imaging.services import ImportSource
from spinereview.reports.analysis import ALL_LEVELS
from spinereview.reports.models import AgreementReport
from spinereview.reports.selectors import study_fingerprint, study_inputs
from spinereview.reports.services import agreement_report_compute
from spinereview.reports.tasks import agreement_report_compute as agreement_report_task
from spinereview.studies.models import Case, ReadVersion, StudyMembership
from spinereview.studies.services import assignment_create, cases_import, read_save, read_submit, reference_read_record
from tests.dicom_files import mr_slice
from tests.factories import make_membership, make_reader_study, make_user

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

LEVELS = ["L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]
# Grades per reader and case label, one per level (four_grade scale "0" < "1" < "2" < "3").
GRADES = {
    "r1": {"Case 001": ["0", "1", "2", "3", "0"], "Case 002": ["1", "1", "2", "2", "0"], "Case 003": ["0", "0", "1", "3", "3"]},
    "r2": {"Case 001": ["0", "1", "3", "3", "1"], "Case 002": ["1", "2", "2", "2", "0"], "Case 003": ["0", "0", "1", "2", "3"]},
}
# r1 and r2 measure the canal AP diameter at L4-L5 (two points 11.5 / 12 mm apart along x).
AP_MM = {"r1": {"Case 001": 11.5, "Case 002": 9.0, "Case 003": 7.25}, "r2": {"Case 001": 12.0, "Case 002": 9.5, "Case 003": 7.0}}
REFERENCE_CASE_1 = ["0", "1", "3", "3", "0"]


def grades_payload(values: list[str]) -> list[dict[str, str]]:
    return [{"level": lv, "condition": "central_canal", "value": v} for lv, v in zip(LEVELS, values, strict=True)]


def ap_measurement(case: Case, length_mm: float) -> dict[str, Any]:
    series_uid = case.case_series.get().series.series_instance_uid
    return {
        "id": str(uuid.uuid4()),
        "key": "ap_diameter",
        "level": "L4-L5",
        "series_instance_uid": series_uid,
        "points_mm": [[0.0, 0.0, 10.0], [length_mm, 0.0, 10.0]],
    }


def submit(case: Case, reader: Any, values: list[str], *, kind: str = "live", ap_mm: float | None = None) -> None:
    assignment = assignment_create(case=case, reader=reader, kind=kind)
    measurements = [ap_measurement(case, ap_mm)] if ap_mm is not None else []
    version = read_save(assignment=assignment, user=reader, base_version=0, grades=grades_payload(values), measurements=measurements)
    read_submit(assignment=assignment, user=reader, base_version=version.version)


def mr_image(i: int) -> bytes:
    """A one-slice MR image of its own study, with the frame of reference a DICOM SEG needs."""
    dataset = pydicom.dcmread(io.BytesIO(mr_slice(study_uid=f"1.2.826.0.1.{i}", series_uid=f"1.2.826.0.1.{i}.1", rows=4, columns=3)))
    dataset.FrameOfReferenceUID = f"1.2.826.0.1.{i}.9"
    dataset.SliceThickness = 4.0
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.fixture
def reports_study(media_root: Path) -> dict[str, Any]:
    study = make_reader_study(name="Reports study", slug="reports-study")
    users = {name: make_user(username=name) for name in ("r1", "r2", "r3", "lead", "adjudicator")}
    users["admin"] = make_user(username="admin", is_staff=True)
    for name in ("r1", "r2", "r3"):
        make_membership(reader_study=study, user=users[name], role=StudyMembership.Role.READER)
    make_membership(reader_study=study, user=users["lead"], role=StudyMembership.Role.LEAD)
    make_membership(reader_study=study, user=users["adjudicator"], role=StudyMembership.Role.ADJUDICATOR)
    sources = [ImportSource(f"c{i}.dcm", mr_image(i)) for i in (1, 2, 3)]
    cases_import(sources=sources, reader_study=study)
    cases = {c.label: c for c in Case.objects.filter(reader_study=study)}
    assert sorted(cases) == ["Case 001", "Case 002", "Case 003"]
    for reader in ("r1", "r2"):
        for label, values in GRADES[reader].items():
            submit(cases[label], users[reader], values, ap_mm=AP_MM[reader][label])
    reference_read_record(case=cases["Case 001"], user=users["adjudicator"], grades=grades_payload(REFERENCE_CASE_1))
    return {"study": study, "users": users, "cases": cases}


def _items(reader: str) -> list[str]:
    return [v for label in ("Case 001", "Case 002", "Case 003") for v in GRADES[reader][label]]


def test_report_matches_the_statistics_on_the_same_items(reports_study: dict[str, Any]) -> None:
    study = reports_study["study"]
    report = agreement_report_compute(reader_study=study, n_resamples=200, seed=7).report
    categories = ["0", "1", "2", "3"]
    pooled = next(p for p in report["pairwise"] if p["level"] == ALL_LEVELS and p["condition"] == "central_canal")
    assert (pooled["rater_a"], pooled["rater_b"], pooled["phase"], pooled["n"], pooled["n_cases"]) == ("r1", "r2", "unaided", 15, 3)
    for weights in ("none", "linear", "quadratic"):
        expected = cohen_kappa_score(_items("r1"), _items("r2"), categories=categories, weights=weights).kappa  # type: ignore[arg-type]
        assert pooled["kappa"][weights]["estimate"] == pytest.approx(expected, abs=1e-12)
        low, high = pooled["kappa"][weights]["ci_low"], pooled["kappa"][weights]["ci_high"]
        assert low is not None and high is not None and low <= expected + 1e-9 and expected - 1e-9 <= high
    assert pooled["percent_agreement"] == pytest.approx(100 * 11 / 15)
    # r1 vs r2 confusion over all 15 items: rows r1, columns r2
    assert pooled["confusion"] == [[4, 1, 0, 0], [0, 3, 1, 0], [0, 0, 2, 1], [0, 0, 1, 2]]
    l3 = next(p for p in report["pairwise"] if p["level"] == "L3-L4")
    assert l3["n"] == 3 and l3["kappa"]["quadratic"]["ci_low"] is None  # per-level rows: point estimates
    multi = next(m for m in report["multirater"] if m["level"] == ALL_LEVELS)
    table = [[a, b] for a, b in zip(_items("r1"), _items("r2"), strict=True)]
    assert multi["fleiss_kappa"] == pytest.approx(fleiss_kappa_score(table, categories=categories).kappa, abs=1e-12)
    # reader vs the adjudicated reference of case 1 (the only reference): 5 items
    vs = {row["rater"]: row for row in report["vs_reference"]}
    assert vs["r1"]["n"] == 5 and vs["r1"]["reference_sources"] == ["adjudicated"]
    assert vs["r1"]["accuracy"] == pytest.approx(0.8)  # r1 graded L3-L4 "2", the reference "3"
    assert vs["r2"]["accuracy"] == pytest.approx(0.8)  # r2 graded L5-S1 "1", the reference "0"
    assert [c["category"] for c in vs["r1"]["per_class"]] == categories
    # continuous: AP diameter at L4-L5 in 3 cases
    ap = next(c for c in report["continuous"] if c["quantity"] == "ap_diameter.length_mm" and c["rater_b"] == "r2")
    x, y = [AP_MM["r1"][c] for c in ("Case 001", "Case 002", "Case 003")], [AP_MM["r2"][c] for c in ("Case 001", "Case 002", "Case 003")]
    assert ap["n"] == 3 and ap["unit"] == "mm"
    assert ap["mae"] == pytest.approx((0.5 + 0.5 + 0.25) / 3)
    assert ap["icc_a1"]["estimate"] == pytest.approx(icc_score(list(zip(x, y, strict=True)), form="ICC(A,1)").icc, abs=1e-12)
    assert ap["bland_altman"]["bias"] == pytest.approx((-0.5 - 0.5 + 0.25) / 3)
    assert report["meta"]["readers"] == ["r1", "r2"] and report["meta"]["n_resamples"] == 200 and report["meta"]["seed"] == 7


def test_the_report_is_cached_per_fingerprint_and_stale_after_a_new_read(reports_study: dict[str, Any]) -> None:
    study, users, cases = reports_study["study"], reports_study["users"], reports_study["cases"]
    first = agreement_report_compute(reader_study=study, n_resamples=200)
    with CaptureQueriesContext(connection) as queries:
        again = agreement_report_compute(reader_study=study, n_resamples=200)
    assert again.pk == first.pk and AgreementReport.objects.filter(reader_study=study).count() == 1
    assert not any("INSERT" in q["sql"] for q in queries.captured_queries)  # nothing recomputed or written
    fingerprint = study_fingerprint(reader_study=study, n_resamples=200, seed=first.report["meta"]["seed"])
    assert fingerprint == first.inputs_sha256

    submit(cases["Case 001"], users["r3"], ["0", "1", "2", "3", "0"])  # a third reader submits
    assert study_fingerprint(reader_study=study, n_resamples=200, seed=first.report["meta"]["seed"]) != fingerprint
    fresh = agreement_report_compute(reader_study=study, n_resamples=200)
    assert fresh.pk != first.pk and fresh.report["meta"]["readers"] == ["r1", "r2", "r3"]
    assert {(p["rater_a"], p["rater_b"]) for p in fresh.report["pairwise"]} == {("r1", "r2"), ("r1", "r3"), ("r2", "r3")}


def test_task_computes_once_and_ignores_a_deleted_study(reports_study: dict[str, Any]) -> None:
    study = reports_study["study"]
    fingerprint = agreement_report_task(reader_study_id=str(study.pk))
    assert fingerprint == agreement_report_task(reader_study_id=str(study.pk))
    assert AgreementReport.objects.filter(reader_study=study).count() == 1
    assert agreement_report_task(reader_study_id="00000000-0000-4000-8000-000000000000") is None


def test_read_submit_enqueues_the_recompute_on_commit(reports_study: dict[str, Any], django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    queued: list[dict[str, str]] = []
    monkeypatch.setattr(agreement_report_task, "delay", lambda **kwargs: queued.append(kwargs))
    with django_capture_on_commit_callbacks(execute=True):
        submit(reports_study["cases"]["Case 002"], reports_study["users"]["r3"], ["1", "1", "2", "2", "0"])
    assert queued == [{"reader_study_id": str(reports_study["study"].pk)}]


def test_calibration_cases_and_assignments_stay_out_of_the_statistics(reports_study: dict[str, Any]) -> None:
    study, users, cases = reports_study["study"], reports_study["users"], reports_study["cases"]
    Case.objects.filter(pk=cases["Case 003"].pk).update(is_calibration=True)
    inputs = study_inputs(reader_study=study)
    assert {g.case for g in inputs.grades} == {str(cases["Case 001"].pk), str(cases["Case 002"].pk)}
    submit(cases["Case 001"], users["r3"], ["3", "3", "3", "3", "3"], kind="calibration")
    assert {g.reader for g in study_inputs(reader_study=study).grades} == {"r1", "r2"}


def test_dashboard_shows_the_cached_report_with_filters(reports_study: dict[str, Any]) -> None:
    from django.test import Client

    client = Client()
    client.force_login(reports_study["users"]["lead"])
    response = client.get("/studies/reports-study/reports/?level=L3-L4&weights=linear&quantity=ap_diameter.length_mm")
    assert response.status_code == 200
    html = response.content.decode()
    report = AgreementReport.objects.get(reader_study=reports_study["study"]).report
    pooled = next(p for p in report["pairwise"] if p["level"] == ALL_LEVELS)
    l3 = next(p for p in report["pairwise"] if p["level"] == "L3-L4")
    assert f">{pooled['kappa']['linear']['estimate']:.2f}</text>" in html  # heatmap cell "all"
    assert f"<td class=\"num\">{l3['kappa']['linear']['estimate']:.3f}</td>" in html  # pairs table at L3-L4
    assert html.count('class="figure confusion"') == 3  # r1 vs r2 at L3-L4, r1 and r2 vs the reference (all levels)
    assert html.count('class="figure bland-altman"') == 1 and "ap_diameter.length_mm: r1 − r2 (n=3)" in html
    measured = ReadVersion.objects.filter(submitted=True, measurements__isnull=False).distinct().count()
    assert measured == 6 and html.count("DICOM SR (measurements)</a>") == 6

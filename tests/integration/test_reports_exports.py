"""Streamed exports: the tidy reads CSV parsed back row by row, XLSX, statistics CSV/JSON, export_reads."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from openpyxl import load_workbook

from spinereview.reports.exports import READ_COLUMNS, STATISTICS_COLUMNS
from spinereview.studies.models import ReadVersion
from tests.integration import test_reports
from tests.integration.test_reports import AP_MM, GRADES, LEVELS, REFERENCE_CASE_1

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

reports_study = test_reports.reports_study  # the shared study fixture


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _body(response: Any) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def expected_read_rows(study: Any) -> list[dict[str, str]]:
    rows = []
    reads = {(r.assignment.case.label, r.assignment.reader.username): r for r in ReadVersion.objects.filter(submitted=True).select_related("assignment__case", "assignment__reader")}
    for label in ("Case 001", "Case 002", "Case 003"):
        for reader in ("r1", "r2"):
            read = reads[(label, reader)]
            head = {
                "study": "reports-study", "case": label, "case_id": str(read.assignment.case_id), "calibration": "false", "reader": reader,
                "kind": "live", "phase": "unaided", "version": "2", "submitted_at": read.created.astimezone(UTC).isoformat(timespec="microseconds"),
                "reading_s": "0.0",
            }  # fmt: skip
            for level, grade in zip(LEVELS, GRADES[reader][label], strict=True):
                rows.append(head | {"item_type": "grade", "level": level, "item": "central_canal", "grade": grade, "grade_rank": grade, "value": "", "unit": ""})
            rows.append(head | {"item_type": "measurement", "level": "L4-L5", "item": "ap_diameter.length_mm", "grade": "", "grade_rank": "", "value": repr(AP_MM[reader][label]), "unit": "mm"})
    return rows


def test_reads_csv_parses_back_to_exactly_the_submitted_reads(reports_study: dict[str, Any]) -> None:
    response = _client(reports_study["users"]["lead"]).get("/api/v1/reader-studies/reports-study/reads.csv")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="reports-study-reads.csv"'
    text = _body(response).decode()
    assert text.startswith(",".join(READ_COLUMNS) + "\r\n")
    parsed = list(csv.DictReader(io.StringIO(text, newline="")))
    assert parsed == expected_read_rows(reports_study["study"])


def test_export_reads_command_writes_csv_and_xlsx(reports_study: dict[str, Any], tmp_path: Path) -> None:
    csv_path, xlsx_path = tmp_path / "reads.csv", tmp_path / "reads.xlsx"
    call_command("export_reads", "reports-study", "--format", "csv", "--out", str(csv_path))
    http = _body(_client(reports_study["users"]["lead"]).get("/api/v1/reader-studies/reports-study/reads.csv"))
    assert csv_path.read_bytes() == http
    call_command("export_reads", "reports-study", "--format", "xlsx", "--out", str(xlsx_path))
    workbook = load_workbook(xlsx_path, read_only=True)
    assert workbook.sheetnames == ["reads", "reference", "ai"]
    sheet = [["" if v is None else str(v) for v in row] for row in workbook["reads"].iter_rows(values_only=True)]
    expected = expected_read_rows(reports_study["study"])
    assert sheet[0] == list(READ_COLUMNS) and len(sheet) == len(expected) + 1
    assert [dict(zip(READ_COLUMNS, row, strict=True))["grade"] for row in sheet[1:6]] == GRADES["r1"]["Case 001"]
    reference = list(workbook["reference"].iter_rows(values_only=True))
    assert [r[5] for r in reference[1:]] == REFERENCE_CASE_1 and {r[7] for r in reference[1:]} == {"adjudicated"}


@pytest.mark.parametrize(
    ("args", "message"),
    [(["no-such-study", "--format", "csv"], "No reader study with slug 'no-such-study'"), (["reports-study", "--format", "pdf"], "invalid choice: 'pdf'")],
)
def test_export_reads_refuses_bad_arguments_and_writes_nothing(reports_study: dict[str, Any], tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "out"
    with pytest.raises(CommandError, match=message):
        call_command("export_reads", *args, "--out", str(out))
    assert not out.exists()


def test_statistics_csv_and_json_carry_the_same_numbers(reports_study: dict[str, Any]) -> None:
    client = _client(reports_study["users"]["lead"])
    body = json.loads(_body(client.get("/api/v1/reader-studies/reports-study/statistics.json")))
    report = body["report"]
    rows = list(csv.DictReader(io.StringIO(_body(client.get("/api/v1/reader-studies/reports-study/statistics.csv")).decode(), newline="")))
    assert list(rows[0]) == list(STATISTICS_COLUMNS)
    pooled = next(p for p in report["pairwise"] if p["level"] == "all")
    quadratic = next(r for r in rows if r["section"] == "pairwise" and r["level"] == "all" and r["statistic"] == "kappa_quadratic")
    assert float(quadratic["estimate"]) == pooled["kappa"]["quadratic"]["estimate"]
    assert float(quadratic["ci_low"]) == pooled["kappa"]["quadratic"]["ci_low"] and quadratic["n"] == "15"


def test_reads_export_has_every_number_measured_from_a_mask(reports_study: dict[str, Any]) -> None:
    """Mask rows carry each quantity of the mask's level measurements with its unit; quantities the
    mask could not give (None) are left out rather than written as a number."""
    from spinereview.reports.exports import read_rows
    from spinereview.studies.models import Assignment, SegmentationVersion

    assignment = Assignment.objects.get(case=reports_study["cases"]["Case 002"], reader__username="r1")
    measured = [
        {"level": "L4-L5", "dsca_mm2": 112.5, "min_dsca_mm2": 98.25, "ap_diameter_mm": 11.0, "muscle_csa_left_mm2": 803.0,
         "muscle_fat_fraction_left_percent": 12.5, "muscle_fat_fraction_right_percent": None, "muscle_fat_method": "fat_water"},
        {"level": "L3-L4", "disc_height_middle_mm": 9.75},
    ]  # fmt: skip
    SegmentationVersion.objects.create(
        assignment=assignment, series=assignment.case.case_series.get().series, version=1, saved_by=assignment.reader,
        file_path="x.npz", sha256="0" * 64, shape=[1, 1, 1], voxels_per_label={}, level_measurements=measured,
    )  # fmt: skip
    masks = [row for row in read_rows(reader_study=reports_study["study"]) if row[10] == "mask"]
    assert [(r[11], r[12], r[15], r[16]) for r in masks] == [
        ("L3-L4", "mask.disc_height_middle_mm", 9.75, "mm"),
        ("L4-L5", "mask.dsca_mm2", 112.5, "mm2"),
        ("L4-L5", "mask.min_dsca_mm2", 98.25, "mm2"),
        ("L4-L5", "mask.ap_diameter_mm", 11.0, "mm"),
        ("L4-L5", "mask.muscle_csa_left_mm2", 803.0, "mm2"),
        ("L4-L5", "mask.muscle_fat_fraction_left_percent", 12.5, "%"),
    ]
    assert all(r[4] == "r1" and r[1] == "Case 002" for r in masks)


# The model's grader grades stenosis and, as a second task, the sedimentation sign (DEFAULT_PROTOCOL's ai_grader_tasks).
SIGN_GRADER: dict[str, Any] = {
    "name": "g", "version": "g@0123456789ab", "grades": ["normal", "mild", "moderate", "severe"], "heldout": {"accuracy": 0.89, "n": 100},
    "tasks": {"sedimentation_sign": {"classes": ["absent", "present"], "heldout": {"accuracy": 0.95, "n": 100}}},
}  # fmt: skip
AI_SIGN = {"Case 001": [0, 0, 1, 1, 0], "Case 002": [0, 1, 1, 1, 0], "Case 003": [0, 0, 0, 1, 1]}  # class index per level
AI_STENOSIS = {"Case 001": [0, 1, 2, 3, 0], "Case 002": [1, 1, 2, 2, 0], "Case 003": [0, 0, 1, 3, 2]}


def _ai_model_with_sign_grades(cases: dict[str, Any]) -> Any:
    """The active model, with its grader's stenosis and sign grades of every level; L5-S1 of Case 003 was
    graded for stenosis but got no sign grade (as an older grader would have left it)."""
    from spinereview.ai.models import AILevelMeasurement, ModelVersion

    model = ModelVersion.objects.create(
        name="seg", version="seg@aaaaaaaaaaaa", path="/models/seg", label_map={"4": "dural_sac"}, config={}, is_active=True, grader=SIGN_GRADER
    )
    for label, case in cases.items():
        for i, level in enumerate(LEVELS):
            stenosis, sign = AI_STENOSIS[label][i], AI_SIGN[label][i]
            probabilities = [0.1, 0.1]
            probabilities[sign] = 0.9
            AILevelMeasurement.objects.create(
                dicom_study=case.dicom_study, model_version=model, level=level, dsca_mm2=100.0 - 10 * i, axial_slice_index=i,
                grade_index=stenosis, grade_name=SIGN_GRADER["grades"][stenosis], grader_version=SIGN_GRADER["version"],
                grade_probabilities={name: (0.7 if j == stenosis else 0.1) for j, name in enumerate(SIGN_GRADER["grades"])},
                task_grades={} if (label, level) == ("Case 003", "L5-S1") else {
                    "sedimentation_sign": {"index": sign, "name": ["absent", "present"][sign], "probabilities": dict(zip(["absent", "present"], probabilities, strict=True))}
                },
            )  # fmt: skip
    return model


def test_two_ai_graded_conditions_give_a_row_each_and_the_dsca_once_per_level(reports_study: dict[str, Any]) -> None:
    from spinereview.reports.analysis import AI_RATER
    from spinereview.reports.exports import AI_COLUMNS, ai_rows
    from spinereview.reports.selectors import agreement_summary, study_inputs
    from spinereview.reports.services import agreement_report_compute

    study, cases = reports_study["study"], reports_study["cases"]
    _ai_model_with_sign_grades(cases)
    exported: list[dict[str, Any]] = [dict(zip(AI_COLUMNS, row, strict=True)) for row in ai_rows(reader_study=study)]
    assert [(r["case"], r["level"], r["condition"]) for r in exported] == [
        (label, level, condition) for label in ("Case 001", "Case 002", "Case 003") for level in LEVELS for condition in ("central_canal", "sedimentation_sign")
    ]
    for r in exported:
        i = LEVELS.index(r["level"])
        if r["condition"] == "central_canal":
            assert (r["dsca_mm2"], r["grade"], r["grade_rank"], r["grade_confidence"]) == (100.0 - 10 * i, str(AI_STENOSIS[r["case"]][i]), AI_STENOSIS[r["case"]][i], 0.7)
            continue
        assert r["dsca_mm2"] is None  # the level's area is on its first row only
        assert (r["grade_source"], r["grader_version"]) == ("grader", "g@0123456789ab")
        if (r["case"], r["level"]) == ("Case 003", "L5-S1"):
            assert (r["grade"], r["grade_confidence"], r["no_grade_reason"]) == (None, None, "the grader gave no sedimentation_sign grade for this level")
        else:
            sign = AI_SIGN[r["case"]][i]
            assert (r["grade"], r["grade_rank"], r["grade_confidence"], r["no_grade_reason"]) == (["absent", "present"][sign], sign, 0.9, None)

    inputs = study_inputs(reader_study=study, n_resamples=10, with_mask_overlaps=False)
    ai_dsca = sorted((v.case, v.level, v.quantity) for v in inputs.values if v.reader == AI_RATER and v.quantity == "dsca.area_mm2")
    assert len(ai_dsca) == len(set(ai_dsca)) == 15  # once per case and level, not once per AI-graded condition
    sign_grades = {(g.case, g.level): g.value for g in inputs.ai_grades if g.condition == "sedimentation_sign"}
    assert len(sign_grades) == 14 and sign_grades[(str(cases["Case 002"].pk), "L2-L3")] == "present"
    assert len([g for g in inputs.ai_grades if g.condition == "central_canal"]) == 15
    assert inputs.notes[0] == (
        "The AI's grades: stenosis grader g@0123456789ab (normal, mild, moderate, severe) on the axial slice at each disc; held-out accuracy 0.89 on 100 levels; "
        "sedimentation_sign: grader g@0123456789ab task sedimentation_sign (absent, present); held-out accuracy 0.95 on 100 levels"
    )
    assert "No AI sedimentation_sign grade for case Case 003 (L5-S1): the grader gave no sedimentation_sign grade for this level" in inputs.notes

    report = agreement_report_compute(reader_study=study, n_resamples=100).report
    assert report["meta"]["ai_graded_conditions"] == ["central_canal", "sedimentation_sign"]
    # The agreement summary's main table stays on ai_grade's condition...
    summary = agreement_summary(reader_study=study)
    assert summary.condition == "central_canal" and summary.ai_grade_method is not None and "sedimentation" not in summary.ai_grade_method
    # ...and each further AI-graded condition gets its own pairs: no reader graded the sign yet, so none.
    (sign_summary,) = summary.other_conditions
    assert (sign_summary.condition, sign_summary.categories, sign_summary.pairs) == ("sedimentation_sign", ("absent", "present"), ())
    assert sign_summary.ai_grades_flagged == ("Case 003 (L5-S1): the grader gave no sedimentation_sign grade for this level",)


def test_the_agreement_page_has_the_sign_kappa_of_a_reader_against_the_ai(reports_study: dict[str, Any], client: Client) -> None:
    from spinereview.reports.selectors import agreement_summary
    from spinereview.studies.services import assignment_create, read_save, read_submit

    study, cases, users = reports_study["study"], reports_study["cases"], reports_study["users"]
    _ai_model_with_sign_grades(cases)
    # r3 calls the sign as the AI did on every level but one (Case 001 L1-L2: present where the AI said absent)
    for label, case in cases.items():
        signs = list(AI_SIGN[label])
        if label == "Case 001":
            signs[0] = 1
        grades = test_reports.grades_payload(GRADES["r1"][label]) + [
            {"level": level, "condition": "sedimentation_sign", "value": ["absent", "present"][v]} for level, v in zip(LEVELS, signs, strict=True)
        ]
        assignment = assignment_create(case=case, reader=users["r3"])
        version = read_save(assignment=assignment, user=users["r3"], base_version=0, grades=grades)
        read_submit(assignment=assignment, user=users["r3"], base_version=version.version)
    (sign_summary,) = agreement_summary(reader_study=study).other_conditions
    (pair,) = sign_summary.pairs
    # 14 common items (the AI has no sign for Case 003 L5-S1), 13 equal; the AI says present on 6, r3 on 7:
    # p_o = 13/14, p_e = (7 x 6 + 7 x 8) / 14² = 0.5, kappa = (13/14 - 0.5) / 0.5
    assert (pair.rater_a, pair.rater_b, pair.n) == ("r3", "AI", 14)
    assert pair.kappa_quadratic == pytest.approx((13 / 14 - 0.5) / 0.5)
    assert pair.percent_agreement == pytest.approx(100 * 13 / 14)
    client.force_login(users["lead"])
    page = client.get(f"/studies/{study.slug}/agreement/").content.decode()
    assert 'id="agreement-sedimentation_sign"' in page and 'id="kappa-sedimentation_sign-r3-AI"' in page and "0.857" in page
    assert 'id="kappa-r1-r2"' in page and 'id="kappa-r1-AI"' in page  # the stenosis table, as before
    body = client.get(f"/api/v1/reader-studies/{study.slug}/agreement/").json()
    assert body["other_conditions"][0]["pairs"][0]["kappa_quadratic"] == pytest.approx(0.8571, abs=1e-4)

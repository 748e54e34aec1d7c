"""The model's stenosis grader on the serving path: a real worker grades each disc level after the masks
are measured, the grades are stored, and the reports' AI rater uses them (PostgreSQL, Redis, a worker)."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings

from spinereview.ai.level_grades import ai_level_grades_compute, level_grades_sweep
from spinereview.ai.models import AILevelMeasurement, AISegmentation, ModelVersion
from spinereview.ai.services import model_version_register
from spinereview.imaging.selectors import series_orientation, series_volume_load
from spinereview.imaging.services import sources_from_path
from spinereview.reports.exports import AI_COLUMNS, ai_rows
from spinereview.reports.selectors import agreement_summary, study_inputs
from spinereview.studies.models import ReaderStudy
from spinereview.studies.protocols import DEFAULT_PROTOCOL, protocol_validate
from spinereview.studies.services import cases_import
from tests.conftest import REPO, wait_for
from tests.factories import make_reader_study
from tests.integration.conftest import phantom_cases

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

FOUR = ["0", "1", "2", "3"]


@pytest.fixture(scope="module")
def graded_model_dir(test_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo segmenter with a small stenosis grader trained into its grader/ folder (a few seconds:
    this test checks the serving path, not the grader's accuracy, which `ml evaluate-grader` reports)."""
    root = tmp_path_factory.mktemp("graded")
    model = root / "model"
    shutil.copytree(test_model_dir, model, ignore=shutil.ignore_patterns("grader"))
    subprocess.run(
        [sys.executable, "-m", "ml", "train-grader", "--out", str(root / "grader"), "--into", str(model),
         "--cases", "4", "--iterations", "30", "--batch-size", "16", "--heldout-cases", "2", "--threads", "1"],
        check=True, cwd=REPO, capture_output=True,
    )  # fmt: skip
    return model


def _all_graded(model_version: ModelVersion) -> bool:
    return AILevelMeasurement.objects.filter(model_version=model_version).exclude(grader_version="").count() == 5


def _graded_case(model_dir: Path, case_dir: Path) -> tuple[ModelVersion, ReaderStudy]:
    """The model with its grader as the default, one phantom case imported into a new study, and the
    worker's masks, measurements and grades of its five levels awaited."""
    model_version = model_version_register(path=model_dir, activate=True)
    study = make_reader_study()
    cases_import(sources=sources_from_path(case_dir / "dicom"), reader_study=study)
    wait_for(lambda: _all_graded(model_version), timeout_s=300, what="AI masks, per-level measurements and the grader's grades")
    return model_version, study


def _levels(model_version: ModelVersion) -> dict[str, AILevelMeasurement]:
    return {row.level: row for row in AILevelMeasurement.objects.filter(model_version=model_version)}


def _state(model_version: ModelVersion) -> dict[str, tuple[int | None, int | None, str | None]]:
    """Per level: the stenosis grade, the sign's class and why a level was not graded."""
    return {lv: (r.grade_index, (r.task_grades.get("sedimentation_sign") or {}).get("index"), r.errors.get("grade")) for lv, r in _levels(model_version).items()}


def test_the_worker_grades_each_level_and_the_reports_use_the_grader(
    phantom_dir: Path, graded_model_dir: Path, celery_worker_process: subprocess.Popen[bytes]
) -> None:
    model_version, study = _graded_case(graded_model_dir, phantom_cases(phantom_dir)[0])
    assert model_version.grader["grades"] == ["normal", "mild", "moderate", "severe"]
    assert model_version.grader["version"].startswith("phantom-stenosis-grader@")
    # ...and the sedimentation sign as its second task, which DEFAULT_PROTOCOL's ai_grader_tasks grades
    assert model_version.grader["tasks"]["sedimentation_sign"]["classes"] == ["absent", "present"]
    rows = _levels(model_version)
    graded = {level: row for level, row in rows.items() if row.grade_index is not None}
    assert graded, {level: row.errors for level, row in rows.items()}
    index = {level: int(row.grade_index) for level, row in graded.items() if row.grade_index is not None}
    probabilities: dict[str, dict[str, float]] = {level: dict(row.grade_probabilities or {}) for level, row in graded.items()}
    for level, row in rows.items():
        assert row.grader_version == model_version.grader["version"]
        if row.grade_index is None:
            assert row.errors.get("grade"), level  # never silently ungraded
            continue
        assert row.grade_name == model_version.grader["grades"][index[level]]
        assert set(probabilities[level]) == set(model_version.grader["grades"])
        assert sum(probabilities[level].values()) == pytest.approx(1.0, abs=1e-6)
        assert probabilities[level][row.grade_name] == max(probabilities[level].values())
        sign = row.task_grades["sedimentation_sign"]
        assert sign["name"] == ["absent", "present"][sign["index"]] and set(sign["probabilities"]) == {"absent", "present"}
        assert sum(sign["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
    signs = {level: int(row.task_grades["sedimentation_sign"]["index"]) for level, row in graded.items()}

    # The stored grades are the grader's own on the stored mask and the measured slices.
    from ml.inference.api import load_segmenter

    axial = next(s for s in AISegmentation.objects.filter(model_version=model_version).select_related("series") if series_orientation(series=s.series) == "axial")
    loaded = series_volume_load(series=axial.series)
    labels = np.load(Path(settings.MEDIA_ROOT) / axial.file_path)
    again = load_segmenter(graded_model_dir).grade(loaded.volume, loaded.spacing_mm, labels, {lv: int(r.axial_slice_index or 0) for lv, r in graded.items()})
    assert {lv: g.grade for lv, g in again.items()} == index
    assert {lv: g.tasks["sedimentation_sign"].index for lv, g in again.items()} == signs

    # The AI rater of the agreement summary, the report's inputs and the export all take the grader's grades.
    summary = agreement_summary(reader_study=study)
    assert summary.ai_grade_method is not None and summary.ai_grade_method.startswith(f"stenosis grader {model_version.grader['version']}")
    inputs = study_inputs(reader_study=study, n_resamples=10, with_mask_overlaps=False)
    assert {g.level: g.value for g in inputs.ai_grades if g.condition == "central_canal"} == {lv: FOUR[i] for lv, i in index.items()}
    assert {g.level: g.value for g in inputs.ai_grades if g.condition == "sedimentation_sign"} == {lv: ["absent", "present"][i] for lv, i in signs.items()}
    assert any(note.startswith("The AI's grades: stenosis grader") and "; sedimentation_sign: grader " in note for note in inputs.notes)
    exported = {(row[3], row[6]): dict(zip(AI_COLUMNS, row, strict=True)) for row in ai_rows(reader_study=study)}
    for level in graded:
        stenosis, sign = exported[(level, "central_canal")], exported[(level, "sedimentation_sign")]
        assert stenosis["grade"] == FOUR[index[level]] and stenosis["grade_source"] == "grader"
        assert stenosis["grader_version"] == model_version.grader["version"]
        assert stenosis["grade_confidence"] == pytest.approx(max(probabilities[level].values()), abs=1e-4)
        assert sign["grade"] == ["absent", "present"][signs[level]] and sign["grade_source"] == "grader" and sign["dsca_mm2"] is None
        assert sign["grade_confidence"] == pytest.approx(max(graded[level].task_grades["sedimentation_sign"]["probabilities"].values()), abs=1e-4)
    buffer = io.StringIO()
    csv.writer(buffer).writerows(ai_rows(reader_study=study))
    assert "grader" in buffer.getvalue()

    # A protocol that asks for the DSCA cut-offs gets them, grader or not.
    protocol = dict(DEFAULT_PROTOCOL, ai_grade={"condition": "central_canal", "source": "dsca", "dsca_cutoffs_mm2": [100, 75, 50]})
    ReaderStudy.objects.filter(pk=study.pk).update(protocol=protocol_validate(protocol))
    study.refresh_from_db()
    by_dsca = {g.level: g.value for g in study_inputs(reader_study=study, n_resamples=10, with_mask_overlaps=False).ai_grades if g.condition == "central_canal"}
    assert by_dsca == {lv: FOUR[min(sum(r.dsca_mm2 < c for c in (100, 75, 50)), 3)] for lv, r in rows.items() if r.dsca_mm2 is not None and not r.flag}
    assert "cut-offs" in (agreement_summary(reader_study=study).ai_grade_method or "")


def test_grading_is_idempotent_and_a_changed_grader_grades_again(phantom_dir: Path, graded_model_dir: Path, celery_worker_process: subprocess.Popen[bytes]) -> None:
    model_version, study = _graded_case(graded_model_dir, phantom_cases(phantom_dir)[1])
    first = _state(model_version)
    dicom_study_id = str(AILevelMeasurement.objects.filter(model_version=model_version).first().dicom_study_id)  # type: ignore[union-attr]
    ai_level_grades_compute(dicom_study_id=dicom_study_id, model_version_id=str(model_version.pk))  # a redelivered task
    assert _state(model_version) == first
    assert level_grades_sweep(waiting_for_s=0) == []  # nothing pending

    # The grader taken out of the folder and the folder registered again: the grades are forgotten and the
    # study's AI rater falls back to the DSCA cut-offs (source auto).
    grader = graded_model_dir / "grader"
    moved = graded_model_dir.parent / "grader-moved"
    grader.rename(moved)
    try:
        again = model_version_register(path=graded_model_dir, activate=False)
        assert again.pk == model_version.pk and again.grader == {}
        assert set(AILevelMeasurement.objects.filter(model_version=model_version).values_list("grader_version", flat=True)) == {""}
        assert [r.task_grades for r in _levels(model_version).values()] == [{}] * 5  # the sign's grades are forgotten too
        assert "cut-offs" in (agreement_summary(reader_study=study).ai_grade_method or "")
        assert level_grades_sweep(waiting_for_s=0) == []  # a model without a grader has nothing to grade
    finally:
        moved.rename(grader)
    # ...and put back: graded again by the worker.
    model_version_register(path=graded_model_dir, activate=False)
    wait_for(lambda: _all_graded(model_version), timeout_s=120, what="grading again after the grader came back")
    assert _state(model_version) == first

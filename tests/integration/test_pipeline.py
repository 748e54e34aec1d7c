"""The walking skeleton's loop on real components: PostgreSQL, Redis and a Celery worker process.

ingest a phantom examination -> the worker runs the model (queue gpu) -> masks stored with the model
version -> per-level DSCA (queue cpu) -> readers submit -> agreement with the AI and Dice vs truth.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ml.checkpoint import model_version as checkpoint_version
from spinereview.agreement import cohen_kappa_score
from spinereview.ai.models import AILevelMeasurement, AISegmentation, InferenceJob, ModelVersion
from spinereview.ai.services import model_version_register
from spinereview.imaging.selectors import series_get_by_original_uid
from spinereview.imaging.services import reference_segmentation_import, sources_from_path
from spinereview.morphometry import stenosis_grade_from_dsca
from spinereview.reports.selectors import agreement_summary
from spinereview.studies.models import StudyMembership
from spinereview.studies.services import assignment_create, cases_import, read_save, read_submit
from tests.conftest import wait_for
from tests.factories import make_membership, make_reader_study, make_user
from tests.integration.conftest import phantom_cases

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

LEVELS = ["L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]


def test_ingest_to_ai_to_agreement(phantom_dir: Path, test_model_dir: Path, celery_worker_process: subprocess.Popen[bytes]) -> None:
    model_version = model_version_register(path=test_model_dir, activate=True)
    study = make_reader_study()
    readers = [make_user(username=f"r{i}") for i in (1, 2)]
    for reader in readers:
        make_membership(reader_study=study, user=reader, role=StudyMembership.Role.READER)

    case_dir = phantom_cases(phantom_dir)[0]
    truth = json.loads((case_dir / "truth" / "measurements.json").read_text())
    result = cases_import(sources=sources_from_path(case_dir / "dicom"), reader_study=study)
    assert len(result.new_series_ids) == 2
    for series_uid in truth["series"].values():
        reference_segmentation_import(
            series=series_get_by_original_uid(original_series_instance_uid=series_uid),
            source="phantom ground truth",
            npz_path=case_dir / "truth" / f"{series_uid}.npz",
            label_map=truth["label_map"],
        )

    wait_for(lambda: AILevelMeasurement.objects.filter(model_version=model_version).count() == 5, timeout_s=240, what="AI masks and per-level DSCA")
    assert set(InferenceJob.objects.values_list("status", flat=True)) == {"succeeded"}
    segmentations = list(AISegmentation.objects.all())
    assert len(segmentations) == 2
    assert {s.model_version.version for s in segmentations} == {model_version.version}
    config = json.loads((test_model_dir / "config.json").read_text())
    assert model_version.version == checkpoint_version(config["name"], test_model_dir / "weights.pt", config)

    # The AI's per-level DSCA sits near the phantom's analytic value (a small model: loose bound).
    measured = {row.level: row for row in AILevelMeasurement.objects.filter(model_version=model_version)}
    assert set(measured) == set(LEVELS)
    for level in LEVELS:
        assert measured[level].flag == ""
        distance_mm = measured[level].distance_to_disc_mm
        assert distance_mm is not None
        assert distance_mm < 2.0, level
        ai_dsca = measured[level].dsca_mm2
        assert ai_dsca is not None
        # Published DSCA errors of U-Nets on real MRI are about 24 mm2. The demo preset (4 min on a CPU)
        # under-segments the sac where the phantom's roots touch the dura: on 30 fresh levels its error
        # was -9 mm2 on average, limits of agreement -27..+9 (ml evaluate, 22 Nov 2026), and one level of
        # this case -32. A wrong spacing, level or label is off by far more than 40.
        assert abs(ai_dsca - truth["levels"][level]["dsca_mm2"]) < 40.0, (level, ai_dsca, truth["levels"][level]["dsca_mm2"])
        # AP diameter and disc height from the same masks: within a few pixels (0.78 / 0.94 mm) of the analytic values.
        ap_mm, height_mm = measured[level].ap_diameter_mm, measured[level].disc_height_middle_mm
        assert ap_mm is not None and abs(ap_mm - truth["levels"][level]["canal_ap_mm"]) < 3.0, (level, ap_mm)
        assert height_mm is not None and abs(height_mm - truth["levels"][level]["disc_height_middle_mm"]) < 3.0, (level, height_mm)

    # Two readers submit; the agreement summary equals kappa computed directly on the same items.
    case = study.cases.get()
    reader_grades = {readers[0]: ["0", "1", "2", "3", "0"], readers[1]: ["0", "1", "3", "3", "1"]}
    for reader, values in reader_grades.items():
        assignment = assignment_create(case=case, reader=reader)
        version = read_save(
            assignment=assignment, user=reader, base_version=0, grades=[{"level": lv, "condition": "central_canal", "value": v} for lv, v in zip(LEVELS, values, strict=True)]
        )
        read_submit(assignment=assignment, user=reader, base_version=version.version)

    summary = agreement_summary(reader_study=study)
    pairs = {(p.rater_a, p.rater_b): p for p in summary.pairs}
    categories = ["0", "1", "2", "3"]
    expected = cohen_kappa_score(reader_grades[readers[0]], reader_grades[readers[1]], categories=categories, weights="quadratic").kappa
    assert pairs[("r1", "r2")].n == 5
    assert pairs[("r1", "r2")].kappa_quadratic == pytest.approx(expected, abs=1e-12)
    ai = [categories[stenosis_grade_from_dsca(measured[lv].dsca_mm2, cutoffs_mm2=(100.0, 75.0, 50.0))] for lv in LEVELS]  # type: ignore[arg-type]
    expected_ai = cohen_kappa_score(reader_grades[readers[0]], ai, categories=categories, weights="quadratic").kappa
    assert pairs[("r1", "AI")].n == 5
    assert pairs[("r1", "AI")].kappa_quadratic == pytest.approx(expected_ai, abs=1e-12, nan_ok=True)
    dice = {d.structure: d for d in summary.dice}
    assert {"vertebral_body", "intervertebral_disc", "dural_sac"} <= set(dice)
    for structure in ("vertebral_body", "intervertebral_disc", "dural_sac"):
        assert dice[structure].n_series >= 1
        assert dice[structure].mean_dice > 0.5, f"{structure}: {dice[structure]}"
    assert ModelVersion.objects.get(is_active=True) == model_version

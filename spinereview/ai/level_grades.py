"""The model's grader's grades of each disc level (stenosis, and the grader's other tasks such as the
sedimentation sign), on the axial slice its per-level measurements chose (ai/level_measurements.py).
Runs on a gpu worker (torch); the web side only reads the stored grades."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from spinereview.ai.level_measurements import UNGRADED, ai_segmentations_by_orientation, segmentation_with_geometry
from spinereview.ai.models import AILevelMeasurement, ModelVersion
from spinereview.core.errors import ApplicationError, NotFoundError
from spinereview.imaging.models import DicomStudy
from spinereview.imaging.selectors import series_volume_load

if TYPE_CHECKING:
    from ml.inference.api import TaskGrade

logger = logging.getLogger(__name__)

NO_CANAL = "no spinal canal in the AI's mask on this level's axial slice"


def level_grades_enqueue(*, dicom_study_id: str, model_version_id: str) -> bool:
    """Queue the grading (after the commit that stored the measurements). When the broker is down the levels
    stay ungraded and the sweeper queues them later."""
    from spinereview.ai.tasks import ai_level_grades_run

    try:
        ai_level_grades_run.delay(dicom_study_id=dicom_study_id, model_version_id=model_version_id)
    except Exception:
        logger.warning("Could not queue the grading of study %s; the sweeper will retry", dicom_study_id, exc_info=True)
        return False
    return True


def level_task_grades(tasks: Mapping[str, TaskGrade]) -> dict[str, dict[str, Any]]:
    """The grader's other tasks' grades of one level as stored (AILevelMeasurement.task_grades)."""
    return {
        key: {"index": task.index, "name": task.name, "probabilities": dict(zip(task.classes, task.probabilities, strict=True))}
        for key, task in tasks.items()
    }


def ai_level_grades_compute(*, dicom_study_id: str, model_version_id: str) -> list[AILevelMeasurement]:
    """Grade every level whose measurements found an axial slice (and whose level naming is not flagged),
    with the grader of the model's checkpoint folder; record on every level that it was graded, with
    the reason where it could not be. Safe to run twice; a level whose slice changed meanwhile is left
    for the run its new measurements queued."""
    model_version = ModelVersion.objects.get(pk=model_version_id)
    if not model_version.grader:
        return []
    study = DicomStudy.objects.get(pk=dicom_study_id)
    rows = list(AILevelMeasurement.objects.filter(dicom_study=study, model_version=model_version))
    slices = {row.level: row.axial_slice_index for row in rows if row.axial_slice_index is not None and not row.flag}
    axial = ai_segmentations_by_orientation(study=study, model_version=model_version).get("axial")
    reason = ""
    grades = {}
    if axial is None:
        reason = "the model has no axial mask of this examination"
    elif slices:
        from ml.inference.api import load_segmenter

        try:
            labels, _ = segmentation_with_geometry(axial)
            loaded = series_volume_load(series=axial.series)
            segmenter = load_segmenter(model_version.path, batch_size=settings.INFERENCE_BATCH_SLICES)
            if segmenter.grader_version != model_version.grader["version"]:
                raise ApplicationError(f"the grader in the model's folder is now {segmenter.grader_version}, registered as {model_version.grader['version']}")
            grades = segmenter.grade(loaded.volume, loaded.spacing_mm, labels, slices)
        except (ApplicationError, NotFoundError, ValueError, OSError) as exc:
            # recorded on the levels (never retried in a loop by the sweeper); registering the model again
            # (a new grader) or a new AI result grades them again
            logger.warning("Study %s not graded by %s: %s", study.pk, model_version.version, exc)
            reason = f"not graded: {exc}"[:500]
    grader_version = str(model_version.grader["version"])
    graded = []
    with transaction.atomic():
        for row in AILevelMeasurement.objects.select_for_update().filter(pk__in=[r.pk for r in rows]):
            gradable = row.axial_slice_index is not None and not row.flag
            if gradable != (row.level in slices) or (gradable and row.axial_slice_index != slices[row.level]):
                continue  # measured again since we read it: the new measurements queued their own grading
            grade = grades.get(row.level)
            errors = {k: v for k, v in row.errors.items() if k != "grade"}
            if grade is not None:
                fields = {
                    "grade_index": grade.grade,
                    "grade_name": grade.name,
                    "grade_probabilities": dict(zip(grade.grades, grade.probabilities, strict=True)),
                    "task_grades": level_task_grades(grade.tasks),
                }
            else:
                fields = dict(UNGRADED)
                if row.flag:
                    errors["grade"] = "the level's naming is flagged: not graded"
                elif row.axial_slice_index is None:
                    errors["grade"] = reason or "no axial slice near this disc level"
                else:
                    errors["grade"] = reason or NO_CANAL
            for name, value in {**fields, "grader_version": grader_version, "errors": errors}.items():
                setattr(row, name, value)
            row.save(update_fields=[*fields, "grader_version", "errors", "modified"])
            graded.append(row)
    return graded


def level_grades_sweep(*, waiting_for_s: float | None = None) -> list[tuple[str, str]]:
    """Queue again the grading of examinations whose levels were measured more than `waiting_for_s` ago by a
    model with a grader but never graded (the broker was down, or the worker was lost). Idempotent."""
    waiting_for_s = settings.INFERENCE_SWEEP_UNPUBLISHED_S if waiting_for_s is None else waiting_for_s
    pending = (
        AILevelMeasurement.objects.filter(grader_version="", modified__lte=timezone.now() - timedelta(seconds=waiting_for_s))
        .exclude(model_version__grader={})
        .values_list("dicom_study_id", "model_version_id")
        .distinct()
    )
    queued = [(str(s), str(m)) for s, m in pending if level_grades_enqueue(dicom_study_id=str(s), model_version_id=str(m))]
    if queued:
        logger.warning("Sweeper queued the grading of %d examination(s) again", len(queued))
    return queued


def level_grades_reset(*, model_version: ModelVersion) -> int:
    """The model's grader changed: forget every grade it gave and, after the commit, grade every examination
    it has measured again (none when it no longer has a grader). Returns how many examinations."""
    study_ids = [str(pk) for pk in AILevelMeasurement.objects.filter(model_version=model_version).values_list("dicom_study_id", flat=True).distinct()]
    AILevelMeasurement.objects.filter(model_version=model_version).update(**UNGRADED, modified=timezone.now())
    if model_version.grader:
        for study_id in study_ids:
            transaction.on_commit(partial(level_grades_enqueue, dicom_study_id=study_id, model_version_id=str(model_version.pk)))
    return len(study_ids)

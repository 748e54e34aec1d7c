"""Model registration and inference jobs (the per-level quantities from AI masks: ai/level_measurements.py)."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from spinereview.ai.models import AISegmentation, InferenceJob, ModelVersion
from spinereview.core.errors import ApplicationError
from spinereview.imaging.models import DicomSeries
from spinereview.imaging.selectors import series_volume_load

logger = logging.getLogger(__name__)


def model_version_register(*, path: Path, activate: bool) -> ModelVersion:
    """Register a checkpoint folder written by `python -m ml train`; refuse an invalid one with the reason."""
    from ml.inference.api import checkpoint_describe

    try:
        info = checkpoint_describe(path)
    except ValueError as exc:
        raise ApplicationError(f"Checkpoint refused: {exc}") from None
    with transaction.atomic():
        model_version, _ = ModelVersion.objects.get_or_create(
            version=info.model_version,
            defaults={
                "name": info.name,
                "path": str(Path(path).resolve()),
                "label_map": {str(k): v for k, v in info.label_map.items()},
                "config": info.config,
                "metrics": info.metrics,
            },
        )
        if activate:
            ModelVersion.objects.exclude(pk=model_version.pk).filter(is_active=True).update(is_active=False)
            if not model_version.is_active:
                model_version.is_active = True
                model_version.save(update_fields=["is_active", "modified"])
    return model_version


def inference_jobs_request(*, series_ids: list[str]) -> list[InferenceJob]:
    """Queue the active model on each series (once per series and model version)."""
    from spinereview.ai.tasks import inference_job_run

    model_version = ModelVersion.objects.filter(is_active=True).first()
    if model_version is None:
        logger.warning("No active model version: %d series left without AI", len(series_ids))
        return []
    jobs = []
    with transaction.atomic():
        for series in DicomSeries.objects.filter(pk__in=series_ids, modality="MR"):
            job, created = InferenceJob.objects.get_or_create(series=series, model_version=model_version)
            if created:
                transaction.on_commit(partial(inference_job_run.delay, job_id=str(job.pk)))
            jobs.append(job)
    return jobs


def inference_job_execute(*, job_id: str) -> InferenceJob | None:
    """Run one job; safe to run twice (a finished job is left as it is)."""
    with transaction.atomic():
        job = InferenceJob.objects.select_for_update().select_related("series", "model_version").filter(pk=job_id).first()
        if job is None:
            logger.warning("Inference job %s no longer exists", job_id)
            return None
        if job.status == InferenceJob.Status.SUCCEEDED:
            return job
        job.status = InferenceJob.Status.RUNNING
        job.started = timezone.now()
        job.attempts += 1
        job.error = ""
        job.save(update_fields=["status", "started", "attempts", "error", "modified"])
    try:
        from ml.inference.api import axis_directions_from_dicom, load_segmenter

        loaded = series_volume_load(series=job.series)
        first, last = loaded.per_slice_attributes[0], loaded.per_slice_attributes[-1]
        directions = axis_directions_from_dicom(
            first["ImageOrientationPatient"],
            first["ImagePositionPatient"],
            last["ImagePositionPatient"] if len(loaded.per_slice_attributes) > 1 else None,
        )
        # load_segmenter builds the model once per worker process and returns it on later calls.
        segmenter = load_segmenter(job.model_version.path)
        result = segmenter.segment(loaded.volume, loaded.spacing_mm, axis_directions=directions)
        if result.model_version != job.model_version.version:
            raise ApplicationError(
                f"checkpoint at {job.model_version.path} is now {result.model_version}, registered as {job.model_version.version}"
            )
        relative = f"segmentations/ai/{job.series.series_instance_uid}/{job.pk}.npy"
        target = Path(settings.MEDIA_ROOT) / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        np.save(target, result.labels.astype(np.uint8))
        with transaction.atomic():
            AISegmentation.objects.get_or_create(
                job=job,
                defaults={
                    "series": job.series,
                    "model_version": job.model_version,
                    "label_map": {str(k): v for k, v in result.label_map.items()},
                    "shape": list(result.labels.shape),
                    "sop_instance_uids": list(loaded.sop_instance_uids),
                    "file_path": relative,
                },
            )
            job.status = InferenceJob.Status.SUCCEEDED
            job.finished = timezone.now()
            job.save(update_fields=["status", "finished", "modified"])
            study_id, model_version_id = str(job.series.study_id), str(job.model_version_id)
            transaction.on_commit(lambda: _measurements_enqueue(dicom_study_id=study_id, model_version_id=model_version_id))
    except Exception as exc:
        logger.exception("Inference job %s failed", job_id)
        InferenceJob.objects.filter(pk=job.pk).update(
            status=InferenceJob.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000], finished=timezone.now()
        )
        job.refresh_from_db()
        return job
    return job


def _measurements_enqueue(*, dicom_study_id: str, model_version_id: str) -> None:
    from spinereview.ai.tasks import ai_level_measurements_run

    ai_level_measurements_run.delay(dicom_study_id=dicom_study_id, model_version_id=model_version_id)

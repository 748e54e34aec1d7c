"""Celery tasks: primary keys in, one service call, safe to run twice."""

from __future__ import annotations

from celery import shared_task

from spinereview.ai import level_measurements, services


@shared_task(acks_late=True, reject_on_worker_lost=True)
def inference_job_run(*, job_id: str) -> None:
    """Routed to queue "gpu" (settings.CELERY_TASK_ROUTES)."""
    services.inference_job_execute(job_id=job_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def ai_level_measurements_run(*, dicom_study_id: str, model_version_id: str) -> None:
    level_measurements.ai_level_measurements_compute(dicom_study_id=dicom_study_id, model_version_id=model_version_id)

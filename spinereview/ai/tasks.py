"""Celery tasks: primary keys in, one service call, safe to run twice."""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown

from spinereview.ai import level_grades, level_measurements, services
from spinereview.core.periodic import periodic_thread_start

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def inference_job_run(*, job_id: str) -> None:
    """Routed to queue "gpu" (settings.CELERY_TASK_ROUTES)."""
    services.inference_job_execute(job_id=job_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def ai_level_measurements_run(*, dicom_study_id: str, model_version_id: str) -> None:
    level_measurements.ai_level_measurements_compute(dicom_study_id=dicom_study_id, model_version_id=model_version_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def ai_level_grades_run(*, dicom_study_id: str, model_version_id: str) -> None:
    """Routed to queue "gpu" (settings.CELERY_TASK_ROUTES): the stenosis grader needs torch."""
    level_grades.ai_level_grades_compute(dicom_study_id=dicom_study_id, model_version_id=model_version_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def model_version_verify_run(*, model_version_id: str) -> None:
    """Routed to queue "gpu" (settings.CELERY_TASK_ROUTES): the workers that have torch."""
    services.model_version_verify(model_version_id=model_version_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def inference_jobs_sweep_run() -> None:
    """For a beat schedule, where one runs; every worker also sweeps on its own (below)."""
    _sweep()


_sweeper_stop = threading.Event()


def _sweep() -> None:
    services.inference_jobs_sweep()
    services.model_versions_verify_sweep()
    level_grades.level_grades_sweep()


@worker_ready.connect
def _start_sweeper(**_: Any) -> None:
    """Each worker publishes lost jobs at start and then every INFERENCE_SWEEP_INTERVAL_S, in a thread of
    its main process (no beat process needed; sweeping is idempotent, so several workers may)."""
    from django.conf import settings

    periodic_thread_start(name="inference-sweeper", interval_s=float(settings.INFERENCE_SWEEP_INTERVAL_S), work=_sweep, stop=_sweeper_stop)


@worker_shutdown.connect
def _stop_sweeper(**_: Any) -> None:
    _sweeper_stop.set()

"""Celery tasks: primary keys in, one service call, safe to run twice."""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown

from spinereview.ai import level_measurements, services

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def inference_job_run(*, job_id: str) -> None:
    """Routed to queue "gpu" (settings.CELERY_TASK_ROUTES)."""
    services.inference_job_execute(job_id=job_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def ai_level_measurements_run(*, dicom_study_id: str, model_version_id: str) -> None:
    level_measurements.ai_level_measurements_compute(dicom_study_id=dicom_study_id, model_version_id=model_version_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def model_version_verify_run(*, model_version_id: str) -> None:
    """Routed to queue "gpu" (settings.CELERY_TASK_ROUTES): the workers that have torch."""
    services.model_version_verify(model_version_id=model_version_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def inference_jobs_sweep_run() -> None:
    """For a beat schedule, where one runs; every worker also sweeps on its own (below)."""
    services.inference_jobs_sweep()
    services.model_versions_verify_sweep()


_sweeper_stop = threading.Event()


def _sweep_forever(interval_s: float) -> None:
    from django.db import close_old_connections

    while True:
        try:
            services.inference_jobs_sweep()
            services.model_versions_verify_sweep()
        except Exception:
            logger.exception("Inference job sweep failed; next try in %.0f s", interval_s)
        finally:
            close_old_connections()
        if _sweeper_stop.wait(interval_s):
            return


@worker_ready.connect
def _start_sweeper(**_: Any) -> None:
    """Each worker publishes lost jobs at start and then every INFERENCE_SWEEP_INTERVAL_S, in a thread of
    its main process (no beat process needed; sweeping is idempotent, so several workers may)."""
    from django.conf import settings

    _sweeper_stop.clear()
    threading.Thread(
        target=_sweep_forever, args=(float(settings.INFERENCE_SWEEP_INTERVAL_S),), name="inference-sweeper", daemon=True
    ).start()


@worker_shutdown.connect
def _stop_sweeper(**_: Any) -> None:
    _sweeper_stop.set()

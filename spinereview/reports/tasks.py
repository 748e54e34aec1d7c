"""Celery tasks: primary keys in, one service call, safe to run twice.

Run the cpu worker with ``OPENBLAS_NUM_THREADS=1``: the bootstrap's many small matrix products are
slower when BLAS threads compete with other processes on a shared machine.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown

from spinereview.core.periodic import periodic_thread_start
from spinereview.reports import services
from spinereview.studies.models import ReaderStudy

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def agreement_report_compute(*, reader_study_id: str) -> str | None:
    """Queue "cpu" (the default queue). Returns the report's fingerprint, or None if the study is gone."""
    reader_study = ReaderStudy.objects.filter(pk=reader_study_id).first()
    if reader_study is None:
        return None
    return services.agreement_report_compute(reader_study=reader_study).inputs_sha256


@shared_task(acks_late=True, reject_on_worker_lost=True)
def agreement_reports_sweep_run() -> list[str]:
    """For a beat schedule, where one runs; every cpu worker also sweeps on its own (below)."""
    return services.agreement_reports_sweep()


_sweeper_stop = threading.Event()


@worker_ready.connect
def _start_report_sweeper(sender: Any = None, **_: Any) -> None:
    """Workers consuming the cpu queue queue lost report recomputes at start and every
    REPORT_SWEEP_INTERVAL_S (a thread of the main process; no beat process needed)."""
    from django.conf import settings

    queues = {queue.name for queue in getattr(getattr(sender, "task_consumer", None), "queues", None) or []}
    if queues and "cpu" not in queues:
        return
    periodic_thread_start(
        name="report-sweeper", interval_s=float(settings.REPORT_SWEEP_INTERVAL_S), work=services.agreement_reports_sweep, stop=_sweeper_stop
    )


@worker_shutdown.connect
def _stop_report_sweeper(**_: Any) -> None:
    _sweeper_stop.set()

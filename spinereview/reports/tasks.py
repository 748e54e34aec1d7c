"""Celery tasks: primary keys in, one service call, safe to run twice.

Run the cpu worker with ``OPENBLAS_NUM_THREADS=1``: the bootstrap's many small matrix products are
slower when BLAS threads compete with other processes on a shared machine.
"""

from __future__ import annotations

from celery import shared_task

from spinereview.reports import services
from spinereview.studies.models import ReaderStudy


@shared_task(acks_late=True, reject_on_worker_lost=True)
def agreement_report_compute(*, reader_study_id: str) -> str | None:
    """Queue "cpu" (the default queue). Returns the report's fingerprint, or None if the study is gone."""
    reader_study = ReaderStudy.objects.filter(pk=reader_study_id).first()
    if reader_study is None:
        return None
    return services.agreement_report_compute(reader_study=reader_study).inputs_sha256

"""Writes of the reports app: computing and caching a study's statistics report."""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import subprocess
import time
import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, OuterRef, Q, Subquery
from django.utils import timezone

from spinereview.reports.analysis import report_compute
from spinereview.reports.models import AgreementReport
from spinereview.reports.selectors import study_fingerprint, study_inputs
from spinereview.studies.models import ReaderStudy, ReadVersion

logger = logging.getLogger(__name__)

# Bootstrap resamples of a reported interval (cluster_bootstrap_ci recommends 2000 or more) and the
# seed, recorded in every report so its intervals can be reproduced.
REPORT_RESAMPLES = 2000
REPORT_SEED = 20240601


@functools.cache
def software_version() -> str:
    """``git describe --always --dirty`` of the checkout when there is one, else the package version."""
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"], cwd=Path(settings.BASE_DIR), capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        described = ""
    package = importlib.metadata.version("spinereview")
    return f"spinereview {package} ({described})" if described else f"spinereview {package}"


def agreement_report_compute(*, reader_study: ReaderStudy, n_resamples: int = REPORT_RESAMPLES, seed: int = REPORT_SEED) -> AgreementReport:
    """The study's statistics report for its current inputs: the cached row when one exists for this
    fingerprint, else computed and stored. Safe to run twice, or concurrently (one row per fingerprint)."""
    fingerprint = study_fingerprint(reader_study=reader_study, n_resamples=n_resamples, seed=seed)
    cached = AgreementReport.objects.filter(reader_study=reader_study, inputs_sha256=fingerprint).first()
    if cached is not None:
        return cached
    start = time.perf_counter()
    report = report_compute(study_inputs(reader_study=reader_study, n_resamples=n_resamples, seed=seed))
    duration_s = time.perf_counter() - start
    try:
        with transaction.atomic():
            created = AgreementReport.objects.create(
                reader_study=reader_study, inputs_sha256=fingerprint, report=report, software_version=software_version(), duration_s=duration_s
            )
    except IntegrityError:
        # A concurrent run stored the same fingerprint first; else (the study was deleted meanwhile) the error stands.
        existing = AgreementReport.objects.filter(reader_study=reader_study, inputs_sha256=fingerprint).first()
        if existing is None:
            raise
        return existing
    # Older reports of the study are superseded; keep the newest few for comparison, drop the rest.
    stale = AgreementReport.objects.filter(reader_study=reader_study).exclude(pk=created.pk).order_by("-created").values_list("pk", flat=True)[4:]
    AgreementReport.objects.filter(pk__in=list(stale)).delete()
    return created


def agreement_report_publish(*, reader_study_id: uuid.UUID | str) -> bool:
    """Queue the study's report on the cpu queue now. False when the broker is down: logged, not raised
    (the change that asked for it is committed already), and ``agreement_reports_sweep`` queues it later."""
    from spinereview.reports.tasks import agreement_report_compute as task

    try:
        task.delay(reader_study_id=str(reader_study_id))
    except Exception as exc:  # kombu and redis raise several types for a broker that is down
        logger.warning(
            "Could not queue the report of reader study %s (%s: %s); the report sweep queues it later",
            reader_study_id,
            type(exc).__name__,
            exc,
        )
        return False
    return True


def agreement_report_enqueue(*, reader_study_id: uuid.UUID | str) -> None:
    """Recompute the study's report on the cpu queue once the current transaction commits (called by
    ``read_submit``); a broker outage does not fail the submit (see ``agreement_report_publish``)."""
    transaction.on_commit(lambda: agreement_report_publish(reader_study_id=reader_study_id))


def agreement_reports_stale(*, settled_s: float) -> list[str]:
    """Studies with a submitted read newer than their newest report (or no report), the read at least
    ``settled_s`` old (younger ones are still in the queue in the normal course)."""
    newest_read = (
        ReadVersion.objects.filter(assignment__case__reader_study=OuterRef("pk"), submitted=True).order_by("-created").values("created")[:1]
    )
    newest_report = AgreementReport.objects.filter(reader_study=OuterRef("pk")).order_by("-created").values("created")[:1]
    studies = (
        ReaderStudy.objects.annotate(read_at=Subquery(newest_read), report_at=Subquery(newest_report))
        .filter(read_at__lte=timezone.now() - timedelta(seconds=settled_s))
        .filter(Q(report_at__isnull=True) | Q(report_at__lt=F("read_at")))
    )
    return [str(pk) for pk in studies.values_list("pk", flat=True)]


def agreement_reports_sweep(*, settled_s: float | None = None) -> list[str]:
    """Queue the reports whose recompute was lost (broker down at submit, worker killed, database down
    during the task); run every REPORT_SWEEP_INTERVAL_S by the cpu workers. Returns the studies queued."""
    stale = agreement_reports_stale(settled_s=settings.REPORT_SWEEP_INTERVAL_S if settled_s is None else settled_s)
    queued = [pk for pk in stale if agreement_report_publish(reader_study_id=pk)]
    if queued:
        logger.warning("Report sweep queued %d stale report(s): %s", len(queued), ", ".join(queued))
    return queued

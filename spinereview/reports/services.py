"""Writes of the reports app: computing and caching a study's statistics report."""

from __future__ import annotations

import functools
import importlib.metadata
import subprocess
import time
import uuid
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction

from spinereview.reports.analysis import report_compute
from spinereview.reports.models import AgreementReport
from spinereview.reports.selectors import study_fingerprint, study_inputs
from spinereview.studies.models import ReaderStudy

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
    except IntegrityError:  # a concurrent run stored the same fingerprint first
        return AgreementReport.objects.get(reader_study=reader_study, inputs_sha256=fingerprint)
    # Older reports of the study are superseded; keep the newest few for comparison, drop the rest.
    stale = AgreementReport.objects.filter(reader_study=reader_study).exclude(pk=created.pk).order_by("-created").values_list("pk", flat=True)[4:]
    AgreementReport.objects.filter(pk__in=list(stale)).delete()
    return created


def agreement_report_enqueue(*, reader_study_id: uuid.UUID | str) -> None:
    """Recompute the study's report on the cpu queue once the current transaction commits (called by
    ``read_submit``)."""
    from spinereview.reports.tasks import agreement_report_compute as task

    transaction.on_commit(lambda: task.delay(reader_study_id=str(reader_study_id)))

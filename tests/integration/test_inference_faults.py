"""Faults on the GPU queue with a real Celery worker on Redis and PostgreSQL: a worker process killed with
SIGKILL mid-job (the job is redelivered and completes exactly once), and jobs the broker never received
(published later by the worker's sweeper)."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from ml.training.train import PRESETS, train
from spinereview.ai.models import AISegmentation, InferenceJob, ModelVersion
from spinereview.ai.services import inference_job_publish, inference_jobs_sweep, model_version_register
from spinereview.imaging.services import sources_from_path
from spinereview.studies.services import cases_import
from tests.conftest import REPO, wait_for
from tests.factories import make_reader_study
from tests.integration.conftest import phantom_cases

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

WORKER_LOG = REPO / "var" / "test-faults-worker.log"


@pytest.fixture(scope="module")
def small_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo architecture after a few training steps: its forward pass costs what the demo model's does."""
    out = tmp_path_factory.mktemp("faults") / "faults-model"
    demo = PRESETS["demo"]
    train(
        dataclasses.replace(demo, preset="faults", cases=1, iterations=2, heldout_cases=1, calibration_cases=0, time_budget_s=None, name="faults", threads=1),
        out,
        log=lambda _: None,
    )
    return out


def _worker_env(media_root: Path, **extra: str) -> dict[str, str]:
    from django.conf import settings
    from django.db import connection

    db = connection.settings_dict
    database_url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return dict(
        os.environ, DATABASE_URL=database_url, SPINEREVIEW_MEDIA_ROOT=str(media_root), CELERY_BROKER_URL=settings.CELERY_BROKER_URL, **extra
    )


def _start_worker(media_root: Path, *, pool: str, name: str, **env: str) -> subprocess.Popen[bytes]:
    log = WORKER_LOG.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "spinereview", "worker", "-Q", "gpu,cpu", "--pool", pool, "--concurrency", "1",
         "--without-mingle", "--without-gossip", "-n", f"{name}-{os.getpid()}@%h", "--loglevel", "INFO"],
        cwd=REPO, env=_worker_env(media_root, **env), stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


def _stop(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


@pytest.fixture
def clean_broker() -> Iterator[None]:
    import redis
    from django.conf import settings

    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("needs the Redis broker (CELERY_BROKER_URL=redis://...)")
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    WORKER_LOG.parent.mkdir(parents=True, exist_ok=True)
    WORKER_LOG.write_bytes(b"")
    yield
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()


def _worker_log() -> str:
    return WORKER_LOG.read_text(errors="replace")[-4000:]


def test_worker_process_killed_mid_job_is_redelivered_and_completes_once(
    clean_broker: None, phantom_dir: Path, small_model_dir: Path, media_root: Path
) -> None:
    model_version_register(path=small_model_dir, activate=True)
    # One slice per batch: progress moves slice by slice, so the kill lands mid-series.
    worker = _start_worker(media_root, pool="prefork", name="faults", INFERENCE_BATCH_SLICES="1")
    try:
        cases_import(sources=sources_from_path(phantom_cases(phantom_dir)[0] / "dicom"), reader_study=make_reader_study())
        jobs = list(InferenceJob.objects.order_by("-slices"))
        assert len(jobs) == 2
        victim = jobs[0]  # the longer series (the worker runs both, one after the other)

        def mid_job() -> bool:
            victim.refresh_from_db()
            return victim.status == InferenceJob.Status.RUNNING and 0.0 < victim.progress < 0.75

        wait_for(mid_job, timeout_s=180, interval_s=0.05, what="the job to be part-way through its series", worker_log=WORKER_LOG)
        attempt, host_pid = victim.attempts, victim.worker
        pid = int(host_pid.rsplit(":", 1)[1])
        assert pid != worker.pid  # the pool's child process runs the job
        os.kill(pid, signal.SIGKILL)
        killed_at_progress = victim.progress

        wait_for(
            lambda: InferenceJob.objects.filter(status=InferenceJob.Status.SUCCEEDED).count() == 2,
            timeout_s=240,
            what="both jobs to succeed after the kill",
            worker_log=WORKER_LOG,
        )
        victim.refresh_from_db()
        assert worker.poll() is None  # the worker itself lived on and replaced its child
        assert victim.attempts == attempt + 1  # redelivered once (reject_on_worker_lost), run again
        assert victim.worker != host_pid and victim.progress == 1.0 and victim.error == ""
        assert 0.0 < killed_at_progress < 1.0
        # exactly one result per job, and its file complete
        assert AISegmentation.objects.filter(job=victim).count() == 1
        assert AISegmentation.objects.count() == 2
        segmentation = AISegmentation.objects.get(job=victim)
        import numpy as np

        labels = np.load(media_root / segmentation.file_path)
        assert list(labels.shape) == segmentation.shape and labels.shape[0] == victim.slices
        assert not list((media_root / segmentation.file_path).parent.glob(".*"))  # no half-written temp file left
        assert "WorkerLostError" in _worker_log() or "SIGKILL" in _worker_log()
    finally:
        _stop(worker)


def test_jobs_the_broker_never_got_are_published_by_the_sweeper(
    clean_broker: None, phantom_dir: Path, small_model_dir: Path, media_root: Path
) -> None:
    from spinereview.celery import app

    model_version = model_version_register(path=small_model_dir, activate=True)
    # The broker is unreachable when the import commits: the jobs stay queued, unpublished.
    good_url, app.conf.broker_url = app.conf.broker_url, "redis://127.0.0.1:9/0"
    app.pool.force_close_all()
    app._pool = None
    try:
        cases_import(sources=sources_from_path(phantom_cases(phantom_dir)[1] / "dicom"), reader_study=make_reader_study())
    finally:
        app.conf.broker_url = good_url
        app._pool = None
    jobs = list(InferenceJob.objects.all())
    assert len(jobs) == 2 and all(j.status == "queued" and j.published is None for j in jobs)
    # a publish that fails says so and changes nothing
    app.conf.broker_url = "redis://127.0.0.1:9/0"
    app._pool = None
    try:
        assert inference_job_publish(job_id=jobs[0].pk) is False
    finally:
        app.conf.broker_url = good_url
        app._pool = None
    assert InferenceJob.objects.get(pk=jobs[0].pk).published is None
    # too recent to be called lost: the sweeper leaves them (their publish may be in flight)
    assert inference_jobs_sweep(unpublished_after_s=3600) == []

    InferenceJob.objects.update(created=timezone.now() - timedelta(minutes=5))
    worker = _start_worker(media_root, pool="solo", name="sweeper", INFERENCE_SWEEP_INTERVAL_S="2", INFERENCE_SWEEP_UNPUBLISHED_S="60")
    try:
        # the worker's own sweeper (at start, then every 2 s) publishes them; nobody else does
        wait_for(
            lambda: InferenceJob.objects.filter(status=InferenceJob.Status.SUCCEEDED).count() == 2,
            timeout_s=240,
            what="the swept jobs to run",
            worker_log=WORKER_LOG,
        )
        assert all(j.attempts == 1 and j.published is not None for j in InferenceJob.objects.all())
        assert AISegmentation.objects.filter(model_version=model_version).count() == 2
        assert "Sweeper re-published 2 inference job(s)" in _worker_log()
        # sweeping again publishes nothing: idempotent
        time.sleep(1)
        assert inference_jobs_sweep(unpublished_after_s=0) == []
        assert ModelVersion.objects.count() == 1
    finally:
        _stop(worker)

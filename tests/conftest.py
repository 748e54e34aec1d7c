"""Fixtures shared by the integration and end-to-end tests: phantom data, a trained model, a real worker."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
# The demo's model: the pipeline and end-to-end tests check real masks and per-level DSCA, which
# need the demo preset's quality; it is trained once (minutes on a CPU) and shared with ./run demo.
TEST_MODEL_DIR = REPO / "var" / "models" / "phantom-demo"


def _run(args: list[str], **kwargs: object) -> None:
    subprocess.run(args, check=True, cwd=REPO, **kwargs)  # type: ignore[call-overload]


@pytest.fixture(scope="session")
def phantom_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two phantom cases written by the project's own generator (`python -m ml phantom`)."""
    out = tmp_path_factory.mktemp("phantom")
    _run([sys.executable, "-m", "ml", "phantom", "--out", str(out), "--seed", "101", "--cases", "2"])
    return out


@pytest.fixture(scope="session")
def test_model_dir() -> Path:
    """The phantom model (`--preset demo`), trained once and cached under var/models."""
    if not (TEST_MODEL_DIR / "weights.pt").is_file():
        _run([sys.executable, "-m", "ml", "train", "--preset", "demo", "--out", str(TEST_MODEL_DIR)])
    return TEST_MODEL_DIR


@pytest.fixture(scope="session")
def media_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(autouse=True)
def _media_in_tmp(request: pytest.FixtureRequest, settings: object) -> None:
    if "media_root" in request.fixturenames or request.node.get_closest_marker("django_db"):
        settings.MEDIA_ROOT = request.getfixturevalue("media_root")  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def celery_worker_process(django_db_setup: None, django_db_blocker: object, media_root: Path, test_model_dir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A real Celery worker process on queues gpu and cpu, on the test database and the test broker.

    One per test module, stopped when the module ends: a worker left running would take the jobs of
    the next module's own workers (test_inference_faults kills and watches its own)."""
    from django.conf import settings
    from django.db import connection

    broker = settings.CELERY_BROKER_URL
    if broker.startswith("redis://"):
        import redis

        redis.Redis.from_url(broker).flushdb()
    elif broker.startswith("filesystem://"):
        shutil.rmtree(settings.CELERY_BROKER_DIR, ignore_errors=True)
        for folder in ("queue", "processed", "control"):
            (Path(settings.CELERY_BROKER_DIR) / folder).mkdir(parents=True, exist_ok=True)
    db = connection.settings_dict
    if db["ENGINE"].endswith("postgresql"):
        database_url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    else:
        database_url = f"sqlite:///{db['NAME']}"
    env = dict(os.environ, DATABASE_URL=database_url, SPINEREVIEW_MEDIA_ROOT=str(media_root), CELERY_BROKER_URL=broker)
    log = open(REPO / "var" / "test-worker.log", "wb")  # noqa: SIM115 - kept open for the worker's lifetime
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "spinereview", "worker", "-Q", "gpu,cpu", "--pool", "solo", "--without-mingle", "--without-gossip", "-n", f"test-{os.getpid()}@%h", "--loglevel", "INFO"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    yield worker
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        worker.kill()
    log.close()


def wait_for(predicate: object, *, timeout_s: float, what: str, interval_s: float = 0.5, worker_log: Path | None = None) -> None:
    """Poll ``predicate`` until it is true; on timeout, fail with the tail of the log of the worker the test
    waits on (default: celery_worker_process's)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(interval_s)
    worker_log = worker_log or REPO / "var" / "test-worker.log"
    tail = worker_log.read_text(errors="replace")[-3000:] if worker_log.exists() else "(no worker log)"
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}; tail of {worker_log.name}:\n{tail}")

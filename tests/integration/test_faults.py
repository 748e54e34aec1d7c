"""Faults against a private stack: its own PostgreSQL cluster and Redis server (random ports, temporary
folders), gunicorn with production settings and a real Celery worker, all as subprocesses.

- Redis stopped mid-run: reads still save and submit (the report's queueing fails, is logged, and the
  worker's report sweep queues it once Redis is back); /healthz says 503.
- PostgreSQL stopped mid-run: clients get 503 + Retry-After with a JSON or HTML message, never a 500;
  the same save sent again after the restart lands; the worker's jobs run again after the restart.
- The worker killed (SIGKILL) right after a submit queued its report: a new worker computes it.
After each: every save the server acknowledged is stored as that version with what was sent.

The machine's shared PostgreSQL and Redis are never touched.
"""

from __future__ import annotations

import glob
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import REPO

pytestmark = pytest.mark.integration

PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
REDIS_SERVER = shutil.which("redis-server")
SWEEP_S = 2  # REPORT_SWEEP_INTERVAL_S of the test worker

SETUP = """
import json
from rest_framework.authtoken.models import Token
from spinereview.accounts.models import User
from spinereview.imaging.services import ImportSource
from spinereview.studies.models import Assignment, StudyMembership
from spinereview.studies.protocols import DEFAULT_PROTOCOL, condition_categories
from spinereview.studies.services import assignments_create, cases_import, membership_add, reader_study_create
from tests.dicom_files import mr_slice

study = reader_study_create(name="Faults", slug="faults", protocol=DEFAULT_PROTOCOL)
readers = {}
for name in ("reader1", "reader2"):
    user = User.objects.create_user(username=name, password="faults-password-2026")
    membership_add(reader_study=study, user=user, role=StudyMembership.Role.READER)
    readers[name] = Token.objects.create(user=user).key
for c in range(3):
    cases_import(sources=[ImportSource(f"{c}.dcm", mr_slice(study_uid=f"1.2.9.{c}", series_uid=f"1.2.9.{c}.1"))], reader_study=study)
assignments_create(reader_study=study, actor="test")
out = {"tokens": readers, "levels": study.protocol["levels"], "categories": condition_categories(study.protocol, "central_canal"), "assignments": {}}
for a in Assignment.objects.select_related("reader", "case").order_by("case__label"):
    out["assignments"].setdefault(a.reader.username, []).append(str(a.pk))
print("SETUP " + json.dumps(out))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def site_prepare(env: dict[str, str], setup_script: str) -> dict[str, Any]:
    """Migrate the database of `env` and run `setup_script` in `manage.py shell`; it prints one line
    "SETUP <json>", returned parsed."""
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True)
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", setup_script], cwd=REPO, env=env, check=True, capture_output=True, text=True
    ).stdout
    return dict(json.loads(next(line for line in out.splitlines() if line.startswith("SETUP "))[6:]))


def gunicorn_start(env: dict[str, str], *, port: int, workers: int, timeout_s: int, log: Any) -> subprocess.Popen[bytes]:
    """The production web server of `env` on loopback, 4 threads a worker, writing to `log`."""
    command = [sys.executable, "-m", "gunicorn", "spinereview.wsgi:application", "--bind", f"127.0.0.1:{port}"]
    command += ["--workers", str(workers), "--threads", "4", "--timeout", str(timeout_s)]
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def _as_postgres() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def wait_until(predicate: Callable[[], bool], *, timeout_s: float, what: str, logs: list[Path] = ()) -> None:  # type: ignore[assignment]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (requests.RequestException, OSError):
            pass
        time.sleep(0.3)
    tails = "".join(f"\n--- {log.name}:\n{log.read_text(errors='replace')[-2500:]}" for log in logs if log.exists())
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}{tails}")


class PrivatePostgres:
    def __init__(self, root: Path) -> None:
        self.bin = Path(PG_BIN[-1])
        self.data = root / "pgdata"
        self.port = _free_port()
        self.log = root / "postgres.log"
        root.chmod(0o777)
        subprocess.run(
            [*_as_postgres(), str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"],
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=40"
        subprocess.run(
            [
                *_as_postgres(),
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-o",
                options,
                "-w",
                "-t",
                "30",
                "start",
            ],
            check=True,
            capture_output=True,
        )

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(
            [*_as_postgres(), str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop"],
            check=False,
            capture_output=True,
        )

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", connect_timeout=5) as conn:
            return list(conn.execute(sql, params).fetchall())


class PrivateRedis:
    def __init__(self, root: Path) -> None:
        self.dir = root / "redis"
        self.dir.mkdir()
        self.port = _free_port()
        self.log = root / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        # Persistent, as a production broker is (appendonly): queued messages survive a restart.
        args = [REDIS_SERVER or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes"]
        self.process = subprocess.Popen([*args, "--dir", str(self.dir), "--logfile", str(self.log)])
        wait_until(self._accepts, timeout_s=15, what="redis-server")

    def _accepts(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1):
            return True

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=15)
            self.process = None


@dataclass
class Stack:
    root: Path
    pg: PrivatePostgres
    redis: PrivateRedis
    env: dict[str, str]
    base_url: str
    setup: dict[str, Any]
    worker: subprocess.Popen[bytes] | None = None
    web: subprocess.Popen[bytes] | None = None
    acknowledged: dict[str, dict[int, float]] = field(default_factory=dict)  # assignment -> version -> elapsed_s marker

    def start_worker(self) -> None:
        log_path = self.root / "worker.log"
        offset = log_path.stat().st_size if log_path.exists() else 0
        log = open(log_path, "ab")  # noqa: SIM115 - the worker writes to it for its lifetime
        self.worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "spinereview",
                "worker",
                "-Q",
                "gpu,cpu",
                "--pool",
                "solo",
                "--without-mingle",
                "--without-gossip",
                "-n",
                f"faults-{time.time_ns()}@%h",
                "--loglevel",
                "INFO",
            ],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_until(lambda: b"ready." in log_path.read_bytes()[offset:], timeout_s=45, what="the Celery worker", logs=[log_path])

    def session(self, reader: str) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Token {self.setup['tokens'][reader]}"
        return session

    def grades(self, index: int = 0) -> list[dict[str, str]]:
        categories = self.setup["categories"]
        return [
            {"level": level, "condition": "central_canal", "value": categories[(i + index) % len(categories)]}
            for i, level in enumerate(self.setup["levels"])
        ]

    def save(self, session: requests.Session, assignment: str, *, base: int, marker: float) -> requests.Response:
        response = session.put(
            f"{self.base_url}/api/v1/assignments/{assignment}/read/",
            json={"base_version": base, "grades": self.grades(int(marker)), "elapsed_s": marker},
            timeout=30,
        )
        if response.status_code == 200:
            self.acknowledged.setdefault(assignment, {})[int(response.json()["version"])] = marker
        return response

    def submit(self, session: requests.Session, assignment: str, *, base: int) -> requests.Response:
        response = session.post(f"{self.base_url}/api/v1/assignments/{assignment}/read/submit/", json={"base_version": base}, timeout=30)
        if response.status_code == 200:
            self.acknowledged.setdefault(assignment, {})[int(response.json()["version"])] = float(response.json()["elapsed_s"])
        return response

    def report_newer_than_reads(self) -> bool:
        """The newest report of the study is newer than its newest submitted read (the recompute ran)."""
        rows = self.pg.query(
            "SELECT (SELECT max(r.created) FROM reports_agreementreport r), "
            "(SELECT max(v.created) FROM studies_readversion v WHERE v.submitted)"
        )
        report_at, read_at = rows[0]
        return report_at is not None and read_at is not None and report_at > read_at

    def assert_no_acknowledged_save_lost(self) -> None:
        for assignment, versions in self.acknowledged.items():
            stored = dict(self.pg.query("SELECT version, elapsed_s FROM studies_readversion WHERE assignment_id = %s", (assignment,)))
            for version, marker in versions.items():
                assert stored.get(version) == marker, (
                    f"acknowledged version {version} of {assignment} is {'missing' if version not in stored else 'different'}"
                )


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    if not PG_BIN or REDIS_SERVER is None:
        pytest.skip("needs PostgreSQL's server binaries (/usr/lib/postgresql/*/bin) and redis-server")
    root = Path(tempfile.mkdtemp(prefix="spinereview-faults-"))
    pg, redis = PrivatePostgres(root), PrivateRedis(root)
    pg.start()
    redis.start()
    media = root / "media"
    media.mkdir()
    env = dict(
        os.environ,
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        DATABASE_URL=pg.url,
        CELERY_BROKER_URL=f"redis://127.0.0.1:{redis.port}/0",
        SPINEREVIEW_MEDIA_ROOT=str(media),
        SECURE_COOKIES="0",
        REPORT_SWEEP_INTERVAL_S=str(SWEEP_S),
        OPENBLAS_NUM_THREADS="1",
        DJANGO_SETTINGS_MODULE="spinereview.settings",
    )
    setup = site_prepare(env, SETUP)
    port = _free_port()
    web_log = open(root / "web.log", "ab")  # noqa: SIM115 - gunicorn writes to it for its lifetime
    web = gunicorn_start(env, port=port, workers=1, timeout_s=60, log=web_log)
    s = Stack(root=root, pg=pg, redis=redis, env=env, base_url=f"http://127.0.0.1:{port}", setup=setup, web=web)
    try:
        wait_until(
            lambda: requests.get(f"{s.base_url}/healthz", timeout=5).status_code == 200,
            timeout_s=45,
            what="gunicorn",
            logs=[root / "web.log"],
        )
        s.start_worker()
        yield s
    finally:
        for process in (s.worker, web):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
        web_log.close()
        redis.stop()
        pg.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


def _assert_retryable(response: requests.Response, component: str) -> None:
    assert response.status_code == 503, (response.status_code, response.text[:500])
    assert int(response.headers["Retry-After"]) > 0
    assert "Traceback" not in response.text


def test_redis_down_submits_still_succeed_and_the_report_is_recomputed_later(stack: Stack) -> None:
    r1, r2 = stack.session("reader1"), stack.session("reader2")
    a1, a2 = stack.setup["assignments"]["reader1"][0], stack.setup["assignments"]["reader2"][0]
    assert stack.save(r1, a1, base=0, marker=1.0).status_code == 200
    assert stack.submit(r1, a1, base=1).status_code == 200
    wait_until(stack.report_newer_than_reads, timeout_s=45, what="the first report", logs=[stack.root / "worker.log"])

    stack.redis.stop()
    health = requests.get(f"{stack.base_url}/healthz", timeout=30)
    assert health.status_code == 503 and health.json()["broker"].startswith("error")
    assert stack.save(r2, a2, base=0, marker=2.0).status_code == 200
    submitted = stack.submit(r2, a2, base=1)
    assert submitted.status_code == 200, submitted.text  # the read is locked for the reader, whatever the broker
    assert not stack.report_newer_than_reads()
    assert "Could not queue the report" in (stack.root / "web.log").read_text(errors="replace")

    stack.redis.start()
    # The worker reconnects and its report sweep queues the recompute the submit could not.
    wait_until(
        stack.report_newer_than_reads, timeout_s=50, what="the report recomputed after Redis came back", logs=[stack.root / "worker.log"]
    )
    assert requests.get(f"{stack.base_url}/healthz", timeout=30).status_code == 200
    stack.assert_no_acknowledged_save_lost()


def test_postgres_down_gives_retryable_503_and_the_same_save_lands_after_restart(stack: Stack) -> None:
    r1 = stack.session("reader1")
    a1 = stack.setup["assignments"]["reader1"][1]
    assert stack.save(r1, a1, base=0, marker=10.0).status_code == 200
    browser = requests.Session()
    login_page = browser.get(f"{stack.base_url}/accounts/login/", timeout=30)
    assert login_page.status_code == 200
    logged_in = browser.post(
        f"{stack.base_url}/accounts/login/",
        data={"username": "reader1", "password": "faults-password-2026", "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
        headers={"Referer": f"{stack.base_url}/accounts/login/"},
        timeout=30,
    )
    assert logged_in.status_code == 200 and "sessionid" in browser.cookies, logged_in.text[:300]

    stack.pg.stop("immediate")  # a crash, not a clean shutdown
    down = stack.save(r1, a1, base=1, marker=11.0)
    _assert_retryable(down, "database")
    body = down.json()
    assert body["retryable"] is True and body["unavailable"] == "database" and "database" in body["detail"]
    page = browser.get(f"{stack.base_url}/", timeout=30)
    _assert_retryable(page, "database")
    assert page.headers["Content-Type"].startswith("text/html") and "Temporarily unavailable" in page.text
    assert requests.get(f"{stack.base_url}/healthz", timeout=30).status_code == 503

    stack.pg.start()
    landed: list[requests.Response] = []

    def retried() -> bool:
        response = stack.save(r1, a1, base=1, marker=11.0)  # the very request that was refused
        assert response.status_code in (200, 503), (response.status_code, response.text[:300])
        landed.append(response)
        return response.status_code == 200

    wait_until(retried, timeout_s=30, what="the save after PostgreSQL restarted", logs=[stack.root / "web.log"])
    assert landed[-1].json()["version"] == 2
    assert browser.get(f"{stack.base_url}/", timeout=30).status_code == 200
    # The worker's connection died with the server too; its next job still runs.
    assert stack.submit(r1, a1, base=2).status_code == 200
    wait_until(stack.report_newer_than_reads, timeout_s=45, what="the report after PostgreSQL restarted", logs=[stack.root / "worker.log"])
    web_log = (stack.root / "web.log").read_text(errors="replace")
    assert "Internal Server Error" not in web_log
    stack.assert_no_acknowledged_save_lost()


def test_killed_worker_loses_no_job(stack: Stack) -> None:
    r2 = stack.session("reader2")
    a2 = stack.setup["assignments"]["reader2"][1]
    assert stack.save(r2, a2, base=0, marker=20.0).status_code == 200
    assert stack.worker is not None
    assert stack.submit(r2, a2, base=1).status_code == 200
    stack.worker.send_signal(signal.SIGKILL)  # with the report's task queued or running, unacknowledged
    stack.worker.wait(timeout=15)
    stack.start_worker()
    wait_until(stack.report_newer_than_reads, timeout_s=50, what="the report after the worker was killed", logs=[stack.root / "worker.log"])
    stack.assert_no_acknowledged_save_lost()

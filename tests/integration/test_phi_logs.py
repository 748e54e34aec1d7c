"""No PHI in logs: import a PHI-laden study with every logger at DEBUG (pydicom's element dumps
included), fail an import, search QIDO-RS by patient name, log a dataset and an exception that
quote headers; no original value appears in any log record or in the lines the project's
formatters (Django console, gunicorn access log, Celery task log) write from them."""

from __future__ import annotations

import io
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from celery.app.log import TaskFormatter
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from spinereview.celery import app as celery_app
from spinereview.core.log_redaction import installed
from spinereview.studies.models import StudyMembership
from tests.factories import make_membership, make_reader_study, make_user
from tests.unit.imaging.phi_files import PHI_VALUES, STUDY_UID, phi_slice, phi_strings

pytestmark = [pytest.mark.integration, pytest.mark.django_db]
REPO = Path(__file__).resolve().parents[2]
QIDO_QUERY = (
    f"PatientName={PHI_VALUES['PatientName']}&PatientID={PHI_VALUES['PatientID']}&PatientBirthDate={PHI_VALUES['PatientBirthDate']}"
)


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def every_log_record() -> Iterator[list[logging.LogRecord]]:
    """Every record of every logger at DEBUG, pydicom's debug dumps on."""
    keep = _Keep()
    root = logging.getLogger()
    loggers = [root] + [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]
    levels = {logger.name: logger.level for logger in loggers}
    disabled = {logger.name: logger.disabled for logger in loggers}
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.disabled = False
    root.addHandler(keep)
    pydicom.config.debug(True, default_handler=False)
    try:
        yield keep.records
    finally:
        pydicom.config.debug(False, default_handler=False)
        root.removeHandler(keep)
        for logger in loggers:
            logger.setLevel(levels[logger.name])
            logger.disabled = disabled[logger.name]


def _zip(*files: tuple[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files:
            archive.writestr(name, data)
    return buffer.getvalue()


def _leaks(text: str) -> list[str]:
    return [value for value in phi_strings() if value in text]


def test_no_phi_in_any_log_record(media_root: Path, every_log_record: list[logging.LogRecord]) -> None:
    assert installed(), "spinereview.core installs the redacting record factory at start-up"
    lead = make_user(username="phi-lead")
    study = make_reader_study(slug="phi-logs")
    make_membership(reader_study=study, user=lead, role=StudyMembership.Role.LEAD)
    client = Client()
    client.force_login(lead)

    good = _zip(*((f"s{series}/IM{index}.dcm", phi_slice(series=series, index=index)) for series in (0, 1) for index in range(3)))
    response = client.post("/api/v1/imaging/upload/", {"files": [SimpleUploadedFile("study.zip", good)], "reader_study": study.slug})
    assert response.status_code == 201, response.content
    # A refused batch: a truncated PHI file next to a good one.
    bad = _zip(("ok.dcm", phi_slice(series=0, index=0)), ("broken.dcm", phi_slice(series=1, index=1)[:700]))
    refused = client.post("/api/v1/imaging/upload/", {"files": [SimpleUploadedFile("bad.zip", bad)], "reader_study": study.slug})
    assert refused.status_code == 400
    # QIDO-RS searches by patient: the query string is PHI.
    client.get(f"/dicomweb/studies?{QIDO_QUERY}")
    Client().get(f"/dicomweb/studies?{QIDO_QUERY}")  # anonymous: refused, logged as a warning by django.request
    app_log = logging.getLogger("spinereview.test")
    app_log.debug("Dataset as read:\n%s", pydicom.dcmread(io.BytesIO(phi_slice())))
    try:
        raise ValueError(f"unexpected header PatientName={PHI_VALUES['PatientName']} in {STUDY_UID}")
    except ValueError:
        app_log.exception("Import failed for PatientID %s", PHI_VALUES["PatientID"])
    logging.getLogger("celery.app.trace").info("Task %s[%s] received: %r", "import", "id-1", {"PatientID": PHI_VALUES["PatientID"]})

    records = every_log_record
    assert len(records) > 200, "pydicom's debug dumps were captured"
    assert any("Imported 6 instance(s)" in record.getMessage() for record in records)
    assert any("[redacted]" in record.getMessage() for record in records)
    plain = logging.Formatter(settings.LOGGING["formatters"]["plain"]["format"])  # type: ignore[index]
    task = TaskFormatter(celery_app.conf.worker_task_log_format)
    for record in records:
        texts = [
            record.getMessage(),
            str(record.args),
            plain.format(record),
            task.format(record),
            record.exc_text or "",
            record.stack_info or "",
        ]
        assert _leaks("\n".join(texts)) == [], f"{record.name}: {record.getMessage()[:300]}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_gunicorn_access_log_has_no_phi(tmp_path: Path) -> None:
    """The production web server's own access log (the query string of a QIDO-RS search)."""
    port = _free_port()
    access_log = tmp_path / "access.log"
    env = dict(os.environ, DEBUG="0", SECRET_KEY="test-only-secret-key-not-for-production", ALLOWED_HOSTS="127.0.0.1")
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "spinereview.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "1",
         "--access-logfile", str(access_log), "--error-logfile", str(tmp_path / "error.log"), "--log-level", "debug"],
        cwd=REPO, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/dicomweb/studies?{QIDO_QUERY}", timeout=5)
            except urllib.error.HTTPError:
                break  # 403: anonymous, but served and logged
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "error.log").read_text()
                time.sleep(0.5)
        time.sleep(0.5)
    finally:
        server.terminate()
        server.wait(timeout=20)
    line = next(line for line in access_log.read_text().splitlines() if "/dicomweb/studies" in line)
    assert "PatientName=[redacted]" in line, line
    assert _leaks(line) == []
    assert _leaks((tmp_path / "error.log").read_text()) == []

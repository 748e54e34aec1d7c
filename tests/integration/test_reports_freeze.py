"""Data freeze: the archive re-exports byte-identically, whatever happens to the study afterwards."""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from spinereview.reports.freeze import FREEZE_FILES
from spinereview.reports.models import DataFreeze
from spinereview.studies.models import AuditEvent
from tests.integration import test_reports
from tests.integration.test_reports import submit

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

reports_study = test_reports.reports_study  # the shared study fixture
BASE = "/api/v1/reader-studies/reports-study"


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _body(response: Any) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_a_freeze_re_exports_byte_identically_after_new_reads(reports_study: dict[str, Any], media_root: Path) -> None:
    lead = _client(reports_study["users"]["lead"])
    created = lead.post(f"{BASE}/freezes/", {"note": "submitted manuscript"}, content_type="application/json")
    assert created.status_code == 201, created.content
    info = created.json()
    assert (info["version"], info["note"], info["created_by"]) == (1, "submitted manuscript", "lead")
    assert info["software_version"].startswith("spinereview 0.1.0")
    first, second = _body(lead.get(info["archive_url"])), _body(lead.get(info["archive_url"]))
    assert first == second and hashlib.sha256(first).hexdigest() == info["archive_sha256"] == DataFreeze.objects.get().archive_sha256
    archive = zipfile.ZipFile(io.BytesIO(first))
    assert archive.namelist() == list(FREEZE_FILES)
    manifest = json.loads(archive.read("manifest.json"))
    for name in FREEZE_FILES[:-1]:
        assert hashlib.sha256(archive.read(name)).hexdigest() == manifest["files"][name]["sha256"] == info["files"][name]
    live_before = _body(lead.get(f"{BASE}/reads.csv"))
    assert archive.read("reads.csv") == live_before
    statistics = json.loads(archive.read("statistics.json"))
    assert statistics["meta"]["readers"] == ["r1", "r2"] and manifest["statistics"]["seed"] == statistics["meta"]["seed"]
    assert AuditEvent.objects.filter(action="data.freeze", object_id=str(DataFreeze.objects.get().pk)).count() == 1

    # a third reader submits after the freeze: the live export changes, the frozen archive does not
    submit(reports_study["cases"]["Case 001"], reports_study["users"]["r3"], ["0", "1", "2", "3", "0"])
    assert _body(lead.get(info["archive_url"])) == first
    live_after = _body(lead.get(f"{BASE}/reads.csv"))
    assert live_after != live_before and live_after.startswith(live_before[: live_before.index(b"\r\n")])
    assert b",r3," in live_after and b",r3," not in first

    # the next freeze is version 2 and holds the new read; version 1 is untouched
    again = lead.post(f"{BASE}/freezes/", {}, content_type="application/json").json()
    assert again["version"] == 2 and again["archive_sha256"] != info["archive_sha256"]
    assert [f["version"] for f in lead.get(f"{BASE}/freezes/").json()] == [1, 2]
    assert _body(lead.get(info["archive_url"])) == first


def test_an_altered_archive_is_refused_not_served(reports_study: dict[str, Any], media_root: Path) -> None:
    lead = _client(reports_study["users"]["lead"])
    info = lead.post(f"{BASE}/freezes/", {}, content_type="application/json").json()
    freeze = DataFreeze.objects.get()
    path = media_root / freeze.folder / "reports-study-freeze-v1.zip"
    assert oct(path.stat().st_mode & 0o777) == "0o444"
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes() + b"x")
    response = lead.get(info["archive_url"])
    assert response.status_code == 409 and "altered" in response.json()["detail"]
    assert lead.get(f"{BASE}/freezes/9/archive.zip").status_code == 404


@pytest.mark.parametrize(("who", "status"), [("adjudicator", 403), ("r1", 404), ("admin", 201)])
def test_only_leads_and_staff_freeze(reports_study: dict[str, Any], who: str, status: int) -> None:
    response = _client(reports_study["users"][who]).post(f"{BASE}/freezes/", {}, content_type="application/json")
    assert response.status_code == status
    assert DataFreeze.objects.count() == (1 if status == 201 else 0)


def test_a_too_long_note_is_refused_and_nothing_is_written(reports_study: dict[str, Any], media_root: Path) -> None:
    response = _client(reports_study["users"]["lead"]).post(f"{BASE}/freezes/", {"note": "x" * 2001}, content_type="application/json")
    assert response.status_code == 400
    assert DataFreeze.objects.count() == 0
    assert not (media_root / "freezes" / str(reports_study["study"].pk)).exists()

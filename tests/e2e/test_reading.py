"""A reader's whole loop in Debian's Chromium against a live server, with a real Celery worker."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from spinereview.agreement import cohen_kappa_score
from spinereview.ai.models import AISegmentation
from spinereview.ai.services import model_version_register
from spinereview.imaging.services import sources_from_path
from spinereview.studies.models import ReadVersion, StudyMembership
from spinereview.studies.services import assignment_create, cases_import, read_save, read_submit
from tests.conftest import wait_for
from tests.e2e.conftest import ARTIFACTS
from tests.factories import PASSWORD, make_membership, make_reader_study, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LEVELS = ["L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]
READER1 = ["0", "1", "2", "3", "1"]
READER2 = ["0", "2", "2", "3", "0"]


def _coloured_fraction(png: bytes) -> tuple[float, float]:
    """(grey-level spread, fraction of clearly coloured pixels): MR is grey, the labelmap is colour."""
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    chroma = rgb.max(axis=2) - rgb.min(axis=2)
    return float(rgb.std()), float((chroma > 60).mean())


def _login(page: Any, base: str, username: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def test_reader_grades_in_the_viewer_and_lead_sees_kappa(
    live_server: Any, browser: Any, phantom_dir: Path, test_model_dir: Path, celery_worker_process: subprocess.Popen[bytes]
) -> None:
    model_version_register(path=test_model_dir, activate=True)
    study = make_reader_study(slug="e2e")
    users = {name: make_user(username=name) for name in ("reader1", "reader2", "lead")}
    for name in ("reader1", "reader2"):
        make_membership(reader_study=study, user=users[name], role=StudyMembership.Role.READER)
    make_membership(reader_study=study, user=users["lead"], role=StudyMembership.Role.LEAD)
    case_dir = sorted(p for p in phantom_dir.iterdir() if (p / "dicom").is_dir())[0]
    cases_import(sources=sources_from_path(case_dir / "dicom"), reader_study=study)
    case = study.cases.get()
    assignment = assignment_create(case=case, reader=users["reader1"])
    other = assignment_create(case=case, reader=users["reader2"])
    wait_for(lambda: AISegmentation.objects.count() == 2, timeout_s=240, what="the AI masks of both series")

    page = browser.new_page(viewport={"width": 1440, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    base = live_server.url
    _login(page, base, "reader1")
    assert page.locator("#worklist tbody tr").count() == 1
    page.click("#worklist a.button")
    page.wait_for_url(f"{base}/reading/{assignment.pk}/")
    root = page.locator("#viewer-root")
    page.wait_for_selector('#viewer-root[data-image-rendered-sagittal="true"][data-image-rendered-axial="true"]', timeout=60_000)
    page.wait_for_selector('#viewer-root[data-overlay-rendered="true"]', timeout=60_000)
    page.wait_for_timeout(500)
    shot = page.screenshot(path=str(ARTIFACTS / "e2e-viewer.png"))
    assert root.get_attribute("data-state") == "ready"
    for viewport in ("sagittal", "axial"):
        png = page.locator(f"#viewport-{viewport}").screenshot(path=str(ARTIFACTS / f"e2e-viewport-{viewport}.png"))
        spread, coloured = _coloured_fraction(png)
        assert spread > 10, f"{viewport}: the image looks blank (pixel spread {spread:.1f})"
        assert coloured > 0.002, f"{viewport}: no labelmap colour visible ({coloured:.4%} coloured pixels)"
    assert len(shot) > 10_000

    for level, value in zip(LEVELS, READER1, strict=True):
        page.check(f'input[name="grade-{level}-central_canal"][value="{value}"]')
    # Autosave may coalesce quick changes into fewer versions: wait until the last one is saved.
    page.wait_for_function(
        """() => document.querySelectorAll('#viewer-root input[type=radio]:checked').length === 5
              && /^Saved v[1-9]/.test(document.querySelector('#save-status')?.textContent ?? '')""",
        timeout=15_000,
    )
    saved_version = int(root.get_attribute("data-read-version") or 0)
    saved = ReadVersion.objects.get(assignment=assignment, version=saved_version)
    assert sorted((g.level, g.value) for g in saved.grades.all()) == sorted(zip(LEVELS, READER1, strict=True))
    page.click("#submit-read")
    page.click("#submit-confirm")
    page.wait_for_selector('#viewer-root[data-submitted="true"]', timeout=15_000)
    latest = ReadVersion.objects.filter(assignment=assignment).order_by("-version").first()
    assert latest is not None
    assert latest.submitted
    assert latest.version == saved_version + 1
    assert sorted((g.level, g.value) for g in latest.grades.all()) == sorted(zip(LEVELS, READER1, strict=True))
    assert errors == []

    # reader2 reads through the services; the lead opens the agreement page.
    version = read_save(assignment=other, user=users["reader2"], base_version=0, grades=[{"level": lv, "condition": "central_canal", "value": v} for lv, v in zip(LEVELS, READER2, strict=True)])
    read_submit(assignment=other, user=users["reader2"], base_version=version.version)
    lead_page = browser.new_page(viewport={"width": 1440, "height": 900})
    _login(lead_page, base, "lead")
    lead_page.goto(f"{base}/studies/e2e/agreement/")
    lead_page.screenshot(path=str(ARTIFACTS / "e2e-agreement.png"), full_page=True)
    expected = cohen_kappa_score(READER1, READER2, categories=["0", "1", "2", "3"], weights="quadratic").kappa
    assert lead_page.locator("#kappa-reader1-reader2 .kappa").inner_text() == f"{expected:.3f}"
    assert lead_page.locator("#kappa-reader1-reader2 td").nth(2).inner_text() == "5"
    api = lead_page.request.get(f"{base}/api/v1/reader-studies/e2e/agreement/", headers={"Accept": "application/json"}).json()
    assert api["pairs"][0]["kappa_quadratic"] == round(expected, 4)

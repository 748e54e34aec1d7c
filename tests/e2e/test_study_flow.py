"""A complete two-reader, two-phase study through the browser: the lead assigns, both readers read
unaided then AI-aided, the lead finds the disagreements, the adjudicator records the reference."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from spinereview.imaging.services import sources_from_path
from spinereview.studies.models import AdjudicationTask, ReaderStudy, ReadVersion, ReferenceRead, StudyMembership
from spinereview.studies.services import cases_import
from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_reading import LEVELS, TWO_PHASE, _login, _open
from tests.factories import make_membership, make_reader_study, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

GRADES = {"reader1": ["0", "1", "2", "3", "0"], "reader2": ["0", "1", "3", "3", "1"]}
REFERENCE = ["0", "1", "2", "3", "1"]


@pytest.fixture
def study(phantom_dir: Path) -> ReaderStudy:
    study = make_reader_study(slug=f"flow-{uuid.uuid4().hex[:6]}", protocol=TWO_PHASE, ai_visibility=ReaderStudy.AiVisibility.AFTER_SUBMIT)
    for name, role in [("reader1", "reader"), ("reader2", "reader"), ("lead", "lead"), ("adjudicator", "adjudicator")]:
        make_membership(reader_study=study, user=make_user(username=name), role=role)
    case_dir = sorted(p for p in phantom_dir.iterdir() if (p / "dicom").is_dir())[0]
    cases_import(sources=sources_from_path(case_dir / "dicom"), reader_study=study)
    return study


def _read_both_phases(page: Any, base: str, values: list[str]) -> None:
    page.click("#worklist a.button")
    page.wait_for_url(f"{base}/reading/**")
    assignment_id = page.url.rstrip("/").split("/")[-1]
    _open(page, base, assignment_id)
    for phase in ("unaided", "aided"):
        page.wait_for_selector(f'#viewer-root[data-phase="{phase}"][data-state="ready"]', timeout=60_000)
        if phase == "unaided":
            for key in values:
                page.keyboard.press(key)
            page.wait_for_function("() => document.querySelectorAll('#grade-grid td.sr-graded').length === 5", timeout=10_000)
            page.wait_for_function("() => /^Saved/.test(document.querySelector('#save-status')?.textContent ?? '')", timeout=10_000)
        page.keyboard.press("Control+Enter")
        page.click("#submit-confirm")
    page.wait_for_selector('#viewer-root[data-submitted="true"]', timeout=30_000)


def test_two_readers_two_phases_then_adjudication(live_server: Any, browser: Any, study: ReaderStudy) -> None:
    base = live_server.url
    pages = {}
    for name in ("lead", "reader1", "reader2", "adjudicator"):
        context = browser.new_context(viewport={"width": 1600, "height": 950})
        pages[name] = context.new_page()
        _login(pages[name], base, name)

    lead = pages["lead"]
    lead.goto(f"{base}/")
    lead.click(f'a[href="/studies/{study.slug}/"]')
    lead.click("text=Assign all cases to all readers")
    assert "2 new assignment(s)" in lead.locator("#study-message").inner_text()

    for reader, values in GRADES.items():
        pages[reader].goto(f"{base}/")
        _read_both_phases(pages[reader], base, values)
    reads = ReadVersion.objects.filter(assignment__case__reader_study=study, submitted=True)
    assert sorted((r.assignment.reader.username, r.phase) for r in reads) == [
        ("reader1", "aided"),
        ("reader1", "unaided"),
        ("reader2", "aided"),
        ("reader2", "unaided"),
    ]

    lead.reload()
    assert [cell.inner_text().strip() for cell in lead.locator("#progress tbody tr td:nth-child(5)").all()] == ["1", "1"]
    lead.click("text=Find disagreements")
    assert "2 new disagreement(s)" in lead.locator("#study-message").inner_text()
    lead.screenshot(path=str(ARTIFACTS / "e2e-study-overview.png"), full_page=True)

    adjudicator = pages["adjudicator"]
    adjudicator.goto(f"{base}/studies/{study.slug}/")
    adjudicator.locator("#adjudication-tasks a.button").first.click()
    adjudicator.wait_for_selector("#reference-form")
    assert adjudicator.locator("#reads tr.disputed").count() == 2
    for level, value in zip(LEVELS, REFERENCE, strict=True):
        adjudicator.select_option(f'select[name="grade|{level}|central_canal"]', value)
    adjudicator.fill("input[name=note]", "read together at the console")
    adjudicator.screenshot(path=str(ARTIFACTS / "e2e-adjudicate.png"), full_page=True)
    adjudicator.click("text=Record reference read")
    adjudicator.wait_for_url(f"{base}/studies/{study.slug}/")
    assert adjudicator.locator("#adjudication-tasks tr[data-status=resolved]").count() == 2

    reference = ReferenceRead.objects.get(case__reader_study=study, source=ReferenceRead.Source.ADJUDICATED)
    assert [g["value"] for g in sorted(reference.grades, key=lambda g: LEVELS.index(g["level"]))] == REFERENCE
    assert reference.created_by is not None and reference.created_by.username == "adjudicator"
    assert not AdjudicationTask.objects.filter(case__reader_study=study, status=AdjudicationTask.Status.OPEN).exists()
    assert StudyMembership.objects.filter(reader_study=study).count() == 4

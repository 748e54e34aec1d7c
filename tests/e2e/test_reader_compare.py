"""Reader vs reader in Chromium: the adjudicator opens the comparison from the adjudication page and sees
both readers' masks in two colours, the difference view, Dice, per-level deltas and the grade differences."""

from __future__ import annotations

import io
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from PIL import Image

from spinereview.imaging.selectors import series_instances
from spinereview.imaging.services import sources_from_path
from spinereview.studies.models import StudyMembership
from spinereview.studies.services import assignment_create, cases_import, read_save, read_submit, segmentation_save
from tests.e2e.conftest import ARTIFACTS
from tests.factories import PASSWORD, make_membership, make_reader_study, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LEVELS = ["L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]
PROTOCOL: dict[str, Any] = {
    "levels": LEVELS,
    "conditions": [{"key": "central_canal", "label": "Central canal stenosis", "scale": "four_grade"}],
    "measurements": [{"key": "dsca", "kind": "area", "label": "Dural sac area", "required": False}],
    "segmentation": {"series_role": "axial_t2", "labels": ["dural_sac", "spinal_canal"], "brush_radius_mm": 3.0},
}
SAC, CANAL = 4, 3
GRADES = {"reader1": ["0", "1", "2", "3", "0"], "reader2": ["0", "2", "2", "1", "0"]}


def _rgb(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


@pytest.fixture
def two_reads(phantom_dir: Path) -> dict[str, Any]:
    study = make_reader_study(slug=f"e2e-rr-{uuid.uuid4().hex[:6]}", protocol=PROTOCOL)
    users = {name: make_user(username=name) for name in ("reader1", "reader2", "adjudicator")}
    for name in ("reader1", "reader2"):
        make_membership(reader_study=study, user=users[name], role=StudyMembership.Role.READER)
    make_membership(reader_study=study, user=users["adjudicator"], role=StudyMembership.Role.ADJUDICATOR)
    case_dir = sorted(p for p in phantom_dir.iterdir() if (p / "dicom").is_dir())[0]
    cases_import(sources=sources_from_path(case_dir / "dicom"), reader_study=study)
    case = study.cases.get()
    series = case.case_series.get(role="axial_t2").series
    # The phantom's truth in the server's slice order (import gives new UIDs: match by InstanceNumber).
    originals = [pydicom.dcmread(f, stop_before_pixels=True) for f in sorted((case_dir / "dicom" / "axial_t2").glob("*.dcm"))]
    number_by_sop = {str(ds.SOPInstanceUID): int(ds.InstanceNumber) for ds in originals}
    truth = np.load(case_dir / "truth" / f"{originals[0].SeriesInstanceUID}.npz")
    number_by_z = [number_by_sop[str(sop)] for sop in truth["sop_instance_uids"]]
    number_of = dict(series.instances.values_list("sop_instance_uid", "instance_number"))
    order = [number_by_z.index(int(number_of[i.sop_instance_uid] or 0)) for i in series_instances(series=series)]
    labels = truth["labels"][order]
    mask_a = np.where(np.isin(labels, [SAC, CANAL]), labels, 0).astype(np.uint8)
    # Reader 2 drew the sac 8 pixels further right (beyond reader 1's canal) and no canal: both kinds of difference.
    mask_b = np.where(np.roll(labels == SAC, 8, axis=2), SAC, 0).astype(np.uint8)
    square = [[0.0, 0.0, 1.0], [10.0, 0.0, 1.0], [10.0, 10.0, 1.0], [0.0, 10.0, 1.0]]
    for name, mask, scale in (("reader1", mask_a, 1.0), ("reader2", mask_b, 1.1)):
        assignment = assignment_create(case=case, reader=users[name])
        segmentation_save(
            assignment=assignment, user=users[name], series_instance_uid=series.series_instance_uid, base_version=0, data=mask.tobytes()
        )
        dsca = {
            "id": str(uuid.uuid4()),
            "key": "dsca",
            "level": "L4-L5",
            "series_instance_uid": series.series_instance_uid,
            "points_mm": [[x * scale, y * scale, z] for x, y, z in square],
        }
        grades = [{"level": lv, "condition": "central_canal", "value": v} for lv, v in zip(LEVELS, GRADES[name], strict=True)]
        read_save(assignment=assignment, user=users[name], base_version=0, grades=grades, measurements=[dsca])
        read_submit(assignment=assignment, user=users[name], base_version=1)
    sac_a, sac_b = mask_a == SAC, mask_b == SAC
    dice = 2 * (sac_a & sac_b).sum() / (sac_a.sum() + sac_b.sum())
    return {"study": study, "case": case, "dice": round(float(dice), 3)}


def test_adjudicator_compares_two_readers_masks(live_server: Any, browser: Any, two_reads: dict[str, Any]) -> None:
    started = time.monotonic()
    study, case = two_reads["study"], two_reads["case"]
    page = browser.new_page(viewport={"width": 1600, "height": 950})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    base = live_server.url
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", "adjudicator")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")

    page.goto(f"{base}/studies/{study.slug}/cases/{case.pk}/adjudicate/")
    page.click("#compare-readers-link")
    page.wait_for_selector('#viewer-root[data-state="ready"][data-compare-loaded="true"][data-masks="shown"]', timeout=60_000)
    assert page.locator("#reader-a").input_value() == "reader1" and page.locator("#reader-b").input_value() == "reader2"
    assert page.locator("#compare-dice tr[data-structure=dural_sac] .sr-dice").inner_text() == f"{two_reads['dice']:.3f}"
    assert page.locator("#compare-dice tr[data-structure=spinal_canal] .sr-dice").inner_text() == "0.000"
    # the grade differences of the two reads, highlighted
    assert page.locator("#compare-levels .sr-grade-pair.sr-differs").all_inner_texts() == ["1 / 2", "3 / 1"]
    l45 = page.locator('#compare-levels tr[data-level="L4-L5"] td').all_inner_texts()
    assert l45[:3] == ["100.0", "121.0", "+21.0"], l45
    page.wait_for_timeout(400)
    page.screenshot(path=str(ARTIFACTS / "e2e-readers-compare.png"))
    both = _rgb(page.locator("#viewport-axial").screenshot(path=str(ARTIFACTS / "e2e-readers-masks.png")))
    r, g, b = both[..., 0], both[..., 1], both[..., 2]
    orange = float(((r - b > 80) & (r > g)).mean())  # A's colour, over grey or the bright sac
    blue = float(((b - r > 80) & (b > g)).mean())  # B's colour
    assert orange > 0.002 and blue > 0.002, f"both readers' masks show in their colours (orange {orange:.4%}, blue {blue:.4%})"

    # the difference view: only-A (magenta) and only-B (cyan) voxels where the readers disagree
    page.check("#toggle-diff")
    page.wait_for_selector('#viewer-root[data-diff-view="on"]')
    page.select_option("#diff-structure", str(SAC))
    page.wait_for_timeout(400)
    diff = _rgb(page.locator("#viewport-axial").screenshot(path=str(ARTIFACTS / "e2e-readers-diff.png")))
    r, g, b = diff[..., 0], diff[..., 1], diff[..., 2]
    magenta = float(((r - g > 60) & (b - g > 60)).mean())
    cyan = float(((b - r > 60) & (g - r > 40)).mean())
    assert magenta > 0.0002 and cyan > 0.0002, f"only-A {magenta:.4%}, only-B {cyan:.4%}"
    # swapping the readers is one pick away; the same reader twice is refused with a reason
    page.select_option("#reader-b", "reader1")
    page.wait_for_function("() => document.querySelector('#compare-message').textContent.includes('two different')")
    page.select_option("#reader-a", "reader2")
    page.wait_for_selector('#viewer-root[data-compare-loaded="true"]', timeout=30_000)
    assert page.locator("#compare-levels .sr-grade-pair.sr-differs").all_inner_texts() == ["2 / 1", "1 / 3"]
    assert "a=reader2" in page.url and "b=reader1" in page.url
    assert errors == []
    assert time.monotonic() - started < 90


def test_readers_cannot_open_the_comparison(live_server: Any, browser: Any, two_reads: dict[str, Any]) -> None:
    study, case = two_reads["study"], two_reads["case"]
    page = browser.new_page()
    base = live_server.url
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", "reader1")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    response = page.goto(f"{base}/studies/{study.slug}/cases/{case.pk}/compare-readers/")
    assert response is not None and response.status == 404

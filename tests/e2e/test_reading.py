"""The reading workspace in Debian's Chromium against a live server: paint, undo, measure, grade, submit, compare.

The AI result in the compare test is the phantom's exact truth registered as a model's output (so the
expected Dice of the reader's mask against it is known); the inference pipeline itself has its own
integration test.
"""

from __future__ import annotations

import io
import json
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from django.conf import settings
from PIL import Image

from ml.labels import LABEL_MAP
from spinereview.imaging.services import sources_from_path
from spinereview.studies.models import StudyMembership
from spinereview.studies.services import assignment_create, cases_import
from tests.e2e.conftest import ARTIFACTS
from tests.factories import PASSWORD, make_membership, make_reader_study, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LEVELS = ["L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]
PROTOCOL: dict[str, Any] = {
    "levels": LEVELS,
    "conditions": [
        {
            "key": "central_canal",
            "label": "Central canal stenosis",
            "scale": "schizas",
            "sub_questions": [{"key": "central_canal_subgrade", "label": "A sub-grade", "scale": "schizas_a_subgrade", "when": ["A"]}],
        },
        {"key": "foraminal_left", "label": "Foraminal stenosis", "side": "left", "scale": "lee"},
    ],
    "measurements": [
        {"key": "ap_diameter", "kind": "length", "label": "Canal AP diameter", "required": False},
        {"key": "dsca", "kind": "area", "label": "Dural sac area", "required": False},
        {"key": "disc_height", "kind": "disc_height", "label": "Disc height", "required": False},
    ],
    "segmentation": {"series_role": "axial_t2", "labels": ["dural_sac", "spinal_canal"], "brush_radius_mm": 4.0},
}
# Keys typed into the grid, level by level: digits pick a category by position and move on;
# a Schizas "A" (0) opens its sub-grade question, which the next digit answers.
KEYS = [["0", "1", "2"], ["1", "0"], ["2", "1"], ["3", "3"], ["0", "3", "1"]]
EXPECTED_GRADES = sorted(
    [
        ("L1-L2", "central_canal", "A"),
        ("L1-L2", "central_canal_subgrade", "A2"),
        ("L1-L2", "foraminal_left", "2"),
        ("L2-L3", "central_canal", "B"),
        ("L2-L3", "foraminal_left", "0"),
        ("L3-L4", "central_canal", "C"),
        ("L3-L4", "foraminal_left", "1"),
        ("L4-L5", "central_canal", "D"),
        ("L4-L5", "foraminal_left", "3"),
        ("L5-S1", "central_canal", "A"),
        ("L5-S1", "central_canal_subgrade", "A4"),
        ("L5-S1", "foraminal_left", "1"),
    ]
)


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def _grey_spread(png: bytes) -> float:
    return float(_pixels(png).std())


def _yellow_fraction(png: bytes) -> float:
    """Fraction of yellow pixels (the dural sac label, blended over grey MR or drawn as its outline)."""
    rgb = _pixels(png)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return float(((r - b > 60) & (g - b > 50) & (np.abs(r - g) < 60)).mean())


def _login(page: Any, base: str, username: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def _open(page: Any, base: str, assignment_id: Any) -> None:
    page.goto(f"{base}/reading/{assignment_id}/")
    page.wait_for_selector(
        '#viewer-root[data-state="ready"][data-image-rendered-sagittal="true"][data-image-rendered-axial="true"]', timeout=60_000
    )
    page.wait_for_selector('#viewer-root[data-series-loaded="true"]', timeout=60_000)


def _centre(page: Any, selector: str) -> tuple[float, float, float, float]:
    box = page.locator(selector).bounding_box()
    assert box is not None, selector
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, box["width"], box["height"]


def _drag(page: Any, start: tuple[float, float], end: tuple[float, float], steps: int = 12) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=steps)
    page.mouse.up()


def _wait_mask(page: Any, version: int) -> None:
    page.wait_for_selector(f'#viewer-root[data-mask-version="{version}"][data-mask-save="saved"]', timeout=15_000)


def _api(page: Any, base: str, path: str) -> Any:
    response = page.request.get(f"{base}/api/v1/{path}", headers={"Accept": "application/json"})
    assert response.ok, f"{path}: HTTP {response.status} {response.text()[:300]}"
    return response.json()


def _labels(page: Any, base: str, assignment_id: Any, series_uid: str) -> tuple[np.ndarray, str]:
    response = page.request.get(
        f"{base}/api/v1/assignments/{assignment_id}/segmentations/{series_uid}/labels", headers={"Accept": "application/octet-stream"}
    )
    assert response.status == 200, response.status
    return np.frombuffer(response.body(), dtype=np.uint8), response.headers["etag"]


@pytest.fixture
def reading_case(phantom_dir: Path) -> dict[str, Any]:
    study = make_reader_study(slug=f"e2e-{uuid.uuid4().hex[:6]}", protocol=PROTOCOL)
    reader = make_user(username="reader1")
    make_membership(reader_study=study, user=reader, role=StudyMembership.Role.READER)
    case_dir = sorted(p for p in phantom_dir.iterdir() if (p / "dicom").is_dir())[0]
    cases_import(sources=sources_from_path(case_dir / "dicom"), reader_study=study)
    case = study.cases.get()
    assignment = assignment_create(case=case, reader=reader)
    axial = case.case_series.get(role="axial_t2").series.series_instance_uid
    return {"study": study, "case": case, "assignment": assignment, "axial_uid": axial, "case_dir": case_dir}


def test_reader_paints_undoes_measures_grades_and_submits(live_server: Any, browser: Any, reading_case: dict[str, Any]) -> None:
    started = time.monotonic()
    assignment, axial_uid = reading_case["assignment"], reading_case["axial_uid"]
    page = browser.new_page(viewport={"width": 1600, "height": 950})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    base = live_server.url
    _login(page, base, "reader1")
    _open(page, base, assignment.pk)
    root = page.locator("#viewer-root")
    timings = {
        "first_image_ms": int(root.get_attribute("data-first-image-ms") or 0),
        "series_loaded_ms": int(root.get_attribute("data-series-loaded-ms") or 0),
    }
    (ARTIFACTS / "e2e-timings.json").write_text(json.dumps(timings))
    assert 0 < timings["first_image_ms"] <= timings["series_loaded_ms"]
    page.wait_for_timeout(300)
    page.screenshot(path=str(ARTIFACTS / "e2e-workspace.png"))
    # "?" lists every shortcut.
    page.keyboard.press("?")
    page.wait_for_selector("#help-dialog[open]")
    assert page.locator("#help-dialog dt").count() >= 30
    page.screenshot(path=str(ARTIFACTS / "e2e-help.png"))
    page.keyboard.press("?")
    page.wait_for_selector("#help-dialog:not([open])", state="attached")
    for viewport in ("sagittal", "axial"):
        png = page.locator(f"#viewport-{viewport}").screenshot(path=str(ARTIFACTS / f"e2e-viewport-{viewport}.png"))
        assert _grey_spread(png) > 10, f"{viewport}: the image looks blank"
    # The axial slice's plane is drawn across the sagittal image, and the axial blocks give the levels.
    assert int(root.get_attribute("data-crossref-lines") or 0) >= 1
    assert root.get_attribute("data-level-source") == "blocks"
    assert page.locator("#viewport-sagittal + svg line.sr-xref-current, #viewport-sagittal ~ svg line.sr-xref-current").count() == 1

    # ---- paint two strokes of dural sac, undo the second; every change is a new server version ----
    cx, cy, w, h = _centre(page, "#viewport-axial")
    page.keyboard.press("b")
    assert root.get_attribute("data-tool") == "brush"
    # The phantom's dural sac is the bright disc just above the centre of the axial image.
    _drag(page, (cx - 0.025 * w, cy - 0.015 * h), (cx + 0.025 * w, cy - 0.015 * h), steps=6)
    _wait_mask(page, 1)
    first, etag = _labels(page, base, assignment.pk, axial_uid)
    assert etag == '"1"'
    assert set(np.unique(first).tolist()) == {0, 4}, "the brush paints the selected label (dural sac = 4)"
    painted = int((first == 4).sum())
    assert painted > 20
    # A slip into the paraspinal muscles, then undone.
    _drag(page, (cx - 0.12 * w, cy + 0.12 * h), (cx + 0.12 * w, cy + 0.12 * h))
    _wait_mask(page, 2)
    second, _ = _labels(page, base, assignment.pk, axial_uid)
    assert int((second == 4).sum()) > painted
    png_two = page.locator("#viewport-axial").screenshot(path=str(ARTIFACTS / "e2e-mask-two-strokes.png"))
    page.keyboard.press("Control+z")
    _wait_mask(page, 3)
    undone, etag = _labels(page, base, assignment.pk, axial_uid)
    assert etag == '"3"'
    assert np.array_equal(undone, first), "undo restores exactly the mask before the second stroke"
    png_undone = page.locator("#viewport-axial").screenshot(path=str(ARTIFACTS / "e2e-mask-undone.png"))
    two, one = _yellow_fraction(png_two), _yellow_fraction(png_undone)
    assert one > 0.001, f"the first stroke is visible ({one:.4%} yellow pixels)"
    assert two > 1.5 * one, f"undo removed the second stroke from the screen ({two:.4%} -> {one:.4%})"

    # ---- reload: nothing is lost ----
    _open(page, base, assignment.pk)
    assert root.get_attribute("data-mask-version") == "3"
    page.wait_for_timeout(300)
    png_reloaded = page.locator("#viewport-axial").screenshot(path=str(ARTIFACTS / "e2e-mask-reloaded.png"))
    reloaded = _yellow_fraction(png_reloaded)
    assert reloaded > 0.5 * one, f"the saved mask shows after a reload ({reloaded:.4%} yellow pixels)"

    # ---- another window saves v4 meanwhile: this page's next stroke is refused (412), shown, never merged ----
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    elsewhere = page.request.put(
        f"{base}/api/v1/assignments/{assignment.pk}/segmentations/{axial_uid}/labels",
        data=first.tobytes(),
        headers={"Content-Type": "application/octet-stream", "If-Match": '"3"', "X-CSRFToken": csrf},
    )
    assert elsewhere.status == 200, elsewhere.text()
    page.keyboard.press("b")
    _drag(page, (cx - 0.12 * w, cy + 0.12 * h), (cx + 0.12 * w, cy + 0.12 * h))
    page.wait_for_selector('#viewer-root[data-mask-save="conflict"]', timeout=10_000)
    assert "newer version (v4)" in page.locator("#mask-alert").inner_text()
    assert np.array_equal(_labels(page, base, assignment.pk, axial_uid)[0], first), "the server kept v4 untouched"
    page.click("#load-latest-mask")
    _wait_mask(page, 4)
    page.wait_for_selector("#mask-alert", state="hidden")

    # ---- window/level presets (Shift+digit) change the displayed window ----
    voi = page.locator("#viewport-axial ~ .sr-vp-voi")
    default_voi = voi.inner_text()
    page.mouse.move(cx, cy)
    page.keyboard.press("Shift+2")
    page.wait_for_function(
        "(before) => document.querySelector('#viewport-axial ~ .sr-vp-voi').textContent !== before", arg=default_voi, timeout=5_000
    )
    page.keyboard.press("Shift+1")
    page.wait_for_function(
        "(before) => document.querySelector('#viewport-axial ~ .sr-vp-voi').textContent === before", arg=default_voi, timeout=5_000
    )

    # ---- the same stroke two slices further, then interpolation fills the slice between ----
    page.keyboard.press("b")
    counter = page.locator("[data-testid=slice-axial]")
    shown_slice = counter.inner_text()
    page.mouse.move(cx, cy)
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.wait_for_function(
        "(before) => document.querySelector('[data-testid=slice-axial]').textContent !== before", arg=shown_slice, timeout=5_000
    )
    _drag(page, (cx - 0.025 * w, cy - 0.015 * h), (cx + 0.025 * w, cy - 0.015 * h), steps=6)
    _wait_mask(page, 5)
    page.keyboard.press("i")
    _wait_mask(page, 6)
    interpolated, _ = _labels(page, base, assignment.pk, axial_uid)
    per_slice = (interpolated.reshape(25, -1) == 4).sum(axis=1)
    drawn = np.flatnonzero(per_slice)
    assert len(drawn) == 3 and drawn[2] - drawn[0] == 2, f"dural sac on slices {drawn.tolist()}"
    assert per_slice[drawn[1]] > 0.5 * min(per_slice[drawn[0]], per_slice[drawn[2]])
    page.keyboard.press("k")
    page.keyboard.press("k")
    page.wait_for_function(
        "(before) => document.querySelector('[data-testid=slice-axial]').textContent === before", arg=shown_slice, timeout=5_000
    )

    # ---- an AP diameter on the axial image, listed with its mm value ----
    page.keyboard.press("l")
    _drag(page, (cx, cy - 0.045 * h), (cx, cy + 0.015 * h), steps=6)
    row = page.locator("#measurement-list tr[data-kind=length]")
    row.wait_for(timeout=10_000)
    page.wait_for_function("() => /^Saved v[1-9]/.test(document.querySelector('#save-status')?.textContent ?? '')", timeout=15_000)
    shown = row.locator("[data-testid=measurement-value]").inner_text()
    read = _api(page, base, f"assignments/{assignment.pk}/")["read"]
    (measurement,) = read["measurements"]
    assert measurement["kind"] == "length" and measurement["key"] == "ap_diameter"
    assert measurement["level"] == root.get_attribute("data-axial-level")
    assert measurement["series_instance_uid"] == axial_uid
    assert shown == f"{measurement['values']['length_mm']:.1f} mm"
    p0, p1 = (np.asarray(p) for p in measurement["points_mm"])
    assert abs(float(np.linalg.norm(p1 - p0)) - measurement["values"]["length_mm"]) < 0.01  # the server rounds to 0.01 mm
    assert 5 < measurement["values"]["length_mm"] < 40, "across the canal, in mm"
    page.locator("#viewport-axial").screenshot(path=str(ARTIFACTS / "e2e-length.png"))

    # ---- grades from the keyboard only ----
    page.keyboard.press("Escape")
    for keys in KEYS:
        for key in keys:
            page.keyboard.press(key)
    page.wait_for_function(
        "() => /^Saved v[1-9]/.test(document.querySelector('#save-status')?.textContent ?? '') && document.querySelectorAll('#grade-grid td.sr-graded').length === 12",
        timeout=15_000,
    )
    page.locator(".sr-sidebar").screenshot(path=str(ARTIFACTS / "e2e-grading.png"))
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#submit-dialog[open]", timeout=5_000)
    page.click("#submit-confirm")
    page.wait_for_selector('#viewer-root[data-submitted="true"]', timeout=15_000)
    read = _api(page, base, f"assignments/{assignment.pk}/")["read"]
    assert read["submitted"] is True
    assert sorted((g["level"], g["condition"], g["value"]) for g in read["grades"]) == EXPECTED_GRADES
    assert len(read["measurements"]) == 1
    assert read["elapsed_s"] > 0
    page.screenshot(path=str(ARTIFACTS / "e2e-submitted.png"))
    # A submitted read is read-only: the brush is refused and the mask stays at v3.
    page.keyboard.press("b")
    assert root.get_attribute("data-tool") != "brush"
    assert errors == []
    assert time.monotonic() - started < 120


TWO_PHASE: dict[str, Any] = {
    "levels": LEVELS,
    "conditions": [{"key": "central_canal", "label": "Central canal stenosis", "scale": "four_grade"}],
    "measurements": [
        {"key": "dsca", "kind": "area", "label": "Dural sac area", "required": False},
        {"key": "disc_height", "kind": "disc_height", "label": "Disc height", "required": False},
    ],
    "segmentation": {"series_role": "axial_t2", "labels": ["dural_sac", "spinal_canal"], "brush_radius_mm": 3.0},
    "ai_grade": {"condition": "central_canal", "dsca_cutoffs_mm2": [100.0, 75.0, 50.0]},
    "two_phase": True,
    "compare": True,
}
UNAIDED = ["0", "1", "2", "3", "0"]


@pytest.fixture
def two_phase_case(phantom_dir: Path) -> dict[str, Any]:
    """A two-phase study whose AI stays hidden until the unaided read is submitted; its AI is the phantom truth."""
    from spinereview.ai.level_measurements import ai_level_measurements_compute
    from spinereview.ai.models import AISegmentation, InferenceJob, ModelVersion
    from spinereview.studies.models import ReaderStudy

    study = make_reader_study(slug=f"e2e-{uuid.uuid4().hex[:6]}", protocol=TWO_PHASE, ai_visibility=ReaderStudy.AiVisibility.AFTER_SUBMIT)
    reader = make_user(username="reader2")
    make_membership(reader_study=study, user=reader, role=StudyMembership.Role.READER)
    case_dir = sorted(p for p in phantom_dir.iterdir() if (p / "dicom").is_dir())[1]
    cases_import(sources=sources_from_path(case_dir / "dicom"), reader_study=study)
    case = study.cases.get()
    assignment = assignment_create(case=case, reader=reader)

    model = ModelVersion.objects.create(
        name="phantom-truth",
        version="phantom-truth-e2e",
        path="",
        label_map={str(k): v for k, v in LABEL_MAP.items()},
        config={},
        is_active=True,
    )
    truth_by_role: dict[str, np.ndarray] = {}
    for case_series in case.case_series.select_related("series"):
        series = case_series.series
        # Import gives new UIDs: match the phantom's slices to the stored ones by InstanceNumber.
        originals = [pydicom.dcmread(f, stop_before_pixels=True) for f in sorted((case_dir / "dicom" / case_series.role).glob("*.dcm"))]
        number_by_sop = {str(ds.SOPInstanceUID): int(ds.InstanceNumber) for ds in originals}
        truth = np.load(case_dir / "truth" / f"{originals[0].SeriesInstanceUID}.npz")
        sop_by_number = dict(series.instances.values_list("instance_number", "sop_instance_uid"))
        sops = [sop_by_number[number_by_sop[str(sop)]] for sop in truth["sop_instance_uids"]]
        truth_by_role[case_series.role] = truth["labels"]
        relative = f"segmentations/ai/{series.series_instance_uid}/truth.npy"
        target = Path(settings.MEDIA_ROOT) / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        np.save(target, truth["labels"].astype(np.uint8))
        job = InferenceJob.objects.create(series=series, model_version=model, status=InferenceJob.Status.SUCCEEDED)
        AISegmentation.objects.create(
            job=job,
            series=series,
            model_version=model,
            label_map=model.label_map,
            shape=list(truth["labels"].shape),
            sop_instance_uids=sops,
            file_path=relative,
        )
    # What the worker does after inference: the AI's DSCA (and from it its grade) per level.
    ai_level_measurements_compute(dicom_study_id=str(case.dicom_study_id), model_version_id=str(model.pk))
    axial = case.case_series.get(role="axial_t2").series.series_instance_uid
    return {"assignment": assignment, "axial_uid": axial, "axial_truth": truth_by_role["axial_t2"]}


def test_two_phase_read_reveals_ai_then_compares(live_server: Any, browser: Any, two_phase_case: dict[str, Any]) -> None:
    started = time.monotonic()
    assignment, axial_uid = two_phase_case["assignment"], two_phase_case["axial_uid"]
    page = browser.new_page(viewport={"width": 1600, "height": 950})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    base = live_server.url
    _login(page, base, "reader2")
    _open(page, base, assignment.pk)
    root = page.locator("#viewer-root")

    # ---- phase 1: blinded. No AI in the page, and "Start from AI" is refused by the server too. ----
    assert root.get_attribute("data-phase") == "unaided"
    assert page.locator("#ai-unavailable").inner_text() == "AI result hidden until you submit your unaided read"
    assert page.locator("#start-from-ai").is_hidden()
    refused = page.request.post(
        f"{base}/api/v1/assignments/{assignment.pk}/segmentations/{axial_uid}/from-ai",
        data={"base_version": 0},
        headers={"X-CSRFToken": next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")},
    )
    assert refused.status == 403
    # Submitting early lists what is missing instead of asking to confirm.
    page.keyboard.press("Control+Enter")
    assert (
        page.locator("#missing-list").inner_text()
        == "Missing (5): L1-L2 Central canal, L2-L3 Central canal, L3-L4 Central canal, L4-L5 Central canal, L5-S1 Central canal"
    )
    assert page.locator("#submit-dialog[open]").count() == 0
    assert page.locator("#grade-grid td.sr-missing").count() == 5
    for key in UNAIDED:
        page.keyboard.press(key)
    page.wait_for_function("() => document.querySelectorAll('#grade-grid td.sr-graded').length === 5", timeout=10_000)
    page.keyboard.press("Control+Enter")
    page.click("#submit-confirm")

    # ---- phase 2: the page reloads itself into the AI-aided read, AI shown, unaided answers beside each cell ----
    page.wait_for_selector('#viewer-root[data-phase="aided"][data-state="ready"]', timeout=30_000)
    page.wait_for_selector('#viewer-root[data-overlay-rendered="true"][data-series-loaded="true"]', timeout=30_000)
    assert page.locator("#phase-badge").inner_text() == "AI-aided read"
    # The aided read starts from the unaided answers; a changed answer shows what it was.
    assert [page.locator(f'#grade-grid td[data-cell="{level}/central_canal"]').get_attribute("data-value") for level in LEVELS] == UNAIDED
    page.locator('#grade-grid td[data-cell="L2-L3/central_canal"]').dispatch_event("mousedown")
    page.keyboard.press("2")
    page.wait_for_function("() => /^Saved v6/.test(document.querySelector('#save-status')?.textContent ?? '')", timeout=10_000)
    assert page.locator("#grade-grid .sr-cell-prev").all_inner_texts() == ["was 1"]
    # With the AI's disc labels the levels come from the sagittal mask, not from slice blocks.
    assert root.get_attribute("data-level-source") == "labels"
    page.wait_for_timeout(300)
    page.screenshot(path=str(ARTIFACTS / "e2e-aided.png"))
    for viewport in ("sagittal", "axial"):
        png = page.locator(f"#viewport-{viewport}").screenshot(path=str(ARTIFACTS / f"e2e-aided-{viewport}.png"))
        coloured = float(((_pixels(png).max(axis=2) - _pixels(png).min(axis=2)) > 60).mean())
        assert coloured > 0.002, f"{viewport}: the AI mask is not visible ({coloured:.4%} coloured pixels)"

    # ---- start from the AI mask: a new version copying the AI's dural sac and canal ----
    page.click("#start-from-ai")
    _wait_mask(page, 1)
    labels, _ = _labels(page, base, assignment.pk, axial_uid)
    truth = two_phase_case["axial_truth"].ravel()
    assert set(np.unique(labels).tolist()) <= {0, 3, 4}
    assert np.array_equal(labels == 4, truth == 4)

    # ---- compare: Dice 1 for the copied structures, per-level deltas, grade differences marked ----
    page.click("#compare-refresh")
    page.wait_for_selector("#compare-dice tr[data-structure=dural_sac]", timeout=10_000)
    assert page.locator("#compare-dice tr[data-structure=dural_sac] .sr-dice").inner_text() == "1.000"
    comparison = _api(page, base, f"assignments/{assignment.pk}/compare/")
    differing = [row["level"] for row in comparison["levels"] for g in row["grades"] if g["differs"]]
    assert page.locator("#compare-levels .sr-grade-pair.sr-differs").count() == len(differing)
    assert page.locator("#grade-grid td.sr-differs").count() == len(differing)
    page.locator("#compare-panel").screenshot(path=str(ARTIFACTS / "e2e-compare.png"))

    # ---- clicking a level in the grid shows it; disc height on the sagittal, DSCA outline on the axial ----
    page.locator('#grade-grid .sr-level-btn[data-level="L4-L5"]').click()
    page.wait_for_timeout(300)
    assert root.get_attribute("data-axial-level") == "L4-L5"
    label = page.locator("#viewport-sagittal ~ svg text", has_text="L4-L5").bounding_box()
    sag = page.locator("#viewport-sagittal").bounding_box()
    assert label is not None and sag is not None
    disc_y = label["y"] + label["height"] + 3
    page.keyboard.press("d")
    for fraction in (0.35, 0.40, 0.45):
        x = sag["x"] + fraction * sag["width"]
        _drag(page, (x, disc_y - 7), (x, disc_y + 7), steps=4)
    page.wait_for_timeout(500)
    page.locator("#measurement-list tr[data-kind=disc_height]").wait_for(timeout=10_000)
    cx, cy, w, h = _centre(page, "#viewport-axial")
    page.keyboard.press("a")
    ring = [(cx + 0.05 * h * np.cos(t), cy - 0.015 * h + 0.05 * h * np.sin(t)) for t in np.linspace(0, 2 * np.pi, 25)]
    page.mouse.move(*ring[0])
    page.mouse.down()
    for point in ring[1:]:
        page.mouse.move(*point, steps=2)
    page.mouse.up()
    page.locator("#measurement-list tr[data-kind=area]").wait_for(timeout=10_000)
    page.wait_for_function("() => /^Saved v[1-9]/.test(document.querySelector('#save-status')?.textContent ?? '')", timeout=15_000)
    page.wait_for_timeout(500)
    read = _api(page, base, f"assignments/{assignment.pk}/")["read"]
    by_kind = {m["kind"]: m for m in read["measurements"]}
    disc, area = by_kind["disc_height"], by_kind["area"]
    assert disc["level"] == "L4-L5" and len(disc["points_mm"]) == 6
    assert all(2 < disc["values"][k] < 30 for k in ("anterior_mm", "middle_mm", "posterior_mm")), disc["values"]
    assert area["level"] == "L4-L5" and area["key"] == "dsca" and 50 < area["values"]["area_mm2"] < 1000, area["values"]
    shown = page.locator("#measurement-list tr[data-kind=area] [data-testid=measurement-value]").inner_text()
    assert shown == f"{area['values']['area_mm2']:.1f} mm²"
    page.locator("#viewport-sagittal").screenshot(path=str(ARTIFACTS / "e2e-disc-height.png"))
    page.locator("#viewport-axial").screenshot(path=str(ARTIFACTS / "e2e-dsca.png"))

    # ---- difference view: erase part of my sac, the AI-only voxels show in magenta ----
    page.keyboard.press("e")
    page.check("#toggle-diff")
    page.wait_for_selector('#viewer-root[data-diff-view="on"]', timeout=5_000)
    page.wait_for_timeout(300)
    before = page.locator("#viewport-axial").screenshot()
    green = float(
        ((_pixels(before)[..., 1] - _pixels(before)[..., 0] > 60) & (_pixels(before)[..., 1] - _pixels(before)[..., 2] > 40)).mean()
    )
    assert green > 0.0005, f"agreeing voxels show green ({green:.4%})"
    _drag(page, (cx - 0.03 * w, cy - 0.015 * h), (cx + 0.03 * w, cy - 0.015 * h), steps=6)
    _wait_mask(page, 2)
    page.wait_for_timeout(500)
    after = page.locator("#viewport-axial").screenshot(path=str(ARTIFACTS / "e2e-diff-view.png"))
    rgb = _pixels(after)
    magenta = float(((rgb[..., 0] - rgb[..., 1] > 60) & (rgb[..., 2] - rgb[..., 1] > 60)).mean())
    assert magenta > 0.0002, f"AI-only voxels show magenta after erasing ({magenta:.4%})"
    assert errors == []
    assert time.monotonic() - started < 120


@pytest.fixture
def t1_case(phantom_dir: Path, tmp_path: Path) -> dict[str, Any]:
    """A case with a sagittal T1 beside the T2: every other T2 slice, 0.3 slice spacing further along the
    normal, inverted contrast, so syncing by index or by equal positions would both be wrong."""
    from spinereview.studies.services import case_series_roles_set

    case_dir = sorted(p for p in phantom_dir.iterdir() if (p / "dicom").is_dir())[0]
    t2 = [pydicom.dcmread(f) for f in sorted((case_dir / "dicom" / "sagittal_t2").glob("*.dcm"))]
    iop = np.asarray(t2[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    t2.sort(key=lambda ds: float(np.dot(normal, np.asarray(ds.ImagePositionPatient, dtype=float))))
    positions = [float(np.dot(normal, np.asarray(ds.ImagePositionPatient, dtype=float))) for ds in t2]
    spacing = positions[1] - positions[0]
    folder = tmp_path / "dicom"
    shutil.copytree(case_dir / "dicom", folder)
    series_uid = pydicom.uid.generate_uid()
    (folder / "sagittal_t1").mkdir()
    for k, source in enumerate(t2[::2]):
        ds = source.copy()
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SeriesDescription = "SAG T1 TSE"
        ds.SeriesNumber = 3
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [float(v) for v in np.asarray(ds.ImagePositionPatient, dtype=float) + 0.3 * spacing * normal]
        pixels = ds.pixel_array
        ds.PixelData = (pixels.max() - pixels).astype(pixels.dtype).tobytes()
        ds.save_as(folder / "sagittal_t1" / f"{k + 1:04d}.dcm", enforce_file_format=True)
    study = make_reader_study(slug=f"e2e-t1-{uuid.uuid4().hex[:6]}", protocol=PROTOCOL)
    reader = make_user(username="reader3")
    make_membership(reader_study=study, user=reader, role=StudyMembership.Role.READER)
    cases_import(sources=sources_from_path(folder), reader_study=study)
    case = study.cases.get()
    t1 = case.case_series.select_related("series").get(series__series_description="SAG T1 TSE")
    if t1.role != "sagittal_t1":
        case_series_roles_set(case=case, roles={t1.series.series_instance_uid: "sagittal_t1"}, actor="test")
    return {"assignment": assignment_create(case=case, reader=reader), "t2_count": len(t2), "t1_count": len(t2[::2])}


def test_sagittal_t1_hangs_beside_t2_and_scrolls_with_it_by_position(live_server: Any, browser: Any, t1_case: dict[str, Any]) -> None:
    page = browser.new_page(viewport={"width": 1600, "height": 950})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    base = live_server.url
    _login(page, base, "reader3")
    _open(page, base, t1_case["assignment"].pk)
    page.wait_for_selector('#viewer-root[data-image-rendered-sagittal-t1="true"]', timeout=30_000)
    n2, n1 = t1_case["t2_count"], t1_case["t1_count"]
    t2_counter, t1_counter = page.locator("[data-testid=slice-sagittal]"), page.locator("[data-testid=slice-sagittal-t1]")
    # T1 beside T2, left of the axial viewport
    boxes = [page.locator(f"#viewport-{v}").bounding_box() for v in ("sagittal", "sagittal-t1", "axial")]
    assert all(b is not None for b in boxes)
    assert boxes[0]["x"] < boxes[1]["x"] < boxes[2]["x"]  # type: ignore[index]
    page.wait_for_timeout(300)
    png = page.locator("#viewport-sagittal-t1").screenshot(path=str(ARTIFACTS / "e2e-sagittal-t1.png"))
    assert _grey_spread(png) > 10, "the T1 image looks blank"
    page.screenshot(path=str(ARTIFACTS / "e2e-t1-hanging.png"))

    def shown(counter: Any) -> int:
        return int(counter.inner_text().split("/")[0])

    def expect(counter: Any, one_based: int) -> None:
        page.wait_for_function(
            "([sel, text]) => document.querySelector(sel).textContent.trim() === text",
            arg=[f"[data-testid={counter}]", f"{one_based} / {n1 if counter.endswith('t1') else n2}"],
            timeout=5_000,
        )

    # Scrolling the T2 moves the T1 to the slice nearest by position: T2 slice i (0-based) -> T1 slice i // 2.
    cx, cy, _, _ = _centre(page, "#viewport-sagittal")
    page.mouse.move(cx, cy)
    start = shown(t2_counter) - 1
    for steps, key in ((1, "j"), (3, "k")):
        for _ in range(steps):
            page.keyboard.press(key)
        start = start + steps if key == "j" else start - steps
        expect("slice-sagittal", start + 1)
        expect("slice-sagittal-t1", start // 2 + 1)
    # ... and the other way round: T1 slice k -> T2 slice 2k.
    tx, ty, _, _ = _centre(page, "#viewport-sagittal-t1")
    page.mouse.move(tx, ty)
    page.keyboard.press("End")
    expect("slice-sagittal-t1", n1)
    expect("slice-sagittal", 2 * (n1 - 1) + 1)
    assert shown(t1_counter) == n1
    assert errors == []

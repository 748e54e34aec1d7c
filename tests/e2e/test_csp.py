"""The Content-Security-Policy in a real browser: the reading workspace still loads its workers and
WASM codecs and renders the images, and the browser reports no violation on any page a lead uses."""

from __future__ import annotations

import io
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from spinereview.imaging.services import sources_from_path
from spinereview.studies.models import StudyMembership
from spinereview.studies.services import assignment_create, cases_import
from tests.e2e.conftest import ARTIFACTS
from tests.factories import PASSWORD, make_membership, make_reader_study, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Every violation the page sees, including those in workers, recorded before any page script runs.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI} (${e.sourceFile}:${e.lineNumber})`);
});
"""


def _violations(page: Any, console: list[str]) -> list[str]:
    return list(page.evaluate("window.__cspViolations")) + [line for line in console if "Content Security Policy" in line]


def test_reading_page_renders_under_the_csp(live_server: Any, browser: Any, phantom_dir: Path) -> None:
    study = make_reader_study(slug=f"csp-{uuid.uuid4().hex[:6]}")
    reader = make_user(username=f"csp-reader-{uuid.uuid4().hex[:6]}")
    make_membership(reader_study=study, user=reader, role=StudyMembership.Role.READER)
    make_membership(reader_study=study, user=reader, role=StudyMembership.Role.LEAD)
    case_dir = sorted(p for p in phantom_dir.iterdir() if (p / "dicom").is_dir())[0]
    cases_import(sources=sources_from_path(case_dir / "dicom"), reader_study=study)
    assignment = assignment_create(case=study.cases.get(), reader=reader)

    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.add_init_script(RECORD_VIOLATIONS)
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    base = live_server.url
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", reader.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")

    response = page.goto(f"{base}/reading/{assignment.pk}/")
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "'wasm-unsafe-eval'" in policy
    assert "frame-ancestors 'none'" in policy
    page.wait_for_selector(
        '#viewer-root[data-state="ready"][data-image-rendered-sagittal="true"][data-image-rendered-axial="true"]', timeout=60_000
    )
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / "csp-reading.png"))
    for viewport in ("sagittal", "axial"):
        pixels = np.asarray(Image.open(io.BytesIO(page.locator(f"#viewport-{viewport}").screenshot())).convert("L")).astype(float)
        assert pixels.std() > 10, f"{viewport}: the image looks blank under the CSP"
    # The codecs' path. The server sends frames uncompressed (it decodes stored JPEG/JPEG 2000 itself for
    # the viewer's Accept header), so the image above needed no codec; WebAssembly compiled on the page and
    # inside a blob: worker (the smallest valid module) is what Cornerstone's codecs need from the policy.
    wasm = page.evaluate(
        """async () => {
          const bytes = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]);
          const onPage = (await WebAssembly.instantiate(bytes)).instance instanceof WebAssembly.Instance;
          const source = "WebAssembly.instantiate(new Uint8Array([0,97,115,109,1,0,0,0])).then(() => postMessage('ok'), (e) => postMessage(String(e)))";
          const worker = new Worker(URL.createObjectURL(new Blob([source], {type: "text/javascript"})));
          const inWorker = await new Promise((resolve) => { worker.onmessage = (e) => resolve(e.data); worker.onerror = (e) => resolve(String(e.message)); });
          worker.terminate();
          return {onPage, inWorker};
        }"""
    )
    assert wasm == {"onPage": True, "inWorker": "ok"}
    assert _violations(page, console) == []
    # ...while an injected inline script (no nonce) is blocked and reported.
    page.evaluate("() => { const s = document.createElement('script'); s.textContent = 'window.__injected = 1'; document.head.append(s); }")
    page.wait_for_timeout(200)
    assert page.evaluate("() => window.__injected") is None
    assert any("script-src" in v for v in _violations(page, console))

    # The lead's pages with inline scripts (nonce'd) and the Swagger page (its own exception).
    console.clear()
    page.evaluate("window.__cspViolations = []")
    for path in (f"/studies/{study.slug}/upload/", "/studies/new/", f"/studies/{study.slug}/", "/accounts/token/"):
        page.goto(f"{base}{path}")
        page.wait_for_load_state("load")
        assert _violations(page, console) == [], path
    page.goto(f"{base}/studies/new/")
    options = page.locator("#template-form select option")
    if options.count() > 1:
        with page.expect_navigation():
            page.select_option("#template-form select", index=1)
        assert "template=" in page.url, "the nonce'd script submits the template choice"
    page.close()

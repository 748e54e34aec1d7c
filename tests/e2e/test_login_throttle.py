"""Login throttling in the browser: after the allowed failures the page says to wait, and how long."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.core.cache import cache
from django.test import override_settings

from tests.e2e.conftest import ARTIFACTS
from tests.factories import PASSWORD, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@override_settings(LOGIN_THROTTLE_FAILURES=3, LOGIN_THROTTLE_WINDOW_S=900)
def test_login_page_after_too_many_failures(live_server: Any, browser: Any) -> None:
    cache.clear()
    user = make_user(username=f"locked-{uuid.uuid4().hex[:6]}")
    page = browser.new_page(viewport={"width": 1000, "height": 600})
    statuses: list[int] = []
    page.on("response", lambda response: statuses.append(response.status) if response.request.method == "POST" else None)
    for password in ("wrong-1", "wrong-2", "wrong-3", PASSWORD):
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.wait_for_load_state("load")
    assert statuses == [200, 200, 429, 429]
    message = page.locator("#login-throttled")
    assert message.is_visible()
    assert message.inner_text().startswith("Too many failed logins. Try again in 15 minutes")
    assert page.url.endswith("/accounts/login/"), "the right password did not log in while locked"
    page.screenshot(path=str(ARTIFACTS / "login-throttled.png"))
    page.close()

"""Security headers, cookies, CSRF on state changes, session expiry, error pages without tracebacks."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.test import Client, override_settings
from django.urls import include, path
from django.utils import timezone

from spinereview.accounts.middleware import LAST_ACTIVITY_KEY
from spinereview.studies.models import StudyMembership
from tests.factories import PASSWORD, make_membership, make_reader_study, make_user

pytestmark = pytest.mark.django_db


def _boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("secret-internal-detail-42 in /srv/app/spinereview/views.py")


# This module doubles as a URLconf: the whole site plus a view that fails, for the 500 page.
urlpatterns = [path("boom/", _boom), path("", include("spinereview.urls"))]


def _directives(policy: str) -> dict[str, list[str]]:
    return {part.split()[0]: part.split()[1:] for part in (p.strip() for p in policy.split(";")) if part}


def test_pages_send_the_security_headers(client: Client) -> None:
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    policy = _directives(response["Content-Security-Policy"])
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["default-src"] == ["'self'"]
    # Cornerstone's workers and WASM codecs, and nothing that evaluates JavaScript strings.
    assert set(policy["worker-src"]) == {"'self'", "blob:"}
    assert "'wasm-unsafe-eval'" in policy["script-src"]
    assert "'unsafe-eval'" not in policy["script-src"]
    assert "'unsafe-inline'" not in policy["script-src"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "camera=()" in response["Permissions-Policy"]
    # A fresh nonce per response, and only a nonce'd inline script may run.
    nonce = next(value for value in policy["script-src"] if value.startswith("'nonce-"))
    again = _directives(client.get("/accounts/login/")["Content-Security-Policy"])
    assert nonce not in again["script-src"]


def test_inline_scripts_carry_the_response_nonce(client: Client) -> None:
    lead = make_user(username=f"lead-{uuid.uuid4().hex[:6]}")
    study = make_reader_study(slug=f"csp-{uuid.uuid4().hex[:6]}")
    make_membership(reader_study=study, user=lead, role=StudyMembership.Role.LEAD)
    client.force_login(lead)
    response = client.get(f"/studies/{study.slug}/upload/")
    assert response.status_code == 200
    nonce = re.search(r"'nonce-([^']+)'", response["Content-Security-Policy"])
    assert nonce is not None
    scripts = re.findall(r"<script([^>]*)>", response.content.decode())
    assert scripts, "the upload page has its inline script"
    for attributes in scripts:
        assert "src=" in attributes or f'nonce="{nonce.group(1)}"' in attributes, attributes
    assert not re.search(r"\son[a-z]+=", response.content.decode()), "no inline event handlers (CSP blocks them)"


def test_swagger_page_alone_may_load_its_cdn(client: Client) -> None:
    client.force_login(make_user(username=f"docs-{uuid.uuid4().hex[:6]}"))
    docs = _directives(client.get("/api/docs/")["Content-Security-Policy"])
    assert "https://cdn.jsdelivr.net" in docs["script-src"]
    page = _directives(client.get("/")["Content-Security-Policy"])
    assert "https://cdn.jsdelivr.net" not in page["script-src"]


def test_hsts_only_over_https_and_behind_a_declared_proxy(client: Client) -> None:
    assert "Strict-Transport-Security" not in client.get("/accounts/login/")
    secure = client.get("/accounts/login/", secure=True)
    assert secure["Strict-Transport-Security"].startswith("max-age=31536000")
    # The proxy's header counts only when SECURE_PROXY_SSL_HEADER names it.
    forwarded = client.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
    assert "Strict-Transport-Security" not in forwarded
    # SecurityMiddleware reads its settings when the handler starts: a fresh client per configuration.
    with override_settings(SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https")):
        forwarded = Client().get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
        assert "Strict-Transport-Security" in forwarded
    with override_settings(SECURE_SSL_REDIRECT=True):
        client = Client()
        redirect = client.get("/accounts/login/")
        assert redirect.status_code == 301
        assert redirect["Location"] == "https://testserver/accounts/login/"
        assert client.get("/healthz").status_code != 301, "the container health check stays on plain HTTP"


@override_settings(SESSION_COOKIE_SECURE=True, CSRF_COOKIE_SECURE=True)  # as with SECURE_COOKIES=1 or a TLS proxy configured
def test_cookies_are_secure_httponly_and_samesite() -> None:
    user = make_user(username=f"cookie-{uuid.uuid4().hex[:6]}")
    client = Client(enforce_csrf_checks=True)
    page = client.get("/accounts/login/")
    csrf = page.cookies["csrftoken"]
    assert csrf["secure"] is True
    assert csrf["samesite"] == "Lax"
    response = client.post("/accounts/login/", {"username": user.username, "password": PASSWORD, "csrfmiddlewaretoken": csrf.value})
    assert response.status_code == 302
    session = response.cookies["sessionid"]
    assert session["secure"] is True
    assert session["httponly"] is True
    assert session["samesite"] == "Lax"
    assert session["max-age"] == "", "the session cookie ends with the browser"


@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("/accounts/login/", {"username": "x", "password": "y"}),
        ("/accounts/logout/", {}),
        ("/accounts/token/", {"action": "create"}),
        ("/studies/new/", {"name": "Evil", "slug": "evil"}),
    ],
)
def test_page_posts_without_csrf_token_are_refused(url: str, data: dict[str, str]) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user(username=f"csrf-{uuid.uuid4().hex[:6]}"))
    response = client.post(url, data)
    assert response.status_code == 403
    assert b"CSRF" in response.content


def test_api_state_changes_with_a_session_need_the_csrf_token() -> None:
    reader = make_user(username=f"api-{uuid.uuid4().hex[:6]}")
    study = make_reader_study(slug=f"csrf-{uuid.uuid4().hex[:6]}")
    make_membership(reader_study=study, user=reader, role=StudyMembership.Role.LEAD)
    client = Client(enforce_csrf_checks=True)
    client.force_login(reader)
    url = f"/api/v1/reader-studies/{study.slug}/assignments/"
    for method in (client.post, client.put, client.patch, client.delete):
        response = method(url, data="{}", content_type="application/json")
        assert response.status_code == 403, (method, response.status_code)
        assert "CSRF" in response.json()["detail"]
    # The same request with the token is judged on its content instead (400: it names no readers).
    csrf = client.get("/").cookies.get("csrftoken") or client.cookies["csrftoken"]
    response = client.post(url, data="{}", content_type="application/json", HTTP_X_CSRFTOKEN=csrf.value)
    assert response.status_code != 403


def test_a_session_expires_after_the_idle_timeout_and_activity_extends_it(client: Client) -> None:
    user = make_user(username=f"idle-{uuid.uuid4().hex[:6]}")
    assert client.login(username=user.username, password=PASSWORD)
    assert client.get("/").status_code == 200
    key = client.session.session_key
    session = Session.objects.get(session_key=key)
    assert session.get_decoded()[LAST_ACTIVITY_KEY] > 0
    # Activity after the resolution interval slides the expiry forward.
    stored = client.session
    stored[LAST_ACTIVITY_KEY] -= 120
    stored.save()
    before = Session.objects.get(session_key=key).expire_date
    Session.objects.filter(session_key=key).update(expire_date=before - timedelta(minutes=5))
    assert client.get("/").status_code == 200
    assert Session.objects.get(session_key=key).expire_date > before - timedelta(seconds=5)
    # Idle past the timeout: the session is gone, pages send to the login page, APIs refuse.
    Session.objects.filter(session_key=key).update(expire_date=timezone.now() - timedelta(seconds=1))
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert client.get("/api/v1/assignments/").status_code == 403


def test_idle_timeout_is_enforced_even_if_the_stored_expiry_is_not(client: Client) -> None:
    user = make_user(username=f"idle2-{uuid.uuid4().hex[:6]}")
    assert client.login(username=user.username, password=PASSWORD)
    client.get("/")
    stored = client.session
    stored[LAST_ACTIVITY_KEY] -= 10 * 3600
    stored.save()
    response = client.get("/")
    assert response.status_code == 302
    assert client.get("/").status_code == 302


@pytest.mark.urls("tests.integration.test_security")
def test_error_pages_show_no_debug_information(settings: object) -> None:
    settings.DEBUG = False  # type: ignore[attr-defined]
    client = Client(raise_request_exception=False)
    client.force_login(make_user(username=f"err-{uuid.uuid4().hex[:6]}"))
    missing = client.get("/no-such-page/")
    assert missing.status_code == 404
    failed = client.get("/boom/")
    assert failed.status_code == 500
    for response in (missing, failed):
        body = response.content.decode()
        for leak in ("Traceback", "secret-internal-detail-42", "urlpatterns", "DEBUG = True", "settings.py", "spinereview.urls"):
            assert leak not in body, f"{response.status_code} page shows {leak!r}"


# ---- login throttling and password policy ----------------------------------------------------


@pytest.fixture
def fresh_cache() -> None:
    cache.clear()


def _login_post(client: Client, username: str, password: str, address: str = "198.51.100.7") -> Any:
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


@pytest.mark.usefixtures("fresh_cache")
@override_settings(LOGIN_THROTTLE_FAILURES=3, LOGIN_THROTTLE_WINDOW_S=600)
def test_login_is_throttled_per_username_and_address(client: Client) -> None:
    user = make_user(username=f"throttle-{uuid.uuid4().hex[:6]}")
    for _ in range(2):
        response = _login_post(client, user.username, "wrong-password")
        assert response.status_code == 200
        assert b"didn't match" in response.content
    third = _login_post(client, user.username, "wrong-password")
    assert third.status_code == 429, "the failure that reaches the limit already says so"
    # Locked: even the right password is not checked, and the page says why and for how long.
    locked = _login_post(client, user.username, PASSWORD)
    assert locked.status_code == 429
    assert 1 <= int(locked["Retry-After"]) <= 600
    assert b"Too many failed logins. Try again in 10 minutes" in locked.content
    assert "_auth_user_id" not in client.session
    # Letter case does not open a new counter; another address and another user are not locked.
    assert _login_post(client, user.username.upper(), PASSWORD).status_code == 429
    assert _login_post(client, user.username, PASSWORD, address="203.0.113.9").status_code == 302
    other = make_user(username=f"other-{uuid.uuid4().hex[:6]}")
    assert _login_post(Client(), other.username, PASSWORD).status_code == 302
    # The admin login goes through the same backend: refused while locked.
    admin = Client()
    response = admin.post("/admin/login/", {"username": user.username, "password": PASSWORD}, REMOTE_ADDR="198.51.100.7")
    assert response.status_code == 200
    assert "_auth_user_id" not in admin.session


@pytest.mark.usefixtures("fresh_cache")
@override_settings(LOGIN_THROTTLE_FAILURES=3, LOGIN_THROTTLE_WINDOW_S=600)
def test_a_successful_login_resets_the_count(client: Client) -> None:
    user = make_user(username=f"reset-{uuid.uuid4().hex[:6]}")
    for _ in range(2):
        assert _login_post(client, user.username, "wrong-password").status_code == 200
    assert _login_post(client, user.username, PASSWORD).status_code == 302
    client.logout()
    for _ in range(2):
        assert _login_post(client, user.username, "wrong-password").status_code == 200
    assert _login_post(client, user.username, PASSWORD).status_code == 302


@pytest.mark.usefixtures("fresh_cache")
@override_settings(LOGIN_THROTTLE_FAILURES=100, LOGIN_THROTTLE_ADDRESS_FAILURES=4)
def test_one_address_trying_many_usernames_is_throttled(client: Client) -> None:
    victim = make_user(username=f"victim-{uuid.uuid4().hex[:6]}")
    for index in range(4):
        _login_post(client, f"guess-{index}", "Winter2026!")
    assert _login_post(client, victim.username, PASSWORD).status_code == 429


@pytest.mark.usefixtures("fresh_cache")
@pytest.mark.parametrize(
    "data",
    [
        {},
        {"username": "someone"},
        {"password": "x"},
        {"username": "x" * 20_000, "password": "y"},
        {"username": "\x00\ud800".encode("utf-8", "surrogatepass").decode("latin-1"), "password": "\x00"},
        {"username": ["a", "b"], "password": ["c"]},
    ],
)
def test_malformed_login_posts_get_the_form_back(client: Client, data: dict[str, object]) -> None:
    response = client.post("/accounts/login/", data)
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_password_policy() -> None:
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    user = make_user(username=f"policy-{uuid.uuid4().hex[:6]}", first_name="Margaret")

    def problems(password: str) -> set[str | None]:
        try:
            validate_password(password, user=user)
        except ValidationError as exc:
            return {error.code for error in exc.error_list}
        return set()

    assert problems("short-pw-9") == {"password_too_short"}
    assert "password_entirely_numeric" in problems("482919374651")
    assert "password_too_common" in problems("password1234")
    assert "password_too_similar" in problems(f"{user.username}!x")
    assert "password_too_similar" in problems("margaret-1960")
    assert problems("") >= {"password_too_short"}
    assert problems("quiet-lumbar-orbit-57") == set()
    assert problems(PASSWORD) == set()


def test_admin_refuses_a_weak_password() -> None:
    admin = make_user(username=f"admin-{uuid.uuid4().hex[:6]}", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)
    response = client.post(
        "/admin/accounts/user/add/",
        {"username": f"new-{uuid.uuid4().hex[:6]}", "password1": "123456789", "password2": "123456789", "usable_password": "true"},
    )
    assert response.status_code == 200
    assert b"This password is too short" in response.content
    assert b"entirely numeric" in response.content


@pytest.mark.usefixtures("fresh_cache")
@override_settings(LOGIN_THROTTLE_FAILURES=2, TRUSTED_PROXY_COUNT=1)
def test_behind_a_proxy_the_forwarded_client_is_counted(client: Client) -> None:
    user = make_user(username=f"proxy-{uuid.uuid4().hex[:6]}")

    def attempt(forwarded: str, password: str = "wrong-password") -> int:
        response = client.post(
            "/accounts/login/", {"username": user.username, "password": password}, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded
        )
        return int(response.status_code)

    # The attacker forges the left part of the header; the proxy's own entry (rightmost) counts.
    assert attempt("1.1.1.1, 198.51.100.20") == 200
    assert attempt("2.2.2.2, 198.51.100.20") == 429
    # Another client behind the same proxy is not locked out.
    assert attempt("198.51.100.30", PASSWORD) == 302


def test_no_template_has_an_inline_script_the_policy_would_block() -> None:
    """Every <script> either loads a file or carries the response's nonce, and no element has an
    inline event handler (onclick=...): the Content-Security-Policy blocks both in the browser."""
    from django.conf import settings

    roots = [Path(folder) for template in settings.TEMPLATES for folder in template["DIRS"]]  # type: ignore[attr-defined]
    roots += [Path(app.path) / "templates" for app in apps.get_app_configs() if app.name.startswith("spinereview")]
    templates = [found for root in roots if root.is_dir() for found in root.rglob("*.html")]
    assert len(templates) > 10
    problems = []
    for template in templates:
        text = template.read_text()
        for attributes in re.findall(r"<script\b([^>]*)>", text):
            if "src=" not in attributes and "nonce=" not in attributes and 'type="application/json"' not in attributes:
                problems.append(f"{template.name}: <script{attributes}> has neither src nor nonce")
        problems += [f"{template.name}: inline handler {handler}" for handler in re.findall(r"\s(on[a-z]+)=[\"']", text)]
    assert problems == []

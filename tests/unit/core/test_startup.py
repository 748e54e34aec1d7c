"""The start-up rules: no DEBUG on a server database, no weak SECRET_KEY in production."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from spinereview.core.startup import secret_key_problem, startup_problems

REPO = Path(__file__).resolve().parents[3]
DEV_KEY = "insecure-development-key-only-valid-with-DEBUG"
GOOD_KEY = "k2V9xQ4mT7pL1sN8wE5rY3uI6oA0dF2gH4jK"
POSTGRES = "django.db.backends.postgresql"
SQLITE = "django.db.backends.sqlite3"


def _problems(**overrides: Any) -> list[str]:
    config: dict[str, Any] = {
        "debug": False,
        "database_engine": POSTGRES,
        "secret_key": GOOD_KEY,
        "development_key": DEV_KEY,
        "allow_debug_with_database": False,
    }
    config.update(overrides)
    return startup_problems(**config)


def test_production_configuration_starts() -> None:
    assert _problems() == []
    assert _problems(debug=True, database_engine=SQLITE, secret_key=DEV_KEY) == [], "the developer's SQLite setup"
    assert _problems(debug=True, allow_debug_with_database=True) == [], "tests and development on PostgreSQL opt in"


def test_debug_with_a_server_database_is_refused() -> None:
    (problem,) = _problems(debug=True)
    assert "DEBUG is on with a server database (postgresql)" in problem
    assert "ALLOW_DEBUG_WITH_DATABASE=1" in problem


@pytest.mark.parametrize(
    ("key", "why"),
    [
        (DEV_KEY, "development default"),
        ("", "0 characters long"),
        ("short-but-random-9f8e7d", "23 characters long"),
        ("a" * 60, "fewer than 5 distinct"),
        ("django-insecure-" + "x1y2z3w4v5u6t7s8r9q0p1o2n3m4", "django-insecure-"),
        ("CHANGE-ME-please-to-a-long-random-string-0123", "placeholder"),
    ],
)
def test_weak_secret_keys_are_refused_without_debug(key: str, why: str) -> None:
    problem = secret_key_problem(key, development_key=DEV_KEY)
    assert problem is not None
    assert why in problem
    assert len(_problems(secret_key=key)) == 1
    assert _problems(secret_key=key, debug=True, database_engine=SQLITE) == [], "DEBUG on SQLite may use any key"


def test_the_test_suites_key_is_accepted() -> None:
    assert secret_key_problem("test-only-secret-key-not-for-production", development_key=DEV_KEY) is None


def _start(env: dict[str, str], code: str = "import django; django.setup()") -> subprocess.CompletedProcess[str]:
    base = {"DJANGO_SETTINGS_MODULE": "spinereview.settings", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=base | env, capture_output=True, text=True, timeout=120)


def test_processes_refuse_to_start() -> None:
    postgres_url = "postgres://spinereview:pw@db.example.org:5432/spinereview"
    refused = _start({"DEBUG": "1", "DATABASE_URL": postgres_url})
    assert refused.returncode != 0
    assert "Refusing to start: DEBUG is on with a server database" in refused.stderr
    weak = _start({"DEBUG": "0", "SECRET_KEY": "django-insecure-abcdefghijklmnopqrstuvwxyz0123"})
    assert weak.returncode != 0
    assert "Refusing to start: SECRET_KEY starts with 'django-insecure-'" in weak.stderr
    # The same through gunicorn's WSGI entry point, which runs no Django system checks.
    wsgi = _start({"DEBUG": "1", "DATABASE_URL": postgres_url}, "import spinereview.wsgi")
    assert wsgi.returncode != 0
    assert "Refusing to start" in wsgi.stderr
    allowed = _start({"DEBUG": "1", "DATABASE_URL": postgres_url, "ALLOW_DEBUG_WITH_DATABASE": "1"})
    assert allowed.returncode == 0, allowed.stderr


def test_system_check_reports_the_rules(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from spinereview.core.checks import deployment_advice, production_safety

    settings.DEBUG = False
    settings.SECRET_KEY = "too-short"
    assert [message.id for message in production_safety()] == ["spinereview.E001"]
    settings.SECRET_KEY = GOOD_KEY
    assert production_safety() == []
    settings.DEBUG = True
    settings.ALLOW_DEBUG_WITH_DATABASE = False
    monkeypatch.setitem(settings.DATABASES["default"], "ENGINE", POSTGRES)
    (error,) = production_safety()
    assert error.id == "spinereview.E001"
    assert "DEBUG is on" in error.msg
    settings.ALLOW_DEBUG_WITH_DATABASE = True
    assert production_safety() == []
    settings.ALLOWED_HOSTS = ["*"]
    settings.SESSION_COOKIE_SECURE = False
    ids = {message.id for message in deployment_advice()}
    assert ids >= {"spinereview.W002", "spinereview.W003"}


def test_check_deploy_command_fails_on_a_weak_key() -> None:
    result = _start(
        {"DEBUG": "1", "SECRET_KEY": "x"},
        "import django, sys; django.setup(); from django.conf import settings; settings.DEBUG = False; from django.core.management import call_command; call_command('check')",
    )
    assert result.returncode != 0
    assert "spinereview.E001" in result.stderr


@pytest.mark.parametrize(
    ("env", "secure"),
    [
        ({}, False),
        ({"SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO"}, True),
        ({"SECURE_SSL_REDIRECT": "1"}, True),
        ({"SECURE_COOKIES": "1"}, True),
        ({"SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO", "SECURE_COOKIES": "0"}, False),
    ],
)
def test_cookies_are_secure_when_the_site_is_configured_for_https(env: dict[str, str], secure: bool) -> None:
    code = "import django; django.setup(); from django.conf import settings as s; print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY)"
    result = _start({"DEBUG": "0", "SECRET_KEY": GOOD_KEY} | env, code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(secure), str(secure), "True"]


def test_a_malformed_proxy_header_setting_is_refused() -> None:
    result = _start({"DEBUG": "0", "SECRET_KEY": GOOD_KEY, "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto"})
    assert result.returncode != 0
    assert "must be a request META name like HTTP_X_FORWARDED_PROTO" in result.stderr

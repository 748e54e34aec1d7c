"""Django system checks for the deployment rules (spinereview.core.startup) and deploy-time advice."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from spinereview.core.startup import startup_problems


def production_safety(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    problems = startup_problems(
        debug=settings.DEBUG,
        database_engine=settings.DATABASES["default"]["ENGINE"],
        secret_key=settings.SECRET_KEY,
        development_key=settings.DEVELOPMENT_SECRET_KEY,
        allow_debug_with_database=settings.ALLOW_DEBUG_WITH_DATABASE,
    )
    return [Error(problem, id="spinereview.E001") for problem in problems]


def deployment_advice(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if settings.CACHES["default"]["BACKEND"].endswith("LocMemCache"):
        messages.append(
            Warning(
                "The cache is per process (CACHE_URL unset): each web process counts failed logins on its own.",
                hint="Set CACHE_URL=redis://<host>:6379/1 so every web process shares the login throttle.",
                id="spinereview.W001",
            )
        )
    if "*" in settings.ALLOWED_HOSTS:
        messages.append(Warning("ALLOWED_HOSTS accepts any host name.", hint="List the site's host names.", id="spinereview.W002"))
    if not settings.SESSION_COOKIE_SECURE:
        messages.append(
            Warning(
                "Session and CSRF cookies are sent over plain HTTP (SECURE_COOKIES=0).", hint="Serve over HTTPS.", id="spinereview.W003"
            )
        )
    return messages


def register_all() -> None:
    """Called from CoreConfig.ready(); Django ignores a check registered twice."""
    register(production_safety, Tags.security)
    register(deployment_advice, Tags.security, deploy=True)

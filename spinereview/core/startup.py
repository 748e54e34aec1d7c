"""The rules a deployment must meet before any process starts (web, worker, management command).

Pure functions of the configuration, without Django: ``settings.py`` applies them while it loads
(so gunicorn and Celery, which run no system checks, refuse to start too) and
``spinereview.core.checks`` reports them as Django system checks.

The rules:

- DEBUG on with a database other than SQLite is refused unless ALLOW_DEBUG_WITH_DATABASE=1. Debug
  pages show settings, SQL and local variables, so debug mode is for a developer's SQLite file; a
  server database (PostgreSQL) holds real reads. Tests and local development on PostgreSQL opt in
  explicitly with ALLOW_DEBUG_WITH_DATABASE=1 (never in docker/.env).
- DEBUG off with a weak SECRET_KEY is refused: the development default, empty, shorter than 32
  characters, fewer than 5 distinct characters, Django's "django-insecure-" prefix, or a
  placeholder ("change-me", "changeme", "your-secret", "replace-me").
"""

from __future__ import annotations

MIN_SECRET_KEY_LENGTH = 32
PLACEHOLDERS = ("change-me", "changeme", "change_me", "your-secret", "replace-me")


def secret_key_problem(secret_key: str, *, development_key: str) -> str | None:
    if secret_key == development_key:
        return "SECRET_KEY is the development default"
    if len(secret_key) < MIN_SECRET_KEY_LENGTH:
        return f"SECRET_KEY is {len(secret_key)} characters long; use at least {MIN_SECRET_KEY_LENGTH} random characters"
    if len(set(secret_key)) < 5:
        return "SECRET_KEY has fewer than 5 distinct characters"
    if secret_key.startswith("django-insecure-"):
        return "SECRET_KEY starts with 'django-insecure-' (a generated development key)"
    lowered = secret_key.lower()
    if any(placeholder in lowered for placeholder in PLACEHOLDERS):
        return "SECRET_KEY is a placeholder from an example file"
    return None


def startup_problems(
    *, debug: bool, database_engine: str, secret_key: str, development_key: str, allow_debug_with_database: bool
) -> list[str]:
    """Why this configuration must not start; empty when it may."""
    problems: list[str] = []
    if debug and not database_engine.endswith("sqlite3") and not allow_debug_with_database:
        problems.append(
            f"DEBUG is on with a server database ({database_engine.rsplit('.', 1)[-1]}): debug pages would expose settings and data. "
            "Set DEBUG=0 in production; for tests or development on this database set ALLOW_DEBUG_WITH_DATABASE=1."
        )
    if not debug:
        problem = secret_key_problem(secret_key, development_key=development_key)
        if problem:
            problems.append(f'{problem}. Generate one: python -c "import secrets; print(secrets.token_urlsafe(50))"')
    return problems

"""Django settings: every value comes from an environment variable (see README, "Configuration")."""

from __future__ import annotations

import json
from pathlib import Path

import dj_database_url

from spinereview.core.env import ConfigurationError, env_bool, env_int, env_list, env_path, env_str
from spinereview.core.startup import startup_problems

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = env_path("SPINEREVIEW_VAR_DIR", BASE_DIR / "var")

DEBUG = env_bool("DEBUG", False)
DEVELOPMENT_SECRET_KEY = "insecure-development-key-only-valid-with-DEBUG"
SECRET_KEY = env_str("SECRET_KEY", DEVELOPMENT_SECRET_KEY if DEBUG else None)
# Tests and development on PostgreSQL with DEBUG on say so explicitly (spinereview/core/startup.py).
ALLOW_DEBUG_WITH_DATABASE = env_bool("ALLOW_DEBUG_WITH_DATABASE", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# Origins (scheme://host:port) whose pages may call /dicomweb/ (e.g. a separate OHIF deployment); "*" for any.
DICOMWEB_CORS_ORIGINS = env_list("SPINEREVIEW_DICOMWEB_CORS_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "spinereview.core",
    "spinereview.accounts",
    "spinereview.imaging",
    "spinereview.ai",
    "spinereview.studies",
    "spinereview.reports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "spinereview.core.security.SecurityHeadersMiddleware",
    "spinereview.core.availability.ServiceUnavailableMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "spinereview.accounts.middleware.SessionIdleTimeoutMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "spinereview.core.request_context.RequestOriginMiddleware",
]

ROOT_URLCONF = "spinereview.urls"
WSGI_APPLICATION = "spinereview.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "spinereview" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

_database_url = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
try:
    DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=60, conn_health_checks=True)}
except Exception as exc:  # dj_database_url raises several types for a malformed URL
    raise ConfigurationError(f"DATABASE_URL={_database_url!r} is not a database URL: {exc}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The demo's web server and worker share one SQLite file: wait for locks instead of failing.
    DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Refuse to start (any process: web, worker, command) with DEBUG on a server database or a weak key.
_startup_problems = startup_problems(
    debug=DEBUG,
    database_engine=DATABASES["default"]["ENGINE"],
    secret_key=SECRET_KEY,
    development_key=DEVELOPMENT_SECRET_KEY,
    allow_debug_with_database=ALLOW_DEBUG_WITH_DATABASE,
)
if _startup_problems:
    raise ConfigurationError("Refusing to start: " + " ".join(_startup_problems))

# --- Security (README "Production", docker/README.md) -----------------------------------------
# Behind a TLS-terminating proxy, name the header it sets, e.g. HTTP_X_FORWARDED_PROTO: requests with
# "<header>: https" count as secure (HSTS, secure redirects). Only if the proxy always sets or strips it.
_proxy_ssl_header = env_str("SECURE_PROXY_SSL_HEADER", "").strip()
if _proxy_ssl_header:
    if not _proxy_ssl_header.startswith("HTTP_"):
        raise ConfigurationError(f"SECURE_PROXY_SSL_HEADER={_proxy_ssl_header!r} must be a request META name like HTTP_X_FORWARDED_PROTO")
    SECURE_PROXY_SSL_HEADER = (_proxy_ssl_header, "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # the container health check speaks plain HTTP inside the container
# HSTS is sent on HTTPS responses only (Django's SecurityMiddleware), never over plain HTTP.
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CSP_REPORT_ONLY = env_bool("CSP_REPORT_ONLY", False)
# Cookies: Secure (sent over HTTPS only) whenever the site is configured for HTTPS (a proxy header or
# the redirect), and whenever SECURE_COOKIES=1 (docker/.env sets it). Plain-HTTP clients on loopback
# (the demo, benches, fault tests) keep working otherwise; `check --deploy` warns about it. The
# session cookie is HttpOnly; the CSRF cookie cannot be, because the viewer and the upload page
# read it to send X-CSRFToken (Django's documented pattern).
_secure_cookies = env_bool("SECURE_COOKIES", bool(_proxy_ssl_header) or SECURE_SSL_REDIRECT)
SESSION_COOKIE_SECURE = _secure_cookies
CSRF_COOKIE_SECURE = _secure_cookies
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# Session expiry: after SESSION_IDLE_TIMEOUT_MINUTES without a request, and when the browser closes.
SESSION_COOKIE_AGE = 60 * env_int("SESSION_IDLE_TIMEOUT_MINUTES", 120, minimum=1)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_ACTIVITY_RESOLUTION_S = min(60, SESSION_COOKIE_AGE // 2)

# Login throttling (spinereview/accounts/throttle.py): LOGIN_THROTTLE_FAILURES failed logins for one
# username from one address, or LOGIN_THROTTLE_ADDRESS_FAILURES from one address, lock logins from
# there for the rest of LOGIN_THROTTLE_WINDOW_S. Counted in the cache below.
AUTHENTICATION_BACKENDS = ["spinereview.accounts.backends.ThrottledModelBackend"]
LOGIN_THROTTLE_FAILURES = env_int("LOGIN_THROTTLE_FAILURES", 5, minimum=1)
LOGIN_THROTTLE_ADDRESS_FAILURES = env_int("LOGIN_THROTTLE_ADDRESS_FAILURES", 50, minimum=1)
LOGIN_THROTTLE_WINDOW_S = env_int("LOGIN_THROTTLE_WINDOW_S", 900, minimum=1)
# Reverse proxies in front of the web server that append the client to X-Forwarded-For (0: none, the
# socket peer is the client). Throttling counts per client address, so behind a proxy set this.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0)
# CACHE_URL: redis://host:port/db in production (shared by every web process); locmem:// (the
# default, one cache per process) for the demo and tests.
_cache_url = env_str("CACHE_URL", "locmem://")
if _cache_url.startswith(("redis://", "rediss://", "unix://")):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url, "KEY_PREFIX": "spinereview"}}
elif _cache_url == "locmem://":
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
else:
    raise ConfigurationError(f"CACHE_URL={_cache_url!r}: use redis://host:port/db or locmem://")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
FRONTEND_DIST_DIR = BASE_DIR / "frontend" / "dist"
STATICFILES_DIRS = [("viewer", FRONTEND_DIST_DIR)] if FRONTEND_DIST_DIR.is_dir() else []
WHITENOISE_MIMETYPES = {".wasm": "application/wasm", ".mjs": "text/javascript"}
# Vite names every file of the viewer's build by its content hash: browsers may keep them for a year.
WHITENOISE_IMMUTABLE_FILE_TEST = rf"^{STATIC_URL}viewer/assets/[^/]+-[A-Za-z0-9_-]{{8}}\.(js|css|wasm)$"

MEDIA_ROOT = env_path("SPINEREVIEW_MEDIA_ROOT", VAR_DIR / "media")
MODEL_ROOT = env_path("SPINEREVIEW_MODEL_ROOT", VAR_DIR / "models")
DATA_UPLOAD_MAX_MEMORY_SIZE = 50 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "spinereview.core.exception_handler.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "SpineReview API",
    "DESCRIPTION": "Multi-reader studies of lumbar spine MRI.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
}

# Celery: Redis in production; the demo's default is kombu's filesystem transport, a real broker
# between separate web and worker processes that needs no server.
_broker_default = "filesystem://"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", _broker_default)
CELERY_BROKER_DIR = VAR_DIR / "celery-broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
    }
    # The filesystem transport needs its folders before the first message; it does not create them.
    for _folder in ("queue", "processed", "control"):
        (CELERY_BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "cpu"
CELERY_TASK_ROUTES = {
    "spinereview.ai.tasks.inference_job_run": {"queue": "gpu"},
    # Loading uploaded weights needs torch, which only the gpu workers have.
    "spinereview.ai.tasks.model_version_verify_run": {"queue": "gpu"},
    # The stenosis grader of a model runs where its segmenter does.
    "spinereview.ai.tasks.ai_level_grades_run": {"queue": "gpu"},
}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Inference: slices per forward pass (halved on CUDA out of memory), and the sweeper each worker runs every
# INFERENCE_SWEEP_INTERVAL_S: it publishes jobs still unpublished after INFERENCE_SWEEP_UNPUBLISHED_S (the broker
# was down when they were queued) and running jobs silent for INFERENCE_SWEEP_STALLED_S (their worker died).
INFERENCE_BATCH_SLICES = env_int("INFERENCE_BATCH_SLICES", 16, minimum=1)
INFERENCE_SWEEP_INTERVAL_S = env_int("INFERENCE_SWEEP_INTERVAL_S", 60, minimum=1)
INFERENCE_SWEEP_UNPUBLISHED_S = env_int("INFERENCE_SWEEP_UNPUBLISHED_S", 60, minimum=0)
INFERENCE_SWEEP_STALLED_S = env_int("INFERENCE_SWEEP_STALLED_S", 1800, minimum=60)
# Every cpu worker queues the reports whose recompute was lost (broker down at submit, worker killed) this often.
REPORT_SWEEP_INTERVAL_S = env_int("REPORT_SWEEP_INTERVAL_S", 60, minimum=1)
# Paraspinal muscle fat fraction where an examination has no fat/water (Dixon) pair: per weighting, the
# arguments of morphometry.SignalIntensityModel in the stored pixel values, e.g.
# {"T2": {"muscle_signal": 300, "fat_signal": 1400, "kind": "two_component"}}. MR signal is not calibrated
# across scanners, so there is no default: without a model (or a pair) the fat fraction stays empty, with why.
try:
    MUSCLE_FAT_INTENSITY_MODELS = json.loads(env_str("MUSCLE_FAT_INTENSITY_MODELS", "") or "{}")
except json.JSONDecodeError as _exc:
    raise ConfigurationError(f"MUSCLE_FAT_INTENSITY_MODELS is not JSON: {_exc}") from None
if not isinstance(MUSCLE_FAT_INTENSITY_MODELS, dict):
    raise ConfigurationError("MUSCLE_FAT_INTENSITY_MODELS must be a JSON object keyed by weighting (T1, T2)")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

"""Outages of the database or the broker become clear, retryable answers instead of 500 tracebacks.

While PostgreSQL restarts, or Redis is down for a request that must queue work, a client gets
HTTP 503 with ``Retry-After`` and a message that says what is down: JSON (``{"detail": ...,
"retryable": true, "unavailable": "database"}``) for the API and anything that asks for JSON, a short
HTML page otherwise. Nothing was changed by such a request (its transaction rolled back), so sending it
again once the component is back is safe; saves keep their version checks (If-Match / base_version).

Two paths lead here: an exception escaping a view (``process_exception``), and one raised in another
middleware (the session saved after the view, say), which Django turns into a 500 response before it
reaches this one: ``got_request_exception`` marks the request with that exception and ``__call__``
swaps the 500 for the 503. Installed near the top of MIDDLEWARE so its answer still gets the security
headers of the middleware above it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from django.core.signals import got_request_exception
from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.html import escape

logger = logging.getLogger(__name__)

RETRY_AFTER_S = 5
_MARK = "_spinereview_outage"


def _broker_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = []
    try:
        from kombu.exceptions import OperationalError as KombuOperationalError

        errors.append(KombuOperationalError)
    except ImportError:  # pragma: no cover - kombu comes with Celery, a dependency
        pass
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        errors += [RedisConnectionError, RedisTimeoutError]
    except ImportError:  # pragma: no cover - only with a Redis broker
        pass
    return tuple(errors)


BROKER_ERRORS = _broker_errors()
DATABASE_ERRORS: tuple[type[BaseException], ...] = (DatabaseOperationalError, DatabaseInterfaceError)


def outage_of(exc: BaseException | None) -> str | None:
    """Return "database" or "broker" when ``exc`` (or an exception it was raised from) means that component is
    unreachable or refused the work for now; None for any other error (a real bug stays a 500)."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, DATABASE_ERRORS):
            return "database"
        if isinstance(exc, BROKER_ERRORS):
            return "broker"
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def _wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return request.path.startswith(("/api/", "/dicomweb/", "/healthz")) or "json" in accept or request.content_type == "application/json"


MESSAGES = {
    "database": "The database is not reachable right now. Nothing was saved by this request; try again in a few seconds.",
    "broker": "The job queue is not reachable right now. Nothing was changed by this request; try again in a few seconds.",
}


def unavailable_response(request: HttpRequest, component: str) -> HttpResponse:
    message = MESSAGES[component]
    response: HttpResponse
    if _wants_json(request):
        response = JsonResponse(
            {"detail": message, "retryable": True, "unavailable": component, "retry_after_s": RETRY_AFTER_S}, status=503
        )
    else:
        response = HttpResponse(
            "<!doctype html><html lang=en><head><meta charset=utf-8><title>Temporarily unavailable</title></head>"
            f"<body><h1>Temporarily unavailable</h1><p>{escape(message)}</p>"
            f"<p>This page will work again once the {escape(component)} is back; reload it in {RETRY_AFTER_S} seconds.</p></body></html>",
            status=503,
            content_type="text/html; charset=utf-8",
        )
    response["Retry-After"] = str(RETRY_AFTER_S)
    response["Cache-Control"] = "no-store"
    return response


def _mark_request(sender: Any, request: HttpRequest | None = None, **_: Any) -> None:
    """Remember which outage turned this request into an exception (sent while it is being handled)."""
    component = outage_of(sys.exc_info()[1])
    if request is not None and component is not None:
        setattr(request, _MARK, component)


got_request_exception.connect(_mark_request, dispatch_uid="spinereview.core.availability")


class OutageLogFilter(logging.Filter):
    """Django logs an exception raised in a middleware as "Internal Server Error" with its traceback,
    before this module answers 503 for it: such a record becomes one warning line without the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        component = outage_of(record.exc_info[1]) if record.exc_info else None
        if component is not None:
            message = record.getMessage().replace("Internal Server Error", "Service Unavailable")
            record.msg, record.args = "%s (%s unavailable; answered 503, retryable)", (message, component)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info, record.exc_text = None, None
        return True


if not any(isinstance(f, OutageLogFilter) for f in logging.getLogger("django.request").filters):
    logging.getLogger("django.request").addFilter(OutageLogFilter())


class ServiceUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        component = getattr(request, _MARK, None)
        if component is not None and response.status_code >= 500:
            logger.warning("%s unavailable: %s %s answered 503 (retryable)", component, request.method, request.path)
            return unavailable_response(request, component)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        component = outage_of(exception)
        if component is None:
            return None
        logger.warning(
            "%s unavailable: %s %s answered 503 (retryable): %s: %s",
            component,
            request.method,
            request.path,
            type(exception).__name__,
            str(exception)[:200],
        )
        return unavailable_response(request, component)

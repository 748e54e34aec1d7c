"""spinereview.core.availability: which errors are outages, and the 503 answers and log lines they give.
(The whole path against a real PostgreSQL and Redis that go down: tests/integration/test_faults.py.)"""

from __future__ import annotations

import json
import logging

import pytest
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseServerError
from django.test import RequestFactory
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError

from spinereview.core.availability import RETRY_AFTER_S, OutageLogFilter, ServiceUnavailableMiddleware, outage_of

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _chained(outer: Exception, inner: Exception) -> Exception:
    try:
        try:
            raise inner
        except Exception as exc:
            raise outer from exc
    except Exception as exc:
        return exc


def test_outages_are_database_or_broker_errors_and_nothing_else() -> None:
    assert outage_of(OperationalError("server closed the connection unexpectedly")) == "database"
    assert outage_of(InterfaceError("connection already closed")) == "database"
    assert outage_of(KombuOperationalError("Error 111 connecting to 127.0.0.1:6379")) == "broker"
    assert outage_of(RedisConnectionError("Connection refused")) == "broker"
    assert outage_of(_chained(RuntimeError("publishing failed"), RedisConnectionError("refused"))) == "broker"
    assert outage_of(ValueError("a bug")) is None
    assert outage_of(KeyError("x")) is None
    assert outage_of(None) is None


def _middleware() -> ServiceUnavailableMiddleware:
    def view(request: HttpRequest) -> HttpResponse:
        return HttpResponse("ok")

    return ServiceUnavailableMiddleware(view)


def test_an_api_request_during_a_database_outage_gets_json_503_with_retry_after() -> None:
    request = RequestFactory().put("/api/v1/assignments/x/read/", data="{}", content_type="application/json")
    response = _middleware().process_exception(request, OperationalError("the database system is shutting down"))
    assert response is not None and response.status_code == 503
    assert response["Retry-After"] == str(RETRY_AFTER_S)
    body = json.loads(response.content)
    assert body["retryable"] is True and body["unavailable"] == "database" and "try again" in body["detail"]


def test_a_page_during_a_broker_outage_gets_an_html_503() -> None:
    request = RequestFactory().post("/studies/demo/upload/", HTTP_ACCEPT="text/html")
    response = _middleware().process_exception(request, KombuOperationalError("refused"))
    assert response is not None and response.status_code == 503
    assert response["Content-Type"].startswith("text/html") and b"Temporarily unavailable" in response.content
    assert b"Traceback" not in response.content


def test_other_errors_are_left_to_django() -> None:
    request = RequestFactory().get("/api/v1/assignments/")
    assert _middleware().process_exception(request, ZeroDivisionError()) is None


def test_a_500_from_an_inner_middleware_marked_as_an_outage_becomes_a_503() -> None:
    marked = RequestFactory().get("/")

    def failing(request: HttpRequest) -> HttpResponse:
        try:
            raise OperationalError("connection refused")
        except OperationalError:
            from django.core.signals import got_request_exception

            got_request_exception.send(sender=None, request=request)  # as Django does before its 500
        return HttpResponseServerError("<h1>Server Error (500)</h1>")

    response = ServiceUnavailableMiddleware(failing)(marked)
    assert response.status_code == 503 and response["Retry-After"] == str(RETRY_AFTER_S)
    unmarked = ServiceUnavailableMiddleware(lambda request: HttpResponseServerError("bug"))(RequestFactory().get("/"))
    assert unmarked.status_code == 500  # a real bug stays a 500


def test_the_log_line_of_an_outage_has_no_traceback() -> None:
    try:
        raise OperationalError("connection refused")
    except OperationalError as exc:
        record = logging.LogRecord(
            "django.request", logging.ERROR, __file__, 1, "Internal Server Error: %s", ("/",), (type(exc), exc, exc.__traceback__)
        )
    assert OutageLogFilter().filter(record)
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert record.getMessage() == "Service Unavailable: / (database unavailable; answered 503, retryable)"
    other = logging.LogRecord(
        "django.request", logging.ERROR, __file__, 1, "Internal Server Error: %s", ("/",), (ValueError, ValueError("x"), None)
    )
    assert OutageLogFilter().filter(other) and other.levelno == logging.ERROR and other.exc_info is not None

"""Where the current request comes from, for the audit trail, without threading the request through services."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

from django.http import HttpRequest, HttpResponse

# "203.0.113.7 (Mozilla/5.0 ...)" for a web request; empty for commands and worker tasks.
request_origin: ContextVar[str] = ContextVar("request_origin", default="")


def _client_address(request: HttpRequest) -> str:
    # REMOTE_ADDR is the peer the server saw; behind a reverse proxy it is the proxy, which then sets
    # X-Forwarded-For. The proxy's own value is trusted only when it is configured to be (NUM_PROXIES).
    return str(request.META.get("REMOTE_ADDR") or "unknown")


class RequestOriginMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        agent = str(request.META.get("HTTP_USER_AGENT", ""))[:120]
        token = request_origin.set(f"{_client_address(request)} ({agent})" if agent else _client_address(request))
        try:
            return self.get_response(request)
        finally:
            request_origin.reset(token)

"""Session idle timeout: a session ends after SESSION_COOKIE_AGE seconds without a request.

Django stores an expiry with every saved session and ignores expired ones; saving the session on
every request (SESSION_SAVE_EVERY_REQUEST) would make it slide, at the cost of a database write per
request. This middleware marks the session modified at most once per SESSION_ACTIVITY_RESOLUTION_S,
so the expiry slides with activity while a busy reader costs one write a minute, not one per save.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse

LAST_ACTIVITY_KEY = "_spinereview_last_activity"


class SessionIdleTimeoutMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            now = int(time.time())
            last = request.session.get(LAST_ACTIVITY_KEY)
            if isinstance(last, int) and now - last > settings.SESSION_COOKIE_AGE:
                # Idle longer than allowed (a session backend that does not expire by itself): end it.
                logout(request)
            elif not isinstance(last, int) or now - last >= settings.SESSION_ACTIVITY_RESOLUTION_S:
                request.session[LAST_ACTIVITY_KEY] = now  # modified: saved with a fresh expiry
        return self.get_response(request)

"""The authentication backend: Django's, refusing every attempt while the login is locked."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from spinereview.accounts.throttle import client_address, login_lock_get


class ThrottledModelBackend(ModelBackend):
    """Checks the lock before the password, so a locked account cannot be probed (admin login included)."""

    def authenticate(self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any) -> Any:
        if username is None:
            username = kwargs.get("username")
        if request is not None and username is not None and login_lock_get(username=str(username), address=client_address(request)):
            raise PermissionDenied("login locked")  # authenticate() stops here and reports a failure
        return super().authenticate(request, username=username, password=password, **kwargs)

"""Login throttling: too many failed logins for one username from one address, or from one address
over all usernames, lock further attempts for the rest of the window.

Counters live in Django's cache (Redis in production, so every web process shares them; see
settings CACHES). A counter starts at the first failure and expires with its window, whatever
happens after: a locked attempt does not extend the lock. A successful login clears the
username+address counter. Usernames are hashed into the key, so any input is a valid key.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import cache
from django.dispatch import receiver
from django.http import HttpRequest


@dataclass(frozen=True)
class Lock:
    retry_after_s: int

    @property
    def message(self) -> str:
        minutes = max(1, -(-self.retry_after_s // 60))
        return f"Too many failed logins. Try again in {minutes} minute{'s' if minutes != 1 else ''}, or ask an administrator to reset your password."


def client_address(request: HttpRequest | None) -> str:
    """The client's address. Behind TRUSTED_PROXY_COUNT reverse proxies (each appending to
    X-Forwarded-For), the entry the outermost trusted proxy saw; the rest of the header is the
    client's to write and is ignored. Without proxies, the socket peer."""
    if request is None:
        return "unknown"
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies:
        forwarded = [part.strip() for part in str(request.META.get("HTTP_X_FORWARDED_FOR", "")).split(",") if part.strip()]
        if len(forwarded) >= proxies:
            return forwarded[-proxies][:64]
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _keys(*, username: str, address: str) -> tuple[str, str]:
    normalised = username.strip().casefold()
    return f"login-fail:user-ip:{_digest(normalised + chr(0) + address)}", f"login-fail:ip:{_digest(address)}"


def _window_left(key: str, now: float) -> int:
    started = cache.get(f"{key}:start")
    window = settings.LOGIN_THROTTLE_WINDOW_S
    return max(1, int(started + window - now)) if isinstance(started, int | float) else window


def login_lock_get(*, username: str, address: str) -> Lock | None:
    """The lock on this username from this address, or None when a login may be tried."""
    user_key, ip_key = _keys(username=username, address=address)
    now = time.time()
    for key, limit in ((user_key, settings.LOGIN_THROTTLE_FAILURES), (ip_key, settings.LOGIN_THROTTLE_ADDRESS_FAILURES)):
        if (cache.get(key) or 0) >= limit:
            return Lock(retry_after_s=_window_left(key, now))
    return None


def login_failure_record(*, username: str, address: str) -> None:
    window = settings.LOGIN_THROTTLE_WINDOW_S
    now = time.time()
    for key in _keys(username=username, address=address):
        if cache.add(key, 0, timeout=window):
            cache.set(f"{key}:start", now, timeout=window)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr: a new window
            cache.set(key, 1, timeout=window)
            cache.set(f"{key}:start", now, timeout=window)


def login_failures_clear(*, username: str, address: str) -> None:
    user_key, _ = _keys(username=username, address=address)
    cache.delete_many([user_key, f"{user_key}:start"])


@receiver(user_login_failed, dispatch_uid="spinereview-login-failed")
def _on_login_failed(sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any) -> None:
    login_failure_record(username=str(credentials.get("username") or ""), address=client_address(request))


@receiver(user_logged_in, dispatch_uid="spinereview-logged-in")
def _on_logged_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    login_failures_clear(username=user.get_username(), address=client_address(request))

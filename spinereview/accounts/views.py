from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from rest_framework.authtoken.models import Token

from spinereview.accounts.models import User
from spinereview.accounts.throttle import client_address, login_lock_get


@login_required
def api_token_page(request: HttpRequest) -> HttpResponse:
    """The signed-in user's API token for tools (header `Authorization: Token <key>`): create, rotate, revoke.

    The key is shown once, right after it is made; afterwards only that a token exists.
    """
    user: User = request.user  # type: ignore[assignment]
    shown_key = ""
    message = ""
    if request.method == "POST":
        action = request.POST.get("action")
        Token.objects.filter(user=user).delete()
        if action == "create":
            shown_key = Token.objects.create(user=user).key
            message = "New token created. Copy it now: it is not shown again. Any earlier token stopped working."
        else:
            message = "Token revoked."
    token = Token.objects.filter(user=user).first()
    return render(request, "accounts/api_token.html", {"token": token, "shown_key": shown_key, "message": message})


class ThrottledLoginView(LoginView):
    """The login page; after too many failures it answers 429 with the time to wait, checking no password."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        username = str(request.POST.get("username", ""))[:300]
        lock = login_lock_get(username=username, address=client_address(request))
        if lock is None:
            response = super().post(request, *args, **kwargs)
            if response.status_code == 302:
                return response
            lock = login_lock_get(username=username, address=client_address(request))
            if lock is None:
                return response
        form = self.get_form_class()(request)
        response = self.render_to_response(self.get_context_data(form=form, throttle_message=lock.message), status=429)
        response["Retry-After"] = str(lock.retry_after_s)
        return response

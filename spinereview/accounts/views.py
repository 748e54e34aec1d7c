from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from rest_framework.authtoken.models import Token

from spinereview.accounts.models import User


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

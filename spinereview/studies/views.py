from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from spinereview.core.errors import NotFoundError
from spinereview.core.frontend import viewer_assets
from spinereview.studies import selectors


@login_required
def home(request: HttpRequest) -> HttpResponse:
    assignments = [
        {"assignment": a, "status": selectors.assignment_status(assignment=a)} for a in selectors.assignment_list(user=request.user)  # type: ignore[arg-type]
    ]
    supervised = selectors.reader_studies_supervised(user=request.user)  # type: ignore[arg-type]
    return render(request, "studies/worklist.html", {"assignments": assignments, "supervised": supervised})


@login_required
@ensure_csrf_cookie
def reading_page(request: HttpRequest, assignment_id: str) -> HttpResponse:
    try:
        assignment = selectors.assignment_get(user=request.user, assignment_id=assignment_id)  # type: ignore[arg-type]
    except NotFoundError:
        raise Http404("No such assignment in your worklist") from None
    return render(request, "studies/reading.html", {"assignment": assignment, "assets": viewer_assets()})

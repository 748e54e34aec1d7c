"""The reader-vs-reader page: two readers' reads and masks of one case, for the study's adjudicators and leads."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from spinereview.core.errors import NotFoundError
from spinereview.core.frontend import viewer_assets
from spinereview.studies.reader_compare import case_readers_submitted
from spinereview.studies.selectors import case_for_supervisor


@login_required
@ensure_csrf_cookie
def readers_compare_page(request: HttpRequest, slug: str, case_id: str) -> HttpResponse:
    """Pick two readers (?a=&b=; the first two who submitted by default); the viewer shows both masks and the differences."""
    try:
        case = case_for_supervisor(user=request.user, case_id=case_id)  # type: ignore[arg-type]
    except NotFoundError:
        raise Http404("No such case among the studies you supervise") from None
    if case.reader_study.slug != slug:
        raise Http404("No such case in this study")
    readers = case_readers_submitted(case=case)
    reader_a = request.GET.get("a") or (readers[0] if readers else "")
    reader_b = request.GET.get("b") or next((r for r in readers if r != reader_a), "")
    role = (case.reader_study.protocol.get("segmentation") or {}).get("series_role", "")
    hung = case.case_series.select_related("series").filter(role=role).first() if role else None
    context = {
        "case": case,
        "study": case.reader_study,
        "readers": readers,
        "reader_a": reader_a,
        "reader_b": reader_b,
        "series": hung.series if hung else None,
        "series_role": role,
        "assets": viewer_assets(),
    }
    return render(request, "studies/compare_readers.html", context)

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from spinereview.core.errors import NotFoundError
from spinereview.reports.selectors import agreement_summary, reader_study_for_reports
from spinereview.studies.models import ReaderStudy


def _study(request: HttpRequest, slug: str) -> ReaderStudy:
    try:
        return reader_study_for_reports(user=request.user, slug=slug)  # type: ignore[arg-type]
    except NotFoundError as exc:
        raise Http404(exc.message) from None


@login_required
def agreement_page(request: HttpRequest, slug: str) -> HttpResponse:
    reader_study = _study(request, slug)
    summary = agreement_summary(reader_study=reader_study)
    return render(request, "reports/agreement.html", {"reader_study": reader_study, "summary": summary.as_dict()})

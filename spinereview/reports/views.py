from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from spinereview.reports.selectors import agreement_summary
from spinereview.studies.selectors import reader_studies_supervised


@login_required
def agreement_page(request: HttpRequest, slug: str) -> HttpResponse:
    reader_study = reader_studies_supervised(user=request.user).filter(slug=slug).first()  # type: ignore[arg-type]
    if reader_study is None:
        raise Http404("No such reader study, or you do not lead it")
    summary = agreement_summary(reader_study=reader_study)
    return render(request, "reports/agreement.html", {"reader_study": reader_study, "summary": summary.as_dict()})

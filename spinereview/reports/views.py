from __future__ import annotations

import uuid

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from spinereview.ai.models import AISegmentation
from spinereview.ai.selectors import model_version_for_reader_study
from spinereview.core.errors import NotFoundError
from spinereview.reports.analysis import AI_RATER, ALL_LEVELS
from spinereview.reports.dashboard import dashboard_context, filters_parse, quantities_of
from spinereview.reports.selectors import agreement_summary, continuous_values, masks_latest, reader_study_for_reports
from spinereview.reports.services import agreement_report_compute
from spinereview.studies.models import Case, ReaderStudy, ReadVersion

MAX_DOWNLOAD_ROWS = 200


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


@login_required
def dashboard_page(request: HttpRequest, slug: str) -> HttpResponse:
    """Figures and tables of the study's statistics, filtered by phase, condition, level, reader, kappa
    weights and quantity (GET parameters). Leads, adjudicators and staff only."""
    reader_study = _study(request, slug)
    cached = agreement_report_compute(reader_study=reader_study)
    report = cached.report
    filters = filters_parse(report, request.GET)
    context = dashboard_context(report, filters, continuous_values(reader_study=reader_study))
    case_labels = dict(Case.objects.filter(reader_study=reader_study).values_list("id", "label"))
    downloads = {
        "masks": masks_latest(reader_study=reader_study)[:MAX_DOWNLOAD_ROWS],
        "reads": ReadVersion.objects.filter(assignment__case__reader_study=reader_study, submitted=True, measurements__isnull=False)
        .distinct()
        .select_related("assignment__reader", "assignment__case")
        .order_by("assignment__case__label", "assignment__reader__username", "version")[:MAX_DOWNLOAD_ROWS],
        "ai": AISegmentation.objects.filter(series__case_series__case__reader_study=reader_study, model_version=model_version_for_reader_study(reader_study=reader_study))
        .select_related("model_version")
        .order_by("created")[:MAX_DOWNLOAD_ROWS],
    }
    for row in context["per_case"]:
        row["label"] = case_labels.get(uuid.UUID(row["case"]), row["case"])
    return render(
        request,
        "reports/dashboard.html",
        context
        | {
            "reader_study": reader_study,
            "meta": report["meta"],
            "cached": cached,
            "quantities": quantities_of(report),
            "levels": [ALL_LEVELS, *report["meta"]["levels"]],
            "readers": [*report["meta"]["readers"], AI_RATER],
            "downloads": downloads,
            "case_labels": {str(k): v for k, v in case_labels.items()},
        },
    )

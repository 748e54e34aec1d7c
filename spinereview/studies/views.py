from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import ensure_csrf_cookie

from spinereview.core.errors import ApplicationError, NotFoundError
from spinereview.core.frontend import viewer_assets
from spinereview.studies import selectors, services
from spinereview.studies.models import AdjudicationTask, Assignment, ReaderStudy, ReadVersion, ReferenceRead, StudyMembership


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


def _supervised_or_404(request: HttpRequest, slug: str) -> ReaderStudy:
    study = selectors.reader_studies_supervised(user=request.user).filter(slug=slug).first()  # type: ignore[arg-type]
    if study is None:
        raise Http404("No such reader study, or you do not lead or adjudicate it")
    return study


def _is_lead(request: HttpRequest, study: ReaderStudy) -> bool:
    user = request.user
    return bool(user.is_staff) or StudyMembership.objects.filter(reader_study=study, user=user, role=StudyMembership.Role.LEAD).exists()  # type: ignore[misc]


@login_required
def study_overview_page(request: HttpRequest, slug: str) -> HttpResponse:
    """A lead's view of a study: reading progress per reader, adjudication tasks, protocol."""
    study = _supervised_or_404(request, slug)
    message = ""
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "assign" and _is_lead(request, study):
                created = services.assignments_create(reader_study=study, actor=request.user.username)  # type: ignore[union-attr]
                message = f"{len(created)} new assignment(s), in each reader's random order (seed {study.randomisation_seed})."
            elif action == "adjudication":
                opened = services.adjudication_tasks_open(reader_study=study, actor=request.user.username)  # type: ignore[union-attr]
                message = f"{len(opened)} new disagreement(s) to adjudicate."
            else:
                message = "That action is not available to you."
        except ApplicationError as exc:
            message = exc.message
    tasks = AdjudicationTask.objects.filter(case__reader_study=study).select_related("case", "resolved_by").order_by("status", "case__label", "level", "item")
    context = {
        "study": study,
        "protocol": study.protocol,
        "progress": selectors.study_progress(reader_study=study),
        "tasks": tasks,
        "open_tasks": sum(1 for t in tasks if t.status == AdjudicationTask.Status.OPEN),
        "cases": study.cases.order_by("label"),
        "is_lead": _is_lead(request, study),
        "message": message,
    }
    return render(request, "studies/study_overview.html", context)


@login_required
def adjudication_page(request: HttpRequest, slug: str, case_id: str) -> HttpResponse:
    """Every reader's submitted grades of one case side by side (read-only), and the reference form."""
    study = _supervised_or_404(request, slug)
    try:
        case, reads = selectors.case_reads_for_supervisor(user=request.user, case_id=case_id)  # type: ignore[arg-type]
    except NotFoundError:
        raise Http404("No such case") from None
    if case.reader_study_id != study.pk:
        raise Http404("No such case in this study")
    error = ""
    if request.method == "POST":
        grades = [
            {"level": key.split("|", 2)[1], "condition": key.split("|", 2)[2], "value": value}
            for key, value in request.POST.items()
            if key.startswith("grade|") and value
        ]
        try:
            services.reference_read_record(case=case, user=request.user, grades=grades, note=request.POST.get("note", ""))  # type: ignore[arg-type]
            return redirect("study-overview", slug=study.slug)
        except ApplicationError as exc:
            error = exc.message
    protocol = study.protocol
    latest: dict[str, ReadVersion] = {}
    for version in reads:
        if version.assignment.kind == Assignment.Kind.LIVE and version.phase == ReadVersion.Phase.UNAIDED:
            latest[version.assignment.reader.username] = version
    readers = sorted(latest)
    given = {name: {(g.level, g.condition): g.value for g in latest[name].grades.all()} for name in readers}
    majority, _ = services.majority_grades(case=case)
    majority_by_item = {(g["level"], g["condition"]): g["value"] for g in majority}
    reference = case.reference_reads.filter(source=ReferenceRead.Source.ADJUDICATED).order_by("-version").first()
    reference_by_item = {(g["level"], g["condition"]): g["value"] for g in reference.grades} if reference else {}
    open_items = set(AdjudicationTask.objects.filter(case=case, status=AdjudicationTask.Status.OPEN).values_list("level", "item"))
    rows = []
    for condition in protocol["conditions"]:
        questions = [condition, *condition.get("sub_questions", [])]
        for question in questions:
            categories = question["scale"]["categories"]
            for level in protocol["levels"]:
                item = (level, question["key"])
                names = {c["code"]: f"{c['code']} · {c['label']}" if c["label"] != c["code"] else c["code"] for c in categories}
                rows.append(
                    {
                        "level": level,
                        "key": question["key"],
                        "label": question["label"] + (f" ({condition['side']})" if condition.get("side") and question is condition else ""),
                        "values": [names.get(given[name].get(item, ""), "") for name in readers],
                        "majority": names.get(majority_by_item.get(item, ""), ""),
                        "chosen": reference_by_item.get(item, majority_by_item.get(item, "")),
                        "categories": categories,
                        "disputed": item in open_items or len({v for v in (given[n].get(item) for n in readers) if v}) > 1,
                    }
                )
    measurements = [
        {"reader": name, "key": m.key, "level": m.level, "values": m.values} for name in readers for m in latest[name].measurements.all()
    ]
    context = {"study": study, "case": case, "readers": readers, "rows": rows, "measurements": measurements, "reference": reference, "error": error}
    return render(request, "studies/adjudicate.html", context)

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import ensure_csrf_cookie

from spinereview.accounts.models import User
from spinereview.core.errors import ApplicationError, NotFoundError
from spinereview.core.frontend import viewer_assets
from spinereview.studies import selectors, services
from spinereview.studies.models import AdjudicationTask, Assignment, CaseSeries, ReaderStudy, ReadVersion, ReferenceRead, StudyMembership
from spinereview.studies.protocols import DEFAULT_PROTOCOL, protocol_dump, protocol_load, protocol_validate


@login_required
def home(request: HttpRequest) -> HttpResponse:
    assignments = [
        {"assignment": a, "status": selectors.assignment_status(assignment=a)} for a in selectors.assignment_list(user=request.user)  # type: ignore[arg-type]
    ]
    supervised = selectors.reader_studies_supervised(user=request.user)  # type: ignore[arg-type]
    return render(request, "studies/worklist.html", {"assignments": assignments, "supervised": supervised, "may_create": _may_create_studies(request)})


@login_required
@ensure_csrf_cookie
def reading_page(request: HttpRequest, assignment_id: str) -> HttpResponse:
    try:
        assignment = selectors.assignment_get(user=request.user, assignment_id=assignment_id)  # type: ignore[arg-type]
    except NotFoundError:
        raise Http404("No such assignment in your worklist") from None
    preloads = selectors.reading_page_preloads(assignment=assignment)
    context = {
        "assignment": assignment,
        "assets": viewer_assets(),
        "preloads": preloads,
        "boot_plan": selectors.reading_page_boot_plan(assignment=assignment, preloads=preloads),
    }
    return render(request, "studies/reading.html", context)


def _supervised_or_404(request: HttpRequest, slug: str) -> ReaderStudy:
    study = selectors.reader_studies_supervised(user=request.user).filter(slug=slug).first()  # type: ignore[arg-type]
    if study is None:
        raise Http404("No such reader study, or you do not lead or adjudicate it")
    return study


def _is_lead(request: HttpRequest, study: ReaderStudy) -> bool:
    return selectors.user_leads(user=request.user, reader_study=study)  # type: ignore[arg-type]


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


PROTOCOL_TEMPLATES_DIR = Path(settings.BASE_DIR) / "protocols"


def _protocol_templates() -> dict[str, str]:
    """The repository's example protocols (protocols/*.yaml) and the default, as editable YAML."""
    templates = {"default": protocol_dump(protocol_validate(DEFAULT_PROTOCOL))}
    for path in sorted(PROTOCOL_TEMPLATES_DIR.glob("*.yaml")):
        templates[path.stem] = path.read_text()
    return templates


def _may_create_studies(request: HttpRequest) -> bool:
    return bool(request.user.is_staff or request.user.has_perm("studies.add_readerstudy"))


@login_required
def study_create_page(request: HttpRequest) -> HttpResponse:
    """A lead creates a study from a protocol template, edited in place (YAML or JSON)."""
    if not _may_create_studies(request):
        raise PermissionDenied("Creating reader studies needs the study-lead role")
    templates = _protocol_templates()
    chosen = request.GET.get("template", "default")
    form: dict[str, Any] = {
        "name": "",
        "slug": "",
        "protocol": templates.get(chosen, templates["default"]),
        "ai_visibility": ReaderStudy.AiVisibility.ALWAYS,
        "seed": "0",
        "calibration_required": False,
        "reidentification_permitted": False,
    }
    error = ""
    if request.method == "POST":
        form |= {k: request.POST.get(k, "") for k in ("name", "slug", "protocol", "ai_visibility", "seed")}
        form["calibration_required"] = request.POST.get("calibration_required") == "on"
        form["reidentification_permitted"] = request.POST.get("reidentification_permitted") == "on"
        try:
            if not form["name"].strip() or not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,63}", form["slug"]) or form["slug"] == "new":
                raise ApplicationError("Give a name, and a short id of lower-case letters, digits and dashes")
            if not re.fullmatch(r"-?\d{1,18}", form["seed"]):
                raise ApplicationError("The seed must be a whole number")
            with transaction.atomic():
                study = services.reader_study_create(
                    name=form["name"].strip(),
                    slug=form["slug"],
                    protocol=protocol_load(form["protocol"]),
                    ai_visibility=form["ai_visibility"],
                    randomisation_seed=int(form["seed"]),
                    calibration_required=form["calibration_required"],
                    reidentification_permitted=form["reidentification_permitted"],
                    actor=request.user.username,  # type: ignore[union-attr]
                )
                services.membership_add(reader_study=study, user=request.user, role=StudyMembership.Role.LEAD)  # type: ignore[arg-type]
            return redirect("study-overview", slug=study.slug)
        except ApplicationError as exc:
            error = exc.message
    context = {"templates": list(templates), "chosen": chosen, "form": form, "error": error, "visibilities": ReaderStudy.AiVisibility.choices}
    return render(request, "studies/study_create.html", context)


@login_required
def study_protocol_page(request: HttpRequest, slug: str) -> HttpResponse:
    study = _supervised_or_404(request, slug)
    if not _is_lead(request, study):
        raise PermissionDenied("Only the study lead edits the protocol")
    text, error, saved = protocol_dump(study.protocol), "", False
    if request.method == "POST":
        text = request.POST.get("protocol", "")
        try:
            services.reader_study_protocol_update(reader_study=study, protocol=protocol_load(text), actor=request.user.username)  # type: ignore[union-attr]
            text, saved = protocol_dump(study.protocol), True
        except ApplicationError as exc:
            error = exc.message
    locked = Assignment.objects.filter(case__reader_study=study, read_versions__isnull=False).exists()
    return render(request, "studies/study_protocol.html", {"study": study, "text": text, "error": error, "saved": saved, "locked": locked})


@login_required
def study_members_page(request: HttpRequest, slug: str) -> HttpResponse:
    study = _supervised_or_404(request, slug)
    lead = _is_lead(request, study)
    error = ""
    if request.method == "POST":
        if not lead:
            raise PermissionDenied("Only the study lead manages members")
        username, role = request.POST.get("username", "").strip(), request.POST.get("role", "")
        user = User.objects.filter(username=username).first()
        if user is None:
            error = f"No user '{username}'. An administrator creates accounts."
        elif role not in StudyMembership.Role.values:
            error = "Choose a role"
        else:
            services.membership_add(reader_study=study, user=user, role=role)
            return redirect("study-members", slug=study.slug)
    members = StudyMembership.objects.filter(reader_study=study).select_related("user").order_by("role", "user__username")
    return render(request, "studies/study_members.html", {"study": study, "members": members, "roles": StudyMembership.Role.choices, "is_lead": lead, "error": error})


@login_required
@ensure_csrf_cookie
def study_upload_page(request: HttpRequest, slug: str) -> HttpResponse:
    """Upload DICOM files or zip archives as cases, with a progress bar (the page posts to the upload API)."""
    study = _supervised_or_404(request, slug)
    if not _is_lead(request, study):
        raise PermissionDenied("Only the study lead uploads cases")
    return render(request, "studies/study_upload.html", {"study": study})


@login_required
def case_page(request: HttpRequest, slug: str, case_id: str) -> HttpResponse:
    """One case for its study's lead (who sets the series' hanging roles) and adjudicators (read-only):
    its series with orientation and weighting, and who reads it."""
    study = _supervised_or_404(request, slug)
    try:
        case = selectors.case_for_supervisor(user=request.user, case_id=case_id)  # type: ignore[arg-type]
    except NotFoundError:
        raise Http404("No such case") from None
    if case.reader_study_id != study.pk:
        raise Http404("No such case in this study")
    lead = _is_lead(request, study)
    message, error = "", ""
    if request.method == "POST":
        if not lead:
            raise PermissionDenied("Only the study lead may change series roles")
        roles = {key.removeprefix("role|"): request.POST.get(key, "") for key in request.POST if key.startswith("role|")}
        try:
            changed = services.case_series_roles_set(case=case, roles=roles, actor=request.user.username)  # type: ignore[union-attr]
            message = f"{len(changed)} series role(s) changed." if changed else "No role changed."
        except ApplicationError as exc:
            error = exc.message
    assignments = [
        {"assignment": a, "status": selectors.assignment_status(assignment=a)}
        for a in case.assignments.select_related("reader").prefetch_related("read_versions").order_by("reader__username", "kind")
    ]
    context = {
        "study": study,
        "case": case,
        "series": selectors.case_series_list(case=case),
        "roles": CaseSeries.Role.choices,
        "assignments": assignments,
        "is_lead": lead,
        "message": message,
        "error": error,
    }
    return render(request, "studies/case.html", context)

"""Pages of the AI side: models (register, activate, run over a study) and the inference job queue."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.csrf import ensure_csrf_cookie

from spinereview.accounts.models import User
from spinereview.ai import selectors, services
from spinereview.ai.apis import managed_study
from spinereview.ai.models import InferenceJob, ModelVersion
from spinereview.core.errors import ApplicationError, PermissionDeniedError

MAX_JOBS_SHOWN = 200


def _ai_user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    if not selectors.user_sees_ai_pages(user=user):
        raise PermissionDenied("Only ML engineers and study leads manage AI models")
    return user


def _metrics_rows(model_version: ModelVersion) -> tuple[list[dict[str, Any]], list[tuple[str, Any]]]:
    """Per-structure held-out scores, and the run's scalar figures, from metrics.json."""
    metrics = model_version.metrics or {}
    held = metrics.get("heldout")
    structures = []
    if isinstance(held, dict) and isinstance(held.get("by_structure"), dict):
        for name, scores in held["by_structure"].items():
            if isinstance(scores, dict):
                structures.append({"name": name, "dice": scores.get("dice"), "iou": scores.get("iou"), "hd95": scores.get("hd95_mm")})
    scalars = [
        (key, metrics[key])
        for key in ("iterations", "training_seconds", "device", "stopped_by", "slices_per_s", "threads")
        if key in metrics and not isinstance(metrics[key], (dict, list))
    ]
    return structures, scalars


def _post_action(request: HttpRequest, user: User) -> str:
    action = request.POST.get("action", "")
    if action == "activate":
        model_version = selectors.model_version_get(model_version_id=request.POST.get("model_version", ""))
        slug = request.POST.get("reader_study", "")
        if not slug:
            if not selectors.user_manages_models(user=user):
                raise PermissionDeniedError("Only ML engineers choose the global default")
            services.model_version_activate(model_version=model_version, reader_study=None, actor=user.username)
            return f"{model_version.version} is now the global default."
        study = managed_study(user=user, slug=slug)
        jobs = services.model_version_activate(model_version=model_version, reader_study=study, actor=user.username)
        todo = sum(1 for j in jobs if j.status != InferenceJob.Status.SUCCEEDED)
        return f"{study.name} now uses {model_version.version}; {todo} series queued for it."
    study = managed_study(user=user, slug=request.POST.get("reader_study", ""))
    if action == "default":
        services.reader_study_model_clear(reader_study=study, actor=user.username)
        return f"{study.name} now follows the global default."
    if action == "run":
        jobs = services.inference_jobs_request_for_study(reader_study=study, actor=user.username)
        todo = sum(1 for j in jobs if j.status in (InferenceJob.Status.QUEUED, InferenceJob.Status.RUNNING))
        failed = sum(1 for j in jobs if j.status == InferenceJob.Status.FAILED)
        return f"{study.name}: {len(jobs)} series, {todo} queued or running" + (
            f", {failed} failed (retry them on the jobs page)." if failed else "."
        )
    raise ApplicationError("Unknown action")


@login_required
@ensure_csrf_cookie
def models_page(request: HttpRequest) -> HttpResponse:
    """Registered models with their scores and model card; upload; activation per study or globally."""
    user = _ai_user(request)
    message, error = "", ""
    if request.method == "POST":
        try:
            message = _post_action(request, user)
        except ApplicationError as exc:
            error = exc.message
    studies = list(selectors.reader_studies_ai_managed(user=user).order_by("name"))
    chosen = {sm.reader_study_id: sm for sm in selectors.study_model_rows()}
    default = selectors.model_version_default()
    slugs = selectors.study_model_slugs()
    models = []
    for model_version in selectors.model_version_list():
        structures, scalars = _metrics_rows(model_version)
        models.append({"mv": model_version, "structures": structures, "scalars": scalars, "studies": slugs.get(model_version.pk, [])})
    study_rows = []
    for study in studies:
        own = chosen.get(study.pk)
        effective = own.model_version if own else default
        counts = selectors.study_job_counts(reader_study=study, model_version=effective) if effective else {}
        study_rows.append({"study": study, "own": own, "effective": effective, "counts": counts})
    context = {
        "models": models,
        "study_rows": study_rows,
        "studies": studies,
        "manager": selectors.user_manages_models(user=user),
        "message": message,
        "error": error,
    }
    return render(request, "ai/models.html", context)


@login_required
def jobs_page(request: HttpRequest) -> HttpResponse:
    """The GPU queue: status, progress, queue position and ETA; failure reasons; retry."""
    user = _ai_user(request)
    message, error = "", ""
    if request.method == "POST":
        try:
            if request.POST.get("action") == "retry":
                job = services.inference_job_retry(
                    job=selectors.inference_job_get(user=user, job_id=request.POST.get("job", "")), actor=user.username
                )
                message = f"Job on {job.series.series_description or job.series.series_instance_uid} queued again."
            else:
                message = _post_action(request, user)
        except ApplicationError as exc:
            error = exc.message
    status = request.GET.get("status", "")
    jobs = selectors.jobs_filter_by_status(selectors.inference_job_list(user=user), status)
    rows = selectors.inference_job_rows(user=user, jobs=list(jobs.order_by("-created")[:MAX_JOBS_SHOWN]), now=timezone.now())
    active = any(r.job.status in (InferenceJob.Status.QUEUED, InferenceJob.Status.RUNNING) for r in rows)
    context = {
        "rows": rows,
        "status": status,
        "statuses": InferenceJob.Status.values,
        "active": active,
        "studies": list(selectors.reader_studies_ai_managed(user=user).order_by("name")),
        "throughput": selectors.throughput_slices_per_s(),
        "message": message,
        "error": error,
    }
    return render(request, "ai/jobs.html", context)

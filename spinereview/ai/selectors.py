"""Reads of the AI side: which model a study uses, who may manage models, the GPU queue with ETAs."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet

from spinereview.accounts.models import User
from spinereview.ai.models import AILevelMeasurement, InferenceJob, ModelVersion, StudyModel
from spinereview.core.errors import NotFoundError
from spinereview.morphometry import stenosis_grade_from_dsca
from spinereview.studies.models import Case, ReaderStudy, StudyMembership
from spinereview.studies.protocols import condition_categories

# Throughput is measured over the most recent successful jobs of a model version.
THROUGHPUT_WINDOW_JOBS = 20


def model_version_default() -> ModelVersion | None:
    """The global default: the model of every study that has not chosen its own."""
    return ModelVersion.objects.filter(is_active=True).first()


def model_version_for_reader_study(*, reader_study: ReaderStudy) -> ModelVersion | None:
    """The model whose output a reader study shows and reports: its own choice, else the global default.
    One query (every mask save asks): the study's choice sorts before the active model."""
    found = ModelVersion.objects.raw(
        f"SELECT mv.* FROM {ModelVersion._meta.db_table} mv LEFT JOIN {StudyModel._meta.db_table} sm"
        " ON sm.model_version_id = mv.id AND sm.reader_study_id = %s"
        " WHERE sm.id IS NOT NULL OR mv.is_active ORDER BY sm.id IS NULL, mv.id LIMIT 1",
        [ReaderStudy._meta.pk.get_db_prep_value(reader_study.pk, connection)],  # SQLite keeps UUIDs as 32 hex digits
    )
    return next(iter(found), None)


def model_version_for_case(*, case: Case) -> ModelVersion | None:
    return model_version_for_reader_study(reader_study=case.reader_study)


def user_manages_models(*, user: User) -> bool:
    """ML engineers (permission ai.manage_models, the "ML engineers" group) and staff."""
    return bool(user.is_authenticated and (user.is_staff or user.has_perm("ai.manage_models")))


def reader_studies_ai_managed(*, user: User) -> QuerySet[ReaderStudy]:
    """Studies whose model the user may choose and run: all for ML engineers, else those the user leads."""
    if user_manages_models(user=user):
        return ReaderStudy.objects.all()
    return ReaderStudy.objects.filter(memberships__user=user, memberships__role=StudyMembership.Role.LEAD).distinct()


def user_sees_ai_pages(*, user: User) -> bool:
    return user_manages_models(user=user) or reader_studies_ai_managed(user=user).exists()


def model_version_list() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.order_by("-is_active", "-created")


def model_version_get(*, model_version_id: uuid.UUID | str) -> ModelVersion:
    try:
        return ModelVersion.objects.get(pk=model_version_id)
    except (ModelVersion.DoesNotExist, ValueError, TypeError):
        raise NotFoundError("No such model version") from None


def study_model_slugs() -> dict[uuid.UUID, list[str]]:
    """Model version id -> slugs of the reader studies that chose it (studies on the default are absent)."""
    out: dict[uuid.UUID, list[str]] = {}
    for model_id, slug in StudyModel.objects.values_list("model_version_id", "reader_study__slug").order_by("reader_study__slug"):
        out.setdefault(model_id, []).append(slug)
    return out


def inference_job_list(*, user: User) -> QuerySet[InferenceJob]:
    """Every job for ML engineers; for a study lead, the jobs on the series of the studies they lead."""
    jobs = InferenceJob.objects.select_related("series__study", "model_version")
    if user_manages_models(user=user):
        return jobs
    led = reader_studies_ai_managed(user=user)
    return jobs.filter(series__study__cases__reader_study__in=led).distinct()


def inference_job_get(*, user: User, job_id: uuid.UUID | str) -> InferenceJob:
    try:
        return inference_job_list(user=user).get(pk=job_id)
    except (InferenceJob.DoesNotExist, ValueError, TypeError):
        raise NotFoundError("No such inference job") from None


def throughput_slices_per_s(*, model_version: ModelVersion | None = None) -> float | None:
    """Slices per second over the recent successful jobs of `model_version` (any model when None);
    None before any job has been measured."""
    done = InferenceJob.objects.filter(status=InferenceJob.Status.SUCCEEDED, slices__gt=0, compute_seconds__gt=0)
    if model_version is not None:
        done = done.filter(model_version=model_version)
    recent = [
        (int(s or 0), float(c or 0.0))
        for s, c in done.order_by("-finished").values_list("slices", "compute_seconds")[:THROUGHPUT_WINDOW_JOBS]
    ]
    if not recent:
        return None
    return sum(s for s, _ in recent) / sum(c for _, c in recent)


@dataclass(frozen=True)
class QueueEntry:
    """Where a queued or running job stands in the GPU queue."""

    position: int | None
    """1 = next to start; None while running or finished."""
    eta_seconds: float | None
    """Seconds until it should be done (the work of every job ahead, then its own), from measured throughput;
    None when no job has been measured yet."""
    throughput_slices_per_s: float | None
    throughput_source: str
    """"this model", "other models" (no measurement of this one yet) or "none"."""


def inference_queue(*, now: datetime) -> dict[uuid.UUID, QueueEntry]:
    """The GPU queue, first come first served (one GPU worker): queue position and ETA of every queued or
    running job. A running job's remaining work is its unsegmented share of slices."""
    active = list(
        InferenceJob.objects.filter(status__in=[InferenceJob.Status.RUNNING, InferenceJob.Status.QUEUED])
        .select_related("model_version")
        .order_by("status", "created")  # "queued" < "running": reorder below
    )
    running = [j for j in active if j.status == InferenceJob.Status.RUNNING]
    queued = sorted((j for j in active if j.status == InferenceJob.Status.QUEUED), key=lambda j: (j.published or j.created, j.created))
    any_rate = throughput_slices_per_s()
    rates: dict[uuid.UUID, tuple[float | None, str]] = {}
    for job in active:
        if job.model_version_id not in rates:
            own = throughput_slices_per_s(model_version=job.model_version)
            rates[job.model_version_id] = (own, "this model") if own else (any_rate, "other models" if any_rate else "none")
    entries: dict[uuid.UUID, QueueEntry] = {}
    remaining_running: list[float | None] = []
    for job in running:
        rate, source = rates[job.model_version_id]
        remaining = _seconds(job.slices, rate, 1.0 - job.progress)
        if remaining is not None and job.started is not None and job.progress == 0:
            # no batch done yet: the time already spent on it counts
            remaining = max(0.0, remaining - (now - job.started).total_seconds())
        entries[job.pk] = QueueEntry(None, remaining, rate, source)
        remaining_running.append(remaining)
    # The first queued job starts when the GPU is free: after the running job (the first of them, with several workers).
    ahead_s: float | None = 0.0
    if remaining_running:
        ahead_s = None if None in remaining_running else min(r for r in remaining_running if r is not None)
    for position, job in enumerate(queued, start=1):
        rate, source = rates[job.model_version_id]
        own = _seconds(job.slices, rate, 1.0)
        eta = None if own is None or ahead_s is None else ahead_s + own
        entries[job.pk] = QueueEntry(position, eta, rate, source)
        ahead_s = eta
    return entries


def _seconds(slices: int | None, rate: float | None, share: float) -> float | None:
    if not slices or not rate:
        return None
    return slices * max(0.0, share) / rate


def jobs_filter_by_status(jobs: QuerySet[InferenceJob], status: str) -> QuerySet[InferenceJob]:
    return jobs.filter(status=status) if status in InferenceJob.Status.values else jobs


def reader_study_series_ids(*, reader_study: ReaderStudy) -> list[uuid.UUID]:
    """The MR series of every case of a study (what "run over the whole study" segments)."""
    from spinereview.imaging.models import DicomSeries

    return list(
        DicomSeries.objects.filter(Q(study__cases__reader_study=reader_study), modality="MR").distinct().values_list("pk", flat=True)
    )


@dataclass(frozen=True)
class JobRow:
    job: InferenceJob
    queue: QueueEntry | None
    cases: list[str]
    """"<study slug>/<case label>" of the cases (in studies the user may see) showing the job's series."""


def inference_job_rows(*, user: User, jobs: list[InferenceJob], now: datetime) -> list[JobRow]:
    """Jobs with their place in the GPU queue and the cases they serve."""
    queue = inference_queue(now=now)
    visible = reader_studies_ai_managed(user=user)
    cases: dict[uuid.UUID, list[str]] = {}
    for study_id, slug, label in Case.objects.filter(
        dicom_study__in={j.series.study_id for j in jobs}, reader_study__in=visible
    ).values_list("dicom_study_id", "reader_study__slug", "label"):
        cases.setdefault(study_id, []).append(f"{slug}/{label}")
    return [JobRow(job, queue.get(job.pk), sorted(cases.get(job.series.study_id, []))) for job in jobs]


def study_model_rows() -> QuerySet[StudyModel]:
    return StudyModel.objects.select_related("model_version", "reader_study")


def study_job_counts(*, reader_study: ReaderStudy, model_version: ModelVersion) -> dict[str, int]:
    """Jobs of `model_version` on the study's series, by status, and the series still without one ("missing")."""
    series_ids = reader_study_series_ids(reader_study=reader_study)
    counts = {status: 0 for status in InferenceJob.Status.values}
    for status in InferenceJob.objects.filter(series_id__in=series_ids, model_version=model_version).values_list("status", flat=True):
        counts[status] += 1
    counts["missing"] = len(series_ids) - sum(counts[s] for s in InferenceJob.Status.values)
    return counts


# --------------------------------------------------------------------------- the AI's grade of a level


def ai_grade_source(*, ai_grade: Mapping[str, Any], model_version: ModelVersion) -> str:
    """"grader" or "dsca": how a protocol's AI grade is made with this model (ai_grade["source"]; "auto",
    also for protocols stored before sources existed, is the grader when the model has one)."""
    source = str(ai_grade.get("source") or "auto")
    if source == "auto":
        return "grader" if model_version.grader else "dsca"
    return source


def _heldout_scores(heldout: Mapping[str, Any] | None) -> str:
    """"; held-out accuracy 0.89 on 100 levels" for a grader (task) with held-out scores, else ""."""
    heldout = heldout or {}
    return f"; held-out accuracy {heldout['accuracy']:.2f} on {heldout.get('n', '?')} levels" if "accuracy" in heldout else ""


def _grader_class_as_category(
    name: str, index: int, n_classes: int, categories: Sequence[str], grader_map: Mapping[str, Any], *, unmapped: str, mismatch: str
) -> tuple[str | None, str]:
    """A grader's class (its name, and its index among n_classes) as one of a condition's categories: through the
    protocol's grader_map when it gives one, else class i is category i when both count as many; (None, unmapped
    or mismatch) where neither holds."""
    if grader_map:
        value = grader_map.get(name)
        return (None, unmapped) if value is None else (str(value), "")
    if n_classes != len(categories):
        return None, mismatch
    return categories[index], ""


def ai_grade_method(*, ai_grade: Mapping[str, Any], model_version: ModelVersion) -> str:
    """One line for reports: what the AI rater's grades are."""
    if ai_grade_source(ai_grade=ai_grade, model_version=model_version) == "grader":
        if not model_version.grader:
            return f"stenosis grader: {model_version.version} has none, so the AI gives no grades"
        grader = model_version.grader
        return f"stenosis grader {grader['version']} ({', '.join(grader['grades'])}) on the axial slice at each disc{_heldout_scores(grader.get('heldout'))}"
    cutoffs = ai_grade.get("dsca_cutoffs_mm2") or []
    return f"dural sac area (DSCA) of {model_version.version}'s mask through the protocol's cut-offs {', '.join(f'{c:g}' for c in cutoffs)} mm²"


def ai_level_grade(row: AILevelMeasurement, *, ai_grade: Mapping[str, Any], categories: Sequence[str], model_version: ModelVersion) -> tuple[str | None, str]:
    """The AI's grade of one level as a category of the protocol's AI-graded condition, or (None, why not).
    One rule for every place that shows or counts it: the compare view, the agreement summary, the report
    and the exports."""
    if row.flag:
        return None, row.flag
    if not categories:
        return None, "the condition has no categories"
    if ai_grade_source(ai_grade=ai_grade, model_version=model_version) == "grader":
        if not model_version.grader:
            return None, f"the model {model_version.version} has no stenosis grader"
        if not row.grader_version:
            return None, "not graded yet"
        if row.grade_index is None:
            return None, str(row.errors.get("grade") or "not graded")
        grades = model_version.grader.get("grades") or []
        return _grader_class_as_category(
            row.grade_name, row.grade_index, len(grades), categories, ai_grade.get("grader_map") or {},
            unmapped=f"ai_grade.grader_map has no category for the grader's '{row.grade_name}'",
            mismatch=f"the grader's {len(grades)} grades do not map onto the {len(categories)} categories: set ai_grade.grader_map in the protocol",
        )
    cutoffs = ai_grade.get("dsca_cutoffs_mm2")
    if not cutoffs:
        return None, "the protocol has no DSCA cut-offs"
    if row.dsca_mm2 is None:
        return None, str(row.errors.get("dsca_mm2") or "no dural sac area")
    return categories[min(stenosis_grade_from_dsca(row.dsca_mm2, cutoffs_mm2=tuple(cutoffs)), len(categories) - 1)], ""


# --------------------------------------------------------------------------- the AI's grade of any condition


def ai_graded_conditions(protocol: Mapping[str, Any]) -> list[str]:
    """The conditions a protocol has the AI grade: ai_grade's first, then those of ai_grader_tasks (protocols
    stored before grader tasks existed have none)."""
    primary = (protocol.get("ai_grade") or {}).get("condition")
    return ([primary] if primary else []) + [task["condition"] for task in protocol.get("ai_grader_tasks") or []]


def ai_grader_task(protocol: Mapping[str, Any], condition: str) -> Mapping[str, Any] | None:
    """The protocol's ai_grader_tasks entry that grades `condition`, or None."""
    return next((task for task in protocol.get("ai_grader_tasks") or [] if task["condition"] == condition), None)


def ai_condition_source(*, protocol: Mapping[str, Any], condition: str, model_version: ModelVersion) -> str:
    """"grader", "dsca" (ai_grade's condition only), or "" for a condition the protocol does not have the AI grade."""
    ai_grade = protocol.get("ai_grade") or {}
    if ai_grade.get("condition") == condition:
        return ai_grade_source(ai_grade=ai_grade, model_version=model_version)
    return "grader" if ai_grader_task(protocol, condition) is not None else ""


def ai_condition_grade(row: AILevelMeasurement, *, protocol: Mapping[str, Any], condition: str, model_version: ModelVersion) -> tuple[str | None, str]:
    """The AI's value of any protocol condition on one level, as one of the condition's categories, or
    (None, why not). ai_grade's condition: ai_level_grade (grader or DSCA cut-offs). A condition of
    ai_grader_tasks: the grader's grade of that task (no fallback: without a grader, or with a grader
    that lacks the task, there is none). The one rule for the compare view, the reports and the exports."""
    ai_grade = protocol.get("ai_grade") or {}
    categories = condition_categories(protocol, condition)
    if ai_grade.get("condition") == condition:
        return ai_level_grade(row, ai_grade=ai_grade, categories=categories, model_version=model_version)
    entry = ai_grader_task(protocol, condition)
    if entry is None:
        return None, f"the protocol does not have the AI grade {condition}"
    if row.flag:
        return None, row.flag
    task = str(entry["task"])
    grader = model_version.grader
    if not grader:
        return None, f"the model {model_version.version} has no grader"
    described = (grader.get("tasks") or {}).get(task)
    if described is None:
        return None, f"the grader {grader['version']} does not grade {task}"
    if not row.grader_version:
        return None, "not graded yet"
    graded = (row.task_grades or {}).get(task)
    if graded is None:
        return None, str(row.errors.get("grade") or f"the grader gave no {task} grade for this level")
    classes = described.get("classes") or []
    return _grader_class_as_category(
        str(graded["name"]), int(graded["index"]), len(classes), categories, entry.get("grader_map") or {},
        unmapped=f"the grader_map of {condition} in ai_grader_tasks has no category for the grader's '{graded['name']}'",
        mismatch=f"the grader's {len(classes)} {task} classes do not map onto the {len(categories)} categories of {condition}: set its grader_map in ai_grader_tasks",
    )


def ai_condition_confidence(row: AILevelMeasurement, *, protocol: Mapping[str, Any], condition: str) -> float | None:
    """The grader's probability of the class it chose for `condition` on this level (None where the grader
    gave no grade of it)."""
    entry = ai_grader_task(protocol, condition)
    name: str | None = row.grade_name
    probabilities: Mapping[str, float] = row.grade_probabilities or {}
    if entry is not None:
        graded = (row.task_grades or {}).get(entry["task"]) or {}
        name, probabilities = graded.get("name"), graded.get("probabilities") or {}
    return round(float(probabilities[name]), 4) if name is not None and name in probabilities else None


def ai_grader_task_method(*, entry: Mapping[str, Any], model_version: ModelVersion) -> str:
    """One line for reports: what the AI rater's grades of one ai_grader_tasks condition are."""
    condition, task = entry["condition"], entry["task"]
    grader = model_version.grader
    if not grader:
        return f"{condition}: {model_version.version} has no grader, so the AI gives no grades"
    described = (grader.get("tasks") or {}).get(task)
    if described is None:
        return f"{condition}: the grader {grader['version']} does not grade {task}, so the AI gives no grades"
    return f"{condition}: grader {grader['version']} task {task} ({', '.join(described.get('classes') or [])}){_heldout_scores(described.get('heldout'))}"


def ai_grades_method(*, protocol: Mapping[str, Any], model_version: ModelVersion) -> str:
    """ai_grade_method of the protocol's ai_grade, then each grader task's, "; "-separated ("" with neither)."""
    lines = [ai_grade_method(ai_grade=protocol["ai_grade"], model_version=model_version)] if (protocol.get("ai_grade") or {}).get("condition") else []
    lines += [ai_grader_task_method(entry=entry, model_version=model_version) for entry in protocol.get("ai_grader_tasks") or []]
    return "; ".join(lines)

"""Reads of reader-study data, scoped by what the user may see. Blinding lives here, once."""

from __future__ import annotations

import uuid

from django.db.models import Prefetch, QuerySet

from spinereview.accounts.models import User
from spinereview.ai.models import AISegmentation
from spinereview.core.errors import NotFoundError
from spinereview.studies.models import Assignment, ReaderStudy, ReadVersion, StudyMembership


def assignment_list(*, user: User) -> QuerySet[Assignment]:
    """A reader's own worklist (never anyone else's assignments)."""
    return (
        Assignment.objects.filter(reader=user)
        .select_related("case__reader_study", "case__dicom_study")
        .prefetch_related(Prefetch("read_versions", queryset=ReadVersion.objects.order_by("-version")))
        .order_by("case__reader_study__name", "order", "case__label")
    )


def assignment_get(*, user: User, assignment_id: uuid.UUID | str) -> Assignment:
    try:
        return assignment_list(user=user).prefetch_related("case__case_series__series").get(pk=assignment_id)
    except (Assignment.DoesNotExist, ValueError):
        raise NotFoundError("No such assignment in your worklist") from None


def read_current(*, assignment: Assignment) -> ReadVersion | None:
    return assignment.read_versions.order_by("-version").prefetch_related("grades").first()


def assignment_status(*, assignment: Assignment) -> str:
    current = assignment.read_versions.order_by("-version").first()
    if current is None:
        return "not_started"
    return "submitted" if current.submitted else "in_progress"


def ai_visible_to_reader(*, assignment: Assignment) -> bool:
    """Whether the protocol lets this reader see the AI output now."""
    visibility = assignment.case.reader_study.ai_visibility
    if visibility == ReaderStudy.AiVisibility.ALWAYS:
        return True
    if visibility == ReaderStudy.AiVisibility.AFTER_SUBMIT:
        return assignment.read_versions.filter(submitted=True).exists()
    return False


def ai_segmentation_for_reader(*, assignment: Assignment, series_id: uuid.UUID) -> AISegmentation | None:
    """The newest AI segmentation of a case's series by the active model, if the reader may see it."""
    if not ai_visible_to_reader(assignment=assignment):
        return None
    return (
        AISegmentation.objects.filter(series_id=series_id, model_version__is_active=True)
        .select_related("model_version")
        .order_by("-created")
        .first()
    )


def ai_segmentation_get(*, user: User, segmentation_id: uuid.UUID | str) -> AISegmentation:
    """An AI segmentation, if the user leads/adjudicates a study holding it, or reads a case of it with AI visible."""
    try:
        segmentation = AISegmentation.objects.select_related("series").get(pk=segmentation_id)
    except (AISegmentation.DoesNotExist, ValueError):
        raise NotFoundError("No such AI segmentation") from None
    if user.is_staff:
        return segmentation
    supervisor = StudyMembership.objects.filter(
        user=user,
        role__in=[StudyMembership.Role.LEAD, StudyMembership.Role.ADJUDICATOR],
        reader_study__cases__case_series__series=segmentation.series,
    ).exists()
    if supervisor:
        return segmentation
    for assignment in Assignment.objects.filter(reader=user, case__case_series__series=segmentation.series).select_related("case__reader_study"):
        if ai_visible_to_reader(assignment=assignment):
            return segmentation
    raise NotFoundError("No such AI segmentation")


def reader_studies_supervised(*, user: User) -> QuerySet[ReaderStudy]:
    """Studies whose results the user may see: as lead or adjudicator (staff: all)."""
    if user.is_staff:
        return ReaderStudy.objects.all()
    return ReaderStudy.objects.filter(
        memberships__user=user, memberships__role__in=[StudyMembership.Role.LEAD, StudyMembership.Role.ADJUDICATOR]
    ).distinct()

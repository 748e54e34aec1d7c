"""Every write to reader studies: studies, cases, assignments and versioned reads."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import transaction

from spinereview.accounts.models import User
from spinereview.core.errors import ApplicationError, ConflictError, PermissionDeniedError, PreconditionFailedError
from spinereview.imaging.models import DicomStudy
from spinereview.imaging.selectors import series_orientation
from spinereview.imaging.services import ImportResult, ImportSource, dicom_instances_import
from spinereview.studies.models import Assignment, Case, CaseSeries, Grade, ReaderStudy, ReadVersion, StudyMembership
from spinereview.studies.protocols import condition_categories, protocol_validate, required_items

_ROLE_BY_ORIENTATION = {"sagittal": CaseSeries.Role.SAGITTAL_T2, "axial": CaseSeries.Role.AXIAL_T2}


def reader_study_create(*, name: str, slug: str, protocol: dict[str, Any], ai_visibility: str = ReaderStudy.AiVisibility.ALWAYS) -> ReaderStudy:
    protocol_validate(protocol)
    if ai_visibility not in ReaderStudy.AiVisibility.values:
        raise ApplicationError(f"ai_visibility must be one of {', '.join(ReaderStudy.AiVisibility.values)}")
    return ReaderStudy.objects.create(name=name, slug=slug, protocol=protocol, ai_visibility=ai_visibility)


def membership_add(*, reader_study: ReaderStudy, user: User, role: str) -> StudyMembership:
    membership, _ = StudyMembership.objects.get_or_create(reader_study=reader_study, user=user, role=role)
    return membership


@transaction.atomic
def case_create(*, reader_study: ReaderStudy, dicom_study: DicomStudy, label: str) -> Case:
    """A case for one examination; series get their roles from their slice orientation."""
    case, _ = Case.objects.get_or_create(reader_study=reader_study, dicom_study=dicom_study, defaults={"label": label})
    for series in dicom_study.series.all():
        role = _ROLE_BY_ORIENTATION.get(series_orientation(series=series) or "", CaseSeries.Role.OTHER)
        CaseSeries.objects.get_or_create(case=case, series=series, defaults={"role": role})
    return case


def assignment_create(*, case: Case, reader: User, order: int = 0) -> Assignment:
    if not StudyMembership.objects.filter(reader_study=case.reader_study, user=reader, role=StudyMembership.Role.READER).exists():
        raise ApplicationError(f"{reader.username} is not a reader of {case.reader_study.name}")
    assignment, _ = Assignment.objects.get_or_create(case=case, reader=reader, defaults={"order": order})
    return assignment


def _current(assignment: Assignment) -> ReadVersion | None:
    return assignment.read_versions.order_by("-version").first()


def _validated_grades(protocol: dict[str, Any], grades: Sequence[dict[str, Any]]) -> list[tuple[str, str, str]]:
    errors: dict[str, str] = {}
    seen: set[tuple[str, str]] = set()
    cleaned = []
    levels = set(protocol["levels"])
    for index, grade in enumerate(grades):
        if not isinstance(grade, dict):
            errors[str(index)] = "each grade must be an object with level, condition and value"
            continue
        level, condition, value = grade.get("level"), grade.get("condition"), grade.get("value")
        key = f"{level}/{condition}"
        if level not in levels:
            errors[key] = f"unknown level {level!r}"
            continue
        try:
            categories = condition_categories(protocol, str(condition))
        except ApplicationError:
            errors[key] = f"unknown condition {condition!r}"
            continue
        if value not in categories:
            errors[key] = f"value {value!r} is not one of {', '.join(categories)}"
            continue
        if (level, condition) in seen:
            errors[key] = "graded twice in one save"
            continue
        seen.add((str(level), str(condition)))
        cleaned.append((str(level), str(condition), str(value)))
    if errors:
        raise ApplicationError("Some grades are not valid for this protocol; nothing was saved.", extra={"errors": errors})
    return cleaned


def _locked_assignment(assignment: Assignment, user: User) -> Assignment:
    if assignment.reader_id != user.pk:
        raise PermissionDeniedError("Only the assigned reader may save this read")
    return Assignment.objects.select_for_update().select_related("case__reader_study").get(pk=assignment.pk)


def _check_base(current: ReadVersion | None, base_version: int) -> None:
    current_number = current.version if current else 0
    if base_version != current_number:
        raise PreconditionFailedError(
            f"This read was saved elsewhere (version {current_number}); you edited version {base_version}. Load the latest version.",
            extra={"current_version": current_number},
        )
    if current is not None and current.submitted:
        raise ConflictError("This read is submitted and locked")


@transaction.atomic
def read_save(*, assignment: Assignment, user: User, base_version: int, grades: Sequence[dict[str, Any]], provenance: str = "") -> ReadVersion:
    """Save the reader's grades as a new version; a save based on a stale version is refused (412)."""
    assignment = _locked_assignment(assignment, user)
    current = _current(assignment)
    _check_base(current, base_version)
    cleaned = _validated_grades(assignment.case.reader_study.protocol, grades)
    version = ReadVersion.objects.create(
        assignment=assignment, version=(current.version if current else 0) + 1, saved_by=user, provenance=provenance
    )
    Grade.objects.bulk_create(Grade(read_version=version, level=lv, condition=cd, value=vl) for lv, cd, vl in cleaned)
    return version


@transaction.atomic
def read_submit(*, assignment: Assignment, user: User, base_version: int, provenance: str = "") -> ReadVersion:
    """Lock the read: a new, submitted version with the same grades; every required grade must be there."""
    assignment = _locked_assignment(assignment, user)
    current = _current(assignment)
    _check_base(current, base_version)
    grades = list(current.grades.all()) if current else []
    present = {(g.level, g.condition) for g in grades}
    missing = [f"{level}/{condition}" for level, condition in required_items(assignment.case.reader_study.protocol) if (level, condition) not in present]
    if missing:
        raise ApplicationError(f"{len(missing)} required grade(s) missing; the read was not submitted.", extra={"missing": missing})
    version = ReadVersion.objects.create(
        assignment=assignment, version=current.version + 1 if current else 1, submitted=True, saved_by=user, provenance=provenance
    )
    Grade.objects.bulk_create(Grade(read_version=version, level=g.level, condition=g.condition, value=g.value) for g in grades)
    return version



def cases_import(*, sources: Iterable[ImportSource], reader_study: ReaderStudy | None, label_prefix: str = "Case") -> ImportResult:
    """Import DICOM files (all or nothing), add each examination as a case, and queue the AI on new series."""
    from spinereview.ai.services import inference_jobs_request

    with transaction.atomic():
        result = dicom_instances_import(sources=sources)
        if reader_study is not None:
            existing = Case.objects.filter(reader_study=reader_study).count()
            for offset, study_uid in enumerate(result.study_instance_uids, start=1):
                dicom_study = DicomStudy.objects.get(study_instance_uid=study_uid)
                case_create(reader_study=reader_study, dicom_study=dicom_study, label=f"{label_prefix} {existing + offset:03d}")
        inference_jobs_request(series_ids=list(result.new_series_ids))
    return result

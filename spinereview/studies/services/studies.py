"""Writes that set a reader study up: the study and its protocol, members, cases."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction

from spinereview.accounts.models import User
from spinereview.core.errors import ApplicationError
from spinereview.imaging.models import DicomStudy
from spinereview.imaging.selectors import series_orientation
from spinereview.imaging.services import ImportResult, ImportSource, dicom_instances_import
from spinereview.studies.models import Assignment, Case, CaseSeries, ReaderStudy, StudyMembership
from spinereview.studies.protocols import protocol_validate
from spinereview.studies.services.audit import audit_of

_ROLE_BY_ORIENTATION = {"sagittal": CaseSeries.Role.SAGITTAL_T2, "axial": CaseSeries.Role.AXIAL_T2}


def _ai_visibility_checked(protocol: dict[str, Any], ai_visibility: str) -> str:
    if ai_visibility not in ReaderStudy.AiVisibility.values:
        raise ApplicationError(f"ai_visibility must be one of {', '.join(ReaderStudy.AiVisibility.values)}")
    if protocol["two_phase"] and ai_visibility != ReaderStudy.AiVisibility.AFTER_SUBMIT:
        raise ApplicationError("a two-phase protocol reveals the AI after the unaided read: use ai_visibility after_submit")
    return ai_visibility


@transaction.atomic
def reader_study_create(
    *,
    name: str,
    slug: str,
    protocol: dict[str, Any],
    ai_visibility: str = ReaderStudy.AiVisibility.ALWAYS,
    randomisation_seed: int = 0,
    calibration_required: bool = False,
    reidentification_permitted: bool = False,
    actor: str = "system",
) -> ReaderStudy:
    """A reader study with its validated, normalised protocol."""
    normalised = protocol_validate(protocol)
    _ai_visibility_checked(normalised, ai_visibility)
    if ReaderStudy.objects.filter(slug=slug).exists():
        raise ApplicationError(f"a reader study with slug '{slug}' exists already")
    study = ReaderStudy.objects.create(
        name=name, slug=slug, protocol=normalised, ai_visibility=ai_visibility, randomisation_seed=randomisation_seed,
        calibration_required=calibration_required,
        reidentification_permitted=reidentification_permitted,
    )
    audit_of(study, actor=actor, action="study.create", details={"slug": slug, "protocol": normalised, "reidentification_permitted": reidentification_permitted})
    return study


@transaction.atomic
def reader_study_protocol_update(*, reader_study: ReaderStudy, protocol: dict[str, Any], actor: str) -> ReaderStudy:
    """Replace the protocol while nobody has read yet; once reads exist the protocol is the study's record."""
    normalised = protocol_validate(protocol)
    _ai_visibility_checked(normalised, reader_study.ai_visibility)
    if Assignment.objects.filter(case__reader_study=reader_study, read_versions__isnull=False).exists():
        raise ApplicationError("Reads exist for this study; its protocol can no longer change. Create a new study instead.")
    reader_study.protocol = normalised
    reader_study.save(update_fields=["protocol", "modified"])
    audit_of(reader_study, actor=actor, action="study.protocol_update", details={"protocol": normalised})
    return reader_study


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


def assignment_create(*, case: Case, reader: User, order: int = 0, kind: str = Assignment.Kind.LIVE) -> Assignment:
    if not StudyMembership.objects.filter(reader_study=case.reader_study, user=reader, role=StudyMembership.Role.READER).exists():
        raise ApplicationError(f"{reader.username} is not a reader of {case.reader_study.name}")
    assignment, _ = Assignment.objects.get_or_create(case=case, reader=reader, kind=kind, defaults={"order": order})
    return assignment


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

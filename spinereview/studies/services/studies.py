"""Writes that set a reader study up: the study and its protocol, members, cases."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import F

from spinereview.accounts.models import User
from spinereview.core.errors import ApplicationError
from spinereview.imaging.models import DicomStudy
from spinereview.imaging.services import ImportResult, ImportSource, dicom_instances_import
from spinereview.studies.models import Assignment, Case, CaseSeries, ReaderStudy, StudyMembership
from spinereview.studies.protocols import protocol_validate
from spinereview.studies.selectors import HANGING_ROLES, series_role_suggest
from spinereview.studies.services.audit import audit_of


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
        name=name,
        slug=slug,
        protocol=normalised,
        ai_visibility=ai_visibility,
        randomisation_seed=randomisation_seed,
        calibration_required=calibration_required,
        reidentification_permitted=reidentification_permitted,
    )
    audit_of(
        study,
        actor=actor,
        action="study.create",
        details={"slug": slug, "protocol": normalised, "reidentification_permitted": reidentification_permitted},
    )
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
    """A case for one examination. Series take their roles from slice orientation and weighting; when
    two series would hang in the same viewport, the lower series number keeps the role and the other
    becomes "other" (a lead can change roles on the case page)."""
    case, _ = Case.objects.get_or_create(reader_study=reader_study, dicom_study=dicom_study, defaults={"label": label})
    taken = set(case.case_series.filter(role__in=HANGING_ROLES).values_list("role", flat=True))
    for series in dicom_study.series.order_by(F("series_number").asc(nulls_last=True), "series_instance_uid"):
        role = series_role_suggest(series=series)
        if role in taken:
            role = CaseSeries.Role.OTHER
        _, created = CaseSeries.objects.get_or_create(case=case, series=series, defaults={"role": role})
        if created and role in HANGING_ROLES:
            taken.add(role)
    return case


@transaction.atomic
def case_series_roles_set(*, case: Case, roles: dict[str, str], actor: str) -> list[CaseSeries]:
    """Set the role of some of a case's series, by SeriesInstanceUID; all or nothing.

    Every UID must belong to the case and every role be known; after the change, no two series of
    the case may share a hanging role (sagittal T2, sagittal T1, axial T2). Reads and masks refer to
    series by UID, so they stay attached to their series whatever its role."""
    if not isinstance(roles, dict) or not roles:
        raise ApplicationError("Give at least one series and its role.")
    by_uid = {cs.series.series_instance_uid: cs for cs in case.case_series.select_related("series").select_for_update(of=("self",))}
    unknown = sorted(str(uid) for uid in roles if uid not in by_uid)
    if unknown:
        raise ApplicationError(f"Not a series of case {case.label}: {', '.join(unknown)}")
    bad = sorted(f"{role!r}" for role in roles.values() if role not in CaseSeries.Role.values)
    if bad:
        raise ApplicationError(f"Unknown series role {', '.join(bad)}; use one of {', '.join(CaseSeries.Role.values)}")
    after = {uid: roles.get(uid, cs.role) for uid, cs in by_uid.items()}
    for role in HANGING_ROLES:
        holders = sorted(uid for uid, given in after.items() if given == role)
        if len(holders) > 1:
            raise ApplicationError(f"Only one series of a case can be {CaseSeries.Role(role).label}; {len(holders)} would be.")
    changed = []
    for uid, new_role in roles.items():
        case_series = by_uid[uid]
        if case_series.role != new_role:
            changes = {"series_instance_uid": uid, "from": case_series.role, "to": new_role}
            case_series.role = new_role
            case_series.save(update_fields=["role", "modified"])
            audit_of(case, actor=actor, action="case.series_role", details=changes)
            changed.append(case_series)
    return changed


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
        if result.new_series_ids:  # instances added to known series: nothing to queue (saves a savepoint per STOW)
            inference_jobs_request(series_ids=list(result.new_series_ids))
    return result

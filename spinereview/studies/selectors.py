"""Reads of reader-study data, scoped by what the user may see. Blinding lives here, once."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Exists, F, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from spinereview.accounts.models import User
from spinereview.ai.models import AILevelMeasurement, AISegmentation
from spinereview.ai.selectors import ai_condition_grade, ai_graded_conditions, model_version_for_case
from spinereview.core.errors import NotFoundError, PermissionDeniedError
from spinereview.imaging.models import DicomSeries
from spinereview.imaging.selectors import series_orientation
from spinereview.studies.models import (
    Assignment,
    Case,
    CaseSeries,
    LevelDelta,
    ReaderStudy,
    ReadVersion,
    SegmentationVersion,
    StudyMembership,
)


def _calibration_pending(*, reader: Any, reader_study: Any) -> QuerySet[Assignment]:
    """The reader's calibration assignments in the study that are not submitted yet (either may be an OuterRef)."""
    return Assignment.objects.filter(reader=reader, case__reader_study=reader_study, kind=Assignment.Kind.CALIBRATION).exclude(
        read_versions__submitted=True
    )


def assignment_list(*, user: User) -> QuerySet[Assignment]:
    """A reader's own worklist (never anyone else's assignments), in the reader's randomised order.

    Washout re-reads appear only once their interval has passed; in studies that require calibration,
    live and washout cases appear only after the reader has submitted every calibration case.
    ``_in_worklist`` is the same rule for one assignment already fetched.
    """
    calibration_pending = _calibration_pending(reader=OuterRef("reader"), reader_study=OuterRef("case__reader_study"))
    return (
        Assignment.objects.filter(reader=user)
        .filter(Q(available_from__isnull=True) | Q(available_from__lte=timezone.now()))
        .exclude(Q(case__reader_study__calibration_required=True) & ~Q(kind=Assignment.Kind.CALIBRATION) & Exists(calibration_pending))
        .select_related("case__reader_study", "case__dicom_study")
        .prefetch_related(Prefetch("read_versions", queryset=ReadVersion.objects.order_by("-version")))
        .order_by("case__reader_study__name", "order", "case__label")
    )


def _in_worklist(assignment: Assignment, *, user: User) -> bool:
    """``assignment_list``'s rule for one assignment (its case and study loaded): the reader's own, available
    now, and not held back by unsubmitted calibration cases (a query only in studies that require them)."""
    if assignment.reader_id != user.pk:
        return False
    if assignment.available_from is not None and assignment.available_from > timezone.now():
        return False
    study = assignment.case.reader_study
    if study.calibration_required and assignment.kind != Assignment.Kind.CALIBRATION:
        return not _calibration_pending(reader=user, reader_study=study).exists()
    return True


def assignment_get(*, user: User, assignment_id: uuid.UUID | str) -> Assignment:
    try:
        return assignment_list(user=user).prefetch_related("case__case_series__series").get(pk=assignment_id)
    except (Assignment.DoesNotExist, ValueError, ValidationError):  # ValidationError: not a UUID
        raise NotFoundError("No such assignment in your worklist") from None


HANGING_START = {"sagittal_t2": "middle", "sagittal_t1": "middle", "axial_t2": "first"}
"""The series roles the reading page hangs, and the slice each opens on (frontend/src/viewer/hanging.ts)."""


@dataclass(frozen=True)
class HungSeriesPreload:
    """What the reading page has the browser fetch while it parses the HTML, for one hung series."""

    role: str
    series_instance_uid: str
    description: str
    metadata_url: str
    frame_url: str | None
    """The frame of the slice the viewer opens the series on (its preview); None when the slices' order
    in space is not known here (a slice without a position: the viewer then orders by InstanceNumber)."""


def reading_page_preloads(*, assignment: Assignment, dicomweb_base: str = "/dicomweb") -> list[HungSeriesPreload]:
    """The hung series' metadata and shown-slice frame URLs of an assignment fetched with ``assignment_get``.
    The shown slice is the viewer's (frontend/src/viewer/geometry.ts, sortImageIdsBySliceNormal and
    middleSliceIndex): slices in order along the normal, the middle one (the lower for an even count) or the
    first; a wrong guess costs one unused request, never a wrong image (the viewer fetches its own choice)."""
    study_uid = assignment.case.dicom_study.study_instance_uid
    preloads = []
    for case_series in assignment.case.case_series.all():
        start = HANGING_START.get(case_series.role)
        if start is None:
            continue
        series = case_series.series
        base = f"{dicomweb_base}/studies/{study_uid}/series/{series.series_instance_uid}"
        slices = list(series.instances.order_by("slice_position_mm", "instance_number").values_list("sop_instance_uid", "slice_position_mm"))
        frame_url = None
        if slices and all(position is not None for _, position in slices):
            index = 0 if start == "first" else (len(slices) - 1) // 2
            frame_url = f"{base}/instances/{slices[index][0]}/frames/1"
        preloads.append(
            HungSeriesPreload(
                role=case_series.role,
                series_instance_uid=series.series_instance_uid,
                description=series.series_description,
                metadata_url=f"{base}/metadata",
                frame_url=frame_url,
            )
        )
    return preloads


def reading_page_boot_plan(*, assignment: Assignment, preloads: list[HungSeriesPreload]) -> dict[str, object]:
    """What the reading page's boot needs to draw its previews (frontend/src/boot.ts, ``BootPlan``), in the page
    itself: the case label, the study and the hung series. The previews then start when the entry script runs,
    not when the assignment's API response (the page's slowest request) arrives."""
    return {
        "case_label": assignment.case.label,
        "study_instance_uid": assignment.case.dicom_study.study_instance_uid,
        "series": [{"role": p.role, "series_instance_uid": p.series_instance_uid, "description": p.description} for p in preloads],
    }


def assignment_for_write(*, user: User, assignment_id: uuid.UUID | str) -> Assignment:
    """``assignment_get`` for the save paths, which run on every autosave: the row by its key with its case and
    study, checked with ``_in_worklist`` (the worklist query, mostly Django compiling its calibration subquery,
    took about 4 of a grades save's 15 ms; this lookup about 1), without the prefetches a page needs; the save
    services lock the row and read what they need themselves."""
    try:
        assignment = Assignment.objects.select_related("case__reader_study", "case__dicom_study").get(pk=assignment_id, reader=user)
    except (Assignment.DoesNotExist, ValueError, ValidationError):  # ValidationError: not a UUID
        raise NotFoundError("No such assignment in your worklist") from None
    if not _in_worklist(assignment, user=user):
        raise NotFoundError("No such assignment in your worklist")
    return assignment


def read_current(*, assignment: Assignment) -> ReadVersion | None:
    return assignment.read_versions.order_by("-version").prefetch_related("grades", "measurements").first()


def reads_previous(*, assignment: Assignment, current: ReadVersion | None) -> list[ReadVersion]:
    """The reader's own locked reads of earlier phases than ``current`` (the unaided read while reading AI-aided)."""
    if current is None:
        return []
    return list(
        assignment.read_versions.filter(submitted=True).exclude(phase=current.phase).order_by("version").prefetch_related("grades", "measurements")
    )


def phase_after(latest: ReadVersion | None, *, two_phase: bool) -> str:
    """The phase an assignment is in, given its newest read version:
    unaided -> (submit) -> aided, in two-phase studies -> (submit) -> done."""
    if latest is None:
        return ReadVersion.Phase.UNAIDED
    if not latest.submitted:
        return latest.phase
    if latest.phase == ReadVersion.Phase.UNAIDED and two_phase:
        return ReadVersion.Phase.AIDED
    return "done"


def status_after(latest: ReadVersion | None, phase: str) -> str:
    if latest is None:
        return "not_started"
    return "submitted" if phase == "done" else "in_progress"


def assignment_phase(*, assignment: Assignment) -> str:
    latest = assignment.read_versions.order_by("-version").first()
    return phase_after(latest, two_phase=bool(assignment.case.reader_study.protocol.get("two_phase")))


def assignment_status(*, assignment: Assignment) -> str:
    latest = assignment.read_versions.order_by("-version").first()
    return status_after(latest, phase_after(latest, two_phase=bool(assignment.case.reader_study.protocol.get("two_phase"))))


def ai_visible_to_reader(*, assignment: Assignment) -> bool:
    """Whether the protocol lets this reader see the AI output now."""
    visibility = assignment.case.reader_study.ai_visibility
    if visibility == ReaderStudy.AiVisibility.ALWAYS:
        return True
    if visibility == ReaderStudy.AiVisibility.AFTER_SUBMIT:
        return assignment.read_versions.filter(submitted=True, phase=ReadVersion.Phase.UNAIDED).exists()
    return False


def ai_segmentation_for_reader(*, assignment: Assignment, series_id: uuid.UUID) -> AISegmentation | None:
    """The newest AI segmentation of a case's series by the active model, if the reader may see it."""
    if not ai_visible_to_reader(assignment=assignment):
        return None
    return (
        AISegmentation.objects.filter(series_id=series_id, model_version=model_version_for_case(case=assignment.case))
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


def user_leads(*, user: User, reader_study: ReaderStudy) -> bool:
    """Study leads (and staff) manage a study: its protocol, members, cases and assignments."""
    return bool(user.is_staff) or StudyMembership.objects.filter(reader_study=reader_study, user=user, role=StudyMembership.Role.LEAD).exists()


def reader_studies_supervised(*, user: User) -> QuerySet[ReaderStudy]:
    """Studies whose results the user may see: as lead or adjudicator (staff: all)."""
    if user.is_staff:
        return ReaderStudy.objects.all()
    return ReaderStudy.objects.filter(
        memberships__user=user, memberships__role__in=[StudyMembership.Role.LEAD, StudyMembership.Role.ADJUDICATOR]
    ).distinct()


def segmentations_latest(*, assignment: Assignment) -> list[SegmentationVersion]:
    """The reader's newest mask version of each series of the case."""
    latest: dict[uuid.UUID, SegmentationVersion] = {}
    for version in assignment.segmentation_versions.select_related("series", "assignment__case__reader_study").order_by("version"):
        latest[version.series_id] = version
    return list(latest.values())


def segmentation_latest(*, assignment: Assignment, series_instance_uid: str) -> SegmentationVersion:
    version = assignment.segmentation_versions.filter(series__series_instance_uid=series_instance_uid).order_by("-version").first()
    if version is None:
        raise NotFoundError("You have no mask of this series yet")
    return version


def _compare_value(reader: float | None, ai: float | None) -> dict[str, float | None]:
    delta = round(reader - ai, 2) if reader is not None and ai is not None else None
    return {"reader": reader, "ai": ai, "delta": delta}


MUSCLE_QUANTITIES = ("muscle_csa_left_mm2", "muscle_csa_right_mm2", "muscle_fat_fraction_left_percent", "muscle_fat_fraction_right_percent")


def _level_deltas(masks: list[SegmentationVersion], model_version: Any) -> dict[tuple[str, str], LevelDelta]:
    """The stored reader-mask-minus-AI deltas of the reader's newest masks, by (level, quantity)."""
    if model_version is None or not masks:
        return {}
    return {(d.level, d.quantity): d for d in LevelDelta.objects.filter(segmentation_version__in=masks, model_version=model_version)}


def _reader_vs_ai(deltas: dict[tuple[str, str], LevelDelta], level: str, quantity: str, manual: float | None, ai: float | None) -> dict[str, float | None]:
    """The reader's own measurement where they made one, against the AI's value; else their mask's stored delta."""
    if manual is not None:
        return _compare_value(manual, ai)
    stored = deltas.get((level, quantity))
    if stored is not None:
        return {"reader": stored.reader_value, "ai": stored.ai_value, "delta": stored.delta}
    return _compare_value(None, ai)


def assignment_compare(*, assignment: Assignment) -> dict[str, Any]:
    """The reader's work next to the AI's: Dice per structure of their masks, and per level the DSCA,
    AP diameter and disc height (reader's measurements or mask vs the AI's) and the grades. Refused while
    the AI is hidden from this reader, or when the protocol has no compare view."""
    from spinereview.agreement import dice_score
    from spinereview.studies.services.segmentations import segmentation_labels_load

    protocol = assignment.case.reader_study.protocol
    if not protocol.get("compare"):
        raise PermissionDeniedError("This study's protocol has no compare view")
    if not ai_visible_to_reader(assignment=assignment):
        raise PermissionDeniedError("The AI is hidden until your unaided read is submitted")
    structures = []
    model_version = None
    masks = segmentations_latest(assignment=assignment)
    for version in masks:
        ai = ai_segmentation_for_reader(assignment=assignment, series_id=version.series_id)
        if ai is None:
            continue
        model_version = ai.model_version.version
        reader_labels = segmentation_labels_load(version)
        ai_labels = np.load(Path(settings.MEDIA_ROOT) / ai.file_path)
        ai_value_by_name = {name: int(value) for value, name in ai.label_map.items()}
        for label in protocol["segmentation"]["labels"]:
            mine = reader_labels == label["value"]
            theirs = ai_labels == ai_value_by_name.get(label["name"], -1)
            both_empty = not mine.any() and not theirs.any()
            structures.append(
                {
                    "series_instance_uid": version.series.series_instance_uid,
                    "label": label["value"],
                    "name": label["name"],
                    "dice": None if both_empty else round(dice_score(mine, theirs), 4),
                    "reader_voxels": int(mine.sum()),
                    "ai_voxels": int(theirs.sum()),
                }
            )
    read = read_current(assignment=assignment)
    measured: dict[tuple[str, str], dict[str, float]] = {}
    for m in read.measurements.all() if read else []:
        measured[(m.key, m.level)] = m.values
    deltas = _level_deltas(masks, model_version_for_case(case=assignment.case))
    mask_methods = {row["level"]: row.get("muscle_fat_method", "") for v in masks for row in v.level_measurements if "muscle_fat_method" in row}
    case_model = model_version_for_case(case=assignment.case)
    ai_rows = {row.level: row for row in AILevelMeasurement.objects.filter(dicom_study=assignment.case.dicom_study, model_version=case_model)}
    if model_version is None and ai_rows and case_model is not None:
        model_version = case_model.version
    ai_graded = set(ai_graded_conditions(protocol))
    reader_grades = {(g.level, g.condition): g.value for g in read.grades.all()} if read else {}
    levels = []
    for level in protocol["levels"]:
        row = ai_rows.get(level)
        ai_dsca = row.dsca_mm2 if row is not None and not row.flag else None
        grades = []
        for condition in protocol["conditions"]:
            reader_value = reader_grades.get((level, condition["key"]))
            ai_value = None
            if condition["key"] in ai_graded and row is not None and case_model is not None:
                ai_value, _ = ai_condition_grade(row, protocol=protocol, condition=condition["key"], model_version=case_model)
            differs = None if reader_value is None or ai_value is None else reader_value != ai_value
            grades.append({"condition": condition["key"], "reader": reader_value, "ai": ai_value, "differs": differs})
        levels.append(
            {
                "level": level,
                "dsca_mm2": _reader_vs_ai(deltas, level, "dsca_mm2", measured.get(("dsca", level), {}).get("area_mm2"), ai_dsca),
                "ap_diameter_mm": _reader_vs_ai(deltas, level, "ap_diameter_mm", measured.get(("ap_diameter", level), {}).get("length_mm"), row.ap_diameter_mm if row is not None else None),
                "disc_height_mm": _reader_vs_ai(deltas, level, "disc_height_middle_mm", measured.get(("disc_height", level), {}).get("middle_mm"), row.disc_height_middle_mm if row is not None else None),
                **{q: _reader_vs_ai(deltas, level, q, None, getattr(row, q) if row is not None else None) for q in MUSCLE_QUANTITIES},
                "muscle_fat_method": {"reader": mask_methods.get(level, ""), "ai": row.muscle_fat_method if row is not None else ""},
                "grades": grades,
            }
        )
    return {"model_version": model_version, "structures": structures, "levels": levels}


def study_progress(*, reader_study: ReaderStudy) -> list[dict[str, Any]]:
    """Per reader and assignment kind: assigned, started, submitted, and median reading time per case."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    assignments = Assignment.objects.filter(case__reader_study=reader_study).select_related("reader", "case__reader_study").prefetch_related(
        Prefetch("read_versions", queryset=ReadVersion.objects.order_by("version"))
    )
    for assignment in assignments:
        row = rows.setdefault(
            (assignment.reader.username, assignment.kind),
            {"reader": assignment.reader.username, "kind": assignment.kind, "assigned": 0, "started": 0, "submitted": 0, "times_s": []},
        )
        row["assigned"] += 1
        versions = list(assignment.read_versions.all())
        if versions:
            row["started"] += 1
        two_phase = bool(assignment.case.reader_study.protocol.get("two_phase"))
        if versions and phase_after(versions[-1], two_phase=two_phase) == "done":
            row["submitted"] += 1
            elapsed = sum(v.elapsed_s for v in versions if v.submitted)
            if elapsed > 0:  # reads made outside the viewer (imported, simulated) carry no reading time
                row["times_s"].append(elapsed)
    result = []
    for key in sorted(rows):
        row = rows[key]
        times = row.pop("times_s")
        row["median_reading_time_s"] = float(np.median(times)) if times else None
        result.append(row)
    return result


def case_for_supervisor(*, user: User, case_id: uuid.UUID | str) -> Case:
    """A case of a study the user leads or adjudicates; anyone else gets "not found"."""
    try:
        return Case.objects.select_related("reader_study", "dicom_study").get(
            pk=case_id, reader_study__in=reader_studies_supervised(user=user)
        )
    except (Case.DoesNotExist, ValueError, ValidationError):
        raise NotFoundError("No such case among the studies you supervise") from None


def case_reads_for_supervisor(*, user: User, case_id: uuid.UUID | str) -> tuple[Case, list[ReadVersion]]:
    """Every reader's submitted reads of a case, for the study's adjudicators and leads only."""
    case = case_for_supervisor(user=user, case_id=case_id)
    reads = list(
        ReadVersion.objects.filter(assignment__case=case, submitted=True)
        .select_related("assignment__reader")
        .prefetch_related("grades", "measurements")
        .order_by("assignment__reader__username", "version")
    )
    return case, reads


# Roles the reading workspace hangs in a viewport: at most one series of a case holds each.
HANGING_ROLES = (CaseSeries.Role.SAGITTAL_T2, CaseSeries.Role.SAGITTAL_T1, CaseSeries.Role.AXIAL_T2)
_T1_IN_DESCRIPTION = re.compile(r"t1(?!\d)", re.IGNORECASE)
_T2_IN_DESCRIPTION = re.compile(r"t2(?!\d)|stir", re.IGNORECASE)


def _first_number(dicom_json: dict[str, Any], tag: str) -> float | None:
    values = dicom_json.get(tag, {}).get("Value") or []
    try:
        return float(values[0])
    except (IndexError, TypeError, ValueError):
        return None


def series_weighting(*, series: DicomSeries) -> str | None:
    """ "T1" or "T2" from the echo and repetition times (TE < 30 ms with TR < 1000 ms is T1-weighted,
    TE >= 60 ms with TR >= 1500 ms T2-weighted), else from the series description, else None."""
    first = series.instances.order_by("instance_number").first()
    attributes = first.dicom_json if first is not None else {}
    echo_ms, repetition_ms = _first_number(attributes, "00180081"), _first_number(attributes, "00180080")
    if echo_ms is not None and repetition_ms is not None:
        if echo_ms < 30 and repetition_ms < 1000:
            return "T1"
        if echo_ms >= 60 and repetition_ms >= 1500:
            return "T2"
    t1, t2 = bool(_T1_IN_DESCRIPTION.search(series.series_description)), bool(_T2_IN_DESCRIPTION.search(series.series_description))
    if t1 != t2:
        return "T1" if t1 else "T2"
    return None


def series_role_suggest(*, series: DicomSeries) -> str:
    """The hanging role a series would take from its slice orientation and weighting; a series that
    is neither sagittal T1/T2 nor axial T2 (coronal, axial T1, no geometry) is "other"."""
    orientation = series_orientation(series=series)
    weighting = series_weighting(series=series)
    if orientation == "sagittal":
        return CaseSeries.Role.SAGITTAL_T1 if weighting == "T1" else CaseSeries.Role.SAGITTAL_T2
    if orientation == "axial" and weighting != "T1":
        return CaseSeries.Role.AXIAL_T2
    return CaseSeries.Role.OTHER


def case_series_list(*, case: Case) -> list[dict[str, Any]]:
    """A case's series with what a lead needs to check their roles: orientation, weighting, size and
    the role the import would suggest."""
    rows = []
    for case_series in case.case_series.select_related("series").order_by(
        F("series__series_number").asc(nulls_last=True), "series__series_instance_uid"
    ):
        series = case_series.series
        rows.append(
            {
                "series_instance_uid": series.series_instance_uid,
                "series_number": series.series_number,
                "description": series.series_description,
                "modality": series.modality,
                "num_instances": series.instances.count(),
                "orientation": series_orientation(series=series),
                "weighting": series_weighting(series=series),
                "role": case_series.role,
                "role_label": CaseSeries.Role(case_series.role).label,
                "suggested_role": series_role_suggest(series=series),
            }
        )
    return rows

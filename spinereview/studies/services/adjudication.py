"""Disagreements, reference reads and consensus masks.

Readers' submitted reads of a case are compared item by item; a disagreement beyond the protocol's
threshold (grade distance in categories of the fixed ordinal scale, or DSCA difference in mm2) opens an
adjudication task. The adjudicator sees every read and records the reference; majority vote gives an
automatic reference; STAPLE and majority voting give consensus masks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from django.db import transaction

from spinereview.accounts.models import User
from spinereview.core.errors import ApplicationError, PermissionDeniedError
from spinereview.studies.models import (
    AdjudicationTask,
    Assignment,
    Case,
    ReaderStudy,
    ReadVersion,
    ReferenceRead,
    SegmentationVersion,
    StudyMembership,
)
from spinereview.studies.protocols import condition_categories
from spinereview.studies.services.assignments import reference_version_next
from spinereview.studies.services.audit import audit_of
from spinereview.studies.services.reads import grades_validate
from spinereview.studies.services.segmentations import segmentation_labels_load


def submitted_reads(*, case: Case, phase: str = ReadVersion.Phase.UNAIDED) -> dict[str, ReadVersion]:
    """Each reader's submitted read of the case in one phase (live assignments only), by username."""
    reads: dict[str, ReadVersion] = {}
    versions = (
        ReadVersion.objects.filter(assignment__case=case, assignment__kind=Assignment.Kind.LIVE, submitted=True, phase=phase)
        .select_related("assignment__reader")
        .prefetch_related("grades", "measurements")
        .order_by("version")
    )
    for version in versions:
        reads[version.assignment.reader.username] = version
    return reads


def _disagreements(case: Case, reads: dict[str, ReadVersion]) -> list[tuple[str, str, str]]:
    protocol = case.reader_study.protocol
    thresholds = protocol.get("adjudication") or {"grade_distance": 1, "dsca_difference_mm2": 20.0}
    found = []
    for condition in protocol["conditions"]:
        order = {code: i for i, code in enumerate(condition_categories(protocol, condition["key"]))}
        for level in protocol["levels"]:
            values = [g.value for r in reads.values() for g in r.grades.all() if g.level == level and g.condition == condition["key"]]
            indices = [order[v] for v in values if v in order]
            if len(indices) >= 2 and max(indices) - min(indices) >= thresholds["grade_distance"]:
                distance = max(indices) - min(indices)
                found.append((level, condition["key"], f"grades {', '.join(sorted(set(values), key=order.__getitem__))} differ by {distance} categor{'y' if distance == 1 else 'ies'}"))
    for level in protocol["levels"]:
        areas = [m.values["area_mm2"] for r in reads.values() for m in r.measurements.all() if m.key == "dsca" and m.level == level]
        if len(areas) >= 2 and max(areas) - min(areas) >= thresholds["dsca_difference_mm2"]:
            found.append((level, "dsca", f"DSCA {min(areas):.1f}-{max(areas):.1f} mm2 differs by {max(areas) - min(areas):.1f} mm2"))
    return found


@transaction.atomic
def adjudication_tasks_open(*, reader_study: ReaderStudy, actor: str = "system") -> list[AdjudicationTask]:
    """Open a task for every new disagreement among the readers' unaided reads; existing tasks are kept."""
    opened = []
    for case in reader_study.cases.filter(is_calibration=False).order_by("label"):
        reads = submitted_reads(case=case)
        for level, item, reason in _disagreements(case, reads):
            task, created = AdjudicationTask.objects.get_or_create(case=case, level=level, item=item, defaults={"reason": reason})
            if created:
                opened.append(task)
    if opened:
        audit_of(reader_study, actor=actor, action="adjudication.open", details={"tasks": [[t.case.label, t.level, t.item] for t in opened]})
    return opened


def _require_adjudicator(user: User, reader_study: ReaderStudy) -> None:
    if user.is_staff:
        return
    if not StudyMembership.objects.filter(reader_study=reader_study, user=user, role__in=[StudyMembership.Role.ADJUDICATOR, StudyMembership.Role.LEAD]).exists():
        raise PermissionDeniedError("Only the study's adjudicators and leads record reference reads")


@transaction.atomic
def reference_read_record(*, case: Case, user: User, grades: Sequence[dict[str, Any]], note: str = "") -> ReferenceRead:
    """The adjudicator's reference read of a case (a new version); resolves the case's open tasks whose
    item the reference answers."""
    _require_adjudicator(user, case.reader_study)
    cleaned = grades_validate(case.reader_study.protocol, grades)
    reference = ReferenceRead.objects.create(
        case=case,
        source=ReferenceRead.Source.ADJUDICATED,
        version=reference_version_next(case, ReferenceRead.Source.ADJUDICATED),
        grades=[{"level": lv, "condition": cd, "value": vl} for lv, cd, vl in cleaned],
        created_by=user,
        note=note,
    )
    answered = {(lv, cd) for lv, cd, _ in cleaned}
    resolved = []
    for task in AdjudicationTask.objects.filter(case=case, status=AdjudicationTask.Status.OPEN):
        if (task.level, task.item) in answered or task.item == "dsca":
            task.status, task.resolved_by, task.resolution = AdjudicationTask.Status.RESOLVED, user, reference
            task.save(update_fields=["status", "resolved_by", "resolution", "modified"])
            resolved.append([task.level, task.item])
    audit_of(case, actor=user.username, action="reference.record", details={"version": reference.version, "grades": reference.grades, "resolved": resolved})
    return reference


def majority_grades(*, case: Case, phase: str = ReadVersion.Phase.UNAIDED) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """Per item, the grade more than half of the readers gave; items without a strict majority (ties,
    fewer than two reads) are returned separately, never guessed."""
    reads = submitted_reads(case=case, phase=phase)
    votes: dict[tuple[str, str], Counter[str]] = {}
    for read in reads.values():
        for grade in read.grades.all():
            votes.setdefault((grade.level, grade.condition), Counter())[grade.value] += 1
    decided, undecided = [], []
    for (level, condition), counter in sorted(votes.items()):
        total = sum(counter.values())
        value, count = counter.most_common(1)[0]
        if total >= 2 and count * 2 > total:
            decided.append({"level": level, "condition": condition, "value": value})
        else:
            undecided.append({"level": level, "condition": condition, "votes": dict(counter)})
    return decided, undecided


@transaction.atomic
def majority_reference_create(*, case: Case, actor: str = "system") -> ReferenceRead:
    grades, undecided = majority_grades(case=case)
    if not grades:
        raise ApplicationError("No item has a majority among the submitted reads")
    reference = ReferenceRead.objects.create(
        case=case,
        source=ReferenceRead.Source.MAJORITY,
        version=reference_version_next(case, ReferenceRead.Source.MAJORITY),
        grades=grades,
        note=f"{len(undecided)} item(s) without a majority left out" if undecided else "",
    )
    audit_of(case, actor=actor, action="reference.majority", details={"version": reference.version, "undecided": undecided})
    return reference


def consensus_mask(*, case: Case, series_instance_uid: str, method: str) -> tuple[np.ndarray, list[str]]:
    """A consensus labelmap of the readers' latest masks of one series: per label, STAPLE (Warfield et al.,
    IEEE TMI 2004;23:903-21; SimpleITK's STAPLEImageFilter, voxel in the consensus where its probability
    >= 0.5) or majority voting (strictly more than half of the readers). Returns the labelmap and the
    readers whose masks went in."""
    if method not in ("staple", "majority"):
        raise ApplicationError("method must be staple or majority")
    latest: dict[str, SegmentationVersion] = {}
    for version in (
        SegmentationVersion.objects.filter(assignment__case=case, assignment__kind=Assignment.Kind.LIVE, series__series_instance_uid=series_instance_uid)
        .select_related("assignment__reader")
        .order_by("version")
    ):
        latest[version.assignment.reader.username] = version
    if len(latest) < 2:
        raise ApplicationError(f"A consensus needs masks from at least two readers; this series has {len(latest)}")
    readers = sorted(latest)
    masks = np.stack([segmentation_labels_load(latest[r]) for r in readers])
    labels = [label["value"] for label in case.reader_study.protocol["segmentation"]["labels"]]
    consensus = np.zeros(masks.shape[1:], dtype=np.uint8)
    for value in labels:
        binary = masks == value
        chosen = binary.sum(axis=0) * 2 > len(readers) if method == "majority" else _staple(binary) >= 0.5
        consensus[chosen & (consensus == 0)] = value
    return consensus, readers


def _staple(binary_masks: np.ndarray) -> np.ndarray:
    import SimpleITK as sitk

    images = [sitk.GetImageFromArray(mask.astype(np.uint8)) for mask in binary_masks]
    if not any(mask.any() for mask in binary_masks):
        return np.zeros(binary_masks.shape[1:], dtype=np.float64)
    staple = sitk.STAPLEImageFilter()
    staple.SetForegroundValue(1)
    probability = staple.Execute(images)
    return np.asarray(sitk.GetArrayFromImage(probability), dtype=np.float64)

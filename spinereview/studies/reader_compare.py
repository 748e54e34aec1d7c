"""Reader vs reader, for a study's adjudicators and leads: two readers' reads and masks of one case side by side.

Selectors only (reads): Dice per structure of the two readers' newest masks, per-level DSCA, AP diameter
and disc height of each (the reader's own measurement, else their mask's), and the grade differences.
Anyone who neither leads nor adjudicates the study gets "not found", as for the case's reads.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from spinereview.accounts.models import User
from spinereview.core.errors import ApplicationError, NotFoundError
from spinereview.studies.models import Assignment, Case, ReadVersion, SegmentationVersion
from spinereview.studies.selectors import case_for_supervisor, segmentations_latest

# (quantity in the payload, manual measurement key, its value key, the mask rows' key)
LEVEL_QUANTITIES = (
    ("dsca_mm2", "dsca", "area_mm2", "dsca_mm2"),
    ("ap_diameter_mm", "ap_diameter", "length_mm", "ap_diameter_mm"),
    ("disc_height_mm", "disc_height", "middle_mm", "disc_height_middle_mm"),
)


@dataclass(frozen=True)
class ReaderWork:
    """One reader's live assignment of the case, their newest submitted read and newest masks."""

    assignment: Assignment
    read: ReadVersion
    masks: list[SegmentationVersion]

    @property
    def username(self) -> str:
        return str(self.assignment.reader.username)


def case_readers_submitted(*, case: Case) -> list[str]:
    """Usernames of the readers with a submitted live read of the case, sorted."""
    return sorted(
        set(
            ReadVersion.objects.filter(assignment__case=case, assignment__kind=Assignment.Kind.LIVE, submitted=True).values_list(
                "assignment__reader__username", flat=True
            )
        )
    )


def _reader_work(case: Case, username: str) -> ReaderWork:
    assignment = (
        Assignment.objects.filter(case=case, kind=Assignment.Kind.LIVE, reader__username=username)
        .select_related("reader", "case__reader_study")
        .first()
    )
    read = (
        ReadVersion.objects.filter(assignment=assignment, submitted=True)
        .prefetch_related("grades", "measurements")
        .order_by("-version")
        .first()
        if assignment is not None
        else None
    )
    if assignment is None or read is None:
        raise NotFoundError(f"{username!r} has no submitted read of this case")
    return ReaderWork(assignment=assignment, read=read, masks=segmentations_latest(assignment=assignment))


def _dice(a: Any, b: Any) -> float | None:
    from spinereview.agreement import dice_score

    if not a.any() and not b.any():
        return None
    return round(float(dice_score(a, b)), 4)


def _values(work: ReaderWork, level: str) -> dict[str, tuple[float | None, str]]:
    """Per quantity: the reader's value at the level and where it comes from ("measured", "mask" or "")."""
    manual = {(m.key, m.level): m.values for m in work.read.measurements.all()}
    mask_rows = [row for version in work.masks for row in version.level_measurements if row.get("level") == level]
    out: dict[str, tuple[float | None, str]] = {}
    for quantity, key, value_key, mask_key in LEVEL_QUANTITIES:
        value = manual.get((key, level), {}).get(value_key)
        if value is not None:
            out[quantity] = (float(value), "measured")
            continue
        from_mask = next((row[mask_key] for row in mask_rows if row.get(mask_key) is not None), None)
        out[quantity] = (float(from_mask), "mask") if from_mask is not None else (None, "")
    return out


def readers_compare(*, user: User, case_id: uuid.UUID | str, reader_a: str, reader_b: str) -> dict[str, Any]:
    """Reader A against reader B on one case (B minus A in every delta), for the study's supervisors."""
    from spinereview.studies.services.segmentations import segmentation_labels_load

    case = case_for_supervisor(user=user, case_id=case_id)
    if not reader_a or not reader_b:
        raise ApplicationError("Name two readers to compare (reader_a and reader_b)")
    if reader_a == reader_b:
        raise ApplicationError("Pick two different readers")
    a, b = _reader_work(case, reader_a), _reader_work(case, reader_b)
    protocol = case.reader_study.protocol

    structures = []
    series = []
    masks_b = {v.series_id: v for v in b.masks}
    for mask_a in a.masks:
        mask_b = masks_b.get(mask_a.series_id)
        if mask_b is None:
            continue
        labels_a, labels_b = segmentation_labels_load(mask_a), segmentation_labels_load(mask_b)
        if labels_a.shape != labels_b.shape:
            raise ApplicationError(
                f"The readers' masks of series {mask_a.series.series_instance_uid} differ in shape ({labels_a.shape} vs {labels_b.shape})"
            )
        series.append(
            {
                "series_instance_uid": mask_a.series.series_instance_uid,
                "version_a": mask_a.version,
                "version_b": mask_b.version,
                "shape": list(labels_a.shape),
            }
        )
        for label in (protocol.get("segmentation") or {}).get("labels", []):
            in_a, in_b = labels_a == label["value"], labels_b == label["value"]
            structures.append(
                {
                    "series_instance_uid": mask_a.series.series_instance_uid,
                    "label": label["value"],
                    "name": label["name"],
                    "dice": _dice(in_a, in_b),
                    "a_voxels": int(in_a.sum()),
                    "b_voxels": int(in_b.sum()),
                    "only_a_voxels": int((in_a & ~in_b).sum()),
                    "only_b_voxels": int((in_b & ~in_a).sum()),
                }
            )

    grades_a = {(g.level, g.condition): g.value for g in a.read.grades.all()}
    grades_b = {(g.level, g.condition): g.value for g in b.read.grades.all()}
    conditions = [c["key"] for c in protocol["conditions"]] + [q["key"] for c in protocol["conditions"] for q in c.get("sub_questions", [])]
    levels = []
    for level in protocol["levels"]:
        values_a, values_b = _values(a, level), _values(b, level)
        row: dict[str, Any] = {"level": level}
        for quantity, *_ in LEVEL_QUANTITIES:
            (va, source_a), (vb, source_b) = values_a[quantity], values_b[quantity]
            row[quantity] = {
                "a": va,
                "b": vb,
                "delta": round(vb - va, 2) if va is not None and vb is not None else None,
                "source_a": source_a,
                "source_b": source_b,
            }
        grades = []
        for condition in conditions:
            ga, gb = grades_a.get((level, condition)), grades_b.get((level, condition))
            if ga is None and gb is None and condition not in [c["key"] for c in protocol["conditions"]]:
                continue  # a sub-question neither reader was asked
            grades.append({"condition": condition, "a": ga, "b": gb, "differs": None if ga is None or gb is None else ga != gb})
        row["grades"] = grades
        levels.append(row)
    return {
        "case": {"id": str(case.pk), "label": case.label, "reader_study": case.reader_study.slug},
        "readers": case_readers_submitted(case=case),
        "reader_a": {"username": a.username, "read_version": a.read.version, "phase": a.read.phase},
        "reader_b": {"username": b.username, "read_version": b.read.version, "phase": b.read.phase},
        "labels": [
            {"value": label["value"], "name": label["name"], "label": label.get("label", label["name"]), "color": label.get("color")}
            for label in (protocol.get("segmentation") or {}).get("labels", [])
        ],
        "series": series,
        "structures": structures,
        "levels": levels,
        "grade_differences": sum(1 for row in levels for g in row["grades"] if g["differs"]),
    }


def reader_mask_for_supervisor(*, user: User, case_id: uuid.UUID | str, reader: str, series_instance_uid: str) -> SegmentationVersion:
    """A reader's newest mask of a series of the case (with a submitted read), for the study's supervisors."""
    case = case_for_supervisor(user=user, case_id=case_id)
    work = _reader_work(case, reader)
    for version in work.masks:
        if version.series.series_instance_uid == series_instance_uid:
            return version
    raise NotFoundError(f"{reader!r} has no mask of this series")

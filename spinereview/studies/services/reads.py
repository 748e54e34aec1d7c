"""Versioned reads: every save of grades and measurements is a new version; submit locks a phase."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from django.db import transaction

from spinereview.accounts.models import User
from spinereview.core.errors import ApplicationError, ConflictError, PermissionDeniedError, PreconditionFailedError
from spinereview.studies.measurement_values import measurement_values
from spinereview.studies.models import Assignment, Grade, Measurement, ReadVersion
from spinereview.studies.protocols import condition_categories, missing_items, sub_question_parent
from spinereview.studies.selectors import phase_after
from spinereview.studies.services.audit import audit_of

MAX_MEASUREMENTS = 500


def _current(assignment: Assignment) -> ReadVersion | None:
    return assignment.read_versions.order_by("-version").first()


def grades_validate(protocol: dict[str, Any], grades: Sequence[dict[str, Any]]) -> list[tuple[str, str, str]]:
    errors: dict[str, str] = {}
    seen: dict[tuple[str, str], str] = {}
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
        seen[(str(level), str(condition))] = str(value)
    for (level, condition), _value in seen.items():
        parent = sub_question_parent(protocol, condition)
        if parent is None:
            continue
        sub = next(s for s in parent["sub_questions"] if s["key"] == condition)
        if seen.get((level, parent["key"])) not in sub["when"]:
            errors[f"{level}/{condition}"] = f"answered only when {parent['key']} is {' or '.join(sub['when'])}"
    if errors:
        raise ApplicationError("Some grades are not valid for this protocol; nothing was saved.", extra={"errors": errors})
    return [(level, condition, value) for (level, condition), value in seen.items()]


def _validated_measurements(assignment: Assignment, measurements: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    protocol = assignment.case.reader_study.protocol
    tasks = {task["key"]: task for task in protocol.get("measurements", [])}
    series_uids = set(assignment.case.case_series.values_list("series__series_instance_uid", flat=True))
    if len(measurements) > MAX_MEASUREMENTS:
        raise ApplicationError(f"At most {MAX_MEASUREMENTS} measurements per read")
    cleaned, ids = [], set()
    for index, item in enumerate(measurements):
        where = f"measurements[{index}]"
        if not isinstance(item, dict):
            raise ApplicationError(f"{where}: must be an object")
        try:
            measurement_id = uuid.UUID(str(item.get("id")))
        except ValueError:
            raise ApplicationError(f"{where}: id must be a UUID made by the viewer") from None
        if measurement_id in ids:
            raise ApplicationError(f"{where}: id {measurement_id} appears twice")
        ids.add(measurement_id)
        task = tasks.get(str(item.get("key")))
        if task is None:
            raise ApplicationError(f"{where}: key must be one of the protocol's measurements: {', '.join(tasks) or 'none defined'}")
        if item.get("kind", task["kind"]) != task["kind"]:
            raise ApplicationError(f"{where}: {task['key']} is measured as {task['kind']}, not {item.get('kind')}")
        if item.get("level") not in task["levels"]:
            raise ApplicationError(f"{where}: level must be one of {', '.join(task['levels'])}")
        if item.get("series_instance_uid") not in series_uids:
            raise ApplicationError(f"{where}: series_instance_uid is not a series of this case")
        label = item.get("label") or task["label"]
        sop_instance_uid = item.get("sop_instance_uid") or ""
        if not isinstance(label, str) or len(label) > 200 or not isinstance(sop_instance_uid, str) or len(sop_instance_uid) > 64:
            raise ApplicationError(f"{where}: label (<= 200 characters) and sop_instance_uid must be text")
        points = item.get("points_mm")
        cleaned.append(
            {
                "measurement_id": measurement_id,
                "key": task["key"],
                "kind": task["kind"],
                "level": item["level"],
                "label": label,
                "series_instance_uid": item["series_instance_uid"],
                "sop_instance_uid": sop_instance_uid,
                "points_mm": points,
                "values": measurement_values(task["kind"], points if isinstance(points, list) else [], where),
            }
        )
    return cleaned


def _locked_assignment(assignment: Assignment, user: User) -> Assignment:
    if assignment.reader_id != user.pk:
        raise PermissionDeniedError("Only the assigned reader may save this read")
    # of=("self",): lock the assignment row only; the joined case and study rows would serialise every save of a study
    return Assignment.objects.select_for_update(of=("self",)).select_related("case__reader_study").get(pk=assignment.pk)


def _check_base(assignment: Assignment, current: ReadVersion | None, base_version: int) -> str:
    """The phase a save or submit applies to, after checking it is based on the newest version."""
    current_number = current.version if current else 0
    if base_version != current_number:
        raise PreconditionFailedError(
            f"This read was saved elsewhere (version {current_number}); you edited version {base_version}. Load the latest version.",
            extra={"current_version": current_number},
        )
    phase = phase_after(current, two_phase=bool(assignment.case.reader_study.protocol.get("two_phase")))  # current: the newest, row locked
    if phase == "done":
        raise ConflictError("This read is submitted and locked")
    return phase


def _write_version(
    assignment: Assignment, *, number: int, phase: str, submitted: bool, user: User, grades: Sequence[tuple[str, str, str]], measurements: Sequence[dict[str, Any]], elapsed_s: float, provenance: str
) -> ReadVersion:
    version = ReadVersion.objects.create(
        assignment=assignment, version=number, phase=phase, submitted=submitted, saved_by=user, elapsed_s=elapsed_s, provenance=provenance
    )
    created_grades = Grade.objects.bulk_create([Grade(read_version=version, level=lv, condition=cd, value=vl) for lv, cd, vl in grades])
    created_measurements = Measurement.objects.bulk_create([Measurement(read_version=version, **m) for m in measurements])
    # What was just written is what version.grades/measurements.all() would read back: the response is built
    # from it without two more queries on the save path.
    version._prefetched_objects_cache = {"grades": created_grades, "measurements": created_measurements}  # type: ignore[attr-defined]
    return version


def _measurement_rows(version: ReadVersion) -> list[dict[str, Any]]:
    fields = ("measurement_id", "key", "kind", "level", "label", "series_instance_uid", "sop_instance_uid", "points_mm", "values")
    return [{f: getattr(m, f) for f in fields} for m in version.measurements.all()]


@transaction.atomic
def read_save(
    *,
    assignment: Assignment,
    user: User,
    base_version: int,
    grades: Sequence[dict[str, Any]],
    measurements: Sequence[dict[str, Any]] = (),
    elapsed_s: float | None = None,
    provenance: str = "",
) -> ReadVersion:
    """Save the reader's grades and measurements as a new version; a save based on a stale version is
    refused (412), one on a submitted read is refused (409), invalid content is refused whole (400)."""
    assignment = _locked_assignment(assignment, user)
    current = _current(assignment)
    phase = _check_base(assignment, current, base_version)
    cleaned = grades_validate(assignment.case.reader_study.protocol, grades)
    cleaned_measurements = _validated_measurements(assignment, measurements)
    if elapsed_s is not None and (not isinstance(elapsed_s, int | float) or not 0 <= elapsed_s < 7 * 24 * 3600):
        raise ApplicationError("elapsed_s must be a number of seconds between 0 and a week")
    previous_elapsed = current.elapsed_s if current is not None and current.phase == phase else 0.0
    version = _write_version(
        assignment,
        number=(current.version if current else 0) + 1,
        phase=phase,
        submitted=False,
        user=user,
        grades=cleaned,
        measurements=cleaned_measurements,
        elapsed_s=float(elapsed_s) if elapsed_s is not None else previous_elapsed,
        provenance=provenance,
    )
    audit_of(assignment, actor=user.username, action="read.save", details={"version": version.version, "phase": phase, "grades": len(cleaned), "measurements": len(cleaned_measurements)})
    return version


@transaction.atomic
def read_submit(*, assignment: Assignment, user: User, base_version: int, provenance: str = "") -> ReadVersion:
    """Lock the current phase's read as a new, submitted version; every required answer must be there.

    In a two-phase study the unaided submit opens the AI-aided phase with a new version seeded from the
    unaided answers, so the aided read starts where the reader left off and the unaided one stays intact.
    """
    assignment = _locked_assignment(assignment, user)
    current = _current(assignment)
    phase = _check_base(assignment, current, base_version)
    protocol = assignment.case.reader_study.protocol
    grades = [(g.level, g.condition, g.value) for g in current.grades.all()] if current else []
    measurements = _measurement_rows(current) if current else []
    measured: dict[str, set[str]] = {}
    for m in measurements:
        measured.setdefault(m["key"], set()).add(m["level"])
    missing = missing_items(protocol, {(lv, cd): vl for lv, cd, vl in grades}, measured)
    if missing:
        raise ApplicationError(f"{len(missing)} required answer(s) missing; the read was not submitted.", extra={"missing": missing})
    number = current.version + 1 if current else 1
    elapsed = current.elapsed_s if current else 0.0
    submitted = _write_version(
        assignment, number=number, phase=phase, submitted=True, user=user, grades=grades, measurements=measurements, elapsed_s=elapsed, provenance=provenance
    )
    audit_of(assignment, actor=user.username, action="read.submit", details={"version": number, "phase": phase})
    if phase == ReadVersion.Phase.UNAIDED and protocol.get("two_phase"):
        audit_of(assignment, actor=user.username, action="read.open_aided", details={"version": number + 1, "phase": ReadVersion.Phase.AIDED})
        _write_version(
            assignment,
            number=number + 1,
            phase=ReadVersion.Phase.AIDED,
            submitted=False,
            user=user,
            grades=grades,
            measurements=measurements,
            elapsed_s=0.0,
            provenance="AI-aided read opened, seeded from the unaided read",
        )
    from spinereview.reports.services import agreement_report_enqueue  # lazy: studies does not depend on reports

    agreement_report_enqueue(reader_study_id=assignment.case.reader_study_id)
    return submitted

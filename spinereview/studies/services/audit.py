"""The audit trail: an append-only, hash-chained log of every change to a study's data."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from spinereview.core.request_context import request_origin
from spinereview.studies.models import AuditEvent

GENESIS_HASH = "0" * 64
# A fixed key for PostgreSQL's transaction-level advisory lock: events are chained one at a time, so two
# concurrent saves can never both link to the same predecessor.
_AUDIT_LOCK_KEY = 0x5350494E45


def _canonical(
    *,
    at: str,
    actor: str,
    origin: str,
    action: str,
    object_type: str,
    object_id: str,
    reader_study_id: str | None,
    details: Any,
    previous_hash: str,
) -> str:
    """The text an event's hash is taken of: its fields, keys sorted, no spaces."""
    content = {
        "at": at,
        "actor": actor,
        "origin": origin,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "reader_study_id": reader_study_id,
        "details": details,
        "previous_hash": previous_hash,
    }
    return json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)


def _event_hash(**fields: Any) -> str:
    return hashlib.sha256(_canonical(**fields).encode()).hexdigest()


_APPEND_LINKED_SQL = """
INSERT INTO studies_auditevent (at, actor, origin, action, object_type, object_id, reader_study_id, details, previous_hash, hash)
SELECT %s, %s, %s, %s, %s, %s, %s, %s::jsonb, prev.hash, encode(sha256(convert_to(%s || prev.hash || %s, 'UTF8')), 'hex')
FROM (SELECT coalesce((SELECT hash FROM studies_auditevent ORDER BY sequence DESC LIMIT 1), %s) AS hash) AS prev
RETURNING sequence, previous_hash, hash
"""


def _append_linked(
    *, at: Any, actor: str, origin: str, action: str, object_type: str, object_id: str, reader_study_id: str | None, details: Any
) -> AuditEvent:
    """PostgreSQL, the chain lock held: read the newest hash and insert the event linked to it in one
    statement (the database hashes the same canonical text as ``_event_hash``), so the lock that
    serialises every save of the server is held for one round trip less and no Python work."""
    marker = "0" * 64  # stands for the previous hash: the text around it is what the database completes
    canonical = _canonical(
        at=at.isoformat(), actor=actor, origin=origin, action=action, object_type=object_type, object_id=object_id,
        reader_study_id=reader_study_id, details=details, previous_hash=marker,
    )  # fmt: skip
    # Keys are sorted: the top-level previous_hash is the last match (only reader_study_id, a UUID, follows it).
    head, tail = canonical.rsplit(f'"previous_hash":"{marker}"', 1)
    head, tail = f'{head}"previous_hash":"', f'"{tail}'
    params = [at, actor, origin, action, object_type, object_id, reader_study_id, json.dumps(details), head, tail, GENESIS_HASH]
    with connection.cursor() as cursor:
        cursor.execute(_APPEND_LINKED_SQL, params)
        sequence, previous_hash, digest = cursor.fetchone()
    expected = hashlib.sha256(f"{head}{previous_hash}{tail}".encode()).hexdigest()
    if digest != expected:  # the database and Python must agree on the chain's hash, or audit_verify would fail
        raise RuntimeError(f"audit hash mismatch: database {digest}, Python {expected}")
    event = AuditEvent(
        sequence=sequence, at=at, actor=actor, origin=origin, action=action, object_type=object_type, object_id=object_id,
        reader_study_id=reader_study_id, details=details, previous_hash=previous_hash, hash=digest,
    )  # fmt: skip
    event._state.adding, event._state.db = False, connection.alias
    return event


def audit_record(
    *, actor: str, action: str, object_type: str, object_id: str, reader_study_id: Any = None, details: dict[str, Any] | None = None
) -> AuditEvent:
    """Append an event; call it inside the transaction of the change it records, so both land or neither."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change it records")
    at = timezone.now()
    study_id = str(reader_study_id) if reader_study_id is not None else None
    details = json.loads(json.dumps(details or {}, default=str))
    origin = request_origin.get()[:200]
    fields: dict[str, Any] = {
        "at": at, "actor": actor, "origin": origin, "action": action, "object_type": object_type,
        "object_id": str(object_id), "reader_study_id": study_id, "details": details,
    }  # fmt: skip
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_AUDIT_LOCK_KEY])
        return _append_linked(**fields)
    last = AuditEvent.objects.order_by("-sequence").only("hash").first()
    previous_hash = last.hash if last else GENESIS_HASH
    digest = _event_hash(**{**fields, "at": at.isoformat()}, previous_hash=previous_hash)
    return AuditEvent.objects.create(**fields, previous_hash=previous_hash, hash=digest)


def audit_of(obj: Any, *, actor: str, action: str, details: dict[str, Any] | None = None) -> AuditEvent:
    """``audit_record`` for a reader study, case or assignment: type, id and study follow from the object."""
    from spinereview.studies.models import Assignment, Case, ReaderStudy

    if isinstance(obj, ReaderStudy):
        object_type, study_id = "reader_study", obj.pk
    elif isinstance(obj, Case):
        object_type, study_id = "case", obj.reader_study_id
    elif isinstance(obj, Assignment):
        object_type, study_id = "assignment", obj.case.reader_study_id
    else:
        raise TypeError(f"no audit object type for {type(obj).__name__}")
    return audit_record(
        actor=actor, action=action, object_type=object_type, object_id=str(obj.pk), reader_study_id=study_id, details=details
    )


@dataclass(frozen=True)
class AuditVerification:
    events_checked: int
    ok: bool
    first_bad_sequence: int | None
    problem: str


def audit_verify() -> AuditVerification:
    """Recompute the chain from the first event: an edited, inserted or deleted event breaks it."""
    previous_hash = GENESIS_HASH
    checked = 0
    for event in AuditEvent.objects.order_by("sequence").iterator(chunk_size=2000):
        if event.previous_hash != previous_hash:
            return AuditVerification(
                checked, False, event.sequence, "does not link to the event before it (an event was removed or reordered)"
            )
        expected = _event_hash(
            at=event.at.isoformat(),
            actor=event.actor,
            origin=event.origin,
            action=event.action,
            object_type=event.object_type,
            object_id=event.object_id,
            reader_study_id=str(event.reader_study_id) if event.reader_study_id else None,
            details=event.details,
            previous_hash=event.previous_hash,
        )
        if expected != event.hash:
            return AuditVerification(checked, False, event.sequence, "its content was changed after it was recorded")
        previous_hash = event.hash
        checked += 1
    return AuditVerification(checked, True, None, "")


@dataclass(frozen=True)
class AuditReplay:
    events_replayed: int
    objects_checked: int
    mismatches: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.mismatches


def audit_replay() -> AuditReplay:
    """Replay the audit trail into the state it implies — each read's newest version, phase and lock, each
    mask's newest version and content hash, each reference's newest version — and compare it with the
    database. A row written without its event, or changed after it, shows up as a mismatch."""
    from spinereview.studies.models import Assignment, CaseSeries, ReadVersion, ReferenceRead, SegmentationVersion

    reads: dict[str, tuple[int, str, bool]] = {}
    series_roles: dict[tuple[str, str], str] = {}
    masks: dict[tuple[str, str], tuple[int, str]] = {}
    references: dict[tuple[str, str], int] = {}
    reference_sources = {
        "reference.record": ReferenceRead.Source.ADJUDICATED,
        "reference.majority": ReferenceRead.Source.MAJORITY,
        "calibration.reference_set": ReferenceRead.Source.CALIBRATION,
    }
    replayed = 0
    for event in AuditEvent.objects.order_by("sequence").iterator(chunk_size=2000):
        replayed += 1
        details = event.details
        if event.action in ("read.save", "read.submit", "read.open_aided"):
            reads[event.object_id] = (int(details["version"]), str(details["phase"]), event.action == "read.submit")
        elif event.action == "segmentation.save":
            masks[(event.object_id, str(details["series"]))] = (int(details["version"]), str(details["sha256"]))
        elif event.action in reference_sources:
            references[(event.object_id, reference_sources[event.action])] = int(details["version"])
        elif event.action == "case.series_role":
            series_roles[(event.object_id, str(details["series_instance_uid"]))] = str(details["to"])
    mismatches: list[str] = []
    actual_reads = {}
    for assignment_id in Assignment.objects.filter(read_versions__isnull=False).values_list("pk", flat=True).distinct():
        latest = ReadVersion.objects.filter(assignment_id=assignment_id).order_by("-version").first()
        if latest is not None:
            actual_reads[str(assignment_id)] = (latest.version, latest.phase, latest.submitted)
    for key in sorted(set(reads) | set(actual_reads)):
        if reads.get(key) != actual_reads.get(key):
            mismatches.append(f"read of assignment {key}: audit trail says {reads.get(key)}, database has {actual_reads.get(key)}")
    actual_masks = {}
    for version in SegmentationVersion.objects.select_related("series").order_by("version"):
        actual_masks[(str(version.assignment_id), version.series.series_instance_uid)] = (version.version, version.sha256)
    for mask_key in sorted(set(masks) | set(actual_masks)):
        if masks.get(mask_key) != actual_masks.get(mask_key):
            mismatches.append(
                f"mask {mask_key[0]}/{mask_key[1]}: audit trail says {masks.get(mask_key)}, database has {actual_masks.get(mask_key)}"
            )
    actual_references = {}
    for reference in ReferenceRead.objects.order_by("version"):
        actual_references[(str(reference.case_id), str(reference.source))] = reference.version
    for ref_key in sorted(set(references) | set(actual_references)):
        if references.get(ref_key) != actual_references.get(ref_key):
            mismatches.append(
                f"{ref_key[1]} reference of case {ref_key[0]}: audit trail says {references.get(ref_key)}, database has {actual_references.get(ref_key)}"
            )
    # Roles set at import are not events; a role changed since must match its last change.
    for (case_id, series_uid), role in sorted(series_roles.items()):
        actual_role = (
            CaseSeries.objects.filter(case_id=case_id, series__series_instance_uid=series_uid).values_list("role", flat=True).first()
        )
        if actual_role != role:
            mismatches.append(f"role of series {series_uid} in case {case_id}: audit trail says {role}, database has {actual_role}")
    return AuditReplay(replayed, len(set(actual_reads) | set(actual_masks) | set(actual_references)), tuple(mismatches))

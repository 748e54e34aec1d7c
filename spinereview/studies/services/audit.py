"""The audit trail: an append-only, hash-chained log of every change to a study's data."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from spinereview.studies.models import AuditEvent

GENESIS_HASH = "0" * 64
# A fixed key for PostgreSQL's transaction-level advisory lock: events are chained one at a time, so two
# concurrent saves can never both link to the same predecessor.
_AUDIT_LOCK_KEY = 0x5350494E45


def _event_hash(*, at: str, actor: str, action: str, object_type: str, object_id: str, reader_study_id: str | None, details: Any, previous_hash: str) -> str:
    content = {
        "at": at,
        "actor": actor,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "reader_study_id": reader_study_id,
        "details": details,
        "previous_hash": previous_hash,
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def audit_record(*, actor: str, action: str, object_type: str, object_id: str, reader_study_id: Any = None, details: dict[str, Any] | None = None) -> AuditEvent:
    """Append an event; call it inside the transaction of the change it records, so both land or neither."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change it records")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_AUDIT_LOCK_KEY])
    last = AuditEvent.objects.order_by("-sequence").only("hash").first()
    previous_hash = last.hash if last else GENESIS_HASH
    at = timezone.now()
    study_id = str(reader_study_id) if reader_study_id is not None else None
    details = json.loads(json.dumps(details or {}, default=str))
    digest = _event_hash(
        at=at.isoformat(), actor=actor, action=action, object_type=object_type, object_id=str(object_id), reader_study_id=study_id, details=details, previous_hash=previous_hash
    )
    return AuditEvent.objects.create(
        at=at, actor=actor, action=action, object_type=object_type, object_id=str(object_id), reader_study_id=study_id, details=details, previous_hash=previous_hash, hash=digest
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
            return AuditVerification(checked, False, event.sequence, "does not link to the event before it (an event was removed or reordered)")
        expected = _event_hash(
            at=event.at.isoformat(),
            actor=event.actor,
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

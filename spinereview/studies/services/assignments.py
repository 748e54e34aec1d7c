"""Who reads what, in which order: randomised worklists, washout re-reads and calibration."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from django.db import transaction
from django.db.models import Min

from spinereview.accounts.models import User
from spinereview.core.errors import ApplicationError
from spinereview.studies.models import Assignment, Case, ReaderStudy, ReferenceRead, StudyMembership
from spinereview.studies.selectors import user_leads
from spinereview.studies.services.audit import audit_of
from spinereview.studies.services.reads import grades_validate


def reader_order_rng(seed: int, username: str) -> np.random.Generator:
    """One generator per (study seed, reader): a reader's order does not change when readers are added,
    and is the same on every installation (usernames, not database ids, enter the seed)."""
    reader_key = int.from_bytes(hashlib.sha256(username.encode()).digest()[:8], "big")
    return np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFFFFFFFFFF, reader_key]))


def _readers_of(reader_study: ReaderStudy, readers: Sequence[User] | None) -> list[User]:
    members = {
        m.user.username: m.user for m in StudyMembership.objects.filter(reader_study=reader_study, role=StudyMembership.Role.READER).select_related("user")
    }
    if readers is None:
        return [members[name] for name in sorted(members)]
    strangers = sorted(r.username for r in readers if r.username not in members)
    if strangers:
        raise ApplicationError(f"not readers of {reader_study.name}: {', '.join(strangers)}")
    return list(readers)


@transaction.atomic
def assignments_create(*, reader_study: ReaderStudy, readers: Sequence[User] | None = None, cases: Sequence[Case] | None = None, actor: str = "system") -> list[Assignment]:
    """Assign cases (default: all) to readers (default: all) in a random order per reader, reproducible from
    the study's seed. Calibration cases come first (in their own random order), then the live cases.
    Existing assignments keep their place; calling it again adds only what is new."""
    chosen = list(cases) if cases is not None else list(Case.objects.filter(reader_study=reader_study).order_by("label"))
    foreign = sorted(c.label for c in chosen if c.reader_study_id != reader_study.pk)
    if foreign:
        raise ApplicationError(f"cases not in {reader_study.name}: {', '.join(foreign)}")
    created = []
    for reader in _readers_of(reader_study, readers):
        rng = reader_order_rng(reader_study.randomisation_seed, reader.username)
        calibration = sorted((c for c in chosen if c.is_calibration), key=lambda c: c.label)
        live = sorted((c for c in chosen if not c.is_calibration), key=lambda c: c.label)
        ordered = [calibration[i] for i in rng.permutation(len(calibration))] + [live[i] for i in rng.permutation(len(live))]
        for position, case in enumerate(ordered, start=1):
            kind = Assignment.Kind.CALIBRATION if case.is_calibration else Assignment.Kind.LIVE
            assignment, was_created = Assignment.objects.get_or_create(case=case, reader=reader, kind=kind, defaults={"order": position})
            if was_created:
                created.append(assignment)
    if created:
        audit_of(reader_study, actor=actor, action="assignments.create", details={"seed": reader_study.randomisation_seed, "assignments": [[a.reader.username, a.case.label, a.order, a.kind] for a in created]})
    return created


@transaction.atomic
def washout_assign(*, reader_study: ReaderStudy, fraction: float, interval_days: float, seed: int, actor: str = "system") -> list[Assignment]:
    """Schedule washout re-reads: for each reader, a random `fraction` of the live cases they have submitted
    is assigned again, available `interval_days` after their first read of that case began. Re-reads are
    blinded like any read and measure intra-reader agreement; cases already scheduled are not drawn again."""
    if not 0 < fraction <= 1:
        raise ApplicationError("fraction must be in (0, 1]")
    if not 0 <= interval_days <= 3650:
        raise ApplicationError("interval_days must be between 0 and 3650")
    created = []
    for reader in _readers_of(reader_study, None):
        done = (
            Assignment.objects.filter(case__reader_study=reader_study, reader=reader, kind=Assignment.Kind.LIVE, read_versions__submitted=True)
            .annotate(started=Min("read_versions__created"))
            .distinct()
            .order_by("case__label")
        )
        already = set(Assignment.objects.filter(case__reader_study=reader_study, reader=reader, kind=Assignment.Kind.WASHOUT).values_list("case_id", flat=True))
        eligible = [a for a in done if a.case_id not in already]
        if not eligible:
            continue
        rng = reader_order_rng(seed, reader.username)
        count = max(1, round(fraction * (len(eligible) + len(already)))) - len(already)
        picks = [eligible[i] for i in sorted(rng.choice(len(eligible), size=min(max(count, 0), len(eligible)), replace=False))]
        next_order = (Assignment.objects.filter(case__reader_study=reader_study, reader=reader).order_by("-order").values_list("order", flat=True).first() or 0) + 1
        for offset, source in enumerate(picks):
            created.append(
                Assignment.objects.create(
                    case=source.case,
                    reader=reader,
                    kind=Assignment.Kind.WASHOUT,
                    order=next_order + offset,
                    available_from=source.started + dt.timedelta(days=interval_days),  # type: ignore[attr-defined]
                )
            )
    if created:
        audit_of(reader_study, actor=actor, action="washout.assign", details={"fraction": fraction, "interval_days": interval_days, "seed": seed, "assignments": [[a.reader.username, a.case.label, a.available_from] for a in created]})
    return created


def reference_version_next(case: Case, source: str) -> int:
    """The number the next reference read of this case and source gets (references are versioned like reads)."""
    last = ReferenceRead.objects.filter(case=case, source=source).order_by("-version").values_list("version", flat=True).first()
    return (last or 0) + 1


@transaction.atomic
def calibration_reference_set(*, case: Case, grades: Sequence[dict[str, Any]], user: User, note: str = "") -> ReferenceRead:
    """The known answer of a calibration case, shown to each reader after their calibration read."""
    if not user_leads(user=user, reader_study=case.reader_study):
        raise ApplicationError("Only the study lead sets calibration references")
    cleaned = grades_validate(case.reader_study.protocol, grades)
    if not case.is_calibration:
        case.is_calibration = True
        case.save(update_fields=["is_calibration", "modified"])
    reference = ReferenceRead.objects.create(
        case=case,
        source=ReferenceRead.Source.CALIBRATION,
        version=reference_version_next(case, ReferenceRead.Source.CALIBRATION),
        grades=[{"level": lv, "condition": cd, "value": vl} for lv, cd, vl in cleaned],
        created_by=user,
        note=note,
    )
    audit_of(case, actor=user.username, action="calibration.reference_set", details={"version": reference.version, "grades": reference.grades})
    return reference

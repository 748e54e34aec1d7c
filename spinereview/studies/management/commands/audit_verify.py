"""Check the audit trail: its hash chain, and (with --replay) that replaying it gives the database's state."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from spinereview.studies.services.audit import audit_replay, audit_verify


class Command(BaseCommand):
    help = "Verify that no audit event was changed, inserted or removed; --replay also rebuilds the current state from the events and compares."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--replay", action="store_true", help="replay the events and compare every read, mask and reference with the database")

    def handle(self, *args: Any, **options: Any) -> None:
        result = audit_verify()
        if not result.ok:
            self.stderr.write(f"audit chain BROKEN at event #{result.first_bad_sequence}: {result.problem} ({result.events_checked} event(s) before it verified)")
            sys.exit(1)
        self.stdout.write(f"audit chain intact: {result.events_checked} event(s) verified")
        if options["replay"]:
            replay = audit_replay()
            for line in replay.mismatches:
                self.stderr.write(line)
            if not replay.ok:
                self.stderr.write(f"replay: {len(replay.mismatches)} mismatch(es) between the audit trail and the database")
                sys.exit(1)
            self.stdout.write(f"replay: {replay.events_replayed} event(s) rebuild the current state of {replay.objects_checked} read(s), mask(s) and reference(s) exactly")

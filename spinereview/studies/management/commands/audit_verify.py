"""Check the audit trail's hash chain: exit status 1 and the first broken event if anything was altered."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand

from spinereview.studies.services import audit_verify


class Command(BaseCommand):
    help = "Verify that no audit event was changed, inserted or removed since it was recorded."

    def handle(self, *args: Any, **options: Any) -> None:
        result = audit_verify()
        if result.ok:
            self.stdout.write(f"audit chain intact: {result.events_checked} event(s) verified")
            return
        self.stderr.write(f"audit chain BROKEN at event #{result.first_bad_sequence}: {result.problem} ({result.events_checked} event(s) before it verified)")
        sys.exit(1)

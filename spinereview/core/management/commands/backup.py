"""Back up the database and the media files into one archive with a manifest and checksums."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from spinereview.core.backup import BackupError, backup_create


class Command(BaseCommand):
    help = "Write one archive (database: pg_dump custom format or dumpdata JSON; media and model files; manifest with SHA-256 checksums)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("output", type=Path, help="the archive to write, e.g. /backups/spinereview-2026-11-21.tar (never overwritten)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            summary = backup_create(output=options["output"])
        except BackupError as exc:
            raise CommandError(exc.message) from None
        size = sum(member["bytes"] for member in summary.members.values())
        self.stdout.write(
            f"backup written: {summary.path} ({summary.engine}, {summary.total_rows} row(s), "
            f"members {', '.join(summary.members)}, {size / 1e6:.1f} MB)"
        )

"""Restore a backup archive into an empty database and empty media folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from spinereview.core.backup import BackupError, backup_restore, backup_verify


class Command(BaseCommand):
    help = (
        "Restore an archive written by `backup` into an EMPTY database (no tables: create it, do not migrate) and an empty "
        "MEDIA_ROOT. Every checksum is verified first; a damaged archive or a non-empty target changes nothing."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("archive", type=Path)
        parser.add_argument("--verify-only", action="store_true", help="check the archive's completeness and checksums; restore nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["verify_only"]:
                manifest = backup_verify(archive_path=options["archive"])
                self.stdout.write(
                    f"archive intact: {', '.join(manifest['members'])} match their checksums ({manifest['engine']}, {manifest['created_at']})"
                )
                return
            summary = backup_restore(archive_path=options["archive"])
        except BackupError as exc:
            raise CommandError(f"{exc.message} (nothing was changed)") from None
        self.stdout.write(
            f"restored: {sum(summary.rows.values())} row(s) ({summary.engine}), {summary.files} file(s); row counts match the backup"
        )

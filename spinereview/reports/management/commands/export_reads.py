"""Write every submitted read of a reader study as the tidy CSV or the XLSX workbook."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from spinereview.reports.exports import READ_COLUMNS, csv_stream, read_rows, reads_workbook
from spinereview.studies.models import ReaderStudy


class Command(BaseCommand):
    help = "Export every submitted read of a study (one row per reader x case x level x item x phase) as CSV or XLSX."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--format", choices=["csv", "xlsx"], default="csv")
        parser.add_argument("--out", required=True, help="file to write (written whole or not at all)")

    def handle(self, *args: Any, **options: Any) -> None:
        study = ReaderStudy.objects.filter(slug=options["slug"]).first()
        if study is None:
            raise CommandError(f"No reader study with slug '{options['slug']}'")
        out = Path(options["out"])
        if not out.parent.is_dir():
            raise CommandError(f"The folder {out.parent} does not exist")
        # Written to a temporary file beside the target and renamed: an interrupted export leaves nothing.
        handle, temporary = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")
        try:
            with os.fdopen(handle, "wb") as stream:
                if options["format"] == "csv":
                    for chunk in csv_stream(READ_COLUMNS, read_rows(reader_study=study)):
                        stream.write(chunk)
                else:
                    reads_workbook(study, stream)
            os.replace(temporary, out)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        self.stdout.write(f"Wrote {out} ({out.stat().st_size} bytes)")

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from spinereview.imaging.services import ImportRejectedError, sources_from_path
from spinereview.studies.models import ReaderStudy
from spinereview.studies.services import cases_import


class Command(BaseCommand):
    help = "Import a DICOM folder, file or .zip (all or nothing), add it as case(s) of a reader study, and queue the AI."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--reader-study", help="slug of the reader study that gets one case per examination")
        parser.add_argument("--label-prefix", default="Case")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["path"]
        if not path.exists():
            raise CommandError(f"{path} does not exist")
        reader_study = None
        if options["reader_study"]:
            reader_study = ReaderStudy.objects.filter(slug=options["reader_study"]).first()
            if reader_study is None:
                raise CommandError(f"No reader study with slug {options['reader_study']!r}")
        try:
            result = cases_import(sources=sources_from_path(path), reader_study=reader_study, label_prefix=options["label_prefix"])
        except ImportRejectedError as exc:
            lines = [exc.message] + [f"  {e['file']}: {e['error']}" for e in exc.extra.get("errors", [])]
            raise CommandError("\n".join(lines)) from None
        self.stdout.write(
            f"Imported {result.instances_created} instance(s) ({result.instances_skipped} already stored) "
            f"in {len(result.study_instance_uids)} study(ies); {len(result.new_series_ids)} new series queued for AI."
        )

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from spinereview.core.errors import ApplicationError
from spinereview.imaging.models import DicomSeries
from spinereview.imaging.services import reference_segmentation_import


class Command(BaseCommand):
    help = "Attach a ground-truth label volume (.npz with labels and sop_instance_uids) to an imported series."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("npz", type=Path)
        parser.add_argument("--series", required=True, help="SeriesInstanceUID")
        parser.add_argument("--label-map", required=True, type=Path, help="JSON file with {\"label_map\": {value: name}}")
        parser.add_argument("--source", default="reference")

    def handle(self, *args: Any, **options: Any) -> None:
        series = DicomSeries.objects.filter(series_instance_uid=options["series"]).first()
        if series is None:
            raise CommandError(f"Series {options['series']} is not imported")
        try:
            label_map = json.loads(options["label_map"].read_text())["label_map"]
            reference_segmentation_import(series=series, source=options["source"], npz_path=options["npz"], label_map=label_map)
        except (OSError, KeyError, json.JSONDecodeError) as exc:
            raise CommandError(f"Cannot read the label map: {exc}") from None
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"Reference segmentation '{options['source']}' stored for series {series.series_instance_uid}")

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from spinereview.imaging.services import ImportRejectedError, ImportResult, ImportSource, nifti_import
from spinereview.studies.models import ReaderStudy
from spinereview.studies.services import cases_import


def _spacing(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise CommandError(f"--spacing-mm {text!r} must be three comma-separated numbers, e.g. 1,1,1") from None
    if len(values) != 3:
        raise CommandError(f"--spacing-mm {text!r} must be three comma-separated numbers, e.g. 1,1,1")
    return values[0], values[1], values[2]


class Command(BaseCommand):
    help = (
        "Import a NIfTI volume (and optional label volume) as a DICOM MR series: voxel axis 2 becomes the slices, "
        "geometry from the affine, or from --orientation/--spacing-mm where the affine is a placeholder."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("image", type=Path)
        parser.add_argument("--labels", type=Path, help="label volume on the same voxel grid")
        parser.add_argument("--label-map", type=Path, help='JSON {"label_map": {value: name}} (default: "label <value>")')
        parser.add_argument("--orientation", help="axis codes replacing the affine's directions, e.g. IPR (axis 0 Inferior, 1 Posterior, 2 Right)")
        parser.add_argument("--spacing-mm", help="voxel sizes of axes 0,1,2 replacing the affine's, e.g. 1,1,1")
        parser.add_argument("--patient-id", help="identifier of the subject (default: the file name); de-identified on import")
        parser.add_argument("--series-description")
        parser.add_argument("--reader-study", help="slug of the reader study that gets the examination as a case")

    def handle(self, *args: Any, **options: Any) -> None:
        image: Path = options["image"]
        if not image.is_file():
            raise CommandError(f"{image} is not a file")
        reader_study = None
        if options["reader_study"]:
            reader_study = ReaderStudy.objects.filter(slug=options["reader_study"]).first()
            if reader_study is None:
                raise CommandError(f"No reader study with slug {options['reader_study']!r}")
        label_map = None
        if options["label_map"]:
            try:
                label_map = {str(k): str(v) for k, v in json.loads(options["label_map"].read_text())["label_map"].items()}
            except (OSError, KeyError, AttributeError, json.JSONDecodeError) as exc:
                raise CommandError(f"Cannot read the label map: {exc}") from None
        labels = ImportSource(name=options["labels"].name, data=options["labels"].read_bytes()) if options["labels"] else None

        def import_sources(sources: list[ImportSource]) -> ImportResult:
            return cases_import(sources=sources, reader_study=reader_study, label_prefix="NIfTI")

        try:
            result = nifti_import(
                image=ImportSource(name=image.name, data=image.read_bytes()),
                labels=labels,
                label_map=label_map,
                orientation=options["orientation"],
                spacing_mm=_spacing(options["spacing_mm"]) if options["spacing_mm"] else None,
                patient_id=options["patient_id"],
                series_description=options["series_description"],
                import_sources=import_sources,
            )
        except ImportRejectedError as exc:
            raise CommandError(exc.message) from None
        slices, row_mm, col_mm = result.spacing_mm
        self.stdout.write(
            f"Imported {result.imported.instances_created} slice(s) ({result.imported.instances_skipped} already stored) as series "
            f"{result.series.series_instance_uid}; spacing {slices:g} x {row_mm:g} x {col_mm:g} mm (slice x row x column)"
            + ("; labels stored as a reference segmentation" if result.reference_segmentation else "")
        )

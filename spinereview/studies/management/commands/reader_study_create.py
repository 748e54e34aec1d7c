"""Create a reader study from a protocol file (YAML or JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from spinereview.core.errors import ApplicationError
from spinereview.studies.models import ReaderStudy
from spinereview.studies.protocols import protocol_load
from spinereview.studies.services import reader_study_create


class Command(BaseCommand):
    help = "Create a reader study: name, slug and a protocol file (YAML or JSON; see studies/protocols.py)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--protocol", type=Path, required=True, help="protocol file, YAML or JSON")
        parser.add_argument("--ai-visibility", choices=ReaderStudy.AiVisibility.values, default=ReaderStudy.AiVisibility.ALWAYS)
        parser.add_argument("--seed", type=int, default=0, help="seed of each reader's random reading order")
        parser.add_argument("--calibration-required", action="store_true")
        parser.add_argument("--reidentification-permitted", action="store_true", help="leads may look up original patient identities")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            protocol = protocol_load(options["protocol"].read_bytes())
            study = reader_study_create(
                name=options["name"],
                slug=options["slug"],
                protocol=protocol,
                ai_visibility=options["ai_visibility"],
                randomisation_seed=options["seed"],
                calibration_required=options["calibration_required"],
                reidentification_permitted=options["reidentification_permitted"],
                actor="manage.py",
            )
        except OSError as exc:
            raise CommandError(f"cannot read {options['protocol']}: {exc.strerror}") from None
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"created reader study {study.slug}: {len(protocol['levels'])} levels, {len(protocol['conditions'])} condition(s)")

"""Write a reader study's protocol as YAML or JSON."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from spinereview.studies.models import ReaderStudy
from spinereview.studies.protocols import protocol_dump


class Command(BaseCommand):
    help = "Print a reader study's protocol (normalised) as YAML or JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--format", choices=["yaml", "json"], default="yaml")

    def handle(self, *args: Any, **options: Any) -> None:
        study = ReaderStudy.objects.filter(slug=options["slug"]).first()
        if study is None:
            raise CommandError(f"no reader study '{options['slug']}'")
        self.stdout.write(protocol_dump(study.protocol, fmt=options["format"]), ending="")

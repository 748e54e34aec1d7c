"""Assign a study's cases to its readers in a reproducible random order, and optionally schedule washout re-reads."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from spinereview.core.errors import ApplicationError
from spinereview.studies.models import ReaderStudy
from spinereview.studies.services import assignments_create, washout_assign


class Command(BaseCommand):
    help = "Assign every case to every reader (random order per reader from the study's seed); --washout schedules re-reads."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--washout-fraction", type=float, help="fraction of each reader's submitted cases to re-read")
        parser.add_argument("--washout-days", type=float, default=28.0)
        parser.add_argument("--washout-seed", type=int, default=0)

    def handle(self, *args: Any, **options: Any) -> None:
        study = ReaderStudy.objects.filter(slug=options["slug"]).first()
        if study is None:
            raise CommandError(f"no reader study '{options['slug']}'")
        try:
            created = assignments_create(reader_study=study, actor="manage.py")
            self.stdout.write(f"{len(created)} new assignment(s) (seed {study.randomisation_seed})")
            if options["washout_fraction"] is not None:
                washout = washout_assign(
                    reader_study=study, fraction=options["washout_fraction"], interval_days=options["washout_days"], seed=options["washout_seed"], actor="manage.py"
                )
                self.stdout.write(f"{len(washout)} washout re-read(s) scheduled {options['washout_days']:g} days after each first read")
        except ApplicationError as exc:
            raise CommandError(exc.message) from None

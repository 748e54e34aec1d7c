from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from spinereview.ai.services import model_version_register
from spinereview.core.errors import ApplicationError


class Command(BaseCommand):
    help = "Register a checkpoint folder written by `python -m ml train` as a model version."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--activate", action="store_true", help="make it the model that runs on new series")

    def handle(self, *args: Any, **options: Any) -> None:
        # Where torch is installed (a gpu worker's machine, the demo) the weights are loaded before the version
        # is registered; a web host has no torch and registers what it can check without it.
        with_torch = importlib.util.find_spec("torch") is not None
        if not with_torch:
            self.stderr.write("torch is not installed here: the weights archive is checked, but not loaded into the architecture")
        try:
            model_version = model_version_register(path=options["path"], activate=options["activate"], verify_weights=with_torch)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        state = "active" if model_version.is_active else "registered"
        self.stdout.write(f"{model_version.version} {state}")

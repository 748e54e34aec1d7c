"""MUSCLE_FAT_INTENSITY_MODELS: JSON by weighting from the environment; anything else stops start-up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
PRINT = "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'spinereview.settings'); django.setup(); from django.conf import settings; print(settings.MUSCLE_FAT_INTENSITY_MODELS)"


def _settings(value: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "MUSCLE_FAT_INTENSITY_MODELS")} | {"DEBUG": "1"}
    if value is not None:
        env["MUSCLE_FAT_INTENSITY_MODELS"] = value
    return subprocess.run([sys.executable, "-c", PRINT], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("value", "printed"), [(None, "{}"), ("", "{}"), ('{"T2": {"muscle_signal": 300, "fat_signal": 1400}}', "{'T2': {'muscle_signal': 300, 'fat_signal': 1400}}")])
def test_unset_empty_or_json_object(value: str | None, printed: str) -> None:
    result = _settings(value)
    assert result.returncode == 0, result.stderr[-1000:]
    assert result.stdout.strip().splitlines()[-1] == printed


@pytest.mark.parametrize(("value", "message"), [('{"T2": ', "MUSCLE_FAT_INTENSITY_MODELS is not JSON"), ("[1, 2]", "must be a JSON object keyed by weighting")])
def test_malformed_value_stops_start_up_naming_the_variable(value: str, message: str) -> None:
    result = _settings(value)
    assert result.returncode != 0 and message in result.stderr

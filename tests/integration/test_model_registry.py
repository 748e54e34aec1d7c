"""Registering checkpoint folders as model versions (no torch import on the web side)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from spinereview.ai.models import ModelVersion

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def test_register_activate_and_refuse_broken_folders(test_model_dir: Path, tmp_path: Path) -> None:
    call_command("register_model", str(test_model_dir), "--activate")
    call_command("register_model", str(test_model_dir), "--activate")  # idempotent
    (registered,) = ModelVersion.objects.all()
    config = json.loads((test_model_dir / "config.json").read_text())
    assert registered.is_active
    assert registered.version.startswith(f"{config['name']}@")
    assert registered.label_map["4"] == "dural_sac"

    broken = tmp_path / "broken"
    shutil.copytree(test_model_dir, broken)
    (broken / "config.json").write_text("{not json")
    with pytest.raises(CommandError, match=r"Checkpoint refused: .*config.json is not valid JSON"):
        call_command("register_model", str(broken), "--activate")
    (broken / "config.json").unlink()
    with pytest.raises(CommandError, match="has no config.json"):
        call_command("register_model", str(broken))
    with pytest.raises(CommandError, match="does not exist"):
        call_command("register_model", str(tmp_path / "missing"))
    assert list(ModelVersion.objects.values_list("version", "is_active")) == [(registered.version, True)]

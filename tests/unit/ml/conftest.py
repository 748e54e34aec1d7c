"""A tiny model trained once per test session (a few iterations on one phantom case)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ml.training.train import PRESETS, TrainConfig, train

TINY = dataclasses.replace(
    PRESETS["test"],
    preset="unit-test",
    cases=1,
    iterations=3,
    batch_size=2,
    canvas=64,
    heldout_cases=1,
    time_budget_s=None,
    name="tiny",
    threads=1,  # on a shared, busy CPU two OpenMP threads wait for each other: 1 is faster
)


def _train_tiny(out: Path, **changes: Any) -> dict[str, Any]:
    cfg: TrainConfig = dataclasses.replace(TINY, **changes)
    return train(cfg, out, log=lambda _: None)


@pytest.fixture(scope="session")
def train_tiny() -> Callable[..., dict[str, Any]]:
    """train_tiny(out_dir, **TrainConfig changes) -> metrics."""
    return _train_tiny


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("models") / "tiny"
    return out, _train_tiny(out)

"""Load a grader checkpoint folder and grade disc levels (used by ml.inference.api)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ml.checkpoint import CONFIG, WEIGHTS, model_version

if TYPE_CHECKING:
    from torch import nn

GRADER_FORMAT = "spinereview-grading-checkpoint/1"
GRADER_KEYS = ("format", "name", "encoder", "in_channels", "classes", "grades", "patch")


def read_grader_config(folder: Path) -> dict[str, Any]:
    if not (folder / CONFIG).is_file() or not (folder / WEIGHTS).is_file():
        raise ValueError(f"grader folder {folder} needs {CONFIG} and {WEIGHTS}")
    try:
        config = json.loads((folder / CONFIG).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{folder / CONFIG} is not valid JSON: {exc}") from exc
    if not isinstance(config, dict) or config.get("format") != GRADER_FORMAT:
        raise ValueError(f"{folder / CONFIG} is not a grader checkpoint ({GRADER_FORMAT})")
    missing = [k for k in GRADER_KEYS if k not in config]
    if missing:
        raise ValueError(f"{folder / CONFIG} lacks {', '.join(missing)}")
    if len(config["grades"]) != int(config["classes"]):
        raise ValueError(f"{folder / CONFIG}: {len(config['grades'])} grade names for {config['classes']} classes")
    return config


class Grader:
    def __init__(self, model: nn.Module, config: dict[str, Any], version: str, device: str) -> None:
        from ml.grading.patches import PatchSpec

        self._model = model
        self._device = device
        self.config = config
        self.version = version
        self.grades = tuple(str(g) for g in config["grades"])
        self.patch = PatchSpec.from_dict(config["patch"])

    def grade_slices(
        self, slices: NDArray[Any], pixel_spacing_mm: tuple[float, float],
        centres: Sequence[tuple[float, float]],
    ) -> NDArray[np.float64]:
        """(N, H, W) axial slices + canal centres (row, col) -> (N, classes) probabilities."""
        import torch

        from ml.grading.patches import extract_patches

        x = extract_patches(slices, pixel_spacing_mm, centres, self.patch)
        with torch.inference_mode():
            logits = self._model(x.to(self._device, memory_format=torch.channels_last))
            probs: NDArray[np.float64] = torch.softmax(logits.float(), 1).cpu().double().numpy()
        return probs


def load_grader(folder: str | os.PathLike[str], device: str = "cpu") -> Grader:
    import pickle
    import zipfile

    import torch

    from ml.models.registry import build_classifier, channels_last

    path = Path(folder)
    config = read_grader_config(path)
    model = build_classifier(encoder=str(config["encoder"]), in_channels=int(config["in_channels"]),
                             classes=int(config["classes"]))
    try:
        state = torch.load(path / WEIGHTS, map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, IndexError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else repr(exc)
        raise ValueError(f"{path / WEIGHTS} does not load into the grader in {CONFIG}: {first}") from exc
    model = channels_last(model, device).eval()
    return Grader(model, config, model_version(str(config["name"]), path / WEIGHTS), device)

"""Load a grader checkpoint folder and grade disc levels (used by ml.inference.api).

A grader is one encoder with one classification head whose outputs are the logits of one or
more *tasks* laid end to end: config["tasks"] = [{"key", "classes"}, ...], the first always the
central canal stenosis grade (config["grades"]), e.g. then the nerve root sedimentation sign
(absent, present). Each task's probabilities are the softmax over its own slice of the logits.
A config without "tasks" (graders trained before there were several) has the stenosis task only.
"""

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
STENOSIS_TASK = "stenosis"


def grader_tasks(config: dict[str, Any], where: str = "config.json") -> list[tuple[str, tuple[str, ...]]]:
    """[(task key, class names)], stenosis first; ValueError naming the problem when the tasks do not
    add up to the head's outputs."""
    grades = tuple(str(g) for g in config["grades"])
    raw = config.get("tasks")
    if raw is None:
        tasks = [(STENOSIS_TASK, grades)]
    else:
        if not isinstance(raw, list) or not all(
            isinstance(t, dict) and isinstance(t.get("key"), str) and t["key"] and isinstance(t.get("classes"), list)
            and len(t["classes"]) >= 2 for t in raw
        ):
            raise ValueError(f"{where}: tasks must be a list of {{key, classes (2 or more)}}")
        tasks = [(str(t["key"]), tuple(str(c) for c in t["classes"])) for t in raw]
        if tasks[0] != (STENOSIS_TASK, grades):
            raise ValueError(f"{where}: the first task must be '{STENOSIS_TASK}' with the classes in grades")
        if len({key for key, _ in tasks}) != len(tasks):
            raise ValueError(f"{where}: task keys repeat")
    outputs = sum(len(classes) for _, classes in tasks)
    if outputs != int(config["classes"]):
        raise ValueError(f"{where}: the tasks' {outputs} classes do not match the head's {config['classes']} outputs")
    return tasks


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
    grader_tasks(config, str(folder / CONFIG))
    return config


class Grader:
    def __init__(self, model: nn.Module, config: dict[str, Any], version: str, device: str) -> None:
        from ml.grading.patches import PatchSpec

        self._model = model
        self._device = device
        self.config = config
        self.version = version
        self.grades = tuple(str(g) for g in config["grades"])
        self.tasks = dict(grader_tasks(config))
        """Task key -> class names (mildest / absent first), stenosis first."""
        self.patch = PatchSpec.from_dict(config["patch"])

    def grade_tasks(
        self, slices: NDArray[Any], pixel_spacing_mm: tuple[float, float],
        centres: Sequence[tuple[float, float]],
    ) -> dict[str, NDArray[np.float64]]:
        """(N, H, W) axial slices + canal centres (row, col) -> per task, (N, its classes) probabilities."""
        import torch

        from ml.grading.patches import extract_patches

        x = extract_patches(slices, pixel_spacing_mm, centres, self.patch)
        with torch.inference_mode():
            logits = self._model(x.to(self._device, memory_format=torch.channels_last)).float()
            out, start = {}, 0
            for key, classes in self.tasks.items():
                out[key] = torch.softmax(logits[:, start:start + len(classes)], 1).cpu().double().numpy()
                start += len(classes)
        return out

    def grade_slices(
        self, slices: NDArray[Any], pixel_spacing_mm: tuple[float, float],
        centres: Sequence[tuple[float, float]],
    ) -> NDArray[np.float64]:
        """(N, H, W) axial slices + canal centres (row, col) -> (N, grades) stenosis probabilities."""
        return self.grade_tasks(slices, pixel_spacing_mm, centres)[STENOSIS_TASK]


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

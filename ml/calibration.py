"""Size calibration: per-class logit offsets that make a model's structures as large as the truth.

A segmentation network trained with Dice + cross-entropy can be systematically too small or too
large on a thin or low-contrast structure even when its boundaries are otherwise right: the phantom
demo model, for instance, labelled 6 % too few dural sac voxels on axial slices and 13 % too many
spinal canal voxels (the ring of epidural fat around the sac), so every DSCA it measured was low.
Adding a constant offset b_c to class c's logit before the argmax moves that class's boundary
without retraining; fitted on cases the model was not trained on, it is the segmentation analogue
of choosing a classifier's decision threshold on a validation set.

The fit matches each class's voxel count, summed over the calibration cases, to the truth's:
iterate b_c += 1/2 log(T_c / P_c) (damped, at most 0.5 per step, |b_c| <= BOUND) with the
background fixed at 0. A pixel whose best logit leads the second by more than 2 x BOUND keeps
its label whatever the offsets, so only the other pixels' logits are kept (a few % of a slice):
the fit is exact for those offsets and needs little memory. Classes in one group share an offset
and are counted together (the paraspinal muscle sides, which the web side assigns from the
geometry rather than from the network). A class absent from the calibration truth keeps 0.

The offsets live in the checkpoint's config.json under "calibration"; the Segmenter adds them to
the logits of every slice, and they are part of the model version (ml.checkpoint).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ml.labels import (
    DURAL_SAC,
    INTERVERTEBRAL_DISC,
    PARASPINAL_MUSCLE_LEFT,
    PARASPINAL_MUSCLE_RIGHT,
    SPINAL_CANAL,
    VERTEBRAL_BODY,
)

if TYPE_CHECKING:
    import torch

    from ml.inference.api import Segmenter

BOUND = 2.0
"""Largest offset, in logits, either way."""
ITERATIONS = 60
METHOD = (
    "per-class logit offsets matching each structure's voxel count to the truth on calibration "
    "cases the model was not trained on (ml.calibration)"
)


@dataclass(frozen=True)
class CalibrationFit:
    offsets: list[float]
    """One per output channel (background first, always 0)."""
    groups: list[list[int]]
    true_voxels: list[int]
    predicted_before: list[int]
    predicted_after: list[int]

    def voxel_ratios(self, predicted: Sequence[int], label_map: dict[int, str] | None = None) -> dict[str, float | None]:
        """Predicted / true voxels per fitted group ("a+b" for a group of two), None where the truth has none."""
        names = label_map or {}
        out: dict[str, float | None] = {}
        for group in self.groups:
            true = sum(self.true_voxels[c] for c in group)
            key = "+".join(names.get(c, str(c)) for c in group)
            out[key] = round(sum(predicted[c] for c in group) / true, 4) if true else None
        return out

    def to_config(self, *, cases: Sequence[int] | None = None, label_map: dict[int, str] | None = None) -> dict[str, Any]:
        return {
            "logit_offsets": [round(v, 4) for v in self.offsets],
            "method": METHOD,
            **({"case_seeds": list(cases)} if cases is not None else {}),
            "voxel_ratio_before": self.voxel_ratios(self.predicted_before, label_map),
            "voxel_ratio_after": self.voxel_ratios(self.predicted_after, label_map),
        }


class CalibrationSamples:
    """Accumulates (logits, truth) batches: counts of the pixels no offset can change, and the
    logits of the others."""

    def __init__(self, classes: int) -> None:
        self.classes = classes
        self.true = np.zeros(classes, dtype=np.int64)
        self.fixed = np.zeros(classes, dtype=np.int64)
        self._logits: list[NDArray[np.float32]] = []

    def add(self, logits: torch.Tensor, truth: NDArray[Any]) -> None:
        """`logits` (N, K, H, W) at the truth's resolution; `truth` (N, H, W) labels 0..K-1."""
        import torch

        if logits.ndim != 4 or logits.shape[1] != self.classes or tuple(logits.shape[-2:]) != tuple(truth.shape[-2:]):
            raise ValueError(f"logits {tuple(logits.shape)} do not fit truth {tuple(truth.shape)} with {self.classes} classes")
        flat = logits.detach().float().permute(0, 2, 3, 1).reshape(-1, self.classes)
        self.true += np.bincount(np.asarray(truth, dtype=np.int64).ravel(), minlength=self.classes)[: self.classes]
        top2 = torch.topk(flat, 2, dim=1).values
        open_ = (top2[:, 0] - top2[:, 1]) <= 2 * BOUND
        self.fixed += np.bincount(flat[~open_].argmax(dim=1).numpy(), minlength=self.classes)
        self._logits.append(flat[open_].numpy().astype(np.float32, copy=True))

    @property
    def open_pixels(self) -> NDArray[np.float32]:
        if not self._logits:
            return np.zeros((0, self.classes), dtype=np.float32)
        return np.concatenate(self._logits)


def _counts(open_logits: NDArray[np.float32], offsets: NDArray[np.float64], fixed: NDArray[np.int64]) -> NDArray[np.int64]:
    classes = len(offsets)
    chosen = np.argmax(open_logits + offsets[None, :].astype(np.float32), axis=1)
    counts: NDArray[np.int64] = fixed + np.bincount(chosen, minlength=classes)[:classes]
    return counts


def fit_logit_offsets(samples: CalibrationSamples, groups: Iterable[Sequence[int]]) -> CalibrationFit:
    """Offsets matching each group's predicted voxel count to its true count (module doc).
    `groups` lists the foreground classes fitted (classes of one group share an offset)."""
    fitted = [[int(c) for c in g] for g in groups]
    flat = [c for g in fitted for c in g]
    if any(c <= 0 or c >= samples.classes for c in flat) or any(not g for g in fitted) or len(set(flat)) != len(flat):
        raise ValueError(f"calibration groups must be non-empty, disjoint lists of classes 1..{samples.classes - 1}")
    open_logits = samples.open_pixels
    offsets = np.zeros(samples.classes, dtype=np.float64)
    before = counts = _counts(open_logits, offsets, samples.fixed)
    for _ in range(ITERATIONS):
        for group in fitted:
            true = int(samples.true[group].sum())
            if true == 0:
                continue
            predicted = int(counts[group].sum())
            step = 0.5 * math.log((true + 1) / (predicted + 1))
            offsets[group] = np.clip(offsets[group] + np.clip(step, -0.5, 0.5), -BOUND, BOUND)
        counts = _counts(open_logits, offsets, samples.fixed)
    after = counts
    return CalibrationFit(
        offsets=[float(v) for v in offsets],
        groups=fitted,
        true_voxels=[int(v) for v in samples.true],
        predicted_before=[int(v) for v in before],
        predicted_after=[int(v) for v in after],
    )


def offsets_from_config(config: dict[str, Any], classes: int) -> list[float] | None:
    """The checkpoint's logit offsets (None when it has no calibration); ValueError when malformed."""
    calibration = config.get("calibration")
    if calibration is None:
        return None
    offsets = calibration.get("logit_offsets") if isinstance(calibration, dict) else None
    if (
        not isinstance(offsets, list)
        or len(offsets) != classes
        or not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and abs(v) <= BOUND for v in offsets)
        or offsets[0] != 0
    ):
        raise ValueError(
            f"calibration.logit_offsets must be {classes} finite numbers within +-{BOUND}, the first (background) 0"
        )
    return [float(v) for v in offsets]


FOREGROUND_GROUPS = (
    (VERTEBRAL_BODY,), (INTERVERTEBRAL_DISC,), (SPINAL_CANAL,), (DURAL_SAC,),
    (PARASPINAL_MUSCLE_LEFT, PARASPINAL_MUSCLE_RIGHT),
)
"""Fitted together: the muscle sides (assigned from the geometry on the web side)."""


def phantom_calibration(segmenter: Segmenter, seeds: Sequence[int], *, randomise_acquisition: bool) -> CalibrationFit:
    """Fit `segmenter`'s logit offsets on the phantom cases `seeds` (both series of each)."""
    from ml.phantom import render_phantom
    from ml.phantom.render import SERIES_KEYS
    from ml.training.data import case_spec

    if not seeds:
        raise ValueError("calibration needs at least one case")
    samples = CalibrationSamples(int(segmenter.config["classes"]))
    for seed in seeds:
        rendering = render_phantom(case_spec(seed, randomise_acquisition=randomise_acquisition))
        for key in SERIES_KEYS:
            series = rendering.series[key]
            samples.add(segmenter.logits(series.image, series.geometry.spacing_mm), series.labels)
    return fit_logit_offsets(samples, FOREGROUND_GROUPS)

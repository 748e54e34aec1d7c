"""Axial patches around the spinal canal at a disc level: the grader's input (training and
inference share this code, so they match).

A patch is the axial slice nearest the disc mid-plane, normalised like the segmenter's input
(ml.preprocessing.normalise), resampled to `spacing_mm` per pixel and cut `size` x `size`
pixels around a centre: the centroid of the canal (spinal canal + dural sac labels) in that
slice. Outside the slice is zero.

Grades: central canal stenosis on the 4-point DSCA scale SpineReview uses (spinereview.
morphometry.stenosis, repeated here because ml may not import it): grade = number of cut-offs
(100, 75, 50) mm² above the DSCA: 0 normal (>= 100), 1 mild (75-100), 2 moderate (50-75),
3 severe (< 50). 100 and 75 mm² are Schönström et al.'s relative/absolute stenosis limits
(Spine 1985;10:806-811); 50 mm² is a project convention.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray

from ml.labels import DURAL_SAC, SPINAL_CANAL
from ml.preprocessing import normalise

GRADE_NAMES = ("normal", "mild", "moderate", "severe")
DSCA_CUTOFFS_MM2 = (100.0, 75.0, 50.0)
CANAL_LABELS = (SPINAL_CANAL, DURAL_SAC)


def grade_from_dsca(dsca_mm2: float, cutoffs_mm2: Sequence[float] = DSCA_CUTOFFS_MM2) -> int:
    """Number of cut-offs c with dsca < c (a value on a cut-off is the milder grade)."""
    if not (math.isfinite(dsca_mm2) and dsca_mm2 >= 0):
        raise ValueError(f"dsca_mm2 must be a non-negative finite area, got {dsca_mm2}")
    return sum(1 for c in cutoffs_mm2 if dsca_mm2 < c)


@dataclass(frozen=True)
class PatchSpec:
    size: int = 96
    spacing_mm: float = 0.5
    percentile: float = 99.5

    def __post_init__(self) -> None:
        if self.size < 32 or self.size % 32 or not 0.05 <= self.spacing_mm <= 5:
            raise ValueError(f"patch size must be a multiple of 32 (>= 32) and spacing in [0.05, 5] mm: {self}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PatchSpec:
        try:
            return cls(size=int(data["size"]), spacing_mm=float(data["spacing_mm"]),
                       percentile=float(data["percentile"]))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"patch config is incomplete: {exc!r}") from exc


def canal_centre(labels: NDArray[np.uint8]) -> tuple[float, float] | None:
    """(row, column) centroid of the canal labels in one slice; None if there is no canal."""
    mask = np.isin(labels, CANAL_LABELS)
    if not mask.any():
        return None
    rows, cols = np.nonzero(mask)
    return float(rows.mean()), float(cols.mean())


def extract_patches(
    slices: NDArray[Any],
    pixel_spacing_mm: tuple[float, float],
    centres: Sequence[tuple[float, float]],
    spec: PatchSpec,
    *,
    jitter_mm: NDArray[np.float64] | None = None,
    angle_rad: NDArray[np.float64] | None = None,
) -> torch.Tensor:
    """(N, H, W) slices + N (row, col) centres -> (N, 1, size, size) patches (module doc).

    `jitter_mm` (N, 2) shifts the centres and `angle_rad` (N,) rotates the patches (training
    augmentation); both default to none. One bilinear sample per patch pixel (affine grid)."""
    x = torch.as_tensor(np.asarray(slices, dtype=np.float32))
    if x.ndim != 3 or len(centres) != x.shape[0]:
        raise ValueError(f"need (N, H, W) slices and N centres, got {tuple(x.shape)} and {len(centres)}")
    n, h, w = x.shape
    x = normalise(x, spec.percentile)[:, None]
    sy, sx = pixel_spacing_mm
    half = spec.size * spec.spacing_mm / 2  # patch half-width, mm
    c = np.asarray(centres, dtype=np.float64)
    if jitter_mm is not None:
        c = c + jitter_mm / np.array([sy, sx])
    angle = np.zeros(n) if angle_rad is None else np.asarray(angle_rad, dtype=float)
    # normalised coordinates (align_corners=False): u = (2 * index + 1) / size - 1
    theta = np.zeros((n, 2, 3))
    cos, sin = np.cos(angle), np.sin(angle)
    ax, ay = half / (sx * w / 2), half / (sy * h / 2)  # patch half-width in normalised units
    # patch (a, b) in [-1, 1]² -> mm offsets half * R(angle) (a, b) -> source pixels / spacing
    theta[:, 0, 0], theta[:, 0, 1] = cos * ax, -sin * ax
    theta[:, 1, 0], theta[:, 1, 1] = sin * ay, cos * ay
    theta[:, 0, 2] = (2 * c[:, 1] + 1) / w - 1
    theta[:, 1, 2] = (2 * c[:, 0] + 1) / h - 1
    grid = F.affine_grid(torch.from_numpy(theta).float(), [n, 1, spec.size, spec.size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

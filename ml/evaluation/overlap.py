"""Overlap and boundary scores of one structure: predicted mask P vs true mask T.

From the voxel counts TP = |P ∩ T|, FP = |P \\ T|, FN = |T \\ P|:

    dice = F1 = 2 TP / (2 TP + FP + FN)     iou = TP / (TP + FP + FN)
    precision = TP / (TP + FP)              recall = TP / (TP + FN)

Empty cases follow MONAI/Maier-Hein et al. ("Metrics reloaded", Nat Methods 2024) in spirit:
both masks empty -> every overlap score is 1 (nothing to find, nothing found); a ratio whose
denominator alone is 0 (no prediction -> precision) is None ("not defined"), never a made-up 0.

HD95 (mm): the 95th percentile Hausdorff distance, MONAI's variant
(`compute_hausdorff_distance(percentile=95)`): surface voxels are mask voxels with a
6-connected neighbour outside the mask; d(A->B) are the Euclidean distances (in mm, with the
voxel spacing) from each surface voxel of A to the nearest surface voxel of B, and
HD95 = max(P95 d(P->T), P95 d(T->P)). None when either mask is empty. Reference: Huttenlocher
et al., IEEE TPAMI 15(9):850-863, 1993; MONAI metrics.hausdorff_distance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage


@dataclass(frozen=True)
class OverlapCounts:
    tp: int
    fp: int
    fn: int

    def __add__(self, other: OverlapCounts) -> OverlapCounts:
        return OverlapCounts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)


@dataclass(frozen=True)
class OverlapScores:
    dice_score: float | None
    iou_score: float | None
    precision_score: float | None
    recall_score: float | None
    f1_score: float | None
    true_voxels: int
    predicted_voxels: int


def _check_masks(predicted: NDArray[np.bool_], truth: NDArray[np.bool_]) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    p = np.asarray(predicted)
    t = np.asarray(truth)
    if p.shape != t.shape:
        raise ValueError(f"predicted {p.shape} and true {t.shape} masks differ in shape")
    if p.dtype != np.bool_ or t.dtype != np.bool_:
        raise ValueError("masks must be boolean arrays")
    return p, t


def overlap_counts(predicted: NDArray[np.bool_], truth: NDArray[np.bool_]) -> OverlapCounts:
    p, t = _check_masks(predicted, truth)
    tp = int(np.count_nonzero(p & t))
    return OverlapCounts(tp=tp, fp=int(np.count_nonzero(p)) - tp, fn=int(np.count_nonzero(t)) - tp)


def overlap_scores(counts: OverlapCounts) -> OverlapScores:
    """Scores from (pooled) counts; see the module doc for the formulas and empty cases."""
    tp, fp, fn = counts.tp, counts.fp, counts.fn
    if min(tp, fp, fn) < 0:
        raise ValueError(f"counts must be non-negative, got {counts}")
    if tp + fp + fn == 0:
        return OverlapScores(1.0, 1.0, 1.0, 1.0, 1.0, 0, 0)
    dice = 2 * tp / (2 * tp + fp + fn)
    return OverlapScores(
        dice_score=dice,
        iou_score=tp / (tp + fp + fn),
        precision_score=tp / (tp + fp) if tp + fp else None,
        recall_score=tp / (tp + fn) if tp + fn else None,
        f1_score=dice,
        true_voxels=tp + fn,
        predicted_voxels=tp + fp,
    )


def _surface(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    structure = ndimage.generate_binary_structure(mask.ndim, 1)
    eroded = ndimage.binary_erosion(mask, structure=structure, border_value=0)
    surface: NDArray[np.bool_] = mask & ~eroded
    return surface


def hd95_error(
    predicted: NDArray[np.bool_], truth: NDArray[np.bool_], spacing_mm: Sequence[float]
) -> float | None:
    """95th percentile symmetric Hausdorff distance in mm (module doc); None if a mask is empty."""
    p, t = _check_masks(predicted, truth)
    spacing = tuple(float(s) for s in spacing_mm)
    if len(spacing) != p.ndim or not all(s > 0 and np.isfinite(s) for s in spacing):
        raise ValueError(f"spacing_mm must be {p.ndim} positive numbers, got {spacing_mm!r}")
    if not p.any() or not t.any():
        return None
    sp, st = _surface(p), _surface(t)
    # distance of every voxel to the nearest surface voxel of the other mask
    to_t = ndimage.distance_transform_edt(~st, sampling=spacing)
    to_p = ndimage.distance_transform_edt(~sp, sampling=spacing)
    d_pt = to_t[sp]
    d_tp = to_p[st]
    return float(max(np.percentile(d_pt, 95), np.percentile(d_tp, 95)))


def mean_iou_score(ious: Sequence[float | None]) -> float | None:
    """mIoU: the unweighted mean of the per-structure IoUs that are defined."""
    values = [v for v in ious if v is not None]
    return float(np.mean(values)) if values else None

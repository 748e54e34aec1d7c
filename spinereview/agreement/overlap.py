"""Overlap between two segmentations (reader vs reader, reader vs AI).

Masks and label volumes are numpy arrays of equal shape; label volumes are ``(z, y, x)``.
Counts are voxel counts: overlap scores are ratios, so voxel size cancels out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["OverlapResult", "dice_per_label", "dice_score", "iou_score", "mask_overlap"]


@dataclass(frozen=True)
class OverlapResult:
    """Overlap of one structure between a reference and a test segmentation.

    Attributes:
        dice: Dice similarity coefficient, ``nan`` when both are empty.
        iou: intersection over union (Jaccard index), ``nan`` when both are empty.
        reference_voxels: voxels of the structure in the reference.
        test_voxels: voxels of the structure in the test segmentation.
        intersection_voxels: voxels in both.
    """

    dice: float
    iou: float
    reference_voxels: int
    test_voxels: int
    intersection_voxels: int


def _as_mask(mask: npt.ArrayLike, name: str) -> npt.NDArray[np.bool_]:
    array = np.asarray(mask)
    if array.dtype == np.bool_:
        return array
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"{name} must be a boolean or numeric mask, got dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    foreground: npt.NDArray[np.bool_] = array != 0
    return foreground


def mask_overlap(reference_mask: npt.ArrayLike, test_mask: npt.ArrayLike) -> OverlapResult:
    """Dice, IoU and the voxel counts they come from, for two binary masks of equal shape.

    Non-zero voxels are foreground. See :func:`dice_score` and :func:`iou_score` for the
    formulas and the empty-mask convention.

    Raises:
        ValueError: shapes differ, or a mask is not boolean/numeric or holds NaN.
    """
    a = _as_mask(reference_mask, "reference_mask")
    b = _as_mask(test_mask, "test_mask")
    if a.shape != b.shape:
        raise ValueError(f"mask shapes differ: {a.shape} and {b.shape}")
    n_a = int(np.count_nonzero(a))
    n_b = int(np.count_nonzero(b))
    n_ab = int(np.count_nonzero(a & b))
    if n_a + n_b == 0:
        dice = iou = float("nan")
    else:
        dice = 2.0 * n_ab / (n_a + n_b)
        iou = n_ab / (n_a + n_b - n_ab)
    return OverlapResult(
        dice=dice,
        iou=iou,
        reference_voxels=n_a,
        test_voxels=n_b,
        intersection_voxels=n_ab,
    )


def dice_score(a_mask: npt.ArrayLike, b_mask: npt.ArrayLike) -> float:
    """Dice similarity coefficient of two binary masks of equal shape (non-zero = foreground).

    ``DSC = 2 |A ∩ B| / (|A| + |B|)``, in [0, 1]; symmetric in A and B.

    Both masks empty: ``nan`` (undefined: there is nothing to agree on). This is the
    convention of MONAI ``DiceMetric(ignore_empty=True)``; callers that want to count "both
    empty" as perfect agreement must decide that explicitly.

    Reference: Dice LR (1945) Ecology 26:297-302; Taha AA, Hanbury A (2015) BMC Med Imaging
    15:29.

    Raises:
        ValueError: shapes differ, or a mask is not boolean/numeric or holds NaN.
    """
    return mask_overlap(a_mask, b_mask).dice


def iou_score(a_mask: npt.ArrayLike, b_mask: npt.ArrayLike) -> float:
    """Intersection over union (Jaccard index) of two binary masks of equal shape.

    ``IoU = |A ∩ B| / |A ∪ B| = DSC / (2 - DSC)``, in [0, 1]; both masks empty: ``nan``.

    Reference: Jaccard P (1912) New Phytol 11:37-50; Taha & Hanbury (2015).

    Raises:
        ValueError: shapes differ, or a mask is not boolean/numeric or holds NaN.
    """
    return mask_overlap(a_mask, b_mask).iou


def dice_per_label(
    reference_labels: npt.ArrayLike,
    test_labels: npt.ArrayLike,
    labels: Mapping[int, str],
) -> dict[str, OverlapResult]:
    """Dice and IoU for every structure of two ``(z, y, x)`` label volumes.

    ``labels`` maps label value -> structure name (e.g. ``{1: "L4-L5 disc"}``); the result is
    keyed by name, in the mapping's order. Label values absent from ``labels`` (background
    included) are ignored. A structure absent from both volumes gets ``dice = iou = nan``.

    Raises:
        ValueError: volumes are not 3-D, shapes differ, volumes are not integer-typed, or two
            labels share a name.
        TypeError: a label value is not an integer.
    """
    ref = np.asarray(reference_labels)
    test = np.asarray(test_labels)
    for name, volume in (("reference_labels", ref), ("test_labels", test)):
        if volume.ndim != 3:
            raise ValueError(f"{name} must be a (z, y, x) volume, got shape {volume.shape}")
        if not np.issubdtype(volume.dtype, np.integer):
            raise ValueError(f"{name} must hold integer labels, got dtype {volume.dtype}")
    if ref.shape != test.shape:
        raise ValueError(f"label volume shapes differ: {ref.shape} and {test.shape}")
    for value in labels:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"label values must be integers, got {value!r}")
    names = list(labels.values())
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"label names must be unique; repeated: {duplicates}")
    return {name: mask_overlap(ref == value, test == value) for value, name in labels.items()}

"""The clinical measurements the evaluation compares with the phantom's analytic truth.

Small on purpose (ml may not import spinereview.morphometry); the same definitions as the
phantom's truth (ml.phantom.render.measurements_from_anatomy):

- DSCA (mm²): dural-sac pixels on the axial slice at the disc mid-plane x pixel area
  (PixelSpacing[0] x PixelSpacing[1]).
- Canal AP diameter (mm): canal pixels (spinal canal + dural sac) in the image column through
  the spine axis (patient x = spine_axis_x_mm) on that slice x the row spacing (patient y).
- Disc height (mm): on the mid-sagittal slice (patient x nearest the spine axis), in the
  column at the given patient y, the length of the run of disc pixels that contains the row
  nearest the disc mid-plane z, x the row spacing (patient z). None if that row is not disc.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray


def _slice(labels: NDArray[np.uint8]) -> NDArray[np.uint8]:
    arr = np.asarray(labels)
    if arr.ndim != 2:
        raise ValueError(f"need one 2-D label slice, got shape {arr.shape}")
    return arr


def area_mm2(labels: NDArray[np.uint8], label: int | Sequence[int], pixel_spacing_mm: tuple[float, float]) -> float:
    """Area of `label` (or of several labels together) on one slice, mm²."""
    arr = _slice(labels)
    if not all(s > 0 for s in pixel_spacing_mm):
        raise ValueError(f"pixel spacing must be positive, got {pixel_spacing_mm}")
    values = [label] if isinstance(label, int) else list(label)
    return float(np.count_nonzero(np.isin(arr, values))) * pixel_spacing_mm[0] * pixel_spacing_mm[1]


def column_length_mm(
    labels: NDArray[np.uint8], column: int, labels_counted: Sequence[int], row_spacing_mm: float
) -> float:
    """Number of pixels of `labels_counted` in one image column x the row spacing, mm."""
    arr = _slice(labels)
    if not 0 <= column < arr.shape[1]:
        raise ValueError(f"column {column} outside the slice (0..{arr.shape[1] - 1})")
    return float(np.count_nonzero(np.isin(arr[:, column], list(labels_counted)))) * row_spacing_mm


def run_length_mm(
    labels: NDArray[np.uint8], column: int, row: int, label: int, row_spacing_mm: float
) -> float | None:
    """Length of the run of `label` along `column` that contains `row`, mm; None if `row` is
    not `label`."""
    arr = _slice(labels)
    if not (0 <= column < arr.shape[1] and 0 <= row < arr.shape[0]):
        raise ValueError(f"pixel ({row}, {column}) outside the slice {arr.shape}")
    line = arr[:, column] == label
    if not line[row]:
        return None
    top = row
    while top > 0 and line[top - 1]:
        top -= 1
    bottom = row
    while bottom < len(line) - 1 and line[bottom + 1]:
        bottom += 1
    return (bottom - top + 1) * row_spacing_mm

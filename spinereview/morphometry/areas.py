"""In-plane areas and diameters of structures in label volumes, in mm² and mm."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from spinereview.morphometry.geometry import SeriesGeometry, SliceGeometry

__all__ = ["PATIENT_SUPERIOR", "ap_diameter_mm", "check_label_volume", "structure_area_per_slice_mm2"]

# Below this in-plane share of the anterior-posterior axis (cos 60°) the slice is closer to
# coronal than to axial or sagittal, and an AP extent measured in it means nothing.
_MIN_AP_COMPONENT = 0.5
# A cross-section through a slice more than 60° from perpendicular to the structure's axis is
# a long smear of partial volume, not an area anyone measures.
_MIN_AXIS_COSINE = 0.5

PATIENT_SUPERIOR: tuple[float, float, float] = (0.0, 0.0, 1.0)
"""LPS +z, the default long axis of the spinal canal."""


def check_label_volume(labels: npt.ArrayLike, geometry: SeriesGeometry, name: str = "labels") -> npt.NDArray[np.integer]:
    """The label volume as an integer ``(z, y, x)`` array, checked against its geometry.

    Raises:
        ValueError: not 3-D, not an integer (or boolean) array, or ``z`` differs from the
            number of slices in ``geometry``.
    """
    volume = np.asarray(labels)
    if volume.ndim != 3:
        raise ValueError(f"{name} must be a (z, y, x) volume, got shape {volume.shape}")
    if volume.dtype == np.bool_:
        volume = volume.astype(np.uint8)
    if not np.issubdtype(volume.dtype, np.integer):
        raise ValueError(f"{name} must hold integer labels, got dtype {volume.dtype}")
    if volume.shape[0] != len(geometry.slices):
        raise ValueError(f"{name} has {volume.shape[0]} slices (z) but the geometry describes {len(geometry.slices)}")
    checked: npt.NDArray[np.integer] = volume
    return checked


def _unit_axis(axis: Sequence[float], what: str = "axis") -> npt.NDArray[np.float64]:
    vector = np.asarray(axis, dtype=np.float64)
    if vector.shape != (3,) or not np.all(np.isfinite(vector)):
        raise ValueError(f"{what} must be 3 finite numbers (a direction in LPS), got {axis!r}")
    norm = float(np.linalg.norm(vector))
    if norm < 1e-9:
        raise ValueError(f"{what} must be a non-zero direction, got {axis!r}")
    unit: npt.NDArray[np.float64] = vector / norm
    return unit


def structure_area_per_slice_mm2(
    labels: npt.ArrayLike,
    geometry: SeriesGeometry,
    label: int,
    *,
    axis: Sequence[float] | None = None,
) -> npt.NDArray[np.float64]:
    """Area of structure ``label`` on every slice, in mm², shape ``(z,)``.

    ``area_k = (number of pixels == label on slice k) * PixelSpacing_k[0] * PixelSpacing_k[1]``.

    Without ``axis`` this is the area **in the slice plane**: on an oblique slice it is the
    area of the oblique cross-section, as a reader measuring on that image would get. With
    ``axis`` (the direction of the structure's long axis in LPS, e.g. a disc-plane normal for
    the dural sac at that disc) the in-plane area is projected onto the plane perpendicular to
    the axis, ``area_k * |n_k . axis|`` (``n_k`` the slice normal): a plane section of a
    cylinder along ``axis`` has area ``A_perp / |cos angle|``, so this gives the same physical
    cross-section whatever the slice angulation. A slice without the structure has area 0.0.

    Raises:
        ValueError: see :func:`check_label_volume`; ``axis`` not a finite non-zero direction,
            or a slice within 60° of parallel to it (``|n_k . axis| < 0.5``).
    """
    volume = check_label_volume(labels, geometry)
    counts = np.count_nonzero(volume == label, axis=(1, 2))
    pixel_area = np.array([s.pixel_area_mm2 for s in geometry.slices], dtype=np.float64)
    area: npt.NDArray[np.float64] = counts * pixel_area
    if axis is not None:
        unit = _unit_axis(axis)
        cosines = np.array([abs(float(s.normal @ unit)) for s in geometry.slices])
        if np.any(cosines < _MIN_AXIS_COSINE):
            k = int(np.argmin(cosines))
            raise ValueError(
                f"slice {k} is {math.degrees(math.acos(cosines[k])):.1f}° from perpendicular to the axis "
                f"{tuple(unit.round(4))}; a cross-section needs a slice within 60° of perpendicular"
            )
        area = area * cosines
    return area


def ap_diameter_mm(
    mask2d: npt.ArrayLike,
    slice_geometry: SliceGeometry,
    *,
    axis: Sequence[float] = PATIENT_SUPERIOR,
) -> float:
    """Extent of a 2-D mask along the anterior-posterior direction perpendicular to ``axis``, in mm.

    The measuring direction is the patient's AP axis (LPS +y) made perpendicular to the
    structure's long ``axis``: ``d = normalise(e_y - (e_y . axis) axis)``. By default ``axis``
    is patient z (a canal running cranio-caudally), so ``d = e_y``: the diameter is measured
    along the patient's AP axis from ImageOrientationPatient, never along the image rows.
    With pixel centres ``p(r, c) = IPP + c * ps[1] * row_cosine + r * ps[0] * column_cosine``::

        AP = max(p . d) - min(p . d) + |ps[1] * row_cosine . d| + |ps[0] * column_cosine . d|

    over the mask's pixels: the spread of pixel centres along ``d``, plus the projected size of
    one pixel (so a single pixel row of a straight axial image measures ``ps[0]``, not 0). The
    error is therefore below one projected pixel. Because ``d`` is perpendicular to ``axis``,
    every plane section of a cylinder along ``axis`` projects onto the same cross-section:
    the answer does not depend on pixel anisotropy, in-plane rotation of the image grid, or
    the slice's tilt against the axis. Pass a disc-plane normal as ``axis`` where the canal is
    angled (lordosis), so that the diameter is the canal's own, not its shadow on patient y.

    Non-zero pixels of ``mask2d`` are the structure: pass ``labels[k] == label``, not a whole
    label slice.

    Raises:
        ValueError: the mask is not 2-D, not boolean/integer, or empty (an absent structure
            has no diameter); ``axis`` is not a direction or runs along the AP axis; the slice
            plane is nearly perpendicular to ``d`` (in-plane share of ``d`` below 0.5, e.g. a
            coronal slice).
    """
    mask = np.asarray(mask2d)
    if mask.ndim != 2:
        raise ValueError(f"mask2d must be a (y, x) image, got shape {mask.shape}")
    if not (mask.dtype == np.bool_ or np.issubdtype(mask.dtype, np.integer)):
        raise ValueError(f"mask2d must be boolean or integer, got dtype {mask.dtype}")
    unit = _unit_axis(axis)
    ap = np.array([0.0, 1.0, 0.0]) - unit[1] * unit
    if float(np.linalg.norm(ap)) < _MIN_AP_COMPONENT:
        raise ValueError(f"axis {tuple(unit.round(4))} runs along the anterior-posterior axis: no AP diameter across it")
    direction = ap / np.linalg.norm(ap)
    row_d = float(np.asarray(slice_geometry.row_cosine) @ direction)
    col_d = float(np.asarray(slice_geometry.column_cosine) @ direction)
    ap_share = float(np.hypot(row_d, col_d))
    if ap_share < _MIN_AP_COMPONENT:
        raise ValueError(
            "the slice plane is nearly perpendicular to the anterior-posterior axis "
            f"(in-plane share of patient y {ap_share:.3f}); AP diameter needs an axial or "
            "sagittal slice"
        )
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        raise ValueError("mask2d is empty: an absent structure has no AP diameter")
    step_c = slice_geometry.pixel_spacing_mm[1] * row_d
    step_r = slice_geometry.pixel_spacing_mm[0] * col_d
    position = cols * step_c + rows * step_r  # IPP . d is common to every pixel and cancels
    return float(position.max() - position.min()) + abs(step_c) + abs(step_r)

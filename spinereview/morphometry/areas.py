"""In-plane areas and diameters of structures in label volumes, in mm² and mm."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from spinereview.morphometry.geometry import SeriesGeometry, SliceGeometry

__all__ = ["ap_diameter_mm", "structure_area_per_slice_mm2"]

# Below this in-plane share of the anterior-posterior axis (cos 60°) the slice is closer to
# coronal than to axial or sagittal, and an AP extent measured in it means nothing.
_MIN_AP_COMPONENT = 0.5


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


def structure_area_per_slice_mm2(labels: npt.ArrayLike, geometry: SeriesGeometry, label: int) -> npt.NDArray[np.float64]:
    """Area of structure ``label`` on every slice, in mm², shape ``(z,)``.

    ``area_k = (number of pixels == label on slice k) * PixelSpacing_k[0] * PixelSpacing_k[1]``.

    This is the area **in the slice plane**: on an oblique slice it is the area of the oblique
    cross-section, as a reader measuring on that image would get. A slice without the
    structure has area 0.0.

    Raises:
        ValueError: see :func:`check_label_volume`.
    """
    volume = check_label_volume(labels, geometry)
    counts = np.count_nonzero(volume == label, axis=(1, 2))
    pixel_area = np.array([s.pixel_area_mm2 for s in geometry.slices], dtype=np.float64)
    area: npt.NDArray[np.float64] = counts * pixel_area
    return area


def ap_diameter_mm(mask2d: npt.ArrayLike, slice_geometry: SliceGeometry) -> float:
    """Extent of a 2-D mask along the patient's anterior-posterior axis (LPS y), in mm.

    With pixel centres ``p(r, c) = IPP + c * ps[1] * row_cosine + r * ps[0] * column_cosine``::

        AP = max(p_y) - min(p_y) + |ps[1] * row_cosine_y| + |ps[0] * column_cosine_y|

    over the mask's pixels: the spread of pixel centres projected on patient y, plus the
    projected size of one pixel (so a single pixel row of a straight axial image measures
    ``ps[0]``, not 0). The projection makes the answer independent of pixel anisotropy and of
    tilting the slice about the left-right axis: for a canal running cranio-caudally, an
    oblique (disc-parallel) axial slice gives the same AP diameter as a straight one, whereas
    the in-plane extent would be longer by ``1 / cos(tilt)``.

    Non-zero pixels of ``mask2d`` are the structure: pass ``labels[k] == label``, not a whole
    label slice. An empty mask measures 0.0.

    Raises:
        ValueError: the mask is not 2-D or not boolean/integer, or the slice plane is nearly
            perpendicular to the AP axis (in-plane share of patient y below 0.5, e.g. coronal).
    """
    mask = np.asarray(mask2d)
    if mask.ndim != 2:
        raise ValueError(f"mask2d must be a (y, x) image, got shape {mask.shape}")
    if not (mask.dtype == np.bool_ or np.issubdtype(mask.dtype, np.integer)):
        raise ValueError(f"mask2d must be boolean or integer, got dtype {mask.dtype}")
    row_y = slice_geometry.pixel_spacing_mm[1] * slice_geometry.row_cosine[1]
    col_y = slice_geometry.pixel_spacing_mm[0] * slice_geometry.column_cosine[1]
    ap_share = float(np.hypot(slice_geometry.row_cosine[1], slice_geometry.column_cosine[1]))
    if ap_share < _MIN_AP_COMPONENT:
        raise ValueError(
            "the slice plane is nearly perpendicular to the anterior-posterior axis "
            f"(in-plane share of patient y {ap_share:.3f}); AP diameter needs an axial or "
            "sagittal slice"
        )
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return 0.0
    y = cols * row_y + rows * col_y  # IPP_y is common to every pixel and cancels
    return float(y.max() - y.min()) + abs(row_y) + abs(col_y)

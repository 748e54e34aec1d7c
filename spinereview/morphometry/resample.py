"""Values of one series at points in patient coordinates: images of another series on a mask's grid.

A fat/water (Dixon) pair is rarely acquired on the grid of the axial T2 series that was
segmented. Each mask pixel centre is located in the other series (nearest slice plane, then
nearest pixel in that plane), so the fat fraction is read where the muscle is, whatever the two
series' orientation, angulation and pixel spacing. A point the other series does not image gives
NaN, never a neighbouring value.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from spinereview.morphometry.geometry import SeriesGeometry

__all__ = ["sample_nearest"]


def sample_nearest(image: npt.ArrayLike, geometry: SeriesGeometry, points_mm: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Nearest-neighbour values of ``image`` (``(z, y, x)`` on ``geometry``) at patient points.

    For each point (LPS, mm, shape ``(..., 3)``) the slice whose plane is nearest is chosen; the
    point must lie within half that slice's thickness of its plane and inside its pixel grid
    (within half a pixel of the outer pixel centres), else the value is NaN. The in-plane
    position is the projection on the slice's row and column cosines, so oblique and
    anisotropic grids are handled exactly.

    Raises:
        ValueError: ``image`` is not a volume of ``len(geometry)`` slices; points not ``(..., 3)``
            finite numbers.
    """
    volume = np.asarray(image, dtype=np.float64)
    if volume.ndim != 3 or volume.shape[0] != len(geometry):
        raise ValueError(f"image has shape {volume.shape} but its geometry describes {len(geometry)} slices")
    points = np.asarray(points_mm, dtype=np.float64)
    if points.shape[-1:] != (3,) or not np.all(np.isfinite(points)):
        raise ValueError(f"points must be finite (..., 3) patient coordinates in mm, got shape {points.shape}")
    flat = points.reshape(-1, 3)
    slices = geometry.slices
    origins = np.array([s.image_position_mm for s in slices], dtype=np.float64)
    normals = np.array([s.normal for s in slices], dtype=np.float64)
    offsets = flat[None, :, :] - origins[:, None, :]  # (slices, points, 3)
    distance = np.abs(np.einsum("spk,sk->sp", offsets, normals))
    nearest = np.argmin(distance, axis=0)
    picked = np.arange(flat.shape[0])
    offset = offsets[nearest, picked]
    rows_cos = np.array([s.row_cosine for s in slices], dtype=np.float64)[nearest]
    cols_cos = np.array([s.column_cosine for s in slices], dtype=np.float64)[nearest]
    spacing = np.array([s.pixel_spacing_mm for s in slices], dtype=np.float64)[nearest]
    thickness = np.array([s.slice_thickness_mm for s in slices], dtype=np.float64)[nearest]
    column = np.rint(np.einsum("pk,pk->p", offset, rows_cos) / spacing[:, 1]).astype(np.int64)
    row = np.rint(np.einsum("pk,pk->p", offset, cols_cos) / spacing[:, 0]).astype(np.int64)
    inside = (
        (distance[nearest, picked] <= thickness / 2 + 1e-6)
        & (row >= 0)
        & (row < volume.shape[1])
        & (column >= 0)
        & (column < volume.shape[2])
    )
    values = np.full(flat.shape[0], np.nan)
    values[inside] = volume[nearest[inside], row[inside], column[inside]]
    return values.reshape(points.shape[:-1])

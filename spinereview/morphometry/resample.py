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

__all__ = ["nearest_voxels", "sample_nearest"]


def nearest_voxels(
    geometry: SeriesGeometry, shape: tuple[int, ...], points_mm: npt.ArrayLike
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Indices ``(slice, row, column)`` of the voxel of a ``(z, y, x)`` volume on ``geometry`` nearest each
    point (flattened), and whether the point lies in it (see :func:`sample_nearest`).

    Raises:
        ValueError: ``shape`` is not a volume of ``len(geometry)`` slices; points not finite ``(..., 3)``.
    """
    if len(shape) != 3 or shape[0] != len(geometry):
        raise ValueError(f"image has shape {tuple(shape)} but its geometry describes {len(geometry)} slices")
    points = np.asarray(points_mm, dtype=np.float64)
    if points.shape[-1:] != (3,) or not np.all(np.isfinite(points)):
        raise ValueError(f"points must be finite (..., 3) patient coordinates in mm, got shape {points.shape}")
    flat = points.reshape(-1, 3)
    slices = geometry.slices
    origins = np.array([s.image_position_mm for s in slices], dtype=np.float64)
    normals = np.array([s.normal for s in slices], dtype=np.float64)
    # signed distance of every point to every slice plane: p . n_s - o_s . n_s, one matrix product
    signed = flat @ normals.T - np.einsum("sk,sk->s", origins, normals)[None, :]
    distance = np.abs(signed)
    nearest = np.argmin(distance, axis=1)
    picked = np.arange(flat.shape[0])
    offset = flat - origins[nearest]
    rows_cos = np.array([s.row_cosine for s in slices], dtype=np.float64)[nearest]
    cols_cos = np.array([s.column_cosine for s in slices], dtype=np.float64)[nearest]
    spacing = np.array([s.pixel_spacing_mm for s in slices], dtype=np.float64)[nearest]
    thickness = np.array([s.slice_thickness_mm for s in slices], dtype=np.float64)[nearest]
    column = np.rint(np.einsum("pk,pk->p", offset, rows_cos) / spacing[:, 1]).astype(np.int64)
    row = np.rint(np.einsum("pk,pk->p", offset, cols_cos) / spacing[:, 0]).astype(np.int64)
    inside = (distance[picked, nearest] <= thickness / 2 + 1e-6) & (row >= 0) & (row < shape[1]) & (column >= 0) & (column < shape[2])
    return nearest.astype(np.int64), np.where(inside, row, 0), np.where(inside, column, 0), inside


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
    k, r, c, inside = nearest_voxels(geometry, volume.shape, points_mm)
    values = np.where(inside, volume[k, r, c], np.nan)
    return values.reshape(np.asarray(points_mm).shape[:-1])

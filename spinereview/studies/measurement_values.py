"""Values of the measurements readers draw, recomputed on the server from points in patient coordinates.

The viewer sends the points (LPS, mm) it placed on the image; lengths and areas follow from them alone,
so what is stored never depends on a client's arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from spinereview.core.errors import ApplicationError

MAX_POINTS = 4000
MAX_COORDINATE_MM = 1e5
# An area ROI must lie in one image plane: points may leave the polygon's best-fit plane by at most this.
PLANARITY_TOLERANCE_MM = 0.5


def _points(raw: Any, where: str) -> np.ndarray:
    if not isinstance(raw, list) or not raw or len(raw) > MAX_POINTS:
        raise ApplicationError(f"{where}: points_mm must be a list of 1 to {MAX_POINTS} [x, y, z] points")
    for point in raw:
        if not isinstance(point, list | tuple) or len(point) != 3 or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in point):
            raise ApplicationError(f"{where}: every point must be [x, y, z] in mm")
    points = np.asarray(raw, dtype=np.float64)
    if not np.all(np.isfinite(points)) or np.any(np.abs(points) > MAX_COORDINATE_MM):
        raise ApplicationError(f"{where}: points must be finite patient coordinates in mm")
    return points


def _distance_mm(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(b - a))


def polygon_area_mm2(points: np.ndarray) -> float:
    """Area of a closed planar polygon in 3-D: half the norm of the sum of cross products of consecutive
    vertices (the vector-area form of the shoelace formula), independent of the plane's orientation."""
    centred = points - points.mean(axis=0)
    cross = np.cross(centred, np.roll(centred, -1, axis=0)).sum(axis=0)
    return float(0.5 * np.linalg.norm(cross))


def _planarity_error_mm(points: np.ndarray) -> float:
    centred = points - points.mean(axis=0)
    # The smallest singular vector is the best-fit plane's normal; distances along it measure the error.
    normal = np.linalg.svd(centred, full_matrices=False)[2][-1]
    return float(np.max(np.abs(centred @ normal)))


def measurement_values(kind: str, raw_points: Sequence[Any], where: str) -> dict[str, float]:
    """The values of one measurement, rounded to 0.01 mm / mm2."""
    points = _points(list(raw_points), where)
    if kind == "length":
        if len(points) != 2:
            raise ApplicationError(f"{where}: a length has exactly 2 points, got {len(points)}")
        return {"length_mm": round(_distance_mm(points[0], points[1]), 2)}
    if kind == "area":
        if len(points) < 3:
            raise ApplicationError(f"{where}: an area outline needs at least 3 points")
        if _planarity_error_mm(points) > PLANARITY_TOLERANCE_MM:
            raise ApplicationError(f"{where}: an area outline must lie on one image plane")
        area = polygon_area_mm2(points)
        if area <= 0 or math.isclose(area, 0.0):
            raise ApplicationError(f"{where}: the outline encloses no area")
        return {"area_mm2": round(area, 2)}
    if kind == "disc_height":
        if len(points) != 6:
            raise ApplicationError(f"{where}: a disc height has 6 points (anterior, middle and posterior: superior and inferior endplate)")
        anterior, middle, posterior = (_distance_mm(points[i], points[i + 1]) for i in (0, 2, 4))
        return {"anterior_mm": round(anterior, 2), "middle_mm": round(middle, 2), "posterior_mm": round(posterior, 2)}
    raise ApplicationError(f"{where}: unknown measurement kind {kind!r}")

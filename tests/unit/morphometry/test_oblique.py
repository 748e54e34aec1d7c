"""Oblique slices and anisotropic pixels give the same physical answers as straight ones.

An elliptic cylinder (the canal or dural sac: semi-axes A across, B antero-posterior) is defined
analytically in patient coordinates around a long axis ``a``, and rasterised by pixel centre
into slices of any tilt, in-plane rotation and pixel spacing. With ``axis=a``, the
cross-sectional area must be pi A B and the AP diameter 2 B on every grid.

Tolerances follow from the pixel size:

* area: a pixel-centre rasterisation errs only in the N ~ perimeter / pixel boundary pixels,
  each by a fraction of a pixel close to uniform on [-1/2, 1/2] (sd 1/sqrt(12)); the in-plane
  area error has sd sqrt(N) * pixel_area / sqrt(12). We allow 4 sd, scaled by |n . a| like the
  area itself.
* AP: the spread of pixel centres along d misses each end by less than one projected pixel and
  the formula adds one projected pixel, so the error is below one projected pixel
  ``ps[1] |row . d| + ps[0] |col . d|``.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spinereview.morphometry import (
    SeriesGeometry,
    SliceGeometry,
    SliceLevel,
    ap_diameter_mm,
    paraspinal_muscles_by_level,
    structure_area_per_slice_mm2,
)

# Not multiples of any spacing used, and the grid is offset by a fraction of a pixel: the
# boundary does not run through rows of pixel centres, so boundary errors are not systematic.
A_MM, B_MM = 8.37, 6.11
CENTRE = np.array([3.0, -20.0, 40.0])


def _rotation_about_x(angle_rad: float) -> npt.NDArray[np.float64]:
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _rotation_about_y(angle_rad: float) -> npt.NDArray[np.float64]:
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _slice(*, tilt_x_rad: float, tilt_y_rad: float, in_plane_rad: float, spacing_mm: tuple[float, float], size: int) -> SliceGeometry:
    """An axial slice through CENTRE, tilted about x then y, its grid rotated in-plane."""
    rotation = _rotation_about_y(tilt_y_rad) @ _rotation_about_x(tilt_x_rad)
    c, s = math.cos(in_plane_rad), math.sin(in_plane_rad)
    row = rotation @ np.array([c, s, 0.0])
    col = rotation @ np.array([-s, c, 0.0])
    half_c, half_r = (size - 1) / 2 + 0.31, (size - 1) / 2 + 0.17
    ipp = CENTRE - half_c * spacing_mm[1] * row - half_r * spacing_mm[0] * col
    return SliceGeometry(
        image_position_mm=(float(ipp[0]), float(ipp[1]), float(ipp[2])),
        row_cosine=(float(row[0]), float(row[1]), float(row[2])),
        column_cosine=(float(col[0]), float(col[1]), float(col[2])),
        pixel_spacing_mm=spacing_mm,
        slice_thickness_mm=3.0,
    )


def _cylinder_mask(geometry: SliceGeometry, size: int, axis: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
    """Pixels whose centre lies inside the elliptic cylinder around ``axis`` through CENTRE."""
    rows, cols = np.mgrid[0:size, 0:size]
    q = geometry.pixel_to_patient_mm(rows, cols) - CENTRE
    across = np.array([1.0, 0.0, 0.0])  # every axis used here lies in the y-z plane
    ap = np.array([0.0, 1.0, 0.0]) - axis[1] * axis
    ap /= np.linalg.norm(ap)
    inside = (q @ across / A_MM) ** 2 + (q @ ap / B_MM) ** 2 <= 1.0
    return inside.astype(np.uint8)


def _measure(
    *, axis_tilt_rad: float, tilt_x_rad: float, tilt_y_rad: float, in_plane_rad: float, spacing_mm: tuple[float, float]
) -> tuple[float, float, float, float]:
    """(area, AP, area tolerance, AP tolerance) of the cylinder on one slice; the area measured
    both as a structure and as a paraspinal muscle (left and right), which must agree exactly."""
    axis = _rotation_about_x(axis_tilt_rad) @ np.array([0.0, 0.0, 1.0])
    size = int(2.6 * max(A_MM, B_MM) / min(spacing_mm) / math.cos(0.8)) + 2
    geometry = _slice(tilt_x_rad=tilt_x_rad, tilt_y_rad=tilt_y_rad, in_plane_rad=in_plane_rad, spacing_mm=spacing_mm, size=size)
    mask = _cylinder_mask(geometry, size, axis)
    area = float(structure_area_per_slice_mm2(mask[None], SeriesGeometry(slices=(geometry,)), 1, axis=tuple(axis))[0])
    ap = ap_diameter_mm(mask, geometry, axis=tuple(axis))
    # The same cylinder labelled as a paraspinal muscle (both sides): its CSA is the same cross-section.
    muscles = paraspinal_muscles_by_level(
        (mask * 5)[None],
        SeriesGeometry(slices=(geometry,)),
        [SliceLevel(0, "L4-L5", 0.0, 0.0)],
        left_label=5,
        right_label=5,
        axis_by_level={"L4-L5": tuple(axis)},
    )["L4-L5"]
    assert muscles["left"].csa_mm2 == muscles["right"].csa_mm2 == area

    cosine = abs(float(geometry.normal @ axis))
    a_in, b_in = A_MM, B_MM / cosine  # generous: the in-plane ellipse is at most this elongated
    perimeter_mm = math.pi * (3 * (a_in + b_in) - math.sqrt((3 * a_in + b_in) * (a_in + 3 * b_in)))
    n_boundary = perimeter_mm / min(spacing_mm)
    area_tolerance = 4 * math.sqrt(n_boundary) * spacing_mm[0] * spacing_mm[1] / math.sqrt(12) * cosine
    d = np.array([0.0, 1.0, 0.0]) - axis[1] * axis
    d /= np.linalg.norm(d)
    ap_tolerance = spacing_mm[1] * abs(float(np.asarray(geometry.row_cosine) @ d)) + spacing_mm[0] * abs(
        float(np.asarray(geometry.column_cosine) @ d)
    )
    return area, ap, area_tolerance, ap_tolerance


CASES = [
    # axis tilt, slice tilt about x, about y, in-plane rotation, pixel spacing
    pytest.param(0.0, 0.0, 0.0, 0.0, (0.5, 0.5), id="straight"),
    pytest.param(0.0, 0.0, 0.0, 0.0, (0.3, 0.9), id="anisotropic"),
    pytest.param(0.0, math.radians(20), 0.0, 0.0, (0.5, 0.5), id="tilted-about-x"),
    pytest.param(0.0, math.radians(-15), math.radians(10), math.radians(30), (0.35, 0.8), id="compound-oblique"),
    pytest.param(math.radians(25), math.radians(25), 0.0, 0.0, (0.5, 0.5), id="lordotic-canal-perpendicular-slice"),
    pytest.param(math.radians(25), 0.0, 0.0, math.radians(-20), (0.4, 0.7), id="lordotic-canal-straight-slice"),
]


@pytest.mark.parametrize(("axis_tilt", "tilt_x", "tilt_y", "in_plane", "spacing"), CASES)
def test_cross_section_area_and_ap_diameter_are_physical(
    axis_tilt: float, tilt_x: float, tilt_y: float, in_plane: float, spacing: tuple[float, float]
) -> None:
    area, ap, area_tolerance, ap_tolerance = _measure(
        axis_tilt_rad=axis_tilt, tilt_x_rad=tilt_x, tilt_y_rad=tilt_y, in_plane_rad=in_plane, spacing_mm=spacing
    )
    assert area == pytest.approx(math.pi * A_MM * B_MM, abs=area_tolerance)
    assert ap == pytest.approx(2 * B_MM, abs=ap_tolerance)


def test_without_an_axis_the_oblique_area_is_the_in_plane_area() -> None:
    # The same vertical cylinder on a slice tilted 30° about x: a reader measuring on that image
    # gets the oblique cut, pi A B / cos(30°); passing the axis recovers pi A B.
    tilt = math.radians(30)
    size = 80
    geometry = _slice(tilt_x_rad=tilt, tilt_y_rad=0.0, in_plane_rad=0.0, spacing_mm=(0.4, 0.4), size=size)
    mask = _cylinder_mask(geometry, size, np.array([0.0, 0.0, 1.0]))[None]
    series = SeriesGeometry(slices=(geometry,))
    in_plane = float(structure_area_per_slice_mm2(mask, series, 1)[0])
    projected = float(structure_area_per_slice_mm2(mask, series, 1, axis=(0.0, 0.0, 1.0))[0])
    assert projected == in_plane * math.cos(tilt)
    assert in_plane == pytest.approx(math.pi * A_MM * B_MM / math.cos(tilt), rel=0.03)


def test_axis_errors() -> None:
    geometry = _slice(tilt_x_rad=0.0, tilt_y_rad=0.0, in_plane_rad=0.0, spacing_mm=(0.5, 0.5), size=16)
    series = SeriesGeometry(slices=(geometry,))
    mask = np.ones((1, 16, 16), dtype=np.uint8)
    with pytest.raises(ValueError, match="within 60° of perpendicular"):
        structure_area_per_slice_mm2(mask, series, 1, axis=(1.0, 0.0, 0.2))
    with pytest.raises(ValueError, match="non-zero direction"):
        structure_area_per_slice_mm2(mask, series, 1, axis=(0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="3 finite numbers"):
        ap_diameter_mm(mask[0], geometry, axis=(0.0, math.nan, 1.0))
    with pytest.raises(ValueError, match="runs along the anterior-posterior axis"):
        ap_diameter_mm(mask[0], geometry, axis=(0.0, 1.0, 0.1))


@settings(max_examples=25, deadline=None)
@given(
    axis_tilt=st.floats(-0.5, 0.5),
    relative_tilt=st.floats(-0.5, 0.5),
    tilt_y=st.floats(-0.3, 0.3),
    in_plane=st.floats(-math.pi, math.pi),
    spacing=st.tuples(st.floats(0.3, 1.0), st.floats(0.3, 1.0)),
)
def test_any_rigid_grid_measures_the_same_cylinder(
    axis_tilt: float, relative_tilt: float, tilt_y: float, in_plane: float, spacing: tuple[float, float]
) -> None:
    area, ap, area_tolerance, ap_tolerance = _measure(
        axis_tilt_rad=axis_tilt, tilt_x_rad=axis_tilt + relative_tilt, tilt_y_rad=tilt_y, in_plane_rad=in_plane, spacing_mm=spacing
    )
    assert area == pytest.approx(math.pi * A_MM * B_MM, abs=area_tolerance)
    assert ap == pytest.approx(2 * B_MM, abs=ap_tolerance)

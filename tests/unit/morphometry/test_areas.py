"""Areas and AP diameters of synthetic masks whose physical size is known exactly."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest

from spinereview.morphometry import (
    SeriesGeometry,
    SliceGeometry,
    ap_diameter_mm,
    structure_area_per_slice_mm2,
)

TILT = math.radians(20.0)


def axial(
    z_mm: float = 0.0,
    *,
    spacing_mm: tuple[float, float] = (0.5, 0.5),
    tilt_rad: float = 0.0,
) -> SliceGeometry:
    """An axial slice rotated by ``tilt_rad`` about the patient's left-right (x) axis."""
    return SliceGeometry(
        image_position_mm=(-50.0, -60.0, z_mm),
        row_cosine=(1.0, 0.0, 0.0),
        column_cosine=(0.0, math.cos(tilt_rad), math.sin(tilt_rad)),
        pixel_spacing_mm=spacing_mm,
        slice_thickness_mm=4.0,
    )


def test_rectangle_areas_per_slice_with_anisotropic_pixels() -> None:
    labels = np.zeros((3, 64, 64), dtype=np.uint8)
    labels[0, 10:20, 5:25] = 2  # 10 x 20 pixels
    labels[0, 30:40, 30:40] = 1  # another structure: not counted
    labels[2, 0:5, 0:8] = 2  # 5 x 8 pixels
    geometry = SeriesGeometry(
        slices=(
            axial(0.0, spacing_mm=(0.5, 0.8)),
            axial(4.0, spacing_mm=(0.5, 0.8)),
            axial(8.0, spacing_mm=(0.25, 0.25)),
        )
    )

    area = structure_area_per_slice_mm2(labels, geometry, 2)

    assert area.dtype == np.float64
    assert area.tolist() == pytest.approx([80.0, 0.0, 2.5], rel=1e-12)
    assert area[1] == 0.0  # the structure is absent: exactly zero


def test_the_same_physical_rectangle_measures_the_same_on_any_grid_and_tilt() -> None:
    # 10 mm (rows direction) x 16 mm (columns direction) drawn on three pixel grids.
    square = np.zeros((1, 64, 64), dtype=np.uint8)
    square[0, 0:20, 0:32] = 1  # 0.5 x 0.5 mm pixels
    anisotropic = np.zeros((1, 64, 64), dtype=np.uint8)
    anisotropic[0, 0:25, 0:20] = 1  # 0.4 x 0.8 mm pixels
    cases = [
        (square, axial(spacing_mm=(0.5, 0.5))),
        (anisotropic, axial(spacing_mm=(0.4, 0.8))),
        (square, axial(spacing_mm=(0.5, 0.5), tilt_rad=TILT)),
        (anisotropic, axial(spacing_mm=(0.4, 0.8), tilt_rad=TILT)),
    ]
    for labels, slice_geometry in cases:
        area = structure_area_per_slice_mm2(labels, SeriesGeometry(slices=(slice_geometry,)), 1)
        assert area.tolist() == pytest.approx([160.0], rel=1e-12)


def test_digital_disc_area_approaches_pi_r_squared() -> None:
    # Radius 40 pixels of 0.25 mm = 10 mm; a digitised disc is within 0.5% of pi r^2 here.
    rows, cols = np.mgrid[0:100, 0:100]
    disc = ((rows - 50) ** 2 + (cols - 50) ** 2 <= 40**2).astype(np.uint8)[None]
    area = structure_area_per_slice_mm2(disc, SeriesGeometry(slices=(axial(spacing_mm=(0.25, 0.25)),)), 1)
    assert int(disc.sum()) == 5025
    assert area[0] == pytest.approx(5025 * 0.0625, rel=1e-12)
    assert area[0] == pytest.approx(math.pi * 10.0**2, rel=5e-3)


def test_empty_volume_has_zero_area_on_every_slice() -> None:
    labels = np.zeros((4, 8, 8), dtype=np.uint8)
    geometry = SeriesGeometry(slices=tuple(axial(4.0 * k) for k in range(4)))
    assert structure_area_per_slice_mm2(labels, geometry, 3).tolist() == [0.0] * 4


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.zeros((3, 8, 8), np.uint8), "3 slices \\(z\\) but the geometry describes 2"),
        (np.zeros((8, 8), np.uint8), "must be a \\(z, y, x\\) volume"),
        (np.zeros((2, 8, 8), np.float32), "integer labels"),
    ],
)
def test_volume_geometry_mismatch_is_a_value_error(labels: npt.NDArray[np.generic], message: str) -> None:
    geometry = SeriesGeometry(slices=(axial(0.0), axial(4.0)))
    with pytest.raises(ValueError, match=message):
        structure_area_per_slice_mm2(labels, geometry, 1)


# --------------------------------------------------------------------------- AP diameter


def test_ap_diameter_on_a_straight_axial_slice() -> None:
    mask = np.zeros((64, 64), dtype=bool)
    mask[10:30, 5:15] = True  # 20 rows of 0.5 mm along +y (posterior)
    assert ap_diameter_mm(mask, axial(spacing_mm=(0.5, 0.5))) == 10.0
    single = np.zeros((64, 64), dtype=np.uint8)
    single[3, 3] = 1
    assert ap_diameter_mm(single, axial(spacing_mm=(0.5, 0.8))) == 0.5  # one row spacing


def test_ap_diameter_is_the_same_for_anisotropic_and_oblique_pixels() -> None:
    # A 10 mm AP extent of a canal running along patient z. On an axial slice tilted by 20°
    # about x, rows advance by ps[0] * cos(20°) in patient y, so 20 rows of 0.5 / cos(20°) mm
    # cover the same 10 mm of patient y.
    straight = np.zeros((64, 64), dtype=bool)
    straight[10:30, 5:15] = True
    anisotropic = np.zeros((64, 64), dtype=bool)
    anisotropic[10:50, 5:9] = True  # 40 rows of 0.25 mm, columns of 0.9 mm
    oblique_spacing = (0.5 / math.cos(TILT), 0.5)

    assert ap_diameter_mm(straight, axial(spacing_mm=(0.5, 0.5))) == 10.0
    assert ap_diameter_mm(anisotropic, axial(spacing_mm=(0.25, 0.9))) == 10.0
    assert ap_diameter_mm(straight, axial(spacing_mm=oblique_spacing, tilt_rad=TILT)) == pytest.approx(10.0, rel=1e-12)


def test_ap_diameter_of_a_vertical_cylinder_cut_by_an_oblique_slice() -> None:
    # Physical check: a cylinder of radius 6 mm along patient z, sampled by the pixel centres
    # of a straight and of a 20°-tilted axial slice. The oblique cut is an ellipse 12/cos(20°)
    # mm long in-plane, but its extent along patient y is still 12 mm (to within a pixel).
    spacing = (0.1, 0.1)
    rows, cols = np.mgrid[0:200, 0:200]
    for tilt in (0.0, TILT):
        geometry = SliceGeometry(
            image_position_mm=(-10.0, -10.0 * math.cos(tilt), -10.0 * math.sin(tilt)),
            row_cosine=(1.0, 0.0, 0.0),
            column_cosine=(0.0, math.cos(tilt), math.sin(tilt)),
            pixel_spacing_mm=spacing,
            slice_thickness_mm=3.0,
        )
        centres = geometry.pixel_to_patient_mm(rows, cols)
        mask = centres[..., 0] ** 2 + centres[..., 1] ** 2 <= 6.0**2
        in_plane_rows = int(np.ptp(np.nonzero(mask)[0])) + 1
        assert ap_diameter_mm(mask, geometry) == pytest.approx(12.0, abs=0.1)
        assert in_plane_rows * spacing[0] == pytest.approx(12.0 / math.cos(tilt), abs=0.2)


def test_ap_diameter_on_sagittal_and_in_plane_rotated_slices() -> None:
    mask = np.zeros((32, 32), dtype=bool)
    mask[4:8, 10:26] = True  # 4 rows x 16 columns
    sagittal = SliceGeometry(
        image_position_mm=(0.0, -40.0, 60.0),
        row_cosine=(0.0, 1.0, 0.0),  # columns go posterior
        column_cosine=(0.0, 0.0, -1.0),  # rows go inferior
        pixel_spacing_mm=(0.5, 0.75),
        slice_thickness_mm=4.0,
    )
    assert ap_diameter_mm(mask, sagittal) == 12.0  # 16 columns x 0.75 mm
    rotated_axial = SliceGeometry(
        image_position_mm=(0.0, 0.0, 0.0),
        row_cosine=(0.0, -1.0, 0.0),  # columns go anterior
        column_cosine=(1.0, 0.0, 0.0),
        pixel_spacing_mm=(0.5, 0.5),
        slice_thickness_mm=4.0,
    )
    assert ap_diameter_mm(mask, rotated_axial) == 8.0  # 16 columns x 0.5 mm


def test_ap_diameter_of_an_empty_mask_is_an_error_not_zero() -> None:
    with pytest.raises(ValueError, match="mask2d is empty"):
        ap_diameter_mm(np.zeros((8, 8), dtype=bool), axial())


def test_ap_diameter_rejects_bad_masks_and_coronal_slices() -> None:
    with pytest.raises(ValueError, match="\\(y, x\\) image"):
        ap_diameter_mm(np.zeros((2, 8, 8), dtype=bool), axial())
    with pytest.raises(ValueError, match="boolean or integer"):
        ap_diameter_mm(np.zeros((8, 8), dtype=np.float64), axial())
    coronal = SliceGeometry(
        image_position_mm=(0.0, 0.0, 0.0),
        row_cosine=(1.0, 0.0, 0.0),
        column_cosine=(0.0, 0.0, -1.0),
        pixel_spacing_mm=(0.5, 0.5),
        slice_thickness_mm=4.0,
    )
    with pytest.raises(ValueError, match="perpendicular to the anterior-posterior axis"):
        ap_diameter_mm(np.ones((8, 8), dtype=bool), coronal)

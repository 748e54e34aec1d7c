"""HD95, ASSD and volume difference on masks whose distances are known exactly."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import given, settings
from hypothesis import strategies as st

from spinereview.agreement import assd_error, hd95_error, surface_distances, volume_difference

Mask = np.ndarray[Any, np.dtype[np.bool_]]


def _empty(shape: tuple[int, int, int] = (8, 9, 10)) -> Mask:
    return np.zeros(shape, dtype=bool)


def test_two_single_voxels_are_the_anisotropic_distance_apart() -> None:
    a, b = _empty(), _empty()
    a[1, 2, 3] = True
    b[3, 5, 7] = True  # offsets (2, 3, 4) voxels
    spacing = (3.0, 1.0, 0.5)  # z, y, x in mm: (6, 3, 2) mm -> 7 mm
    result = surface_distances(a, b, spacing)
    assert result.hd95_mm == 7.0 and result.hausdorff_mm == 7.0 and result.assd_mm == 7.0
    assert hd95_error(a, b, spacing) == 7.0 and assd_error(a, b, spacing) == 7.0
    # Spacing is (z, y, x): the same masks with the spacing reversed are sqrt(1 + 9 + 36) apart.
    assert surface_distances(a, b, (0.5, 1.0, 3.0)).hausdorff_mm == pytest.approx(math.sqrt(2**2 * 0.25 + 9 + 16 * 9), rel=1e-12)


def test_boxes_shifted_along_z() -> None:
    a, b = _empty((12, 10, 10)), _empty((12, 10, 10))
    a[2:6, 2:8, 2:8] = True
    b[4:8, 2:8, 2:8] = True  # shifted by 2 slices of 2.5 mm
    result = surface_distances(a, b, (2.5, 0.8, 0.8))
    assert result.hausdorff_mm == pytest.approx(5.0, rel=1e-12)
    # Boundary voxels of a 4 x 6 x 6 box: 144 - (2 x 4 x 4 interior) = 112 each. Check the
    # percentile and mean against brute-force distances between all boundary voxel centres.
    za, ya, xa = np.nonzero(a & ~_eroded(a))
    zb, yb, xb = np.nonzero(b & ~_eroded(b))
    pa = np.column_stack([za * 2.5, ya * 0.8, xa * 0.8])
    pb = np.column_stack([zb * 2.5, yb * 0.8, xb * 0.8])
    d = np.sqrt(((pa[:, None, :] - pb[None, :, :]) ** 2).sum(axis=2))
    d_ab, d_ba = d.min(axis=1), d.min(axis=0)
    assert result.reference_surface_voxels == d_ab.size == 112
    assert result.hd95_mm == pytest.approx(max(np.percentile(d_ab, 95), np.percentile(d_ba, 95)), rel=1e-12)
    assert result.assd_mm == pytest.approx((d_ab.sum() + d_ba.sum()) / (d_ab.size + d_ba.size), rel=1e-12)


def _eroded(mask: Mask) -> Mask:
    from scipy import ndimage

    out: Mask = ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(3, 1), border_value=0)
    return out


def test_hausdorff_agrees_with_simpleitk_on_offset_boxes() -> None:
    a, b = _empty((10, 16, 16)), _empty((10, 16, 16))
    a[2:7, 3:11, 4:12] = True
    b[3:8, 5:13, 4:10] = True
    spacing = (3.0, 0.7, 0.9)
    filt = sitk.HausdorffDistanceImageFilter()
    images = []
    for mask in (a, b):
        image = sitk.GetImageFromArray(mask.astype(np.uint8))  # numpy (z, y, x) -> ITK (x, y, z)
        image.SetSpacing((spacing[2], spacing[1], spacing[0]))
        images.append(image)
    filt.Execute(images[0], images[1])
    assert surface_distances(a, b, spacing).hausdorff_mm == pytest.approx(filt.GetHausdorffDistance(), rel=1e-9)


def test_identical_masks_are_zero_and_masks_touching_the_border_work() -> None:
    a = _empty()
    a[0:3, :, 4:6] = True  # touches three faces of the array
    result = surface_distances(a, a.copy(), (1.0, 1.0, 1.0))
    assert (result.hd95_mm, result.hausdorff_mm, result.assd_mm) == (0.0, 0.0, 0.0)
    assert result.reference_surface_voxels > 0


def test_empty_masks_never_give_a_plausible_number() -> None:
    a = _empty()
    a[2, 2, 2] = True
    both = surface_distances(_empty(), _empty(), (1.0, 1.0, 1.0))
    assert math.isnan(both.hd95_mm) and math.isnan(both.assd_mm) and math.isnan(both.hausdorff_mm)
    assert both.reference_empty and both.test_empty
    one = surface_distances(a, _empty(), (1.0, 1.0, 1.0))
    assert one.hd95_mm == math.inf and one.assd_mm == math.inf
    assert not one.reference_empty and one.test_empty
    other = surface_distances(_empty(), a, (1.0, 1.0, 1.0))
    assert other.reference_empty and other.hd95_mm == math.inf


def test_volume_difference() -> None:
    a, b = _empty(), _empty()
    a[0:2, 0:5, 0:5] = True  # 50 voxels
    b[0:2, 0:5, 0:6] = True  # 60 voxels
    result = volume_difference(a, b, (3.0, 0.5, 0.5))  # 0.75 mm3 per voxel
    assert result.reference_volume_mm3 == 37.5 and result.test_volume_mm3 == 45.0
    assert result.difference_mm3 == 7.5 and result.absolute_difference_mm3 == 7.5
    assert result.relative_difference_percent == pytest.approx(20.0, rel=1e-12)
    shrunk = volume_difference(b, a, (3.0, 0.5, 0.5))
    assert shrunk.difference_mm3 == -7.5
    empty_reference = volume_difference(_empty(), b, (1.0, 1.0, 1.0))
    assert empty_reference.reference_empty and math.isnan(empty_reference.relative_difference_percent)
    assert empty_reference.difference_mm3 == 60.0


@pytest.mark.parametrize(
    ("a", "b", "spacing", "message"),
    [
        (np.zeros((4, 4), bool), np.zeros((4, 4), bool), (1, 1, 1), "3-D"),
        (np.zeros((4, 4, 4), bool), np.zeros((4, 4, 5), bool), (1, 1, 1), "shapes differ"),
        (np.zeros((4, 4, 4), bool), np.zeros((4, 4, 4), bool), (1, 1), "three numbers"),
        (np.zeros((4, 4, 4), bool), np.zeros((4, 4, 4), bool), (1, 0, 1), "positive and finite"),
        (np.zeros((4, 4, 4), bool), np.zeros((4, 4, 4), bool), (1, float("nan"), 1), "positive and finite"),
        (np.zeros((4, 4, 4), bool), np.zeros((4, 4, 4), bool), "1mm", "positive and finite|three numbers"),
        (np.full((4, 4, 4), np.nan), np.zeros((4, 4, 4), bool), (1, 1, 1), "NaN"),
    ],
)
def test_malformed_input_is_a_clear_error(a: Any, b: Any, spacing: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        surface_distances(a, b, spacing)
    with pytest.raises(ValueError, match=message):
        volume_difference(a, b, spacing)


MASKS = st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=20)


@settings(max_examples=50, deadline=None)
@given(MASKS, MASKS, st.tuples(st.floats(0.3, 4.0), st.floats(0.3, 4.0), st.floats(0.3, 4.0)))
def test_symmetry_and_bounds(
    points_a: list[tuple[int, int, int]], points_b: list[tuple[int, int, int]], spacing: tuple[float, float, float]
) -> None:
    a, b = np.zeros((6, 6, 6), bool), np.zeros((6, 6, 6), bool)
    for p in points_a:
        a[p] = True
    for p in points_b:
        b[p] = True
    ab, ba = surface_distances(a, b, spacing), surface_distances(b, a, spacing)
    assert ab.hd95_mm == pytest.approx(ba.hd95_mm, rel=1e-12)
    assert ab.assd_mm == pytest.approx(ba.assd_mm, rel=1e-12)
    assert 0.0 <= ab.assd_mm <= ab.hausdorff_mm + 1e-9
    assert ab.hd95_mm <= ab.hausdorff_mm + 1e-9
    assert surface_distances(a, a, spacing).hausdorff_mm == 0.0

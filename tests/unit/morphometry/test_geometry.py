"""SliceGeometry / SeriesGeometry: DICOM attributes in, validated geometry out."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from pydicom.dataset import Dataset

from spinereview.morphometry import SeriesGeometry, SliceGeometry

AXIAL_IOP = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]


def _attributes(**overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "ImagePositionPatient": [-100.0, -80.0, 12.5],
        "ImageOrientationPatient": AXIAL_IOP,
        "PixelSpacing": [0.5, 0.8],
        "SliceThickness": 4.0,
    }
    item.update(overrides)
    return {k: v for k, v in item.items() if v is not None}


def test_from_plain_mappings() -> None:
    series = SeriesGeometry.from_dicom_attributes([_attributes(), _attributes(ImagePositionPatient=[-100, -80, 16.5])])
    assert len(series) == 2
    first = series.slices[0]
    assert first == SliceGeometry(
        image_position_mm=(-100.0, -80.0, 12.5),
        row_cosine=(1.0, 0.0, 0.0),
        column_cosine=(0.0, 1.0, 0.0),
        pixel_spacing_mm=(0.5, 0.8),
        slice_thickness_mm=4.0,
    )
    assert series.slices[1].image_position_mm == (-100.0, -80.0, 16.5)


def test_from_dicom_decimal_strings() -> None:
    series = SeriesGeometry.from_dicom_attributes(
        [
            _attributes(
                ImagePositionPatient="-100\\-80\\12.5",
                ImageOrientationPatient="1\\0\\0\\0\\1\\0",
                PixelSpacing="0.5\\0.8",
                SliceThickness="4.0",
            )
        ]
    )
    assert series.slices[0].pixel_spacing_mm == (0.5, 0.8)
    assert series.slices[0].slice_thickness_mm == 4.0


def test_from_pydicom_datasets() -> None:
    ds = Dataset()
    ds.ImagePositionPatient = [-100, -80, 12.5]
    ds.ImageOrientationPatient = AXIAL_IOP
    ds.PixelSpacing = [0.5, 0.8]
    ds.SliceThickness = 4
    series = SeriesGeometry.from_dicom_attributes([ds])
    assert series.slices[0].image_position_mm == (-100.0, -80.0, 12.5)
    assert series.slices[0].pixel_spacing_mm == (0.5, 0.8)
    assert series.slices[0].slice_thickness_mm == 4.0


def test_pixel_positions_follow_the_dicom_formula() -> None:
    tilt = math.radians(20.0)
    geometry = SliceGeometry(
        image_position_mm=(10.0, 20.0, 30.0),
        row_cosine=(1.0, 0.0, 0.0),
        column_cosine=(0.0, math.cos(tilt), math.sin(tilt)),
        pixel_spacing_mm=(0.5, 0.8),
        slice_thickness_mm=3.0,
    )
    # row 4, column 10: IPP + 10 * 0.8 * row_cosine + 4 * 0.5 * column_cosine
    expected = [18.0, 20.0 + 2.0 * math.cos(tilt), 30.0 + 2.0 * math.sin(tilt)]
    assert geometry.pixel_to_patient_mm(4, 10).tolist() == pytest.approx(expected, abs=1e-12)
    assert geometry.pixel_to_patient_mm([0, 4], [0, 10]).shape == (2, 3)
    assert geometry.normal.tolist() == pytest.approx([0.0, -math.sin(tilt), math.cos(tilt)], abs=1e-12)
    assert geometry.pixel_area_mm2 == 0.5 * 0.8
    point = np.array([10.0, 20.0, 30.0]) + 7.0 * geometry.normal
    assert geometry.signed_distance_to_plane_mm(point) == pytest.approx(7.0, abs=1e-12)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"ImagePositionPatient": None}, "slice 1: ImagePositionPatient is missing"),
        ({"ImageOrientationPatient": None}, "slice 1: ImageOrientationPatient is missing"),
        ({"PixelSpacing": None}, "slice 1: PixelSpacing is missing"),
        ({"SliceThickness": None}, "slice 1: SliceThickness is missing"),
        ({"SliceThickness": ""}, "slice 1: SliceThickness is missing"),
        ({"PixelSpacing": [0.5]}, "PixelSpacing must have 2 value"),
        ({"ImagePositionPatient": [1, 2]}, "ImagePositionPatient must have 3 value"),
        ({"ImageOrientationPatient": [1, 0, 0]}, "must have 6 value"),
        ({"PixelSpacing": ["a", "b"]}, "PixelSpacing must hold numbers"),
        ({"ImageOrientationPatient": [0, 0, 0, 0, 1, 0]}, "not a unit vector"),
        ({"ImageOrientationPatient": [1, 0, 0, 1, 0, 0]}, "not orthogonal"),
        ({"ImageOrientationPatient": [1, 0, 0, 0, 0.5, 0]}, "not a unit vector"),
        ({"ImageOrientationPatient": [1, 0, 0, 0.1, 0.995, 0]}, "not orthogonal"),
        ({"PixelSpacing": [0.0, 0.5]}, "PixelSpacing must be positive"),
        ({"PixelSpacing": [-0.5, 0.5]}, "PixelSpacing must be positive"),
        ({"SliceThickness": 0}, "SliceThickness must be a positive number"),
        ({"ImagePositionPatient": [0, float("nan"), 0]}, "must be finite"),
    ],
)
def test_missing_or_degenerate_geometry_is_a_clear_error(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SeriesGeometry.from_dicom_attributes([_attributes(), _attributes(**overrides)])
    # ... and the message names the offending slice.
    with pytest.raises(ValueError, match="slice 1"):
        SeriesGeometry.from_dicom_attributes([_attributes(), _attributes(**overrides)])


def test_empty_series_is_an_error() -> None:
    with pytest.raises(ValueError, match="no slices"):
        SeriesGeometry.from_dicom_attributes([])
    with pytest.raises(ValueError, match="at least one slice"):
        SeriesGeometry(slices=())


def test_iop_rounded_to_dicom_precision_is_accepted() -> None:
    tilt = math.radians(20.0)
    iop = [1, 0, 0, 0, round(math.cos(tilt), 5), round(math.sin(tilt), 5)]
    series = SeriesGeometry.from_dicom_attributes([_attributes(ImageOrientationPatient=iop)])
    assert series.slices[0].column_cosine == (0.0, 0.93969, 0.34202)


def test_values_are_normalised_to_tuples_of_floats() -> None:
    geometry = SliceGeometry(
        image_position_mm=np.array([1, 2, 3]),  # type: ignore[arg-type]
        row_cosine=[1, 0, 0],  # type: ignore[arg-type]
        column_cosine=(0, 1, 0),
        pixel_spacing_mm=np.array([0.5, 0.5], dtype=np.float32),  # type: ignore[arg-type]
        slice_thickness_mm=np.float32(3.0),  # type: ignore[arg-type]
    )
    assert geometry == SliceGeometry((1.0, 2.0, 3.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.5, 0.5), 3.0)
    assert hash(geometry) == hash(SliceGeometry((1.0, 2.0, 3.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.5, 0.5), 3.0))
    assert type(geometry.slice_thickness_mm) is float

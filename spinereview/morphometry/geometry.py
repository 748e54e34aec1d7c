"""DICOM slice geometry: where each voxel of a ``(z, y, x)`` label volume lies, in millimetres.

Patient coordinates are DICOM's LPS: +x towards the patient's left, +y posterior, +z superior
(head). Voxel ``(k, r, c)`` of a label volume is row ``r``, column ``c`` of slice ``k``; its
centre is::

    IPP_k + c * PixelSpacing[1] * row_cosine + r * PixelSpacing[0] * column_cosine

(DICOM PS3.3 C.7.6.2.1.1). ``row_cosine`` (IOP[0:3]) is the direction in which the column index
grows, along a row; ``column_cosine`` (IOP[3:6]) is the direction in which the row index grows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

__all__ = ["DicomAttributes", "SeriesGeometry", "SliceGeometry"]

Vector3 = tuple[float, float, float]


class DicomAttributes(Protocol):
    """Anything that returns an attribute's value from ``.get(keyword)``: a ``dict``, any
    ``Mapping`` or a pydicom ``Dataset``."""

    def get(self, key: str, /) -> Any: ...


# DICOM writes IOP as decimal strings, often with 5-6 significant digits; a tolerance this wide
# accepts every real header and still rejects a wrong or swapped orientation.
_COSINE_TOLERANCE = 1e-3


def _finite_tuple(values: Sequence[float], length: int, what: str) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be {length} numbers, got {values!r}") from exc
    if len(out) != length:
        raise ValueError(f"{what} must have {length} values, got {len(out)}: {out}")
    if not all(math.isfinite(v) for v in out):
        raise ValueError(f"{what} must be finite, got {out}")
    return out


@dataclass(frozen=True)
class SliceGeometry:
    """Geometry of one image slice, straight from its DICOM header.

    Attributes:
        image_position_mm: ImagePositionPatient, centre of the first transmitted pixel (LPS, mm).
        row_cosine: ImageOrientationPatient[0:3], direction of increasing column index.
        column_cosine: ImageOrientationPatient[3:6], direction of increasing row index.
        pixel_spacing_mm: PixelSpacing = (between rows, between columns), mm.
        slice_thickness_mm: SliceThickness, mm.

    Raises:
        ValueError: non-finite values, cosines that are not unit length or not orthogonal
            (tolerance 1e-3), or spacing/thickness that are not positive.
    """

    image_position_mm: Vector3
    row_cosine: Vector3
    column_cosine: Vector3
    pixel_spacing_mm: tuple[float, float]
    slice_thickness_mm: float

    def __post_init__(self) -> None:
        # Normalise to tuples of floats (lists, numpy arrays and pydicom values come in), so that
        # equality and hashing behave and nothing downstream sees an unexpected type.
        position = _finite_tuple(self.image_position_mm, 3, "ImagePositionPatient")
        row = _finite_tuple(self.row_cosine, 3, "row cosine (IOP[0:3])")
        col = _finite_tuple(self.column_cosine, 3, "column cosine (IOP[3:6])")
        spacing = _finite_tuple(self.pixel_spacing_mm, 2, "PixelSpacing")
        try:
            thickness = float(self.slice_thickness_mm)
        except (TypeError, ValueError):
            thickness = math.nan
        for name, vector in (("row cosine (IOP[0:3])", row), ("column cosine (IOP[3:6])", col)):
            norm = math.sqrt(sum(v * v for v in vector))
            if abs(norm - 1.0) > _COSINE_TOLERANCE:
                raise ValueError(f"ImageOrientationPatient {name} {vector} is not a unit vector (length {norm:.6g})")
        dot = sum(a * b for a, b in zip(row, col, strict=True))
        if abs(dot) > _COSINE_TOLERANCE:
            raise ValueError(f"ImageOrientationPatient row and column cosines are not orthogonal (dot product {dot:.6g})")
        if min(spacing) <= 0:
            raise ValueError(f"PixelSpacing must be positive, got {spacing}")
        if not (math.isfinite(thickness) and thickness > 0):
            raise ValueError(f"SliceThickness must be a positive number, got {self.slice_thickness_mm!r}")
        object.__setattr__(self, "image_position_mm", position)
        object.__setattr__(self, "row_cosine", row)
        object.__setattr__(self, "column_cosine", col)
        object.__setattr__(self, "pixel_spacing_mm", spacing)
        object.__setattr__(self, "slice_thickness_mm", thickness)

    @property
    def normal(self) -> npt.NDArray[np.float64]:
        """Unit slice normal ``row_cosine x column_cosine`` (LPS)."""
        n = np.cross(np.asarray(self.row_cosine, float), np.asarray(self.column_cosine, float))
        unit: npt.NDArray[np.float64] = n / np.linalg.norm(n)
        return unit

    @property
    def pixel_area_mm2(self) -> float:
        """In-plane area of one pixel: ``PixelSpacing[0] * PixelSpacing[1]``."""
        return float(self.pixel_spacing_mm[0]) * float(self.pixel_spacing_mm[1])

    def pixel_to_patient_mm(self, rows: npt.ArrayLike, columns: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Patient (LPS) coordinates of pixel centres, shape ``broadcast(rows, columns) + (3,)``."""
        r = np.asarray(rows, dtype=np.float64)[..., None]
        c = np.asarray(columns, dtype=np.float64)[..., None]
        out: npt.NDArray[np.float64] = (
            np.asarray(self.image_position_mm, float)
            + c * self.pixel_spacing_mm[1] * np.asarray(self.row_cosine, float)
            + r * self.pixel_spacing_mm[0] * np.asarray(self.column_cosine, float)
        )
        return out

    def signed_distance_to_plane_mm(self, point_mm: npt.ArrayLike) -> float:
        """Distance of a point from this slice's plane along :attr:`normal` (signed, mm)."""
        offset = np.asarray(point_mm, dtype=np.float64) - np.asarray(self.image_position_mm, float)
        return float(offset @ self.normal)


def _dicom_value(item: DicomAttributes, key: str, index: int) -> Any:
    value = item.get(key)
    # A pydicom DataElement (e.g. from ds["PixelSpacing"]) carries its value in .value.
    if value is not None and hasattr(value, "VR") and hasattr(value, "value"):
        value = value.value
    if value is None or (isinstance(value, (str, bytes, list, tuple)) and len(value) == 0):
        raise ValueError(f"slice {index}: {key} is missing")
    return value


def _numbers(value: Any, length: int, key: str, index: int) -> tuple[float, ...]:
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    if isinstance(value, str):  # DICOM multi-valued decimal string, e.g. "0.5\\0.5"
        value = value.split("\\")
    if length == 1 and not isinstance(value, (list, tuple)) and not hasattr(value, "__len__"):
        value = [value]
    try:
        numbers = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"slice {index}: {key} must hold numbers, got {value!r}") from None
    if len(numbers) != length:
        raise ValueError(f"slice {index}: {key} must have {length} value(s), got {len(numbers)}: {numbers}")
    return numbers


@dataclass(frozen=True)
class SeriesGeometry:
    """Geometry of every slice of a series, one per ``z`` index of its label volume, in order.

    Slices may differ in orientation: axial blocks angled to each disc are one series.
    """

    slices: tuple[SliceGeometry, ...]

    def __post_init__(self) -> None:
        if len(self.slices) == 0:
            raise ValueError("a series needs at least one slice")
        for k, item in enumerate(self.slices):
            if not isinstance(item, SliceGeometry):
                raise TypeError(f"slices[{k}] is {type(item).__name__}, not SliceGeometry")

    def __len__(self) -> int:
        return len(self.slices)

    @classmethod
    def from_dicom_attributes(cls, per_slice: Sequence[DicomAttributes]) -> SeriesGeometry:
        """Build from per-slice DICOM attributes, in the label volume's ``z`` order.

        Each item maps the keywords ``ImagePositionPatient``, ``ImageOrientationPatient``,
        ``PixelSpacing`` and ``SliceThickness`` to their values: numbers or sequences of
        numbers (pydicom ``MultiValue``/``DSfloat`` included), or backslash-separated decimal
        strings. A pydicom ``Dataset`` works too (its ``.get(keyword)`` returns the value).

        Raises:
            ValueError: no slices, or a slice with a missing attribute, the wrong number of
                values, non-numbers, or degenerate geometry (message names the slice index).
        """
        if len(per_slice) == 0:
            raise ValueError("no slices: geometry needs the DICOM attributes of every slice")
        slices = []
        for k, item in enumerate(per_slice):
            ipp = _numbers(
                _dicom_value(item, "ImagePositionPatient", k),
                3,
                "ImagePositionPatient",
                k,
            )
            iop = _numbers(
                _dicom_value(item, "ImageOrientationPatient", k),
                6,
                "ImageOrientationPatient",
                k,
            )
            spacing = _numbers(_dicom_value(item, "PixelSpacing", k), 2, "PixelSpacing", k)
            (thickness,) = _numbers(_dicom_value(item, "SliceThickness", k), 1, "SliceThickness", k)
            try:
                slices.append(
                    SliceGeometry(
                        image_position_mm=(ipp[0], ipp[1], ipp[2]),
                        row_cosine=(iop[0], iop[1], iop[2]),
                        column_cosine=(iop[3], iop[4], iop[5]),
                        pixel_spacing_mm=(spacing[0], spacing[1]),
                        slice_thickness_mm=thickness,
                    )
                )
            except ValueError as exc:
                raise ValueError(f"slice {k}: {exc}") from None
        return cls(slices=tuple(slices))

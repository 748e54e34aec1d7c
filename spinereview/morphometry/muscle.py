"""Paraspinal muscle cross-sectional area (mm²) and fat fraction (%) per side and disc level."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from spinereview.morphometry.areas import check_label_volume, structure_area_per_slice_mm2
from spinereview.morphometry.geometry import SeriesGeometry
from spinereview.morphometry.levels import SliceLevel, reference_slice, slices_by_level
from spinereview.morphometry.resample import nearest_voxels

__all__ = [
    "FAT_WATER_METHOD",
    "MuscleMeasurement",
    "SignalIntensityModel",
    "FatWater",
    "fat_fraction_percent",
    "paraspinal_muscle_on_slice",
    "paraspinal_muscles_by_level",
]

FAT_WATER_METHOD = "fat/water: mean of F / (F + W) over the muscle pixels"
FAT_WATER_RESAMPLED_METHOD = "fat/water (other series, nearest voxel): mean of F / (F + W) over the muscle pixels"


@dataclass(frozen=True)
class SignalIntensityModel:
    """How to read fat fraction from a single T1- or T2-weighted image, for cases without Dixon.

    Attributes:
        muscle_signal: signal of fat-free muscle on this image (reference intensity).
        fat_signal: signal of pure fat on this image (e.g. subcutaneous fat).
        kind: ``"two_component"``: every pixel is a linear mix of muscle and fat, so the ROI's
            fat fraction is ``(mean(S) - S_muscle) / (S_fat - S_muscle)``, clipped to [0, 1]
            (mean first, then clip, so noise does not bias it); ``"threshold"``: the fraction
            of ROI pixels brighter than ``threshold`` (pixel-counting, as in thresholding
            methods for intramuscular fat, e.g. Fortin & Battié, Phys Ther 2012;92:853-864).
        threshold: for ``"threshold"``; default the midpoint of the two references.

    Raises:
        ValueError: references not finite, equal, or a threshold outside them.
    """

    muscle_signal: float
    fat_signal: float
    kind: Literal["two_component", "threshold"] = "two_component"
    threshold: float | None = None

    def __post_init__(self) -> None:
        muscle, fat = float(self.muscle_signal), float(self.fat_signal)
        if not (math.isfinite(muscle) and math.isfinite(fat)) or muscle == fat:
            raise ValueError(f"muscle_signal and fat_signal must be finite and different, got {muscle} and {fat}")
        if self.kind not in ("two_component", "threshold"):
            raise ValueError(f"kind must be 'two_component' or 'threshold', got {self.kind!r}")
        if self.threshold is not None:
            if self.kind != "threshold":
                raise ValueError("threshold applies only to kind='threshold'")
            t = float(self.threshold)
            if not (math.isfinite(t) and min(muscle, fat) < t < max(muscle, fat)):
                raise ValueError(f"threshold must lie between the muscle and fat signals, got {t}")

    @property
    def method(self) -> str:
        """The method, recorded with every value it gives."""
        if self.kind == "two_component":
            return f"two-component signal model: muscle {self.muscle_signal:g}, fat {self.fat_signal:g}"
        threshold = self.threshold if self.threshold is not None else (self.muscle_signal + self.fat_signal) / 2
        return f"threshold: pixels beyond {threshold:g} (muscle {self.muscle_signal:g}, fat {self.fat_signal:g}) are fat"

    def fat_fraction(self, signal: npt.NDArray[np.float64]) -> float:
        """Fat fraction (0-1) of the pixels ``signal``."""
        muscle, fat = float(self.muscle_signal), float(self.fat_signal)
        if self.kind == "two_component":
            return float(np.clip((signal.mean() - muscle) / (fat - muscle), 0.0, 1.0))
        threshold = self.threshold if self.threshold is not None else (muscle + fat) / 2
        fatty = signal > threshold if fat > muscle else signal < threshold
        return float(np.count_nonzero(fatty) / signal.size)


def fat_fraction_percent(fat: npt.ArrayLike, water: npt.ArrayLike) -> float:
    """Fat fraction of a region from fat and water signal: ``100 * mean(F / (F + W))``.

    The signal fat fraction of chemical-shift (Dixon) imaging, per pixel then averaged over the
    region (Reeder et al., J Magn Reson Imaging 2012;36:1011-1014, on proton density fat
    fraction). Both arrays hold the same pixels (e.g. ``fat_image[mask]``).

    Raises:
        ValueError: shapes differ, empty, non-finite or negative values, or F + W = 0 anywhere.
    """
    f = np.asarray(fat, dtype=np.float64)
    w = np.asarray(water, dtype=np.float64)
    if f.shape != w.shape:
        raise ValueError(f"fat and water must hold the same pixels, got shapes {f.shape} and {w.shape}")
    if f.size == 0:
        raise ValueError("no pixels: fat fraction of an empty region")
    if not (np.all(np.isfinite(f)) and np.all(np.isfinite(w))):
        raise ValueError("fat and water signals must be finite")
    if np.any(f < 0) or np.any(w < 0):
        raise ValueError("fat and water signals must be non-negative (magnitude images)")
    total = f + w
    if np.any(total == 0):
        raise ValueError(f"{int(np.count_nonzero(total == 0))} pixel(s) have no signal (F + W = 0): fat fraction undefined")
    return float(100.0 * np.mean(f / total))


@dataclass(frozen=True)
class MuscleMeasurement:
    """One side's paraspinal muscle at one disc level, on the level's reference slice.

    ``n_slices == 0`` (and ``None`` values) when the level has no axial slice.

    Attributes:
        level, side: disc level and patient side ("left"/"right").
        csa_mm2: cross-sectional area.
        fat_fraction_percent: fat fraction in %, ``None`` when no image was given.
        method: how the fat fraction was obtained (``""`` when not measured).
        slice_index, distance_mm: the reference slice and its distance to the disc centre.
        n_slices: axial slices of the level.
    """

    level: str
    side: str
    csa_mm2: float | None
    fat_fraction_percent: float | None
    method: str
    slice_index: int | None
    distance_mm: float | None
    n_slices: int


def _image(name: str, image: npt.ArrayLike, shape: tuple[int, ...]) -> npt.NDArray[np.float64]:
    array = np.asarray(image, dtype=np.float64)
    if array.shape != shape:
        raise ValueError(f"{name} has shape {array.shape} but the labels have {shape}")
    return array


@dataclass(frozen=True)
class FatWater:
    """A fat/water image pair, on the label volume's grid (``geometry=None``) or on a series of its own.

    Raises:
        ValueError: the two images differ in shape, or do not match ``geometry``.
    """

    fat: npt.NDArray[np.float64]
    water: npt.NDArray[np.float64]
    geometry: SeriesGeometry | None = None

    def __post_init__(self) -> None:
        fat = np.asarray(self.fat, dtype=np.float64)
        water = np.asarray(self.water, dtype=np.float64)
        if fat.shape != water.shape:
            raise ValueError(f"the fat image has shape {fat.shape} but the water image {water.shape}")
        if self.geometry is not None and (fat.ndim != 3 or fat.shape[0] != len(self.geometry)):
            raise ValueError(f"the fat/water images have shape {fat.shape} but their geometry describes {len(self.geometry)} slices")
        object.__setattr__(self, "fat", fat)
        object.__setattr__(self, "water", water)


def paraspinal_muscle_on_slice(
    volume: npt.NDArray[np.integer],
    axial_geometry: SeriesGeometry,
    reference: SliceLevel,
    *,
    label: int,
    side: str,
    n_slices: int,
    fat_water: FatWater | None = None,
    image: npt.NDArray[np.float64] | None = None,
    intensity_model: SignalIntensityModel | None = None,
    axis: Sequence[float] | None = None,
) -> MuscleMeasurement:
    """One side's muscle on one level's reference slice (see :func:`paraspinal_muscles_by_level`).

    Raises:
        ValueError: the side is not labelled on the slice; the fat/water series does not image
            every muscle pixel; bad image values.
    """
    k = reference.slice_index
    mask = volume[k] == label
    if not mask.any():
        raise ValueError(f"the {side} paraspinal muscle (label {label}) is not labelled on axial slice {k} ({reference.level})")
    one = SeriesGeometry(slices=(axial_geometry.slices[k],))
    csa = float(structure_area_per_slice_mm2(mask[None].astype(np.uint8), one, 1, axis=axis)[0])
    fraction: float | None = None
    method = ""
    if fat_water is not None:
        if fat_water.geometry is None:
            fraction = fat_fraction_percent(fat_water.fat[k][mask], fat_water.water[k][mask])
            method = FAT_WATER_METHOD
        else:
            rows, columns = np.nonzero(mask)
            points = axial_geometry.slices[k].pixel_to_patient_mm(rows, columns)
            slices, pixel_rows, pixel_columns, inside = nearest_voxels(fat_water.geometry, fat_water.fat.shape, points)
            if not inside.all():
                raise ValueError(
                    f"the fat/water series does not image {int(np.count_nonzero(~inside))} of the {inside.size} {side} "
                    f"paraspinal muscle pixels on axial slice {k} ({reference.level})"
                )
            fraction = fat_fraction_percent(
                fat_water.fat[slices, pixel_rows, pixel_columns], fat_water.water[slices, pixel_rows, pixel_columns]
            )
            method = FAT_WATER_RESAMPLED_METHOD
    elif image is not None and intensity_model is not None:
        signal = image[k][mask]
        if not np.all(np.isfinite(signal)):
            raise ValueError(f"image has non-finite values in the {side} muscle on slice {k}")
        fraction = 100.0 * intensity_model.fat_fraction(signal)
        method = intensity_model.method
    return MuscleMeasurement(reference.level, side, csa, fraction, method, k, reference.distance_mm, n_slices)


def paraspinal_muscles_by_level(
    axial_labels: npt.ArrayLike,
    axial_geometry: SeriesGeometry,
    slice_levels: Sequence[SliceLevel],
    *,
    left_label: int,
    right_label: int,
    fat_water: tuple[npt.ArrayLike, npt.ArrayLike] | FatWater | None = None,
    image: npt.ArrayLike | None = None,
    intensity_model: SignalIntensityModel | None = None,
    levels: Sequence[str] | None = None,
    max_distance_mm: float | None = None,
    axis_by_level: Mapping[str, Sequence[float]] | None = None,
) -> dict[str, dict[str, MuscleMeasurement]]:
    """Paraspinal muscle CSA and fat fraction per level and side: ``{level: {side: measurement}}``.

    On each level's reference slice (nearest the disc mid-plane, see
    :func:`~spinereview.morphometry.levels.slices_by_level`), per side:

    * CSA = pixel count x pixel area (the in-plane area, or the cross-section perpendicular to
      the level's axis with ``axis_by_level``, as for DSCA);
    * fat fraction from a fat/water pair ``fat_water`` when given (:func:`fat_fraction_percent`):
      ``(F, W)`` on the labels' grid, or a :class:`FatWater` with a geometry of its own, read at
      each muscle pixel's centre (:func:`~spinereview.morphometry.resample.sample_nearest`);
      else from ``image`` read through ``intensity_model`` (:class:`SignalIntensityModel`);
      with neither, ``None``. The method goes with the value.

    Sides come from the label values (``left_label`` is the patient's left), which the
    segmentation assigns from the DICOM orientation.

    Raises:
        ValueError: label volume/geometry mismatch; images of another shape; both or half of
            the image inputs; a side not labelled on a level's reference slice; a fat/water
            series that does not image the muscle; bad image values (see
            :func:`fat_fraction_percent`).
    """
    volume = check_label_volume(axial_labels, axial_geometry, "axial_labels")
    if fat_water is not None and (image is not None or intensity_model is not None):
        raise ValueError("give either fat_water or image + intensity_model, not both")
    if (image is None) != (intensity_model is None):
        raise ValueError("image and intensity_model go together: give both or neither")
    pair: FatWater | None = None
    if isinstance(fat_water, FatWater):
        pair = fat_water
        if pair.geometry is None:
            _image("fat image", pair.fat, volume.shape)
    elif fat_water is not None:
        pair = FatWater(_image("fat image", fat_water[0], volume.shape), _image("water image", fat_water[1], volume.shape))
    single = _image("image", image, volume.shape) if image is not None else None
    blocks = slices_by_level(slice_levels, volume.shape[0], levels=levels, max_distance_mm=max_distance_mm)
    result: dict[str, dict[str, MuscleMeasurement]] = {}
    for level, members in blocks.items():
        sides: dict[str, MuscleMeasurement] = {}
        for side, label in (("left", left_label), ("right", right_label)):
            if not members:
                sides[side] = MuscleMeasurement(level, side, None, None, "", None, None, 0)
                continue
            sides[side] = paraspinal_muscle_on_slice(
                volume,
                axial_geometry,
                reference_slice(members),
                label=label,
                side=side,
                n_slices=len(members),
                fat_water=pair,
                image=single,
                intensity_model=intensity_model,
                axis=axis_by_level.get(level) if axis_by_level else None,
            )
        result[level] = sides
    return result

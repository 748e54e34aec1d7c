"""Dural sac cross-sectional area (DSCA) per disc level, and a stenosis grade from it."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from spinereview.morphometry.areas import (
    check_label_volume,
    structure_area_per_slice_mm2,
)
from spinereview.morphometry.geometry import SeriesGeometry
from spinereview.morphometry.levels import SliceLevel, reference_slice, slices_by_level

__all__ = [
    "DEFAULT_DSCA_CUTOFFS_MM2",
    "STENOSIS_GRADE_NAMES",
    "LevelDsca",
    "dsca_by_level_mm2",
    "stenosis_grade_from_dsca",
]

DEFAULT_DSCA_CUTOFFS_MM2: tuple[float, float, float] = (100.0, 75.0, 50.0)
"""Lower bounds (mm²) of grades 0, 1 and 2; below the last is grade 3."""

STENOSIS_GRADE_NAMES: tuple[str, str, str, str] = (
    "normal",
    "mild",
    "moderate",
    "severe",
)
"""Names of the grades returned by :func:`stenosis_grade_from_dsca` with the default cut-offs."""


@dataclass(frozen=True)
class LevelDsca:
    """DSCA at one disc level. A level without any axial slice is reported, not dropped: its
    ``n_slices`` is 0 and every measurement is ``None`` (see :attr:`measured`).

    Attributes:
        level: disc level name.
        dsca_mm2: DSCA on the slice nearest the disc mid-plane (the level's reference slice).
        min_dsca_mm2: smallest DSCA over all slices of the level.
        slice_index: ``z`` index of the reference slice.
        distance_mm: distance from the disc centre to the reference slice's plane.
        min_slice_index: ``z`` index of the slice with the smallest DSCA.
        n_slices: number of axial slices assigned to the level (after ``max_distance_mm``).
    """

    level: str
    dsca_mm2: float | None
    min_dsca_mm2: float | None
    slice_index: int | None
    distance_mm: float | None
    min_slice_index: int | None
    n_slices: int

    @property
    def measured(self) -> bool:
        """Whether the level had at least one axial slice."""
        return self.n_slices > 0


def dsca_by_level_mm2(
    axial_labels: npt.ArrayLike,
    axial_geometry: SeriesGeometry,
    slice_levels: Sequence[SliceLevel],
    dural_sac_label: int,
    *,
    levels: Sequence[str] | None = None,
    max_distance_mm: float | None = None,
    axis_by_level: Mapping[str, Sequence[float]] | None = None,
) -> dict[str, LevelDsca]:
    """Dural sac cross-sectional area per disc level from axial labels, in mm².

    Per slice, ``DSCA_k = count(labels[k] == dural_sac_label) * PixelSpacing_k[0] *
    PixelSpacing_k[1]`` (in-plane area, see
    :func:`~spinereview.morphometry.areas.structure_area_per_slice_mm2`). Per level, from the
    slices that :func:`~spinereview.morphometry.levels.axial_slice_levels` assigned to it:

    * ``dsca_mm2``: the DSCA on the slice whose plane is nearest the disc centre (mid-plane);
      ties go to the lower slice index;
    * ``min_dsca_mm2``: the smallest DSCA over the level's slices (the narrowest point).

    ``max_distance_mm`` keeps only slices within that distance of their disc centre (e.g. half
    a disc height, so mid-vertebral slices do not count toward the minimum). A slice where the
    dural sac is not labelled measures 0.0 mm² (the mask is taken at its word).

    ``axis_by_level`` (e.g. :meth:`~spinereview.morphometry.spine.SpineLevels.normals_by_level`)
    gives the local spinal axis per level; the areas of that level's slices are then the
    cross-sections perpendicular to it (``area * |n_k . axis|``, see
    :func:`~spinereview.morphometry.areas.structure_area_per_slice_mm2`), the same whatever the
    angulation of the axial block. Without it the areas are in the slice planes.

    ``levels`` lists the levels to report, in that order (default: the levels in
    ``slice_levels`` in order of first appearance). A listed level with no slice is reported
    explicitly as missing: ``n_slices == 0`` and ``None`` measurements.

    Raises:
        ValueError: label volume/geometry mismatch (see ``check_label_volume``), a slice index
            out of range or listed twice, a negative ``max_distance_mm``, the dural sac label
            absent from the whole volume (never read as DSCA 0), or a slice too oblique to an
            axis.
    """
    volume = check_label_volume(axial_labels, axial_geometry, "axial_labels")
    blocks = slices_by_level(slice_levels, volume.shape[0], levels=levels, max_distance_mm=max_distance_mm)
    if not np.any(volume == dural_sac_label):
        raise ValueError(f"the dural sac (label {dural_sac_label}) is not labelled on any axial slice: no DSCA can be measured")
    area = structure_area_per_slice_mm2(volume, axial_geometry, dural_sac_label)
    if axis_by_level:
        for level, members in blocks.items():
            if level in axis_by_level and members:
                indices = [s.slice_index for s in members]
                sub = SeriesGeometry(slices=tuple(axial_geometry.slices[i] for i in indices))
                area[indices] = structure_area_per_slice_mm2(volume[indices], sub, dural_sac_label, axis=axis_by_level[level])
    result: dict[str, LevelDsca] = {}
    for level, members in blocks.items():
        if not members:
            result[level] = LevelDsca(
                level=level,
                dsca_mm2=None,
                min_dsca_mm2=None,
                slice_index=None,
                distance_mm=None,
                min_slice_index=None,
                n_slices=0,
            )
            continue
        reference = reference_slice(members)
        narrowest = min(members, key=lambda s: (float(area[s.slice_index]), s.slice_index))
        result[level] = LevelDsca(
            level=level,
            dsca_mm2=float(area[reference.slice_index]),
            min_dsca_mm2=float(area[narrowest.slice_index]),
            slice_index=reference.slice_index,
            distance_mm=reference.distance_mm,
            min_slice_index=narrowest.slice_index,
            n_slices=len(members),
        )
    return result


def stenosis_grade_from_dsca(dsca_mm2: float, *, cutoffs_mm2: Sequence[float] = DEFAULT_DSCA_CUTOFFS_MM2) -> int:
    """Central canal stenosis grade from the dural sac cross-sectional area.

    ``grade = number of cut-offs c with dsca_mm2 < c``; with the default cut-offs
    ``(100, 75, 50)`` mm² this is a 4-point scale:

    ====== ========== ===================================================
    grade  name       DSCA (mm²)
    ====== ========== ===================================================
    0      normal     >= 100
    1      mild       75 <= DSCA < 100 (relative stenosis)
    2      moderate   50 <= DSCA < 75  (absolute stenosis, < 75)
    3      severe     < 50             (absolute stenosis, < 75)
    ====== ========== ===================================================

    A value exactly on a cut-off belongs to the milder grade. The 100 and 75 mm² thresholds
    for relative and absolute stenosis go back to Schönström et al. (Spine 1985;10:806-811)
    and are the ones used by Hamanishi et al. (J Spinal Disord 1994;7:388-393) and discussed
    by Schizas et al. (Spine 2010;35:1919-1924). **The 50 mm² severe cut-off is a SpineReview
    project convention**, not a published threshold; pass ``cutoffs_mm2`` to change it (any
    number of cut-offs gives ``len(cutoffs_mm2) + 1`` grades).

    Raises:
        ValueError: ``dsca_mm2`` negative or not finite; cut-offs empty, not positive, not
            finite or not strictly decreasing.
    """
    cutoffs = [float(c) for c in cutoffs_mm2]
    if not cutoffs:
        raise ValueError("cutoffs_mm2 must not be empty")
    if not all(math.isfinite(c) and c > 0 for c in cutoffs):
        raise ValueError(f"cutoffs_mm2 must be positive finite areas, got {tuple(cutoffs)}")
    if any(later >= earlier for earlier, later in itertools.pairwise(cutoffs)):
        raise ValueError(f"cutoffs_mm2 must be strictly decreasing, got {tuple(cutoffs)}")
    dsca = float(dsca_mm2)
    if not (math.isfinite(dsca) and dsca >= 0):
        raise ValueError(f"dsca_mm2 must be a non-negative finite area, got {dsca_mm2}")
    return sum(1 for c in cutoffs if dsca < c)

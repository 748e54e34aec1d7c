"""Spinal canal antero-posterior diameter per disc level, in mm."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from spinereview.morphometry.areas import PATIENT_SUPERIOR, ap_diameter_mm, check_label_volume
from spinereview.morphometry.geometry import SeriesGeometry
from spinereview.morphometry.levels import SliceLevel, reference_slice, slices_by_level

__all__ = ["LevelCanalAp", "canal_ap_by_level_mm"]


@dataclass(frozen=True)
class LevelCanalAp:
    """Canal AP diameter at one disc level; a level with no axial slice has ``n_slices == 0``
    and ``None`` measurements.

    Attributes:
        level: disc level name.
        ap_mm: AP diameter on the slice nearest the disc mid-plane (the reference slice).
        min_ap_mm: smallest AP diameter over the level's slices.
        slice_index, distance_mm: the reference slice and its distance to the disc centre.
        min_slice_index: the slice with the smallest AP diameter.
        n_slices: axial slices of the level.
    """

    level: str
    ap_mm: float | None
    min_ap_mm: float | None
    slice_index: int | None
    distance_mm: float | None
    min_slice_index: int | None
    n_slices: int


def canal_ap_by_level_mm(
    axial_labels: npt.ArrayLike,
    axial_geometry: SeriesGeometry,
    slice_levels: Sequence[SliceLevel],
    canal_labels: Sequence[int],
    *,
    levels: Sequence[str] | None = None,
    max_distance_mm: float | None = None,
    axis_by_level: Mapping[str, Sequence[float]] | None = None,
) -> dict[str, LevelCanalAp]:
    """Spinal canal AP diameter per disc level from axial labels.

    The canal is the union of ``canal_labels`` (in SpineReview's label map: spinal canal 3 and
    dural sac 4, the canal content). Per slice, the diameter is
    :func:`~spinereview.morphometry.areas.ap_diameter_mm`: the extent along the patient's AP
    axis made perpendicular to the level's spinal axis (``axis_by_level``, e.g. the disc-plane
    normals; patient z without it), so it does not depend on the image grid or the angulation
    of the block. Per level, as for DSCA: the reference slice nearest the disc mid-plane, and
    the minimum over the level's slices (see
    :func:`~spinereview.morphometry.levels.slices_by_level` for ``levels`` and
    ``max_distance_mm``).

    Raises:
        ValueError: label volume/geometry mismatch; ``canal_labels`` empty; the canal absent
            from a slice of a reported level (an absent canal has no diameter, it is never
            read as 0); bad slice levels (see ``slices_by_level``).
    """
    volume = check_label_volume(axial_labels, axial_geometry, "axial_labels")
    if len(canal_labels) == 0:
        raise ValueError("canal_labels must name at least one label")
    blocks = slices_by_level(slice_levels, volume.shape[0], levels=levels, max_distance_mm=max_distance_mm)
    result: dict[str, LevelCanalAp] = {}
    for level, members in blocks.items():
        if not members:
            result[level] = LevelCanalAp(level, None, None, None, None, None, 0)
            continue
        axis = tuple(axis_by_level[level]) if axis_by_level and level in axis_by_level else PATIENT_SUPERIOR
        diameters: dict[int, float] = {}
        for item in members:
            mask = np.isin(volume[item.slice_index], list(canal_labels))
            if not mask.any():
                raise ValueError(f"the canal (labels {list(canal_labels)}) is not labelled on axial slice {item.slice_index} ({level})")
            diameters[item.slice_index] = ap_diameter_mm(mask, axial_geometry.slices[item.slice_index], axis=axis)
        reference = reference_slice(members)
        narrowest = min(diameters, key=lambda k: (diameters[k], k))
        result[level] = LevelCanalAp(
            level=level,
            ap_mm=diameters[reference.slice_index],
            min_ap_mm=diameters[narrowest],
            slice_index=reference.slice_index,
            distance_mm=reference.distance_mm,
            min_slice_index=narrowest,
            n_slices=len(members),
        )
    return result

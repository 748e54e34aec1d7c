"""Every per-level quantity of one mask, the same way for the AI's masks and each reader's.

An axial mask gives, per disc level, on the slice nearest the disc mid-plane: DSCA (and the
minimum over the level's slices), the canal's AP diameter and the paraspinal muscles' CSA and
fat fraction per side. A sagittal mask gives the disc heights. Each row holds a number or, in
``errors``, why that quantity has none: a structure the label set lacks, one not drawn where it
is measured, no slice near the level. A missing structure is never read as 0.

Masks that cannot be measured at all (wrong shape for the geometry, empty, a slice orientation
that does not fit) raise ``ValueError`` with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from spinereview.morphometry.areas import ap_diameter_mm, check_label_volume, structure_area_per_slice_mm2
from spinereview.morphometry.geometry import SeriesGeometry
from spinereview.morphometry.heights import disc_heights_mm, heights_by_name
from spinereview.morphometry.levels import (
    LUMBAR_DISC_LEVELS,
    assign_levels,
    axial_slice_levels,
    disc_centres,
    intervertebral_discs,
    reference_slice,
    slices_by_level,
)
from spinereview.morphometry.muscle import FatWater, SignalIntensityModel, paraspinal_muscle_on_slice
from spinereview.morphometry.volumes import label_voxel_counts

__all__ = [
    "AXIAL_QUANTITIES",
    "DEFAULT_MAX_REFERENCE_DISTANCE_MM",
    "SAGITTAL_QUANTITIES",
    "axial_level_rows",
    "check_measurable",
    "named_disc_centres",
    "sagittal_level_rows",
]

DURAL_SAC = "dural_sac"
SPINAL_CANAL = "spinal_canal"
DISC = "intervertebral_disc"
VERTEBRAL_BODY = "vertebral_body"
MUSCLE = {"left": "paraspinal_muscle_left", "right": "paraspinal_muscle_right"}

AXIAL_QUANTITIES = (
    "dsca_mm2",
    "min_dsca_mm2",
    "ap_diameter_mm",
    "muscle_csa_left_mm2",
    "muscle_csa_right_mm2",
    "muscle_fat_fraction_left_percent",
    "muscle_fat_fraction_right_percent",
)
"""Numbers of an axial mask's row (mm², mm, %)."""
SAGITTAL_QUANTITIES = ("disc_height_anterior_mm", "disc_height_middle_mm", "disc_height_posterior_mm")
"""Numbers of a sagittal mask's row (mm)."""

DEFAULT_MAX_REFERENCE_DISTANCE_MM = 6.0
"""A level's reference slice must lie within this distance of the disc centre (about half a
lumbar disc height plus half a slice): a slice further away cuts the vertebral body or the
pedicles, and its DSCA would be a plausible number for the wrong place."""


def check_measurable(labels: npt.ArrayLike, geometry: SeriesGeometry, name: str = "mask") -> npt.NDArray[np.integer]:
    """The label volume, if it can be measured: its slices match the geometry and it is not empty.

    Raises:
        ValueError: see :func:`~spinereview.morphometry.areas.check_label_volume`; no label at all.
    """
    volume = check_label_volume(labels, geometry, name)
    if not np.any(volume):
        raise ValueError(f"the {name} is empty (no labelled voxel): nothing to measure")
    return volume


def _check_orientation(geometry: SeriesGeometry, expected: str, name: str) -> None:
    axis = 2 if expected == "axial" else 0  # axial slices face patient z, sagittal ones patient x
    for k, item in enumerate(geometry.slices):
        if abs(float(item.normal[axis])) < math.cos(math.radians(45.0)):
            raise ValueError(f"the {name} is not {expected}: slice {k} has normal {tuple(np.round(item.normal, 3))}")


def named_disc_centres(
    sagittal_labels: npt.ArrayLike,
    sagittal_geometry: SeriesGeometry,
    *,
    disc_label: int,
    vertebral_body_label: int,
    levels: Sequence[str] = LUMBAR_DISC_LEVELS,
) -> tuple[dict[str, tuple[float, float, float]], str]:
    """Disc centres named by counting from the sacrum, and the flag ("" when the count is sure).

    Ambiguous counts keep their provisional names (the flag says why), so the reader sees them
    flagged instead of silently guessed.

    Raises:
        ValueError: label volume/geometry mismatch.
    """
    discs = intervertebral_discs(
        disc_centres(sagittal_labels, sagittal_geometry, disc_label),
        disc_centres(sagittal_labels, sagittal_geometry, vertebral_body_label),
    )
    assignment = assign_levels(discs, levels)
    return dict(assignment.centres_by_level(allow_ambiguous=True)), assignment.reason if assignment.ambiguous else ""


def _empty_row(level: str, quantities: Sequence[str], reason: str) -> dict[str, Any]:
    return {"level": level, **dict.fromkeys(quantities), "errors": dict.fromkeys(quantities, reason)}


def axial_level_rows(
    axial_labels: npt.ArrayLike,
    axial_geometry: SeriesGeometry,
    named_centres: Mapping[str, Sequence[float]],
    *,
    label_values: Mapping[str, int],
    levels: Sequence[str] = LUMBAR_DISC_LEVELS,
    fat_water: FatWater | None = None,
    image: npt.ArrayLike | None = None,
    intensity_model: SignalIntensityModel | None = None,
    max_distance_mm: float = DEFAULT_MAX_REFERENCE_DISTANCE_MM,
) -> list[dict[str, Any]]:
    """One row per level of an axial mask (``label_values``: structure name -> label value).

    Each row: ``level``, ``axial_slice_index`` and ``distance_to_disc_mm`` of the reference
    slice (the level's slice nearest the disc centre, within ``max_distance_mm``), the numbers
    of :data:`AXIAL_QUANTITIES` (``None`` where not measured), ``muscle_fat_method`` (how the
    fat fractions were obtained) and ``errors`` (quantity -> why it has no number).

    * DSCA: dural sac area in the slice plane; ``min_dsca_mm2`` the smallest over the level's
      slices within ``max_distance_mm`` on which the sac is drawn.
    * AP diameter: of the canal (spinal canal + dural sac labels) along the patient's AP axis;
      the spinal canal label must be drawn on the slice, else the sac alone would pass for it.
    * Muscles: CSA per side; fat fraction from ``fat_water`` if given, else from ``image``
      through ``intensity_model``, else none (see
      :func:`~spinereview.morphometry.muscle.paraspinal_muscles_by_level`).

    Raises:
        ValueError: the mask cannot be measured (:func:`check_measurable`), is not axial, or the
            images do not fit it; no named disc centre.
    """
    volume = check_measurable(axial_labels, axial_geometry, "axial mask")
    _check_orientation(axial_geometry, "axial", "axial mask")
    if not named_centres:
        raise ValueError("no named disc centre: the axial slices cannot be placed at disc levels")
    if fat_water is not None and (image is not None or intensity_model is not None):
        raise ValueError("give either fat_water or image + intensity_model, not both")
    if (image is None) != (intensity_model is None):
        raise ValueError("image and intensity_model go together: give both or neither")
    single = None
    if image is not None:
        single = np.asarray(image, dtype=np.float64)
        if single.shape != volume.shape:
            raise ValueError(f"image has shape {single.shape} but the mask has {volume.shape}")
    if fat_water is not None and fat_water.geometry is None and fat_water.fat.shape != volume.shape:
        raise ValueError(f"the fat/water images have shape {fat_water.fat.shape} but the mask has {volume.shape}")
    blocks = slices_by_level(
        axial_slice_levels(axial_geometry, named_centres), volume.shape[0], levels=levels, max_distance_mm=max_distance_mm
    )
    present = set(label_voxel_counts(volume))

    def missing(name: str) -> str:
        if name not in label_values:
            return f"the label set has no {name} label"
        if label_values[name] not in present:
            return f"{name} (label {label_values[name]}) is not drawn in this mask"
        return ""

    sac_area = structure_area_per_slice_mm2(volume, axial_geometry, label_values[DURAL_SAC]) if not missing(DURAL_SAC) else None
    rows = []
    for level in levels:
        members = blocks.get(level, ())
        if not members:
            rows.append(
                {"axial_slice_index": None, "distance_to_disc_mm": None, "muscle_fat_method": ""}
                | _empty_row(level, AXIAL_QUANTITIES, f"no axial slice within {max_distance_mm:g} mm of the {level} disc centre")
            )
            continue
        reference = reference_slice(members)
        k = reference.slice_index
        row: dict[str, Any] = {"level": level, "axial_slice_index": k, "distance_to_disc_mm": round(reference.distance_mm, 3)}
        row |= dict.fromkeys(AXIAL_QUANTITIES)
        row["muscle_fat_method"] = ""
        errors: dict[str, str] = {}
        # DSCA
        if sac_area is None:
            errors["dsca_mm2"] = errors["min_dsca_mm2"] = missing(DURAL_SAC)
        elif sac_area[k] <= 0:
            errors["dsca_mm2"] = f"the dural sac is not drawn on axial slice {k} ({level})"
            drawn = [s for s in members if sac_area[s.slice_index] > 0]
            if drawn:
                row["min_dsca_mm2"] = float(min(sac_area[s.slice_index] for s in drawn))
            else:
                errors["min_dsca_mm2"] = f"the dural sac is not drawn on any slice of {level}"
        else:
            row["dsca_mm2"] = float(sac_area[k])
            row["min_dsca_mm2"] = float(min(sac_area[s.slice_index] for s in members if sac_area[s.slice_index] > 0))
        # canal AP diameter
        why = missing(SPINAL_CANAL) or missing(DURAL_SAC)
        if why:
            errors["ap_diameter_mm"] = why
        elif not np.any(volume[k] == label_values[SPINAL_CANAL]):
            errors["ap_diameter_mm"] = f"the spinal canal is not drawn on axial slice {k} ({level})"
        else:
            canal = np.isin(volume[k], [label_values[SPINAL_CANAL], label_values[DURAL_SAC]])
            try:
                row["ap_diameter_mm"] = ap_diameter_mm(canal, axial_geometry.slices[k])
            except ValueError as exc:
                errors["ap_diameter_mm"] = str(exc)
        # paraspinal muscles
        methods = set()
        for side, name in MUSCLE.items():
            csa_key, fat_key = f"muscle_csa_{side}_mm2", f"muscle_fat_fraction_{side}_percent"
            if why := missing(name):
                errors[csa_key] = errors[fat_key] = why
                continue
            try:
                measured = paraspinal_muscle_on_slice(
                    volume,
                    axial_geometry,
                    reference,
                    label=label_values[name],
                    side=side,
                    n_slices=len(members),
                    fat_water=fat_water,
                    image=single,
                    intensity_model=intensity_model,
                )
            except ValueError as exc:
                errors[csa_key] = errors[fat_key] = str(exc)
                continue
            row[csa_key] = measured.csa_mm2
            if measured.fat_fraction_percent is None:
                errors[fat_key] = "no fat/water pair for this series and no intensity model configured"
            else:
                row[fat_key] = measured.fat_fraction_percent
                methods.add(measured.method)
        row["muscle_fat_method"] = "; ".join(sorted(methods))
        row["errors"] = errors
        rows.append(row)
    return rows


def sagittal_level_rows(
    sagittal_labels: npt.ArrayLike,
    sagittal_geometry: SeriesGeometry,
    named_centres: Mapping[str, Sequence[float]],
    *,
    label_values: Mapping[str, int],
    levels: Sequence[str] = LUMBAR_DISC_LEVELS,
) -> list[dict[str, Any]]:
    """One row per level of a sagittal mask: disc heights (anterior, middle, posterior) on the
    mid-sagittal slice, named after the nearest named disc centre; ``errors`` as for
    :func:`axial_level_rows`.

    Raises:
        ValueError: the mask cannot be measured (:func:`check_measurable`) or is not sagittal.
    """
    volume = check_measurable(sagittal_labels, sagittal_geometry, "sagittal mask")
    _check_orientation(sagittal_geometry, "sagittal", "sagittal mask")
    if DISC not in label_values:
        return [_empty_row(level, SAGITTAL_QUANTITIES, f"the label set has no {DISC} label") for level in levels]
    if not named_centres:
        return [
            _empty_row(level, SAGITTAL_QUANTITIES, "the discs could not be named (no disc between two vertebral bodies)")
            for level in levels
        ]
    try:
        named = heights_by_name(disc_heights_mm(volume, sagittal_geometry, label_values[DISC]), named_centres)
    except ValueError as exc:
        return [_empty_row(level, SAGITTAL_QUANTITIES, str(exc)) for level in levels]
    rows = []
    for level in levels:
        if level not in named:
            rows.append(_empty_row(level, SAGITTAL_QUANTITIES, f"no disc on the mid-sagittal slice near the {level} disc centre"))
            continue
        heights = named[level]
        rows.append(
            {
                "level": level,
                "disc_height_anterior_mm": heights.anterior_mm,
                "disc_height_middle_mm": heights.middle_mm,
                "disc_height_posterior_mm": heights.posterior_mm,
                "errors": {},
            }
        )
    return rows

"""Disc levels: disc centres from sagittal labels, their names, and which axial slice is where.

Everything is in patient coordinates (DICOM LPS, mm, +z superior), so sagittal and axial
series of one frame of reference can be combined whatever their pixel grids and angulation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from spinereview.morphometry.areas import check_label_volume
from spinereview.morphometry.geometry import SeriesGeometry, Vector3

__all__ = [
    "intervertebral_discs",
    "LUMBAR_DISC_LEVELS",
    "DiscCentre",
    "LevelAssignment",
    "NamedDisc",
    "SliceLevel",
    "assign_levels",
    "axial_slice_levels",
    "disc_centres",
]

LUMBAR_DISC_LEVELS: tuple[str, ...] = ("L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1")
"""The five lumbar disc levels, superior to inferior."""

DEFAULT_MIN_DISC_VOLUME_MM3 = 100.0
"""Components smaller than this are dropped by :func:`disc_centres` as segmentation debris.

A lumbar disc holds several thousand mm³ even when a sagittal stack catches only its edge in
one 4 mm slice (~100 mm² x 4 mm); stray voxels and specks are a few mm³ to a few tens of mm³.
"""

# Face-connected (6-neighbourhood) components: adjacent discs touching only along an edge or a
# corner, e.g. across a thin endplate at the partial-volume border, stay separate.
_FACE_CONNECTIVITY = ndimage.generate_binary_structure(3, 1)


@dataclass(frozen=True)
class DiscCentre:
    """One disc found in a sagittal label volume.

    Attributes:
        centre_mm: volume-weighted centroid of the disc's voxel centres (LPS, mm).
        voxel_count: voxels in the connected component.
        volume_mm3: sum of voxel volumes (PixelSpacing product x SliceThickness).
    """

    centre_mm: Vector3
    voxel_count: int
    volume_mm3: float


@dataclass(frozen=True)
class NamedDisc:
    """A disc and the level name given to it."""

    level: str
    centre_mm: Vector3
    voxel_count: int
    volume_mm3: float


@dataclass(frozen=True)
class LevelAssignment:
    """Disc level names, counted from the inferior end (the lowest disc is the last name).

    Attributes:
        discs: named discs, superior to inferior.
        ambiguous: True when the number of discs differs from the number of level names; the
            names in ``discs`` are then only a provisional count from the inferior end, and a
            person must confirm them (e.g. transitional vertebra, field of view cut off).
        reason: why the assignment is ambiguous ("" when it is not).
        unnamed: discs above the highest level name (only when there are more discs than
            names), superior to inferior.
    """

    discs: tuple[NamedDisc, ...]
    ambiguous: bool
    reason: str
    unnamed: tuple[DiscCentre, ...] = ()

    def centres_by_level(self, *, allow_ambiguous: bool = False) -> dict[str, Vector3]:
        """``{level: centre_mm}``, superior to inferior, for :func:`axial_slice_levels`.

        Raises:
            ValueError: the assignment is ambiguous and ``allow_ambiguous`` is False, so that
                provisional names are never used by accident.
        """
        if self.ambiguous and not allow_ambiguous:
            raise ValueError(
                f"disc level assignment is ambiguous ({self.reason}); confirm the levels or "
                "pass allow_ambiguous=True to use the provisional names"
            )
        return {disc.level: disc.centre_mm for disc in self.discs}


@dataclass(frozen=True)
class SliceLevel:
    """The disc level nearest to one axial slice.

    Attributes:
        slice_index: ``z`` index of the slice in the axial label volume.
        level: name of the nearest disc.
        distance_mm: distance from that disc's centre to the slice plane, along the slice
            normal (``row_cosine x column_cosine``), >= 0.
        signed_distance_mm: the same distance with a sign, positive when the slice lies
            superior (cranial) to the disc centre.
    """

    slice_index: int
    level: str
    distance_mm: float
    signed_distance_mm: float | None = None
    """``(IPP_k - centre) . n_k`` with ``n_k`` turned to point superior (``n_z >= 0``): positive
    when the slice plane lies cranial to the disc centre. ``None`` only where a caller built
    the record by hand."""


def disc_centres(
    sagittal_labels: npt.ArrayLike,
    sagittal_geometry: SeriesGeometry,
    disc_label: int,
    *,
    min_volume_mm3: float = DEFAULT_MIN_DISC_VOLUME_MM3,
) -> tuple[DiscCentre, ...]:
    """Centres of the discs in a sagittal ``(z, y, x)`` label volume, superior to inferior.

    Each 3-D face-connected component of ``disc_label`` is one disc. Its centre is the
    centroid of its voxel centres in patient coordinates, weighted by voxel volume (which
    differs between slices only if their spacing does). Components below ``min_volume_mm3``
    (default 100 mm³, see :data:`DEFAULT_MIN_DISC_VOLUME_MM3`) are ignored. Discs are ordered by
    patient z, highest (most superior, LPS +z) first.

    Raises:
        ValueError: see :func:`~spinereview.morphometry.areas.check_label_volume`; negative
            ``min_volume_mm3``.
    """
    if not (math.isfinite(min_volume_mm3) and min_volume_mm3 >= 0):
        raise ValueError(f"min_volume_mm3 must be a non-negative number, got {min_volume_mm3}")
    volume = check_label_volume(sagittal_labels, sagittal_geometry, "sagittal_labels")
    components, n_components = ndimage.label(volume == disc_label, structure=_FACE_CONNECTIVITY)
    if n_components == 0:
        return ()
    z, r, c = np.nonzero(components)
    component = components[z, r, c]

    slices = sagittal_geometry.slices
    ipp = np.array([s.image_position_mm for s in slices], dtype=np.float64)
    row_step = np.array(
        [np.multiply(s.row_cosine, s.pixel_spacing_mm[1]) for s in slices],
        dtype=np.float64,
    )
    col_step = np.array(
        [np.multiply(s.column_cosine, s.pixel_spacing_mm[0]) for s in slices],
        dtype=np.float64,
    )
    voxel_mm3 = np.array([s.pixel_area_mm2 * s.slice_thickness_mm for s in slices])

    position = ipp[z] + c[:, None] * row_step[z] + r[:, None] * col_step[z]
    weight = voxel_mm3[z]
    bins = n_components + 1
    volume_mm3 = np.bincount(component, weights=weight, minlength=bins)
    voxels = np.bincount(component, minlength=bins)
    centres = np.stack(
        [np.bincount(component, weights=weight * position[:, a], minlength=bins) for a in range(3)],
        axis=1,
    )

    found = []
    for index in range(1, bins):
        if volume_mm3[index] < min_volume_mm3:
            continue
        centre = centres[index] / volume_mm3[index]
        found.append(
            DiscCentre(
                centre_mm=(float(centre[0]), float(centre[1]), float(centre[2])),
                voxel_count=int(voxels[index]),
                volume_mm3=float(volume_mm3[index]),
            )
        )
    found.sort(key=lambda disc: -disc.centre_mm[2])
    return tuple(found)


def intervertebral_discs(
    discs: Sequence[DiscCentre],
    vertebrae: Sequence[DiscCentre],
    *,
    min_fraction_of_median: float = 0.2,
) -> tuple[DiscCentre, ...]:
    """The disc components that sit between two vertebral bodies, superior to inferior.

    A segmentation can label disc-like tissue where no disc is: below the sacrum, or small
    fragments. Counting levels from the inferior end would then name every disc one level too
    low. Two rules remove such components before :func:`assign_levels`:

    1. fragments: a disc (vertebra) whose volume is below ``min_fraction_of_median`` times the
       median disc (vertebra) volume is dropped;
    2. position: a disc is kept only if some remaining vertebral body centre lies above it and
       another below it along patient z (LPS, +z superior).

    Both inputs come from :func:`disc_centres` (on the disc label and on the vertebral-body label).

    Raises:
        ValueError: ``min_fraction_of_median`` is not in [0, 1).
    """
    if not 0.0 <= min_fraction_of_median < 1.0:
        raise ValueError(f"min_fraction_of_median must be in [0, 1), got {min_fraction_of_median}")

    def substantial(items: Sequence[DiscCentre]) -> list[DiscCentre]:
        if not items:
            return []
        median = float(np.median([item.volume_mm3 for item in items]))
        return [item for item in items if item.volume_mm3 >= min_fraction_of_median * median]

    bodies_z = [body.centre_mm[2] for body in substantial(vertebrae)]
    kept = [
        disc for disc in substantial(discs) if any(z > disc.centre_mm[2] for z in bodies_z) and any(z < disc.centre_mm[2] for z in bodies_z)
    ]
    return tuple(sorted(kept, key=lambda disc: -disc.centre_mm[2]))


def assign_levels(
    disc_centres: Sequence[DiscCentre],
    level_names: Sequence[str] = LUMBAR_DISC_LEVELS,
) -> LevelAssignment:
    """Name discs by counting from the inferior end: the lowest disc gets ``level_names[-1]``.

    ``level_names`` run superior to inferior (default L1-L2 ... L5-S1). Discs are sorted by
    patient z (LPS +z superior), whatever their input order. When the number of discs equals
    the number of names, each disc gets its name and ``ambiguous`` is False. When there are
    more discs than names, the lowest discs are named and the extra superior ones (T12-L1 and
    above, which a lumbar sagittal field of view usually shows) are listed in ``unnamed``;
    ``reason`` says so but the assignment is not ambiguous. When there are fewer discs than
    names, a lumbar level is missing and the result is flagged ``ambiguous``: the lowest discs
    still carry provisional names counted from the inferior end, and
    :meth:`LevelAssignment.centres_by_level` refuses to hand them out unless asked explicitly.

    Counting from the sacrum is how readers count on a lumbar sagittal view; it is wrong with a
    transitional lumbosacral vertebra, which is why a count mismatch is never resolved silently.

    Raises:
        ValueError: ``level_names`` is empty or repeats a name.
    """
    names = list(level_names)
    if not names:
        raise ValueError("level_names must not be empty")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"level_names must be unique; repeated: {repeated}")
    ordered = sorted(disc_centres, key=lambda disc: -disc.centre_mm[2])
    n_named = min(len(ordered), len(names))
    lowest = ordered[len(ordered) - n_named :]
    discs = tuple(
        NamedDisc(
            level=name,
            centre_mm=disc.centre_mm,
            voxel_count=disc.voxel_count,
            volume_mm3=disc.volume_mm3,
        )
        for name, disc in zip(names[len(names) - n_named :], lowest, strict=True)
    )
    unnamed = tuple(ordered[: len(ordered) - n_named])
    if len(ordered) == len(names):
        return LevelAssignment(discs=discs, ambiguous=False, reason="")
    if len(ordered) > len(names):
        reason = f"{len(unnamed)} disc(s) above {names[0]} left unnamed (counted from the inferior end)"
        return LevelAssignment(discs=discs, ambiguous=False, reason=reason, unnamed=unnamed)
    if not ordered:
        reason = f"no disc found; expected {len(names)} ({names[0]} to {names[-1]})"
    else:
        reason = (
            f"found {len(ordered)} discs but {len(names)} level names ({names[0]} to "
            f"{names[-1]}); names counted from the inferior end are provisional"
        )
    return LevelAssignment(discs=discs, ambiguous=True, reason=reason, unnamed=unnamed)


def axial_slice_levels(
    axial_geometry: SeriesGeometry,
    named_disc_centres: Mapping[str, Sequence[float]],
) -> tuple[SliceLevel, ...]:
    """For every axial slice, the nearest disc and its (signed) distance to the slice plane.

    ``signed_k(level) = (IPP_k - centre_level) . n_k`` with ``n_k`` the unit normal
    ``row_cosine x column_cosine`` of slice ``k`` turned to point superior; ``distance =
    |signed|`` is the perpendicular distance from the disc centre to the (possibly angled)
    plane of the slice, and the sign says whether the slice lies cranial (+) or caudal (-). Each slice gets the level with the
    smallest distance (the first in ``named_disc_centres`` order on an exact tie). Every slice is
    assigned, however far it is from every disc; filter on ``distance_mm`` where that matters
    (see ``max_distance_mm`` in :func:`~spinereview.morphometry.stenosis.dsca_by_level_mm2`).

    ``named_disc_centres`` maps level name to centre (LPS, mm), e.g.
    ``LevelAssignment.centres_by_level()``.

    Raises:
        ValueError: no disc centres, or a centre that is not 3 finite numbers.
    """
    if not named_disc_centres:
        raise ValueError("no disc centres: cannot assign axial slices to levels")
    levels = list(named_disc_centres)
    centres = []
    for level in levels:
        centre = np.asarray(named_disc_centres[level], dtype=np.float64)
        if centre.shape != (3,) or not np.all(np.isfinite(centre)):
            raise ValueError(f"centre of {level!r} must be 3 finite numbers (mm), got {centre}")
        centres.append(centre)
    centre_array = np.stack(centres)
    out = []
    for k, geometry in enumerate(axial_geometry.slices):
        normal = geometry.normal if geometry.normal[2] >= 0 else -geometry.normal
        signed = (np.asarray(geometry.image_position_mm, dtype=np.float64) - centre_array) @ normal
        distances = np.abs(signed)
        nearest = int(np.argmin(distances))
        out.append(
            SliceLevel(
                slice_index=k,
                level=levels[nearest],
                distance_mm=float(distances[nearest]),
                signed_distance_mm=float(signed[nearest]),
            )
        )
    return tuple(out)


def slices_by_level(
    slice_levels: Sequence[SliceLevel],
    n_slices: int,
    *,
    levels: Sequence[str] | None = None,
    max_distance_mm: float | None = None,
) -> dict[str, tuple[SliceLevel, ...]]:
    """The axial slices of each level (its block), in slice order, for per-level measurements.

    ``levels`` lists the levels to report, in that order (default: the levels of
    ``slice_levels`` in order of first appearance); a listed level with no slice maps to ``()``.
    ``max_distance_mm`` keeps only slices within that distance of their disc centre.

    Raises:
        ValueError: a slice index outside ``[0, n_slices)`` or listed twice; a negative or
            non-finite ``max_distance_mm``.
    """
    if max_distance_mm is not None and not (max_distance_mm >= 0 and math.isfinite(max_distance_mm)):
        raise ValueError(f"max_distance_mm must be a non-negative number, got {max_distance_mm}")
    seen: set[int] = set()
    for item in slice_levels:
        if not 0 <= item.slice_index < n_slices:
            raise ValueError(f"slice_levels refers to slice {item.slice_index}, but the axial volume has {n_slices} slices")
        if item.slice_index in seen:
            raise ValueError(f"slice_levels lists slice {item.slice_index} more than once")
        seen.add(item.slice_index)
    kept = [item for item in slice_levels if max_distance_mm is None or item.distance_mm <= max_distance_mm]
    order = list(dict.fromkeys(levels if levels is not None else (s.level for s in slice_levels)))
    return {level: tuple(sorted((s for s in kept if s.level == level), key=lambda s: s.slice_index)) for level in order}


def reference_slice(members: Sequence[SliceLevel]) -> SliceLevel:
    """The slice of a level's block whose plane is nearest the disc centre (lower index on a tie).

    Raises:
        ValueError: no slice.
    """
    if not members:
        raise ValueError("no slice at this level")
    return min(members, key=lambda s: (s.distance_mm, s.slice_index))

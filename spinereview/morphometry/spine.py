"""Disc planes and the naming of discs and vertebrae from the sacrum, with ambiguities flagged.

Everything is in patient coordinates (DICOM LPS, mm, +z superior). A lumbar sagittal series is
counted the way readers count it: find the sacrum (the lowest vertebral body), then name the
discs above it L5-S1, L4-L5, ... and the bodies between them S1, L5, L4, ... Where that count
cannot be trusted (no sacrum in view, a level missing or fused, a rudimentary lowest disc of a
transitional vertebra, more discs than the field of view should show) the result carries a flag
with the reason, and the names are provisional: :meth:`SpineLevels.planes_by_level` refuses to
hand them out unless asked explicitly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from spinereview.morphometry.areas import check_label_volume
from spinereview.morphometry.geometry import SeriesGeometry, Vector3
from spinereview.morphometry.levels import DEFAULT_MIN_DISC_VOLUME_MM3, LUMBAR_DISC_LEVELS, DiscCentre, disc_centres

__all__ = [
    "LUMBAR_VERTEBRAE",
    "DiscPlane",
    "NamedDiscPlane",
    "NamedVertebra",
    "SpineLevels",
    "disc_planes",
    "spine_levels",
]

LUMBAR_VERTEBRAE: tuple[str, ...] = ("L1", "L2", "L3", "L4", "L5", "S1")
"""Vertebrae bounding the lumbar disc levels, superior to inferior."""

_FACE_CONNECTIVITY = ndimage.generate_binary_structure(3, 1)
# A component seen on fewer sagittal slices than this has no usable left-right extent: its
# normal is fitted within the slice plane (lateral tilt is then taken as zero).
_MIN_SLICES_FOR_3D_FIT = 3
# A fitted normal within 45° of the slice normal means the component looks thinnest across the
# slices: the slices have not covered the disc's width, and the in-plane fit is used instead.
_MAX_NORMAL_ACROSS_SLICES = math.cos(math.radians(45.0))


@dataclass(frozen=True)
class DiscPlane:
    """A disc's mid-plane: centre and unit normal in patient coordinates.

    Attributes:
        centre_mm: volume-weighted centroid of the disc's voxels (LPS, mm).
        normal: unit normal of the disc's mid-plane, pointing superior (``normal[2] >= 0``).
        voxel_count: voxels in the connected component.
        volume_mm3: sum of voxel volumes (PixelSpacing product x SliceThickness).
        n_slices: number of slices the component appears on.
    """

    centre_mm: Vector3
    normal: Vector3
    voxel_count: int
    volume_mm3: float
    n_slices: int


@dataclass(frozen=True)
class NamedDiscPlane:
    """A disc plane and its level name (e.g. ``"L4-L5"``)."""

    level: str
    plane: DiscPlane


@dataclass(frozen=True)
class NamedVertebra:
    """A vertebral body and its name (e.g. ``"L5"``, ``"S1"``)."""

    name: str
    body: DiscCentre


@dataclass(frozen=True)
class SpineLevels:
    """Discs and vertebral bodies named from the sacrum.

    Attributes:
        discs: named discs, superior to inferior.
        vertebrae: named vertebral bodies, superior to inferior.
        unnamed_discs: discs above the highest level name, superior to inferior.
        flags: one reason per problem found with the count; empty when it can be trusted.
    """

    discs: tuple[NamedDiscPlane, ...]
    vertebrae: tuple[NamedVertebra, ...]
    unnamed_discs: tuple[DiscPlane, ...]
    flags: tuple[str, ...]

    @property
    def ambiguous(self) -> bool:
        """Whether the names are provisional and a person must confirm them."""
        return bool(self.flags)

    def planes_by_level(self, *, allow_ambiguous: bool = False) -> dict[str, DiscPlane]:
        """``{level: disc plane}``, superior to inferior.

        Raises:
            ValueError: the count is flagged and ``allow_ambiguous`` is False.
        """
        if self.flags and not allow_ambiguous:
            raise ValueError(
                f"disc level count is ambiguous ({'; '.join(self.flags)}); confirm the levels or pass "
                "allow_ambiguous=True to use the provisional names"
            )
        return {disc.level: disc.plane for disc in self.discs}

    def centres_by_level(self, *, allow_ambiguous: bool = False) -> dict[str, Vector3]:
        """``{level: centre_mm}`` for :func:`~spinereview.morphometry.levels.axial_slice_levels`."""
        return {level: plane.centre_mm for level, plane in self.planes_by_level(allow_ambiguous=allow_ambiguous).items()}

    def normals_by_level(self, *, allow_ambiguous: bool = False) -> dict[str, Vector3]:
        """``{level: unit normal}``: the local spinal axis at each disc, the ``axis_by_level``
        of :func:`~spinereview.morphometry.stenosis.dsca_by_level_mm2` and
        :func:`~spinereview.morphometry.canal.canal_ap_by_level_mm`."""
        return {level: plane.normal for level, plane in self.planes_by_level(allow_ambiguous=allow_ambiguous).items()}


def disc_planes(
    sagittal_labels: npt.ArrayLike,
    sagittal_geometry: SeriesGeometry,
    disc_label: int,
    *,
    min_volume_mm3: float = DEFAULT_MIN_DISC_VOLUME_MM3,
) -> tuple[DiscPlane, ...]:
    """Mid-plane (centre + normal) of every disc in a sagittal label volume, superior to inferior.

    Each 3-D face-connected component of ``disc_label`` is one disc (as in
    :func:`~spinereview.morphometry.levels.disc_centres`). Method: principal component analysis
    of the disc as a solid. Each voxel is a box (PixelSpacing along row and column, SliceThickness
    along the slice normal) centred on its voxel centre; the disc's second-moment tensor is the
    volume-weighted covariance of the voxel centres plus each box's own covariance
    ``diag(ps[1]², ps[0]², thickness²) / 12`` in the slice frame (the parallel-axis theorem), so
    a disc sampled by a few thick sagittal slices is not mistaken for one thin in left-right. The
    normal is the eigenvector of the smallest eigenvalue (a disc is a flat cylinder, thinnest
    along its axis), turned to point superior. A component on fewer than 3 slices has no usable
    left-right extent: its normal is fitted within the slice plane, and so is one whose 3-D normal comes out within 45°
    of the slice normal (thinner across the slices than within them: the slices did not cover
    the disc's width, as no real disc is narrower than it is tall). Reference: the least-squares
    plane through a point set is spanned by its two major principal axes (Pearson, Phil Mag
    1901;2:559-572).

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
    slices = sagittal_geometry.slices
    ipp = np.array([s.image_position_mm for s in slices], dtype=np.float64)
    rowcos = np.array([s.row_cosine for s in slices], dtype=np.float64)
    colcos = np.array([s.column_cosine for s in slices], dtype=np.float64)
    normals = np.array([s.normal for s in slices], dtype=np.float64)
    ps_row = np.array([s.pixel_spacing_mm[0] for s in slices])
    ps_col = np.array([s.pixel_spacing_mm[1] for s in slices])
    thickness = np.array([s.slice_thickness_mm for s in slices])
    voxel_mm3 = ps_row * ps_col * thickness
    # Each slice's voxel box covariance in patient coordinates.
    box = (
        (ps_col**2 / 12)[:, None, None] * np.einsum("ki,kj->kij", rowcos, rowcos)
        + (ps_row**2 / 12)[:, None, None] * np.einsum("ki,kj->kij", colcos, colcos)
        + (thickness**2 / 12)[:, None, None] * np.einsum("ki,kj->kij", normals, normals)
    )

    found = []
    for index, region in enumerate(ndimage.find_objects(components), start=1):
        if region is None:
            continue
        k, r, c = np.nonzero(components[region] == index)
        k = k + region[0].start
        r = r + region[1].start
        c = c + region[2].start
        weight = voxel_mm3[k]
        total = float(weight.sum())
        if total < min_volume_mm3:
            continue
        position = ipp[k] + (c * ps_col[k])[:, None] * rowcos[k] + (r * ps_row[k])[:, None] * colcos[k]
        centre = (weight[:, None] * position).sum(axis=0) / total
        offset = position - centre
        tensor = np.einsum("n,ni,nj->ij", weight, offset, offset) / total
        tensor += np.einsum("n,nij->ij", weight, box[k]) / total
        slice_ids = np.unique(k)
        values, vectors = np.linalg.eigh(tensor)
        normal = vectors[:, int(np.argmin(values))]
        if len(slice_ids) < _MIN_SLICES_FOR_3D_FIT or abs(float(normal @ normals[slice_ids[0]])) > _MAX_NORMAL_ACROSS_SLICES:
            # Seen as thinner across the slices than within them: a disc is far wider than it
            # is tall, so the slices do not cover it; fit within the (first) slice's plane.
            basis = np.stack([rowcos[slice_ids[0]], colcos[slice_ids[0]]])
            values, vectors = np.linalg.eigh(basis @ tensor @ basis.T)
            normal = basis.T @ vectors[:, int(np.argmin(values))]
        normal = normal / np.linalg.norm(normal)
        if normal[2] < 0:
            normal = -normal
        found.append(
            DiscPlane(
                centre_mm=(float(centre[0]), float(centre[1]), float(centre[2])),
                normal=(float(normal[0]), float(normal[1]), float(normal[2])),
                voxel_count=len(k),
                volume_mm3=total,
                n_slices=len(slice_ids),
            )
        )
    found.sort(key=lambda disc: -disc.centre_mm[2])
    return tuple(found)


def _substantial(volumes: Sequence[float], fraction: float) -> list[bool]:
    if not volumes:
        return []
    median = float(np.median(volumes))
    return [v >= fraction * median for v in volumes]


def spine_levels(
    sagittal_labels: npt.ArrayLike,
    sagittal_geometry: SeriesGeometry,
    *,
    disc_label: int,
    vertebral_body_label: int,
    level_names: Sequence[str] = LUMBAR_DISC_LEVELS,
    vertebra_names: Sequence[str] = LUMBAR_VERTEBRAE,
    min_volume_mm3: float = DEFAULT_MIN_DISC_VOLUME_MM3,
    min_fraction_of_median: float = 0.2,
    transitional_disc_ratio: float = 0.5,
    max_unnamed_discs: int = 2,
) -> SpineLevels:
    """Name discs and vertebral bodies by counting up from the sacrum; flag what is doubtful.

    Method:

    1. discs (:func:`disc_planes`) and vertebral bodies
       (:func:`~spinereview.morphometry.levels.disc_centres` on the body label) are found as
       3-D components; fragments below ``min_fraction_of_median`` x the median volume of their
       kind are dropped;
    2. all are ordered by patient z (LPS +z superior). The sacrum is the lowest structure if it
       is a vertebral body; otherwise the flag "missing sacrum" is raised and the count starts at
       the lowest disc, provisionally;
    3. going up from the sacrum, discs and bodies must alternate; two discs with no body
       between them or two bodies with no disc (a missed or fused level, a fragment) are flagged;
    4. discs are named from the bottom: ``level_names[-1]`` (L5-S1) is the lowest; bodies are
       named from ``vertebra_names`` the same way (S1 is the sacrum). Discs above
       ``level_names[0]`` stay unnamed (T12-L1 is usually in view);
    5. flags: fewer discs than level names ("too few"); more than ``max_unnamed_discs``
       unnamed discs ("too many": a sixth lumbar vertebra cannot be told from thoracic discs
       without the whole spine); a lowest disc below ``transitional_disc_ratio`` x the median
       volume of the discs above it ("possible transitional lumbosacral vertebra": the
       rudimentary L5-S1 disc of a sacralised L5 or lumbarised S1, Castellvi et al., Spine
       1984;9:493-495).

    Counting from the sacrum is how readers count on a lumbar sagittal view (Carrino et al.,
    Radiology 2011;259:196-202, on the numbering errors it avoids and those it does not).

    Raises:
        ValueError: see :func:`disc_planes`; ``level_names``/``vertebra_names`` empty, repeated,
            or not one name longer than the level names; out-of-range ratios or counts.
    """
    names = list(level_names)
    bodies_names = list(vertebra_names)
    if not names or len(set(names)) != len(names):
        raise ValueError(f"level_names must be non-empty and unique, got {names}")
    if len(bodies_names) != len(names) + 1 or len(set(bodies_names)) != len(bodies_names):
        raise ValueError(f"vertebra_names must be {len(names) + 1} unique names (one more than level_names), got {bodies_names}")
    if not 0.0 <= min_fraction_of_median < 1.0:
        raise ValueError(f"min_fraction_of_median must be in [0, 1), got {min_fraction_of_median}")
    if not 0.0 <= transitional_disc_ratio < 1.0:
        raise ValueError(f"transitional_disc_ratio must be in [0, 1), got {transitional_disc_ratio}")
    if max_unnamed_discs < 0:
        raise ValueError(f"max_unnamed_discs must be >= 0, got {max_unnamed_discs}")

    all_discs = disc_planes(sagittal_labels, sagittal_geometry, disc_label, min_volume_mm3=min_volume_mm3)
    all_bodies = disc_centres(sagittal_labels, sagittal_geometry, vertebral_body_label, min_volume_mm3=min_volume_mm3)
    discs = [d for d, keep in zip(all_discs, _substantial([d.volume_mm3 for d in all_discs], min_fraction_of_median), strict=True) if keep]
    bodies = [
        b for b, keep in zip(all_bodies, _substantial([b.volume_mm3 for b in all_bodies], min_fraction_of_median), strict=True) if keep
    ]

    # Inferior to superior: ("body", index) / ("disc", index)
    sequence = sorted(
        [(b.centre_mm[2], "body", i) for i, b in enumerate(bodies)] + [(d.centre_mm[2], "disc", i) for i, d in enumerate(discs)],
    )
    flags: list[str] = []
    if not discs:
        flags.append(f"no disc found; expected {len(names)} ({names[0]} to {names[-1]})")
        return SpineLevels(discs=(), vertebrae=(), unnamed_discs=(), flags=tuple(flags))
    start = 0
    if sequence[0][1] != "body":
        flags.append("missing sacrum: no vertebral body below the lowest disc, so the count from the sacrum has no anchor")
    else:
        # Bodies below the first disc: only the one nearest to it is the sacrum's S1.
        while start + 1 < len(sequence) and sequence[start + 1][1] == "body":
            start += 1
    counted = sequence[start:]
    for (z_low, kind_low, _), (z_high, kind_high, _) in zip(counted, counted[1:], strict=False):
        if kind_low == kind_high:
            what = "discs" if kind_low == "disc" else "vertebral bodies"
            flags.append(
                f"two {what} follow each other without a {'body' if kind_low == 'disc' else 'disc'} between them "
                f"(z = {z_low:.1f} and {z_high:.1f} mm): a missed or fused level, or a fragment"
            )
    disc_order = [discs[i] for _, kind, i in counted if kind == "disc"]  # inferior to superior
    body_order = [bodies[i] for _, kind, i in counted if kind == "body"]
    if len(disc_order) < len(names):
        flags.append(
            f"too few discs: found {len(disc_order)} above the {'sacrum' if sequence[0][1] == 'body' else 'lowest disc'}, "
            f"expected {len(names)} ({names[0]} to {names[-1]}); names counted from the inferior end are provisional"
        )
    n_unnamed = max(0, len(disc_order) - len(names))
    if n_unnamed > max_unnamed_discs:
        flags.append(
            f"too many discs: {len(disc_order)} above the sacrum, {n_unnamed} more than the {len(names)} level names "
            f"(at most {max_unnamed_discs} expected in view); an extra lumbar vertebra cannot be excluded"
        )
    if len(disc_order) >= 2:
        lowest = disc_order[0].volume_mm3
        median_above = float(np.median([d.volume_mm3 for d in disc_order[1 : len(names)]]))
        if lowest < transitional_disc_ratio * median_above:
            flags.append(
                f"possible transitional lumbosacral vertebra: the lowest disc holds {100 * lowest / median_above:.0f}% "
                f"of the median volume of the discs above it (rudimentary {names[-1]} disc)"
            )

    named_discs = [NamedDiscPlane(level=name, plane=disc) for name, disc in zip(reversed(names), disc_order, strict=False)]
    named_discs.reverse()
    unnamed = tuple(reversed(disc_order[len(names) :]))
    # Bodies: when the sacrum is present body_order[0] is S1; otherwise the lowest body sits
    # above the lowest disc and is the body above it, L5.
    body_names = list(reversed(bodies_names)) if sequence[0][1] == "body" else list(reversed(bodies_names))[1:]
    named_bodies = [NamedVertebra(name=name, body=body) for name, body in zip(body_names, body_order, strict=False)]
    named_bodies.reverse()
    return SpineLevels(discs=tuple(named_discs), vertebrae=tuple(named_bodies), unnamed_discs=unnamed, flags=tuple(flags))

"""Disc centres, level names and axial slice levels on synthetic series of known geometry."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest

from spinereview.morphometry import (
    LUMBAR_DISC_LEVELS,
    DiscCentre,
    NamedDisc,
    SeriesGeometry,
    SliceGeometry,
    SliceLevel,
    assign_levels,
    axial_slice_levels,
    disc_centres,
    intervertebral_discs,
)

# Sagittal series: slice k at patient x = -6 + 3k mm (right to left), columns run posterior
# (+y, 0.5 mm), rows run inferior (-z, 0.8 mm); pixel (r, c) of slice k is at
# (-6 + 3k, -60 + 0.5 c, 100 - 0.8 r).
SAGITTAL = SeriesGeometry(
    slices=tuple(
        SliceGeometry(
            image_position_mm=(-6.0 + 3.0 * k, -60.0, 100.0),
            row_cosine=(0.0, 1.0, 0.0),
            column_cosine=(0.0, 0.0, -1.0),
            pixel_spacing_mm=(0.8, 0.5),
            slice_thickness_mm=3.0,
        )
        for k in range(5)
    )
)
DISC = 7
VOXEL_MM3 = 0.8 * 0.5 * 3.0

# Disc boxes: rows r0:r1 (patient z), columns 100:160 (y from -10 to +19.5), slices 1:4.
DISC_ROWS = [(20, 30), (60, 70), (100, 112), (140, 150), (180, 194)]


def _sagittal_labels(disc_rows: list[tuple[int, int]]) -> npt.NDArray[np.uint8]:
    labels = np.zeros((5, 240, 200), dtype=np.uint8)
    labels[:, 0:10, :] = 1  # another structure
    for r0, r1 in disc_rows:
        labels[1:4, r0:r1, 100:160] = DISC
    return labels


def _expected_centre(r0: int, r1: int) -> tuple[float, float, float]:
    # mean slice 2 -> x = 0; mean column 129.5 -> y = 4.75; mean row (r0 + r1 - 1) / 2.
    return (0.0, -60.0 + 0.5 * 129.5, 100.0 - 0.8 * (r0 + r1 - 1) / 2)


def test_disc_centres_superior_to_inferior_with_exact_centroids() -> None:
    labels = _sagittal_labels(DISC_ROWS)
    labels[0, 230, 5] = DISC  # a one-voxel speck (1.2 mm3): ignored

    discs = disc_centres(labels, SAGITTAL, DISC)

    assert len(discs) == 5
    for disc, (r0, r1) in zip(discs, DISC_ROWS, strict=True):
        assert disc.centre_mm == pytest.approx(_expected_centre(r0, r1), abs=1e-9)
        assert disc.voxel_count == 3 * (r1 - r0) * 60
        assert disc.volume_mm3 == pytest.approx(disc.voxel_count * VOXEL_MM3, rel=1e-12)
    z = [disc.centre_mm[2] for disc in discs]
    assert z == sorted(z, reverse=True)  # LPS +z is superior


def test_min_volume_threshold_is_configurable() -> None:
    labels = _sagittal_labels(DISC_ROWS[:1])
    labels[0, 230, 5] = DISC
    assert len(disc_centres(labels, SAGITTAL, DISC)) == 1
    kept = disc_centres(labels, SAGITTAL, DISC, min_volume_mm3=0.0)
    assert len(kept) == 2
    assert kept[1] == DiscCentre(centre_mm=(-6.0, -60.0 + 2.5, 100.0 - 0.8 * 230), voxel_count=1, volume_mm3=VOXEL_MM3)
    with pytest.raises(ValueError, match="min_volume_mm3"):
        disc_centres(labels, SAGITTAL, DISC, min_volume_mm3=-1.0)


def test_components_touching_only_at_an_edge_are_separate_discs() -> None:
    labels = np.zeros((5, 240, 200), dtype=np.uint8)
    labels[1:4, 20:40, 100:140] = DISC
    labels[1:4, 40:60, 140:180] = DISC  # shares only an edge with the first box
    assert len(disc_centres(labels, SAGITTAL, DISC)) == 2


def test_no_disc_and_mismatched_geometry() -> None:
    assert disc_centres(np.zeros((5, 8, 8), np.uint8), SAGITTAL, DISC) == ()
    with pytest.raises(ValueError, match="4 slices \\(z\\) but the geometry describes 5"):
        disc_centres(np.zeros((4, 8, 8), np.uint8), SAGITTAL, DISC)


def _discs(z_mm: list[float]) -> list[DiscCentre]:
    return [DiscCentre(centre_mm=(0.0, 5.0, z), voxel_count=100, volume_mm3=500.0) for z in z_mm]


def test_five_discs_get_the_five_lumbar_levels() -> None:
    discs = _discs([60.0, 20.0, -100.0, -20.0, -60.0])  # any input order

    assignment = assign_levels(discs)

    assert not assignment.ambiguous
    assert assignment.reason == ""
    assert assignment.unnamed == ()
    assert [d.level for d in assignment.discs] == list(LUMBAR_DISC_LEVELS)
    assert [d.centre_mm[2] for d in assignment.discs] == [60.0, 20.0, -20.0, -60.0, -100.0]
    assert assignment.discs[-1] == NamedDisc(level="L5-S1", centre_mm=(0.0, 5.0, -100.0), voxel_count=100, volume_mm3=500.0)
    assert assignment.centres_by_level() == {
        "L1-L2": (0.0, 5.0, 60.0),
        "L2-L3": (0.0, 5.0, 20.0),
        "L3-L4": (0.0, 5.0, -20.0),
        "L4-L5": (0.0, 5.0, -60.0),
        "L5-S1": (0.0, 5.0, -100.0),
    }


def test_four_discs_are_flagged_ambiguous_not_guessed_silently() -> None:
    assignment = assign_levels(_discs([20.0, -20.0, -60.0, -100.0]))

    assert assignment.ambiguous
    assert assignment.reason == ("found 4 discs but 5 level names (L1-L2 to L5-S1); names counted from the inferior end are provisional")
    assert [d.level for d in assignment.discs] == ["L2-L3", "L3-L4", "L4-L5", "L5-S1"]
    with pytest.raises(ValueError, match="ambiguous \\(found 4 discs"):
        assignment.centres_by_level()
    assert list(assignment.centres_by_level(allow_ambiguous=True)) == [
        "L2-L3",
        "L3-L4",
        "L4-L5",
        "L5-S1",
    ]


def test_six_discs_leave_the_highest_unnamed() -> None:
    """A lumbar sagittal view usually shows T12-L1 too: counting from the sacrum is unambiguous."""
    assignment = assign_levels(_discs([100.0, 60.0, 20.0, -20.0, -60.0, -100.0]))
    assert not assignment.ambiguous
    assert assignment.reason == "1 disc(s) above L1-L2 left unnamed (counted from the inferior end)"
    assert list(assignment.centres_by_level()) == list(LUMBAR_DISC_LEVELS)
    assert [d.centre_mm[2] for d in assignment.unnamed] == [100.0]
    assert [d.level for d in assignment.discs] == list(LUMBAR_DISC_LEVELS)


def test_no_discs_and_custom_level_names() -> None:
    empty = assign_levels([])
    assert empty.ambiguous and empty.discs == ()
    assert empty.reason == "no disc found; expected 5 (L1-L2 to L5-S1)"
    two = assign_levels(_discs([0.0, -40.0]), level_names=("L4-L5", "L5-S1"))
    assert not two.ambiguous
    assert [d.level for d in two.discs] == ["L4-L5", "L5-S1"]
    with pytest.raises(ValueError, match="must not be empty"):
        assign_levels(_discs([0.0]), level_names=())
    with pytest.raises(ValueError, match="unique"):
        assign_levels(_discs([0.0, 1.0]), level_names=("L5-S1", "L5-S1"))


def test_sagittal_labels_to_level_names() -> None:
    assignment = assign_levels(disc_centres(_sagittal_labels(DISC_ROWS), SAGITTAL, DISC))
    centres = assignment.centres_by_level()
    assert centres["L5-S1"] == pytest.approx(_expected_centre(*DISC_ROWS[-1]), abs=1e-9)
    assert centres["L1-L2"] == pytest.approx(_expected_centre(*DISC_ROWS[0]), abs=1e-9)


# --------------------------------------------------------------------------- axial slice levels


def _axial(z_mm: float, tilt_rad: float = 0.0, y_mm: float = -60.0) -> SliceGeometry:
    return SliceGeometry(
        image_position_mm=(-50.0, y_mm, z_mm),
        row_cosine=(1.0, 0.0, 0.0),
        column_cosine=(0.0, math.cos(tilt_rad), math.sin(tilt_rad)),
        pixel_spacing_mm=(0.5, 0.5),
        slice_thickness_mm=4.0,
    )


CENTRES = {"L3-L4": (0.0, 5.0, -20.0), "L4-L5": (0.0, 5.0, -60.0), "L5-S1": (0.0, 5.0, -100.0)}


def test_straight_axial_slices_go_to_the_nearest_disc() -> None:
    geometry = SeriesGeometry(slices=tuple(_axial(z) for z in (-16.0, -24.0, -45.0, -57.0, -104.5)))
    assert axial_slice_levels(geometry, CENTRES) == (
        SliceLevel(slice_index=0, level="L3-L4", distance_mm=4.0, signed_distance_mm=4.0),
        SliceLevel(slice_index=1, level="L3-L4", distance_mm=4.0, signed_distance_mm=-4.0),
        SliceLevel(slice_index=2, level="L4-L5", distance_mm=15.0, signed_distance_mm=15.0),
        SliceLevel(slice_index=3, level="L4-L5", distance_mm=3.0, signed_distance_mm=3.0),
        SliceLevel(slice_index=4, level="L5-S1", distance_mm=4.5, signed_distance_mm=-4.5),
    )
    # A feet-first grid (normal pointing inferior) gives the same signs: they follow the patient.
    flipped = SeriesGeometry(
        slices=tuple(
            SliceGeometry(
                image_position_mm=(-50.0, -60.0, z),
                row_cosine=(-1.0, 0.0, 0.0),
                column_cosine=(0.0, 1.0, 0.0),
                pixel_spacing_mm=(0.5, 0.5),
                slice_thickness_mm=4.0,
            )
            for z in (-16.0, -24.0)
        )
    )
    assert [s.signed_distance_mm for s in axial_slice_levels(flipped, CENTRES)] == [4.0, -4.0]


def test_oblique_slice_distance_is_along_its_normal() -> None:
    tilt = math.radians(20.0)
    # Plane through the L4-L5 centre, tilted 20° about x: IPP = centre - 65 mm along the
    # column direction, so the centre lies in the plane (row 130 of the slice).
    through_disc = SliceGeometry(
        image_position_mm=(-50.0, 5.0 - 65.0 * math.cos(tilt), -60.0 - 65.0 * math.sin(tilt)),
        row_cosine=(1.0, 0.0, 0.0),
        column_cosine=(0.0, math.cos(tilt), math.sin(tilt)),
        pixel_spacing_mm=(0.5, 0.5),
        slice_thickness_mm=4.0,
    )
    # The same plane moved 6 mm along its normal (0, -sin, cos).
    shifted = SliceGeometry(
        image_position_mm=(
            through_disc.image_position_mm[0],
            through_disc.image_position_mm[1] - 6.0 * math.sin(tilt),
            through_disc.image_position_mm[2] + 6.0 * math.cos(tilt),
        ),
        row_cosine=through_disc.row_cosine,
        column_cosine=through_disc.column_cosine,
        pixel_spacing_mm=(0.5, 0.5),
        slice_thickness_mm=4.0,
    )
    levels = axial_slice_levels(SeriesGeometry(slices=(through_disc, shifted)), CENTRES)
    assert levels[0].level == "L4-L5" and levels[0].distance_mm == pytest.approx(0.0, abs=1e-9)
    assert levels[1].level == "L4-L5" and levels[1].distance_mm == pytest.approx(6.0, abs=1e-9)
    # Vertical distance from the L3-L4 centre is 40 mm; along the tilted normal it is
    # |(0, 0, 40) . (0, -sin, cos)| = 40 cos(20°).
    only_l34 = axial_slice_levels(SeriesGeometry(slices=(through_disc,)), {"L3-L4": CENTRES["L3-L4"]})
    assert only_l34[0].distance_mm == pytest.approx(40.0 * math.cos(tilt), abs=1e-9)


def test_exact_tie_goes_to_the_first_level_given() -> None:
    geometry = SeriesGeometry(slices=(_axial(-40.0),))
    assert axial_slice_levels(geometry, CENTRES)[0].level == "L3-L4"


def test_axial_slice_levels_rejects_bad_centres() -> None:
    geometry = SeriesGeometry(slices=(_axial(0.0),))
    with pytest.raises(ValueError, match="no disc centres"):
        axial_slice_levels(geometry, {})
    with pytest.raises(ValueError, match="3 finite numbers"):
        axial_slice_levels(geometry, {"L4-L5": (0.0, 1.0)})
    with pytest.raises(ValueError, match="3 finite numbers"):
        axial_slice_levels(geometry, {"L4-L5": (0.0, 1.0, float("nan"))})


def _blob(z_mm: float, volume_mm3: float) -> DiscCentre:
    return DiscCentre(centre_mm=(0.0, 5.0, z_mm), voxel_count=int(volume_mm3), volume_mm3=volume_mm3)


def test_intervertebral_discs_drop_a_false_disc_below_the_sacrum_and_fragments() -> None:
    # T12 .. S1 bodies every 36 mm; discs between them, plus a false "disc" below S1, a fragment,
    # and a vertebral-body speck below everything that must not count as a vertebra.
    bodies = [_blob(z, 25_000.0) for z in (110.0, 74.0, 38.0, 2.0, -34.0, -70.0, -106.0)] + [_blob(-160.0, 120.0)]
    true_discs = [_blob(z, 9_000.0) for z in (92.0, 56.0, 20.0, -16.0, -52.0, -88.0)]
    false_below_sacrum = _blob(-125.0, 6_000.0)
    fragment = _blob(-150.0, 150.0)
    kept = intervertebral_discs([*true_discs, false_below_sacrum, fragment], bodies)
    assert [d.centre_mm[2] for d in kept] == [92.0, 56.0, 20.0, -16.0, -52.0, -88.0]
    assignment = assign_levels(kept)
    assert not assignment.ambiguous
    assert {d.level: d.centre_mm[2] for d in assignment.discs}["L5-S1"] == -88.0
    assert [d.centre_mm[2] for d in assignment.unnamed] == [92.0]


def test_intervertebral_discs_validate_and_handle_empty_input() -> None:
    assert intervertebral_discs([], []) == ()
    assert intervertebral_discs(_discs([0.0]), []) == ()
    with pytest.raises(ValueError, match="min_fraction_of_median"):
        intervertebral_discs([], [], min_fraction_of_median=1.0)

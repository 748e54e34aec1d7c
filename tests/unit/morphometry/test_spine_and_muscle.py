"""Counting from the sacrum with flags, tilted disc heights, and muscle fat fraction methods."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest

from spinereview.morphometry import (
    FAT_WATER_METHOD,
    SeriesGeometry,
    SignalIntensityModel,
    SliceGeometry,
    SliceLevel,
    disc_heights_mm,
    fat_fraction_percent,
    paraspinal_muscles_by_level,
    spine_levels,
)

BODY, DISC = 1, 2
# Sagittal: pixel (r, c) of slice k at (-6 + 3k, -60 + 0.5 c, 200 - 0.8 r).
SAGITTAL = SeriesGeometry(
    slices=tuple(
        SliceGeometry(
            image_position_mm=(-6.0 + 3.0 * k, -60.0, 200.0),
            row_cosine=(0.0, 1.0, 0.0),
            column_cosine=(0.0, 0.0, -1.0),
            pixel_spacing_mm=(0.8, 0.5),
            slice_thickness_mm=3.0,
        )
        for k in range(5)
    )
)


def _column(pattern: list[tuple[int, int]]) -> npt.NDArray[np.uint8]:
    """Stack of (label, rows) from the top; each structure 60 columns deep on slices 1-3."""
    labels = np.zeros((5, 480, 200), dtype=np.uint8)
    row = 10
    for label, rows in pattern:
        if label:
            labels[1:4, row : row + rows, 70:130] = label
        row += rows
    return labels


def _lumbar(n_discs: int, *, sacrum: bool = True, lowest_disc_rows: int = 12) -> list[tuple[int, int]]:
    pattern = [(BODY, 30)]
    for i in range(n_discs):
        pattern += [(DISC, lowest_disc_rows if i == n_discs - 1 else 12), (BODY, 30)]
    return pattern if sacrum else pattern[:-1]


def test_five_discs_above_the_sacrum_are_named_without_flags() -> None:
    spine = spine_levels(_column(_lumbar(5)), SAGITTAL, disc_label=DISC, vertebral_body_label=BODY)
    assert spine.flags == ()
    assert [d.level for d in spine.discs] == ["L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]
    assert [v.name for v in spine.vertebrae] == ["L1", "L2", "L3", "L4", "L5", "S1"]
    for named in spine.discs:
        assert named.plane.normal == pytest.approx((0.0, 0.0, 1.0), abs=1e-12)
        assert named.plane.n_slices == 3
    # L5-S1: rows 10 + 30 + 4 * 42 = 208 .. 219 -> centre row 213.5 -> z = 200 - 0.8 * 213.5
    assert spine.planes_by_level()["L5-S1"].centre_mm == pytest.approx((0.0, -60.0 + 0.5 * 99.5, 200.0 - 0.8 * 213.5), abs=1e-9)


@pytest.mark.parametrize(
    ("pattern", "flag"),
    [
        (_lumbar(4), "too few discs: found 4 above the sacrum, expected 5"),
        (_lumbar(5, sacrum=False), "missing sacrum"),
        (_lumbar(8), "too many discs: 8 above the sacrum, 3 more than the 5 level names"),
        (_lumbar(5, lowest_disc_rows=4), "possible transitional lumbosacral vertebra: the lowest disc holds 33%"),
        (_lumbar(2) + [(DISC, 12), (0, 4), (DISC, 12)] + _lumbar(2)[1:], "two discs follow each other without a body"),
    ],
)
def test_doubtful_counts_are_flagged_and_names_withheld(pattern: list[tuple[int, int]], flag: str) -> None:
    spine = spine_levels(_column(pattern), SAGITTAL, disc_label=DISC, vertebral_body_label=BODY)
    assert spine.ambiguous
    assert any(f.startswith(flag) for f in spine.flags), spine.flags
    with pytest.raises(ValueError, match="ambiguous"):
        spine.planes_by_level()
    assert spine.discs[-1].level == "L5-S1"  # provisional names are still there on request
    assert spine.planes_by_level(allow_ambiguous=True)


def test_no_disc_and_bad_arguments() -> None:
    spine = spine_levels(_column([(BODY, 30)]), SAGITTAL, disc_label=DISC, vertebral_body_label=BODY)
    assert spine.flags == ("no disc found; expected 5 (L1-L2 to L5-S1)",)
    with pytest.raises(ValueError, match="vertebra_names must be 6"):
        spine_levels(_column(_lumbar(5)), SAGITTAL, disc_label=DISC, vertebral_body_label=BODY, vertebra_names=("L5", "S1"))
    with pytest.raises(ValueError, match="4 slices \\(z\\) but the geometry describes 5"):
        spine_levels(np.zeros((4, 8, 8), np.uint8), SAGITTAL, disc_label=DISC, vertebral_body_label=BODY)


def test_disc_heights_of_a_tilted_wedge_are_measured_in_its_own_frame() -> None:
    # A 40 mm deep wedge disc (anterior 12 mm, posterior 6 mm, linear) rotated 30° in the
    # sagittal plane, on a fine anisotropic grid. Heights at 10 % inside the edges: 12 - 0.1 * 6
    # = 11.4 and 6 + 0.6 = 6.6 mm; middle 9 mm; whatever the rotation.
    spacing = (0.2, 0.15)
    geometry = SeriesGeometry(
        slices=(
            SliceGeometry(
                image_position_mm=(0.0, -30.0, 30.0),
                row_cosine=(0.0, 1.0, 0.0),
                column_cosine=(0.0, 0.0, -1.0),
                pixel_spacing_mm=spacing,
                slice_thickness_mm=3.0,
            ),
        )
    )
    rows, cols = np.mgrid[0:300, 0:400]
    p = geometry.slices[0].pixel_to_patient_mm(rows, cols)
    for angle in (0.0, math.radians(30)):
        c, s = math.cos(angle), math.sin(angle)
        y, z = p[..., 1], p[..., 2]
        along = c * y + s * z  # the disc's own AP coordinate (+ posterior)
        across = -s * y + c * z
        height = 9.0 + 3.0 * (-along / 20.0)  # 12 mm anterior (along = -20), 6 posterior
        inside = (np.abs(along) <= 20.0) & (np.abs(across) <= height / 2)
        labels = inside.astype(np.uint8)[None] * DISC
        (measured,) = disc_heights_mm(labels, geometry, DISC)
        tolerance = 2 * max(spacing)  # one pixel for the chord, one for the station x slope 0.15
        assert measured.anterior_mm == pytest.approx(11.4, abs=tolerance)
        assert measured.middle_mm == pytest.approx(9.0, abs=tolerance)
        assert measured.posterior_mm == pytest.approx(6.6, abs=tolerance)
        assert measured.depth_mm == pytest.approx(40.0, abs=2 * max(spacing))
        assert measured.height_axis == pytest.approx((0.0, -s, c), abs=0.01)
    axial = SeriesGeometry(
        slices=(
            SliceGeometry(
                image_position_mm=(0.0, 0.0, 0.0),
                row_cosine=(1.0, 0.0, 0.0),
                column_cosine=(0.0, 1.0, 0.0),
                pixel_spacing_mm=spacing,
                slice_thickness_mm=3.0,
            ),
        )
    )
    with pytest.raises(ValueError, match="not sagittal"):
        disc_heights_mm(labels, axial, DISC)
    with pytest.raises(ValueError, match="label 7 is not present"):
        disc_heights_mm(labels, geometry, 7)


# --------------------------------------------------------------------------- muscles

AXIAL = SeriesGeometry(
    slices=tuple(
        SliceGeometry(
            image_position_mm=(-20.0, -20.0, z),
            row_cosine=(1.0, 0.0, 0.0),
            column_cosine=(0.0, 1.0, 0.0),
            pixel_spacing_mm=(0.5, 1.0),
            slice_thickness_mm=4.0,
        )
        for z in (0.0, 4.0)
    )
)
LEVELS = [SliceLevel(0, "L4-L5", 0.0, 0.0), SliceLevel(1, "L4-L5", 4.0, 4.0)]


def _muscle_labels() -> npt.NDArray[np.uint8]:
    labels = np.zeros((2, 40, 40), dtype=np.uint8)
    labels[:, 10:30, 25:35] = 5  # left (patient +x): 200 pixels x 0.5 mm2
    labels[:, 10:20, 5:15] = 6  # right: 100 pixels
    return labels


def test_fat_water_fraction_and_csa_on_the_reference_slice() -> None:
    labels = _muscle_labels()
    fat = np.zeros(labels.shape)
    water = np.full(labels.shape, 100.0)
    fat[labels == 5] = 25.0  # 20 %
    fat[0, 10:15, 5:15] = 100.0  # half of the right side's pixels at 50 %, the rest 0 %
    result = paraspinal_muscles_by_level(labels, AXIAL, LEVELS, left_label=5, right_label=6, fat_water=(fat, water))
    left, right = result["L4-L5"]["left"], result["L4-L5"]["right"]
    assert (left.csa_mm2, left.slice_index, left.n_slices, left.method) == (100.0, 0, 2, FAT_WATER_METHOD)
    assert left.fat_fraction_percent == pytest.approx(20.0, abs=1e-12)
    assert right.csa_mm2 == 50.0
    assert right.fat_fraction_percent == pytest.approx(25.0, abs=1e-12)


def test_intensity_models_record_their_method() -> None:
    labels = _muscle_labels()
    image = np.full(labels.shape, 200.0)
    image[0, 10:15, 25:35] = 1000.0  # a quarter of the left muscle is pure fat
    linear = SignalIntensityModel(muscle_signal=200.0, fat_signal=1000.0)
    threshold = SignalIntensityModel(muscle_signal=200.0, fat_signal=1000.0, kind="threshold")
    for model, expected in ((linear, 25.0), (threshold, 25.0)):
        left = paraspinal_muscles_by_level(labels, AXIAL, LEVELS, left_label=5, right_label=6, image=image, intensity_model=model)["L4-L5"][
            "left"
        ]
        assert left.fat_fraction_percent == pytest.approx(expected, abs=1e-12)
        assert left.method == model.method
    # A uniform 30 % mix: the two-component model reads 30 %, thresholding reads 0 %.
    mixed = np.full(labels.shape, 0.7 * 200.0 + 0.3 * 1000.0)
    assert linear.fat_fraction(mixed[labels == 5]) == pytest.approx(0.3, abs=1e-12)
    assert threshold.fat_fraction(mixed[labels == 5]) == 0.0
    assert threshold.method == "threshold: pixels beyond 600 (muscle 200, fat 1000) are fat"


def test_muscle_garbage_in_is_refused() -> None:
    labels = _muscle_labels()
    image = np.ones(labels.shape)
    model = SignalIntensityModel(muscle_signal=200.0, fat_signal=1000.0)
    with pytest.raises(ValueError, match="image has shape \\(2, 40, 39\\)"):
        paraspinal_muscles_by_level(labels, AXIAL, LEVELS, left_label=5, right_label=6, image=image[:, :, :39], intensity_model=model)
    with pytest.raises(ValueError, match="give both or neither"):
        paraspinal_muscles_by_level(labels, AXIAL, LEVELS, left_label=5, right_label=6, image=image)
    with pytest.raises(ValueError, match="not both"):
        paraspinal_muscles_by_level(
            labels, AXIAL, LEVELS, left_label=5, right_label=6, fat_water=(image, image), image=image, intensity_model=model
        )
    with pytest.raises(ValueError, match="right paraspinal muscle \\(label 7\\) is not labelled on axial slice 0"):
        paraspinal_muscles_by_level(labels, AXIAL, LEVELS, left_label=5, right_label=7)
    with pytest.raises(ValueError, match="F \\+ W = 0"):
        fat_fraction_percent([0.0, 1.0], [0.0, 1.0])
    with pytest.raises(ValueError, match="non-negative"):
        fat_fraction_percent([-1.0], [2.0])
    with pytest.raises(ValueError, match="finite and different"):
        SignalIntensityModel(muscle_signal=1.0, fat_signal=1.0)
    with pytest.raises(ValueError, match="between the muscle and fat"):
        SignalIntensityModel(muscle_signal=1.0, fat_signal=2.0, kind="threshold", threshold=3.0)
